"""Small real data sets from installed packages (no download), for demos and tests."""

from __future__ import annotations

from pathlib import Path

__all__ = ["load_chatterbot_topics"]


def load_chatterbot_topics(topics=None, min_per_topic: int = 60):
    """Statements from the chatterbot English corpus, labelled by topic.

    Each ``chatterbot_corpus/data/english/<topic>.yml`` file holds conversations
    (lists of statements). Every distinct statement becomes a text labelled by
    its file's topic (the file name: ``"ai"``, ``"coding"``, ``"emotion"``...);
    statements found under several topics are dropped as ambiguous.

    Parameters
    ----------
    topics : list of str or None, default=None
        Topics to keep; None keeps every topic with at least ``min_per_topic``
        distinct statements (ai, coding, conversations, emotion, literature,
        psychology, trivia with the default).
    min_per_topic : int, default=60
        Only used when ``topics`` is None.

    Returns
    -------
    texts : list of str
    labels : list of str
        Sorted by topic, then in file order.
    """
    by_topic = _statements_by_topic()
    if topics is None:
        topics = [t for t, texts in by_topic.items() if len(texts) >= min_per_topic]
    unknown = sorted(set(topics) - set(by_topic))
    if unknown:
        raise ValueError(
            f"unknown chatterbot topics {unknown}; available: {sorted(by_topic)}"
        )
    seen: dict[str, set] = {}
    for topic, statements in by_topic.items():
        for text in statements:
            seen.setdefault(text, set()).add(topic)
    texts, labels = [], []
    for topic in sorted(topics):
        for text in by_topic[topic]:
            if len(seen[text]) == 1:
                texts.append(text)
                labels.append(topic)
    return texts, labels


def _statements_by_topic() -> dict[str, list[str]]:
    try:
        import chatterbot_corpus
        import yaml
    except ImportError as exc:
        raise ImportError(
            "the chatterbot topics data set needs chatterbot-corpus: "
            "pip install 'sktransfer[data]'"
        ) from exc
    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    by_topic = {}
    for path in sorted(folder.glob("*.yml")):
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle) or {}
        statements = [
            s.strip()
            for conversation in content.get("conversations", [])
            for s in conversation
            if isinstance(s, str) and s.strip()
        ]
        by_topic[path.stem] = list(dict.fromkeys(statements))
    return by_topic

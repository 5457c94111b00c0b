"""Small real data sets from installed packages (no download), for demos and tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sktransfer.exceptions import MissingDependencyError, ParameterError

if TYPE_CHECKING:  # names used in annotations only
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "PHOTO_CLASSES",
    "load_chatterbot_tags",
    "load_chatterbot_topics",
    "load_photo_mosaics",
    "load_photo_patches",
    "load_photo_zoom",
    "load_question_shift",
    "recapture",
]


def load_chatterbot_topics(
    topics: Sequence[str] | None = None,
    min_per_topic: int = 60,
) -> tuple[list[str], list[str]]:
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
        raise ParameterError(
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


def load_chatterbot_tags(
    n_samples: int = 200,
    topics: Sequence[str] | None = None,
    random_state: int = 0,
) -> tuple[list[str], list[list[str]]]:
    """Multi-label texts: chatterbot statements of one or two topics, joined.

    Each text is one statement of a topic, or (half the time) a statement of
    one topic followed by one of another, tagged with both topics. Statements
    are drawn without replacement while they last (from
    ``load_chatterbot_topics``), so a statement rarely appears twice.

    Parameters
    ----------
    n_samples : int, default=200
    topics : list of str or None, default=None
        As in ``load_chatterbot_topics`` (None: the topics with at least 60
        statements).
    random_state : int, default=0

    Returns
    -------
    texts : list of str
    tags : list of list of str
        The topics of each text, sorted (``MultiLabelBinarizer`` input).
    """
    texts, labels = load_chatterbot_topics(topics)
    by_topic: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_topic.setdefault(label, []).append(text)
    rng = np.random.default_rng(random_state)
    pools = {t: list(rng.permutation(v)) for t, v in by_topic.items()}
    names = sorted(by_topic)
    out_texts, out_tags = [], []
    for _ in range(n_samples):
        chosen = rng.choice(names, size=int(rng.integers(1, 3)), replace=False)
        parts = []
        for topic in chosen:
            if not pools[topic]:
                pools[topic] = list(rng.permutation(by_topic[topic]))
            parts.append(str(pools[topic].pop()))
        out_texts.append(" ".join(parts))
        out_tags.append(sorted(str(t) for t in chosen))
    return out_texts, out_tags


SHIFT_TOPICS = ("coding", "conversations", "emotion", "trivia")


def load_question_shift(
    n_per_topic: int = 60, random_state: int = 0
) -> tuple[list[str], list[str], list[str], list[str], list[str], list[str]]:
    """A real text domain shift: questions (source) vs other statements (target).

    Topic classification (coding, conversations, emotion, trivia) of the
    chatterbot statements (:func:`load_chatterbot_topics`). Source: the
    questions (statements ending in ``"?"``), at most ``n_per_topic`` per topic.
    The other statements of a topic (answers and remarks), shuffled, give the
    target rows and, disjoint from them, as many test rows (at most
    ``n_per_topic`` each). ``docs/adapt.md`` reports the methods on it.

    Returns
    -------
    X_source, y_source, X_target, y_target, X_test, y_test : lists of str
    """
    if isinstance(n_per_topic, bool) or not isinstance(n_per_topic, int) \
            or n_per_topic < 1:
        raise ParameterError(
            f"n_per_topic must be an integer >= 1, got {n_per_topic!r}"
        )
    texts, labels = load_chatterbot_topics(list(SHIFT_TOPICS))
    rng = np.random.RandomState(random_state)
    parts: list[list[tuple[str, str]]] = [[], [], []]  # source, target, test
    for topic in SHIFT_TOPICS:
        mine = [t for t, label in zip(texts, labels, strict=True) if label == topic]
        questions = [t for t in mine if t.rstrip().endswith("?")]
        others = [t for t in mine if not t.rstrip().endswith("?")]
        others = [others[i] for i in rng.permutation(len(others))]
        half = min(len(others) // 2, n_per_topic)
        chosen = (questions[:n_per_topic], others[:half], others[half : 2 * half])
        for part, rows in zip(parts, chosen, strict=True):
            part += [(text, topic) for text in rows]
    Xs, ys, Xt, yt, X_test, y_test = (
        [pair[i] for pair in part] for part in parts for i in (0, 1)
    )
    return Xs, ys, Xt, yt, X_test, y_test


def _statements_by_topic() -> dict[str, list[str]]:
    try:
        import chatterbot_corpus
        import yaml
    except ImportError as exc:
        raise MissingDependencyError(
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


# --- images ------------------------------------------------------------------
# Real photos shipped with scikit-image, cut into labelled patches: a small,
# offline, real-image classification task. Each class is one photo (textures
# such as brick, grass and gravel, and scenes), each sample a random crop of it.
# Training crops come from the left 60% of a photo and test crops from the rest,
# so a held-out score measures generalisation to unseen pixels, not overlap.
PHOTO_CLASSES = ("brick", "grass", "gravel", "moon", "coffee", "chelsea",
                 "astronaut", "immunohistochemistry")
_TRAIN_FRACTION = 0.6


def load_photo_patches(
    n_per_class: int = 20,
    size: int = 64,
    split: str = "train",
    classes: Sequence[str] | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random ``size`` x ``size`` crops of scikit-image's sample photos.

    Parameters
    ----------
    n_per_class : int, default=20
    size : int, default=64
    split : {"train", "test"}, default="train"
        ``"train"`` crops the left 60% of each photo, ``"test"`` the right 40%.
    classes : sequence of str, default=None
        Names of ``skimage.data`` photos; default ``PHOTO_CLASSES``.
    random_state : int, default=0

    Returns
    -------
    images : ndarray of shape (n_classes * n_per_class, size, size, 3), uint8
        Gray photos are repeated over the three channels.
    labels : ndarray of str, the photo each crop comes from
    """
    rng = np.random.default_rng(random_state)
    images, labels = [], []
    for name in classes or PHOTO_CLASSES:
        photo = _photo_region(name, split)
        height, width = photo.shape[:2]
        for _ in range(n_per_class):
            top = rng.integers(0, height - size + 1)
            left = rng.integers(0, width - size + 1)
            images.append(photo[top:top + size, left:left + size])
            labels.append(name)
    return np.stack(images), np.asarray(labels)


def load_photo_mosaics(
    n_samples: int = 100,
    size: int = 64,
    split: str = "train",
    classes: Sequence[str] | None = None,
    max_labels: int = 3,
    random_state: int = 0,
) -> tuple[np.ndarray, list[list[str]]]:
    """Multi-label images: 2 x 2 mosaics of crops from 1 to 3 sample photos.

    Each image is cut into four tiles; it draws 1 to ``max_labels`` photos,
    gives each at least one tile and the rest at random among them, and fills
    each tile with a random crop of its photo. Its tags are the photos drawn.

    Parameters
    ----------
    n_samples : int, default=100
    size : int, default=64
        The mosaic's side (even); each tile is ``size // 2``.
    split : {"train", "test"}, default="train"
        Crops from the left 60% of each photo, or from the rest.
    classes : sequence of str, default=None
        Names of ``skimage.data`` photos; default ``PHOTO_CLASSES``.
    max_labels : int, default=3
        At most 4 (one tile each).
    random_state : int, default=0

    Returns
    -------
    images : ndarray of shape (n_samples, size, size, 3), uint8
    tags : list of list of str
        The photos in each mosaic, sorted (``MultiLabelBinarizer`` input).
    """
    if not 1 <= max_labels <= 4:
        raise ParameterError(f"max_labels must be 1 to 4, got {max_labels!r}")
    names = list(classes or PHOTO_CLASSES)
    photos = {name: _photo_region(name, split) for name in names}
    rng = np.random.default_rng(random_state)
    tile = size // 2
    images, tags = np.zeros((n_samples, 2 * tile, 2 * tile, 3), np.uint8), []
    for i in range(n_samples):
        k = int(rng.integers(1, min(max_labels, len(names)) + 1))
        chosen = list(rng.choice(names, size=k, replace=False))
        owners = chosen + list(rng.choice(chosen, size=4 - k))
        for t, name in enumerate(rng.permutation(owners)):
            photo = photos[str(name)]
            top = rng.integers(0, photo.shape[0] - tile + 1)
            left = rng.integers(0, photo.shape[1] - tile + 1)
            row, col = divmod(t, 2)
            images[i, row * tile:(row + 1) * tile, col * tile:(col + 1) * tile] = (
                photo[top:top + tile, left:left + tile])
        tags.append(sorted(str(name) for name in chosen))
    return images, tags


def _photo_region(name: str, split: str) -> np.ndarray:
    """The left 60% ("train") or the rest ("test") of a photo, as RGB uint8."""
    try:
        from skimage import data
    except ImportError as exc:
        raise MissingDependencyError(
            "the sample photos need scikit-image: pip install 'sktransfer[data]'"
        ) from exc
    if split not in ("train", "test"):
        raise ParameterError(f"split must be 'train' or 'test', got {split!r}")
    photo = getattr(data, name)()
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    photo = photo[..., :3]
    cut = int(photo.shape[1] * _TRAIN_FRACTION)
    return photo[:, :cut] if split == "train" else photo[:, cut:]


def load_photo_zoom(
    n_per_class: int = 20,
    size: int = 64,
    split: str = "train",
    classes: Sequence[str] | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of scikit-image's sample photos at random zoom: a regression task.

    Each sample is a square crop of side ``s`` drawn log-uniformly in
    ``[size / 2, 2.5 * size]`` and resized to ``size`` x ``size``; its target
    is ``log2(s / size)``, how far the camera zoomed out (-1: a 2x close-up,
    1.32: 2.5x wider). Telling the scale of bricks, grass or a cat's fur from
    one crop needs knowledge of what those look like: pretrained features
    help, raw pixels hardly do. Training crops come from the left 60% of each
    photo, test crops from the rest (as in ``load_photo_patches``).

    Parameters
    ----------
    n_per_class : int, default=20
        Crops per photo.
    size : int, default=64
    split : {"train", "test"}, default="train"
    classes : sequence of str, default=None
        Names of ``skimage.data`` photos; default ``PHOTO_CLASSES``.
    random_state : int, default=0

    Returns
    -------
    images : ndarray of shape (n_photos * n_per_class, size, size, 3), uint8
    zoom : ndarray of shape (n_photos * n_per_class,), float64
        ``log2(crop side / size)``.
    """
    from PIL import Image

    rng = np.random.default_rng(random_state)
    low, high = np.log2(0.5), np.log2(2.5)
    images, zoom = [], []
    for name in classes or PHOTO_CLASSES:
        region = _photo_region(name, split)
        for _ in range(n_per_class):
            z = rng.uniform(low, high)
            side = int(round(size * 2**z))
            height, width = region.shape[:2]
            if side > min(height, width):
                raise ParameterError(f"size={size} is too large for photo {name!r}")
            top = rng.integers(0, height - side + 1)
            left = rng.integers(0, width - side + 1)
            crop = Image.fromarray(region[top:top + side, left:left + side])
            # Pillow's stubs lack the pre-9.1 constant (the floor is Pillow 9.0).
            resized = crop.resize((size, size), Image.BICUBIC)  # type: ignore[attr-defined]
            images.append(np.asarray(resized))
            zoom.append(np.log2(side / size))
    return np.stack(images), np.asarray(zoom)


def recapture(
    images: Any,
    blur: float = 2.0,
    cast: tuple[float, float, float] = (0.6, 0.9, 1.4),
    jpeg_quality: int = 10,
) -> np.ndarray:
    """The same photos as a second camera would give them: a domain shift.

    Each image is blurred (Gaussian, radius ``blur``), colour-cast (each RGB
    channel multiplied by ``cast``, clipped) and saved as a JPEG of quality
    ``jpeg_quality``. Used to build a real image domain shift from
    ``load_photo_patches``: source = the patches as they are, target = the
    same kind of patches recaptured.

    Parameters
    ----------
    images : ndarray of shape (n, height, width, 3), uint8
    blur : float, default=2.0
    cast : tuple of 3 floats, default=(0.6, 0.9, 1.4)
        A blue cast by default.
    jpeg_quality : int, default=10

    Returns
    -------
    ndarray of the same shape, uint8
    """
    import io

    from PIL import Image, ImageFilter

    out = []
    for image in images:
        picture = Image.fromarray(image).filter(ImageFilter.GaussianBlur(blur))
        pixels = np.asarray(picture, dtype=np.float64) * np.asarray(cast)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=jpeg_quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)

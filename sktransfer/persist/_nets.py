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
import re
from pathlib import Path
from typing import TypeGuard

import numpy as np
import torch
from torch import nn

from sktransfer.backbones import TEXT_BACKBONE_FILES
from sktransfer.exceptions import ModelFileError, ModelNotAvailableError
from sktransfer.persist import _limits as limits

__all__ = ["HANDLERS", "NETWORK_FILES", "check_chains", "check_lazy_networks",
           "check_loaded",
           "check_specs",
           "handler_for", "is_model_name"]

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
    if not (is_model_name(arch) and is_image_name(arch)):
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
                backbone = load_text_backbone(folder / ENCODER,
                                              entry.get("text") or {},
                                              _cap(folder / WEIGHTS))
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

    backbone = load_text_backbone(folder / ENCODER, entry.get("text") or {},
                                  _cap(folder / WEIGHTS))
    load_weights(backbone.module, folder / WEIGHTS)
    backbone.module.to(torch.device(device)).eval()
    return backbone


def _cap(weights: Path):
    """The one parameter cap of every network rebuilt from a file: within
    ``max_parameters`` and no more than ``weights`` holds."""
    return lambda count, what: limits.check_parameters(count, weights, what)


class TextFeaturesHandler:
    """A fitted ``PretrainedTextEmbeddings`` whose model is a local file or
    folder: its encoder is stored, because a file never names a path.

    One with a model *name* stores nothing: the name is reloaded on first use,
    like a pickle, and ``load`` refuses a file whose text embedder has no
    stored encoder and a spec that is not a plain name
    (``check_specs``)."""

    kind = "text-features"
    heavy: tuple[str, ...] = ("_model",)

    @staticmethod
    def matches(obj) -> bool:
        from sktransfer.text import PretrainedTextEmbeddings

        return (isinstance(obj, PretrainedTextEmbeddings)
                and hasattr(obj, "n_features_out_") and _is_local(obj.model))

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


def check_specs(objects, owners, path) -> None:
    """A fitted embedder without a stored network rebuilds it from its spec:
    that spec must be a catalogue or hub *name*, never a path the file chose.
    Decided from the text alone: no file is opened or looked up, so the
    answer says nothing about what exists on this machine."""
    from sktransfer._embedding.embedder import BaseEmbedder
    from sktransfer.backbones import is_image_name
    from sktransfer.image import PretrainedImageFeatures

    stored = {id(obj) for _, obj in owners}
    for obj in objects:
        if (not isinstance(obj, BaseEmbedder) or id(obj) in stored
                or "n_features_out_" not in obj.__dict__):
            continue
        owner = type(obj).__name__
        image = isinstance(obj, PretrainedImageFeatures)
        model = obj.__dict__.get("model")
        if not is_model_name(model) or (image and not is_image_name(model)):
            raise ModelFileError(
                f"{str(path)!r}: a {owner} has no stored network and names the "
                f"model {_short(model)}, which is not a model name"
                f"{' sktransfer knows' if image else ''}; a model file never "
                f"chooses a file or folder to read (a network fitted from a "
                f"file is stored in the model file)")
        weights = obj.__dict__.get("weights")
        if weights is not None and not _is_weights_name(weights):
            raise ModelFileError(
                f"{str(path)!r}: a {owner} has no stored network and names the "
                f"weights {_short(weights)}, which is not 'DEFAULT' or a weights "
                f"name; a model file never chooses a file to read")


_DEVICE = re.compile(r"cpu|cuda(:\d{1,3})?|mps")


def check_loaded(objects, path) -> None:
    """Every loaded sktransfer estimator's parameters and fitted state are
    what its own ``fit`` could have made, checked once at load (never a
    traceback at predict): parameters against their constraints, image sides
    within ``max_image_size``, a real device, widths that chain."""
    name = repr(str(path))
    for obj in objects:
        owner = type(obj).__name__
        if type(obj).__module__.startswith("sktransfer") and hasattr(
                obj, "_parameter_constraints"):
            try:
                obj._validate_params()
            except (ValueError, TypeError) as exc:
                raise ModelFileError(f"{name}: {owner}: {exc}") from None
        state = obj.__dict__
        if "image_size" in state:
            limits.check_image_size(state["image_size"], f"{name}: {owner}'s "
                                                          f"image_size")
        if "device_" in state and not (isinstance(state["device_"], str) and
                                       _DEVICE.fullmatch(state["device_"])):
            raise ModelFileError(f"{name}: {owner}.device_ is "
                                 f"{_short(state['device_'])}, not 'cpu', "
                                 f"'cuda[:n]' or 'mps'")
        if "n_features_out_" in state:
            limits.check_int(state["n_features_out_"],
                             f"{name}: {owner}.n_features_out_", 1, 1 << 20)
        _check_widths(obj, name)
        check = _STATE_CHECKS.get(owner)
        if check is not None and type(obj).__module__.startswith("sktransfer"):
            check(obj, name)


def check_chains(objects, path) -> None:
    """Each pipeline's steps chain (after the networks are checked)."""
    from sklearn.pipeline import Pipeline

    for obj in objects:
        if isinstance(obj, Pipeline):
            _check_chain(obj, repr(str(path)))


def check_lazy_networks(objects, stored: set, path) -> None:
    """A fitted embedder without a stored network (its spec a name,
    ``check_specs``) is rebuilt now, at load, and must give the
    ``n_features_out_`` the file says: never a wrong width at predict."""
    from sktransfer._embedding.embedder import BaseEmbedder

    for obj in objects:
        if (not isinstance(obj, BaseEmbedder) or id(obj) in stored
                or "n_features_out_" not in obj.__dict__):
            continue
        expected = int(obj._n_out(obj._loaded_model()))
        if obj.n_features_out_ != expected:
            raise ModelFileError(
                f"{str(path)!r}: {type(obj).__name__}.n_features_out_ is "
                f"{obj.n_features_out_!r}, but its model {obj.model!r} gives "
                f"{expected} features")


def _check_widths(obj, name: str) -> None:
    """A linear model's ``coef_`` is as wide as the features it was fitted on."""
    coef, width = getattr(obj, "coef_", None), obj.__dict__.get("n_features_in_")
    if isinstance(coef, np.ndarray) and type(width) is int and coef.ndim in (1, 2) \
            and coef.shape[-1] != width:
        raise ModelFileError(f"{name}: {type(obj).__name__}.coef_ has "
                             f"{coef.shape[-1]} columns but n_features_in_ is "
                             f"{width}")


def _check_chain(pipeline, name: str) -> None:
    """Each step of a pipeline takes as many features as the step before it
    gives (sktransfer's embedders declare ``n_features_out_``)."""
    width = None
    for step_name, step in pipeline.steps:
        if step is None or step == "passthrough":
            continue
        takes = step.__dict__.get("n_features_in_")
        if width is not None and type(takes) is int and takes != width:
            raise ModelFileError(
                f"{name}: the pipeline step {step_name!r} "
                f"({type(step).__name__}) takes {takes} features, but the step "
                f"before it gives {width}")
        gives = step.__dict__.get("n_features_out_")
        width = gives if type(gives) is int else None


def _width(backbone) -> int | None:
    width = getattr(backbone, "out_features", None)
    return width if type(width) is int else None


def _check_zero_shot(obj, name: str) -> None:
    prototypes, classes = obj.__dict__.get("prototypes_"), obj.__dict__.get("classes_")
    embedder = obj.__dict__.get("embedder_")
    if prototypes is None or classes is None:
        return
    width = getattr(embedder, "n_features_out_", None)
    shape = (len(classes), width)
    if not isinstance(prototypes, np.ndarray) or prototypes.shape != shape:
        raise ModelFileError(
            f"{name}: ZeroShotTextClassifier.prototypes_ has shape "
            f"{getattr(prototypes, 'shape', None)}, not {shape} (one row per class "
            f"of classes_, as wide as the embeddings)")
    if not (np.issubdtype(prototypes.dtype, np.floating)
            and np.isfinite(prototypes).all()):
        raise ModelFileError(f"{name}: ZeroShotTextClassifier.prototypes_ holds "
                             f"NaN, infinite or non-float values")


def _check_few_shot(obj, name: str) -> None:
    head, encoder = obj.__dict__.get("head_"), obj.__dict__.get("encoder_")
    takes = getattr(head, "n_features_in_", None)
    width = _width(encoder)
    if type(takes) is int and width is not None and takes != width:
        raise ModelFileError(f"{name}: FewShotTextClassifier.head_ takes {takes} "
                             f"features but the encoder gives {width}")
    classes = obj.__dict__.get("classes_")
    head_classes = getattr(head, "classes_", None)
    if classes is not None and head_classes is not None and (
            len(classes) != len(head_classes)):
        raise ModelFileError(f"{name}: FewShotTextClassifier has {len(classes)} "
                             f"classes but its head {len(head_classes)}")


_STATE_CHECKS = {"ZeroShotTextClassifier": _check_zero_shot}


def _short(value) -> str:
    text = repr(value if isinstance(value, str) else type(value).__name__)
    return text if len(text) <= 300 else text[:297] + "..."


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
        _check_few_shot(obj, "the file")


# --- LoRA: the adapters and the head; the backbone rebuilt from its spec ----------

def _save_lora(obj, module: nn.Module, path: Path) -> dict:
    from safetensors.torch import save_file

    from sktransfer.finetune._lora import lora_state_names

    _check_lora_spec(obj, saving=True)
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
    limits.check_finite(module, f"the LoRA adapters of {obj.model!r} merged "
                                f"(lora_alpha={obj.lora_alpha!r})")
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


def _check_lora_spec(obj, saving: bool = False) -> None:
    """A LoRA file names its backbone: a model name, never a file or folder
    (at save, also no local path of that name)."""
    model, weights = obj.model, getattr(obj, "weights", None)
    if (not is_model_name(model) or (saving and _exists(model))
            or not (weights is None or _is_weights_name(weights))):
        raise ModelFileError(
            f"{type(obj).__name__}(model={model!r}, lora_rank=...) cannot be saved "
            f"or loaded with its adapters alone: the backbone must be a model name "
            f"that resolves on the loading machine, not a file, folder or module")


_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_WEIGHTS_NAME = re.compile(r"[A-Za-z]\w{0,127}(\.[A-Za-z]\w{0,127})?", re.ASCII)
# What a name may not end with: the files the resolvers read.
_FILE_SUFFIXES = (".bin", ".ckpt", ".gz", ".h5", ".joblib", ".json", ".npy",
                  ".npz", ".onnx", ".pkl", ".pt", ".pth", ".safetensors",
                  ".skt", ".txt", ".vec", ".zip")


def is_model_name(name: object) -> TypeGuard[str]:
    """A catalogue or hub name, never a path, decided from the text alone (no
    file is looked up): an optional ``hf/`` or ``timm/`` prefix, then
    ``name`` or ``org/name`` made of letters, digits, ``.``, ``_`` and
    ``-`` (no ``..``, no absolute path, no ``~``, no file suffix)."""
    if not isinstance(name, str) or len(name) > 300:
        return False
    bare = name.removeprefix("hf/").removeprefix("timm/")
    parts = bare.split("/")
    return (1 <= len(parts) <= 2
            and all(_NAME_PART.fullmatch(p) and ".." not in p for p in parts)
            and not bare.lower().endswith(_FILE_SUFFIXES))


def _is_weights_name(weights: object) -> bool:
    """``"DEFAULT"`` or a weights enum name (``"IMAGENET1K_V1"``,
    ``"ResNet18_Weights.IMAGENET1K_V1"``): text only, never a path."""
    return (isinstance(weights, str) and _WEIGHTS_NAME.fullmatch(weights) is not None
            and not weights.lower().endswith(_FILE_SUFFIXES))


def _exists(spec) -> bool:
    """At save only (the user's own machine): ``spec`` names a local path."""
    return isinstance(spec, (str, os.PathLike)) and any(
        os.path.exists(n) for n in {os.fspath(spec),
                                    os.fspath(spec).removeprefix("hf/")})


def _is_local(spec) -> bool:
    """At save: a text model that is not a name, or a local folder: its
    encoder goes into the file."""
    return not is_model_name(spec) or _exists(spec)


def _json_number(value):
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


HANDLERS = (FineTunedHandler, ImageFeaturesHandler, TextFeaturesHandler,
            TunedEncoderHandler)


def handler_for(obj):
    """The handler of the network ``obj`` holds, or None."""
    return next((h for h in HANDLERS if h.matches(obj)), None)

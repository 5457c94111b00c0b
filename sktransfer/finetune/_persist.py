"""The fine-tuned estimators as model-file data (``sktransfer.persist.hooks``).

Every ``BaseFineTuned`` stores its skorch net's module: the weights, the
training history and, for text, the encoder's config and tokenizer files;
the net is rebuilt by the estimator's trainer (``finetune._trainer``), so
that it is the one ``fit`` would have made. A LoRA fit stores its adapters
and head only: the backbone is rebuilt from its spec (a model name, never a
path) and must have the SHA-256 recorded at fit; the merged weights must be
finite. What a file may ask for is bounded: the output count, the adapters'
size (before anything is allocated) and ``image_size`` (``max_image_size``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from skorch import NeuralNet
from torch import nn

from sktransfer.backbones import load_text_backbone, save_text_backbone
from sktransfer.finetune import _lora
from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._module import FineTuneModule
from sktransfer.persist import hooks as persist

__all__ = ["FineTunedHook"]


class FineTunedHook(persist.Hook):
    """A fitted ``BaseFineTuned``: its ``net_``'s module."""

    kind = "fine-tuned"
    heavy = ("net_", "_tokenize")

    def matches(self, obj) -> bool:
        net = obj.__dict__.get("net_")
        return isinstance(net, NeuralNet) and isinstance(
            getattr(net, "module_", None), FineTuneModule)

    def check(self, obj, name: str, stored: bool) -> None:
        if not isinstance(obj, BaseFineTuned):
            return
        persist.check_image_size(obj.__dict__.get("image_size"),
                                 f"{name}: {type(obj).__name__}'s image_size")

    def finish(self, obj, name: str, stored: bool) -> None:
        if isinstance(obj, BaseFineTuned) and "n_frozen_" in obj.__dict__ and (
                not stored):
            raise persist.ModelFileError(f"{name}: a fitted {type(obj).__name__} "
                                         f"has no stored network")

    def save(self, obj, folder: Path) -> dict:
        module = obj.net_.module_
        backbone = module.backbone
        entry = {"modality": backbone.modality,
                 "n_outputs": module.head.out_features}
        weights = folder / persist.WEIGHTS
        if obj.__dict__.get("lora_modules_"):  # adapters + head; backbone by spec
            entry["lora"] = _save_lora(obj, module, weights)
        elif backbone.modality == "image":
            entry["image"] = persist.describe_image(backbone, obj)
        else:
            entry["text"] = save_text_backbone(backbone, folder / persist.ENCODER)
        if "lora" not in entry:
            persist.save_weights(module, weights)
        (folder / persist.HISTORY).write_text(json.dumps(
            obj.net_.history.to_list(), default=persist.json_number))
        return entry

    def load(self, obj, folder: Path, entry: dict) -> None:
        from skorch.history import History

        n_outputs = persist.check_int(entry.get("n_outputs"), "n_outputs", 1,
                                      1 << 20)
        try:
            expected = int(obj._n_outputs())
        except (AttributeError, TypeError, ValueError):
            expected = None
        if expected != n_outputs:
            raise persist.ModelFileError(
                f"the network has {n_outputs} outputs but the estimator's fitted "
                f"state asks for {expected}")
        adapter, _ = obj._adaptation()
        weights = folder / persist.WEIGHTS
        if "lora" in entry:
            module = _load_lora(obj, n_outputs, adapter, weights)
        else:
            if entry.get("modality") == "image":
                backbone = persist.image_backbone(entry.get("image") or {}, weights)
            else:
                backbone = load_text_backbone(folder / persist.ENCODER,
                                              entry.get("text") or {},
                                              persist.cap(weights))
            module = FineTuneModule(backbone, n_outputs, obj.n_frozen_, adapter)
            persist.load_weights(module, weights)
        trainer = obj._trainer()
        net = trainer.make_net(module, (), None, False, n_frozen=obj.n_frozen_)
        net.initialize()
        trainer.clean_up(net)
        history = folder / persist.HISTORY
        net.history = History(json.loads(history.read_text()) if history.is_file()
                              else [])
        obj.net_ = net


# --- LoRA: the adapters and the head; the backbone rebuilt from its spec ----------

def _save_lora(obj, module: nn.Module, path: Path) -> dict:
    from safetensors.torch import save_file

    _check_lora_spec(obj, saving=True)
    kept = _lora.lora_state_names(module, module.backbone, obj.n_frozen_)
    tensors = {name: value.detach().cpu().contiguous()
               for name, value in module.state_dict().items() if name in kept}
    save_file(tensors, str(path))
    return {"backbone_digest": obj.backbone_digest_}


def _load_lora(obj, n_outputs: int, adapter, path: Path):
    """The pretrained backbone from the estimator's spec (a name, resolved on
    this machine), checked against the digest recorded at fit, with the saved
    adapters and head loaded and merged."""
    from safetensors.torch import load_file

    _check_lora_spec(obj)
    backbone = obj._resolve_backbone()
    if _lora.state_digest(backbone.module) != obj.backbone_digest_:
        raise persist.ModelFileError(
            f"the backbone {obj.model!r} on this machine is not the one the LoRA "
            f"adapters were trained on (its weights' SHA-256 differs from the "
            f"file's {str(obj.backbone_digest_)[:12]}...)")
    names = list(obj.lora_modules_)
    persist.check_parameters(_adapter_count(backbone.module, names, obj.lora_rank),
                             path, f"the LoRA adapters of {obj.model!r}")
    _lora.inject_adapters(backbone, names, obj.lora_rank, obj.lora_alpha,
                    obj.lora_dropout)
    module = FineTuneModule(backbone, n_outputs, obj.n_frozen_, adapter, lora=True)
    tensors = load_file(str(path), device="cpu")
    expected = _lora.lora_state_names(module, backbone, obj.n_frozen_)
    if set(tensors) != expected:
        odd = sorted(set(tensors) ^ expected)[:3]
        raise persist.ModelFileError(f"the LoRA weights do not fit the network "
                                     f"(e.g. {odd})")
    module.load_state_dict(tensors, strict=False)
    _lora.merge_adapters(module)
    persist.check_finite(module, f"the LoRA adapters of {obj.model!r} merged "
                                 f"(lora_alpha={obj.lora_alpha!r})")
    return module


def _adapter_count(module: nn.Module, names: list, rank) -> int:
    """The values rank-``rank`` adapters on the layers ``names`` hold (peft's
    shapes: Linear r x (in + out), Conv r x (in x kernel + out / groups)),
    counted before anything is allocated."""
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise persist.ModelFileError(f"lora_rank is {rank!r}, not a positive int")
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
            raise persist.ModelFileError(f"the LoRA target {name!r} is not a "
                                         f"linear or convolution layer of the "
                                         f"backbone")
    return total


def _check_lora_spec(obj, saving: bool = False) -> None:
    """A LoRA file names its backbone: a model name, never a file or folder
    (at save, also no local path of that name)."""
    model, weights = obj.model, getattr(obj, "weights", None)
    if (not persist.is_model_name(model)
            or (saving and persist.exists_locally(model))
            or not (weights is None or persist.is_weights_name(weights))):
        raise persist.ModelFileError(
            f"{type(obj).__name__}(model={model!r}, lora_rank=...) cannot be saved "
            f"or loaded with its adapters alone: the backbone must be a model name "
            f"that resolves on the loading machine, not a file, folder or module")


persist.register(FineTunedHook())

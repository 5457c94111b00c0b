"""The frozen embedders as model-file data (``sktransfer.persist.hooks``).

A fitted image embedder stores its network (architecture name, eval config,
weights); a text embedder stores its encoder when its model is a local
folder (a file never names a path), and nothing when it is a model name.
An embedder without a stored network rebuilds it from its spec at load:
that spec must be a catalogue or hub *name*, decided from the text alone (no
file is opened or looked up, so the answer says nothing about what exists
here), it is resolved as a name only (``sktransfer.backbones.names_only``:
never a folder of that name in the current directory), and the rebuilt
network must give the ``n_features_out_`` the file says. A loaded embedder
keeps resolving its spec as a name only (``_names_only``), also in pickled
copies. A subclass says what it embeds with the class attribute ``_embeds``
(``"image"`` or ``"text"``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from sktransfer.backbones import is_image_name
from sktransfer.persist import hooks as persist

__all__ = ["EmbedderHook", "ImageFeaturesHook", "TextFeaturesHook"]


def _modality(obj) -> str | None:
    """What a ``BaseEmbedder`` subclass embeds (its class attribute
    ``_embeds``), None for any other object."""
    modality = getattr(type(obj), "_embeds", None)
    return modality if modality in ("image", "text") else None


def _fitted(obj) -> bool:
    return "n_features_out_" in obj.__dict__


def _check_width(obj, backbone, name: str) -> None:
    expected = int(obj._n_out(backbone))
    if obj.n_features_out_ != expected:
        raise persist.ModelFileError(
            f"{name}: {type(obj).__name__}.n_features_out_ is "
            f"{obj.n_features_out_!r}, but its network {persist.short(obj.model)} "
            f"gives {expected} features")


class ImageFeaturesHook(persist.Hook):
    """A fitted image embedder: architecture name, eval config, weights."""

    kind = "image-features"
    heavy = ("_model",)

    def matches(self, obj) -> bool:
        return _modality(obj) == "image" and _fitted(obj)

    def save(self, obj, folder: Path) -> dict:
        backbone = obj.backbone_
        entry = persist.describe_image(backbone, obj)
        persist.save_weights(backbone.module, folder / persist.WEIGHTS)
        return entry

    def load(self, obj, folder: Path, entry: dict) -> None:
        backbone = persist.image_backbone(entry, folder / persist.WEIGHTS)
        persist.load_weights(backbone.module, folder / persist.WEIGHTS)
        backbone.module.to(torch.device(obj.device_),
                           memory_format=torch.channels_last).eval()
        _check_width(obj, backbone, "the file")
        obj._model = backbone


class TextFeaturesHook(persist.Hook):
    """A fitted text embedder whose model is a local folder: its encoder."""

    kind = "text-features"
    heavy = ("_model",)

    def matches(self, obj) -> bool:
        return (_modality(obj) == "text" and _fitted(obj)
                and persist.is_local(obj.model))

    def save(self, obj, folder: Path) -> dict:
        return persist.save_encoder(obj.backbone_, folder)

    def load(self, obj, folder: Path, entry: dict) -> None:
        backbone = persist.load_encoder(folder, entry, obj.device_)
        _check_width(obj, backbone, "the file")
        obj._model = backbone


class EmbedderHook(persist.Hook):
    """An embedder without a stored network: its spec is a name (checked
    before any network is built) and the network it names has the width the
    file says (rebuilt at load, as a pickle would on first use)."""

    def check(self, obj, name: str, stored: bool) -> None:
        modality = _modality(obj)
        if modality is None or not _fitted(obj):
            return
        # whatever rebuilds its network later (a pickle's copy on a Dask
        # worker, a cache key) reads its spec as a name, never as a path
        obj.__dict__["_names_only"] = True
        # the digest of its weights is what load reads from the archive (set
        # after the stored network is loaded), never the file's claim: a
        # claimed digest would share cache keys with another model
        obj.__dict__.pop("_weights_digest", None)
        if stored:
            return
        owner = type(obj).__name__
        model = obj.__dict__.get("model")
        image = modality == "image"
        if not persist.is_model_name(model) or (image and not is_image_name(model)):
            raise persist.ModelFileError(
                f"{name}: a {owner} has no stored network and names the model "
                f"{persist.short(model)}, which is not a model name"
                f"{' sktransfer knows' if image else ''}; a model file never "
                f"chooses a file or folder to read (a network fitted from a file "
                f"is stored in the model file)")
        weights = obj.__dict__.get("weights")
        if weights is not None and not persist.is_weights_name(weights):
            raise persist.ModelFileError(
                f"{name}: a {owner} has no stored network and names the weights "
                f"{persist.short(weights)}, which is not 'DEFAULT' or a weights "
                f"name; a model file never chooses a file to read")

    def finish(self, obj, name: str, stored: bool) -> None:
        if stored or _modality(obj) is None or not _fitted(obj):
            return
        _check_width(obj, obj._loaded_model(), name)


for _hook in (ImageFeaturesHook(), TextFeaturesHook(), EmbedderHook()):
    persist.register(_hook)

"""The few- and zero-shot classifiers as model-file data
(``sktransfer.persist.hooks``): ``FewShotTextClassifier`` stores its tuned
encoder (config, tokenizer files, weights) and its head must take the
encoder's width; ``ZeroShotTextClassifier`` stores nothing of its own (its
``embedder_`` is an embedder with its own hook), and its prototypes must be
one finite row per class, as wide as the embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sktransfer.fewshot._classifier import FewShotTextClassifier
from sktransfer.fewshot._zeroshot import ZeroShotTextClassifier
from sktransfer.persist import hooks as persist

__all__ = ["TunedEncoderHook", "ZeroShotHook"]


class TunedEncoderHook(persist.Hook):
    """A ``FewShotTextClassifier``'s contrastively tuned text backbone."""

    kind = "tuned-text-encoder"
    heavy = ("encoder_",)

    def matches(self, obj) -> bool:
        return isinstance(obj, FewShotTextClassifier) and "encoder_" in obj.__dict__

    def save(self, obj, folder: Path) -> dict:
        return persist.save_encoder(obj.encoder_, folder)

    def load(self, obj, folder: Path, entry: dict) -> None:
        obj.encoder_ = persist.load_encoder(folder, entry, obj.device_)

    def finish(self, obj, name: str, stored: bool) -> None:
        if not isinstance(obj, FewShotTextClassifier) or "head_" not in obj.__dict__:
            return
        if not stored:
            raise persist.ModelFileError(f"{name}: a fitted FewShotTextClassifier "
                                         f"has no stored encoder")
        head = obj.head_
        takes = getattr(head, "n_features_in_", None)
        width = obj.encoder_.out_features
        if type(takes) is int and takes != width:
            raise persist.ModelFileError(
                f"{name}: FewShotTextClassifier.head_ takes {takes} features but "
                f"the encoder gives {width}")
        classes, head_classes = obj.__dict__.get("classes_"), getattr(
            head, "classes_", None)
        if classes is not None and head_classes is not None and len(
                classes) != len(head_classes):
            raise persist.ModelFileError(
                f"{name}: FewShotTextClassifier.classes_ and its head's classes "
                f"differ ({persist.short(classes)} vs {persist.short(head_classes)})")


class ZeroShotHook(persist.Hook):
    """``ZeroShotTextClassifier``: prototypes that match its classes."""

    def check(self, obj, name: str, stored: bool) -> None:
        if not isinstance(obj, ZeroShotTextClassifier) or (
                "prototypes_" not in obj.__dict__):
            return
        prototypes, classes = obj.prototypes_, obj.__dict__.get("classes_")
        width = getattr(obj.__dict__.get("embedder_"), "n_features_out_", None)
        shape = (len(classes) if classes is not None else None, width)
        if not isinstance(prototypes, np.ndarray) or prototypes.shape != shape:
            raise persist.ModelFileError(
                f"{name}: ZeroShotTextClassifier.prototypes_ has shape "
                f"{getattr(prototypes, 'shape', None)}, not {shape} (one row per "
                f"class of classes_, as wide as the embeddings)")
        if not (np.issubdtype(prototypes.dtype, np.floating)
                and np.isfinite(prototypes).all()):
            raise persist.ModelFileError(
                f"{name}: ZeroShotTextClassifier.prototypes_ holds NaN, infinite "
                f"or non-float values")


for _hook in (TunedEncoderHook(), ZeroShotHook()):
    persist.register(_hook)

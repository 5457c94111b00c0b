"""Removing a classification head so that a network returns pooled features."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

__all__ = ["HEAD_NAMES", "feature_width", "strip_head"]

# Attribute names of classification heads in torchvision and timm networks: the
# parts a weights file may leave out (or size differently) when it is loaded.
HEAD_NAMES = ("fc", "classifier", "heads", "head")


def strip_head(model: nn.Module) -> nn.Module:
    """Replace the classifier of a torchvision / timm model by the identity."""
    if hasattr(model, "reset_classifier"):  # timm
        model.reset_classifier(0)  # type: ignore[operator]  # torch: Tensor | Module
        return model
    if isinstance(getattr(model, "fc", None), nn.Linear):  # ResNet & co.
        model.fc = nn.Identity()
    elif hasattr(model, "heads") and hasattr(model, "conv_proj"):  # ViT
        model.heads = nn.Identity()
    elif isinstance(getattr(model, "classifier", None), nn.Sequential):
        _strip_sequential_classifier(model)
    elif isinstance(getattr(model, "classifier", None), nn.Linear):
        model.classifier = nn.Identity()
    return model


def _strip_sequential_classifier(model: nn.Module) -> None:
    classifier = cast(nn.Sequential, model.classifier)  # checked by strip_head
    if _is_vgg(model):
        # VGG: global-average-pool the last conv group (512 features) rather than
        # flattening 7x7x512 maps into the 4096-wide fully connected layers.
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Identity()
    elif any(not isinstance(m, (nn.Linear, nn.Dropout, nn.Hardswish, nn.ReLU))
             for m in classifier):
        # ConvNeXt: keep the LayerNorm + flatten, drop the final Linear.
        classifier[-1] = nn.Identity()
    else:
        model.classifier = nn.Identity()


def _is_vgg(model: nn.Module) -> bool:
    features = getattr(model, "features", None)
    return isinstance(features, nn.Sequential) and any(
        isinstance(m, nn.MaxPool2d) for m in features
    )


def feature_width(module: nn.Module, input_size) -> int:
    """Width of ``module``'s pooled output, found with one dummy forward pass."""
    was_training = module.training
    module.eval()
    try:
        param = next(module.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.inference_mode():
            out = module(torch.zeros(1, *input_size, device=device))
    finally:
        module.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return int(out.reshape(out.shape[0], -1).shape[1])

"""The ``Backbone``: a pretrained network without its head, cut into blocks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from sktransfer._utils.options import IMAGE_POOLINGS
from sktransfer.exceptions import ParameterError

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

__all__ = [
    "POOLINGS",
    "Backbone",
    "Block",
    "interpolation_mode",
    "make_eval_transform",
    "mean_pool",
    "run_module",
]

POOLINGS = IMAGE_POOLINGS  # images; text also pools "cls"

_INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


@dataclass(frozen=True)
class Block:
    """One stage of a backbone: the modules that compute it, in order.

    ``params`` holds loose parameters that belong to the stage without living in
    one of its modules (a ViT's class token and position embedding).
    """

    name: str
    modules: tuple[nn.Module, ...]
    params: tuple[nn.Parameter, ...] = ()

    def parameters(self):
        for module in self.modules:
            yield from module.parameters()
        yield from self.params

    @property
    def output_module(self) -> nn.Module:
        return self.modules[-1]


@dataclass
class Backbone:
    """A resolved model spec.

    Attributes
    ----------
    module : nn.Module
        The network with its classification head removed, returning pooled
        features of shape ``(n, out_features)``. Image: ``module(x)`` with ``x``
        an ``(n, 3, h, w)`` float tensor. Text: ``module(**batch)`` with
        ``batch`` what ``preprocess`` returns, keyword arguments
        ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for models
        that use them); the output is the sentence embedding exactly as the
        model defines it (a sentence-transformers model's own pooling and
        ``Normalize``; masked mean pooling for a plain encoder).
    blocks : list of Block
        The stages from input to output; freezing, layer-wise learning rates and
        features from an earlier layer are defined on this list. Text: the
        embeddings, then each encoder layer.
    out_features : int
        Width of ``module``'s output.
    preprocess : callable
        Image: the eval transform of the weights, PIL image -> float tensor.
        Text: the tokenizer, ``preprocess(texts, max_length=None)`` -> dict of
        ``(n, t)`` tensors, padded to the longest text and truncated at
        ``max_length`` tokens (None: ``data_config["max_length"]``).
    data_config : dict
        Image: ``input_size``, ``mean``, ``std``, ``interpolation``,
        ``crop_pct`` the weights were trained with (used by training-time
        augmentation). Text: ``max_length`` (the model's own token limit, None
        for word vectors), ``max_positions`` (the most tokens it can read),
        ``kind`` (``"sentence-transformers"``, ``"hf"`` or ``"word-vectors"``)
        and ``source`` (where the weights come from).
    modality : str
        ``"image"`` or ``"text"``.
    name : str
        Human-readable description of the spec (for reprs and cache keys).
    """

    module: nn.Module
    blocks: list[Block]
    out_features: int
    preprocess: Callable | None
    data_config: dict = field(default_factory=dict)
    modality: str = "image"
    name: str = ""

    def block_index(self, layer: int | str) -> int:
        """Position of ``layer`` (an index, negative allowed, or a block name)."""
        names = [block.name for block in self.blocks]
        n = len(names)
        if isinstance(layer, str):
            if layer not in names:
                raise ParameterError(
                    f"layer={layer!r} is not a block of {self.name}; "
                    f"its blocks are {names}"
                )
            return names.index(layer)
        if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
            raise ParameterError(
                f"layer={layer!r} is out of range for {self.name}, which has {n} "
                f"blocks: use an int in [{-n}, {n - 1}] or one of {names}"
            )
        return layer % n

    def extract(self, x, layer=None, pooling: str = "avg"):
        """Pooled features of ``x`` from block ``layer`` (None: the last one).

        ``x`` is an image batch, or for text the dict ``preprocess`` returns.
        With ``layer=None`` and ``pooling="avg"`` this is the module's own
        pooled output (a ViT's class token, a CNN's global average, a sentence
        embedding). Otherwise the forward pass stops after the requested block
        and its output is pooled over the spatial axes, or over the real
        (unpadded) tokens of each text (``"cls"``: the first token).
        """
        if layer is None and pooling == "avg":
            return run_module(self.module, x)
        return self.extract_many(x, [(layer, pooling)])[0]

    def extract_many(self, x, requests) -> list:
        """``[extract(x, layer, pooling) for layer, pooling in requests]`` from
        ONE forward pass.

        Forward hooks capture the output of every requested block; the pass
        stops after the deepest one unless a request is the module's own
        output (``(None, "avg")``), which needs the whole pass.
        """
        last = len(self.blocks) - 1
        indices = [None if (layer is None and pooling == "avg")
                   else last if layer is None else self.block_index(layer)
                   for layer, pooling in requests]
        wanted = sorted({i for i in indices if i is not None})
        whole = None in indices
        captured: dict[int, Any] = {}
        handles = [self._capture(i, captured, stop=not whole and i == wanted[-1])
                   for i in wanted]
        try:
            output = run_module(self.module, x)
        except _Stop:
            output = None
        finally:
            for handle in handles:
                handle.remove()
        if any(i not in captured for i in wanted):
            raise RuntimeError("a requested block was not run by the forward pass")
        mask = x.get("attention_mask") if isinstance(x, Mapping) else None
        return [output if i is None else pool(captured[i], pooling, mask)
                for i, (_, pooling) in zip(indices, requests, strict=True)]

    def _capture(self, index: int, captured: dict, stop: bool):
        def hook(_module, _inputs, output):
            captured.setdefault(index, output)  # the first call of the module
            if stop:
                raise _Stop

        return self.blocks[index].output_module.register_forward_hook(hook)


def run_module(module: nn.Module, x: Any) -> Any:
    """``module(**x)`` for a text batch (a dict of tensors), else ``module(x)``."""
    return module(**x) if isinstance(x, Mapping) else module(x)


class _Stop(Exception):
    pass


def pool(output, pooling: str, mask=None) -> torch.Tensor:
    """Pool a block output: (n, c, h, w) spatially, (n, t, d) over tokens.

    ``mask`` (n, t): the attention mask of a text batch; padding tokens are
    left out of the mean and the max.
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 2:
        return output
    if pooling == "cls":
        if output.ndim != 3:
            raise ParameterError(f"pooling='cls' takes the first token of a "
                                 f"(n, tokens, width) output, got shape "
                                 f"{tuple(output.shape)}")
        return output[:, 0]
    if output.ndim == 3 and mask is not None:
        return _masked_pool(output, mask, pooling)
    if output.ndim == 4:
        dims: tuple[int, ...] = (2, 3)
        if output.shape[1] < output.shape[-1] and _looks_channels_last(output):
            dims = (1, 2)
    elif output.ndim == 3:
        dims = (1,)
    else:
        raise ParameterError(
            f"cannot pool a block output of shape {tuple(output.shape)}"
        )
    if pooling == "avg":
        return output.mean(dim=dims)
    if pooling == "max":
        return output.amax(dim=dims)
    return torch.cat([output.mean(dim=dims), output.amax(dim=dims)], dim=1)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token states over the real (unpadded) tokens of each text."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def _masked_pool(tokens, mask, pooling: str) -> torch.Tensor:
    mean = mean_pool(tokens, mask)
    if pooling == "avg":
        return mean
    lowest = torch.finfo(tokens.dtype).min
    top = tokens.masked_fill(mask.unsqueeze(-1) == 0, lowest).amax(dim=1)
    return top if pooling == "max" else torch.cat([mean, top], dim=1)


def _looks_channels_last(output) -> bool:
    # timm ConvNeXt / Swin stages may emit NHWC tensors; NCHW is the default.
    return output.shape[1] == output.shape[2] and output.shape[-1] > output.shape[1]


def make_eval_transform(
    config: dict,
    image_size: int | None = None,
) -> Callable[[Any], torch.Tensor]:
    """Resize, centre-crop and normalise a PIL image as the weights expect."""
    size = image_size or config["input_size"][-1]
    resize = int(round(size / config.get("crop_pct", 0.875)))
    return T.Compose(
        [
            T.ToImage(),
            T.Resize(resize, interpolation=interpolation_mode(config), antialias=True),
            T.CenterCrop(size),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean=list(config["mean"]), std=list(config["std"])),
        ]
    )


def interpolation_mode(config: dict) -> InterpolationMode:
    """The torchvision interpolation of ``config["interpolation"]``."""
    value = config.get("interpolation", "bilinear")
    if isinstance(value, InterpolationMode):
        return value
    return _INTERPOLATIONS.get(str(value), InterpolationMode.BILINEAR)

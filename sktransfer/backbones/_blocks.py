"""Cutting a network into ordered blocks, and freezing a prefix of them.

Families are recognised by structure, so torchvision and timm variants of the
same architecture share one rule:

- ResNet (``conv1``, ``layer1``..``layer4``): stem, layer1, ..., layer4.
- VGG (``features`` with max-pooling): one block per conv group, cut after
  each pooling.
- torchvision EfficientNet / MobileNet / ConvNeXt (``features`` Sequential):
  one block per child of ``features``.
- timm EfficientNet / MobileNet (``conv_stem``, ``blocks``): stem, blocks.0..N,
  head (``conv_head``).
- ViT, torchvision (``conv_proj``, ``encoder.layers``) or timm
  (``patch_embed``, ``blocks``): embeddings (with class token and position
  embedding), each encoder layer, the final norm.
- timm ConvNeXt and other staged nets (``stem``, ``stages``): stem, each stage.
- anything else: the top-level children that hold parameters, in
  registration order (documented fallback for arbitrary ``nn.Module`` specs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from sktransfer.backbones._base import Block
from sktransfer.exceptions import ParameterError

if TYPE_CHECKING:  # names used in annotations only
    from collections.abc import Iterator, Sequence

__all__ = [
    "attach_loose_parameters",
    "block_parameters",
    "find_blocks",
    "frozen_block_count",
    "keep_frozen_in_eval",
    "set_frozen",
]


def find_blocks(model: nn.Module) -> list[Block]:
    """The ordered blocks of ``model`` (a network whose head was removed).

    Parameters outside every block (a ConvNeXt's final LayerNorm, say) are
    attached to the last block, so that freezing all blocks freezes them all.
    """
    for rule in (_resnet, _vit_torchvision, _vit_timm, _timm_efficientnet, _staged,
                 _vgg, _features, _generic):
        blocks = rule(model)
        if blocks:
            break
    return attach_loose_parameters(model, blocks)


def attach_loose_parameters(model: nn.Module, blocks: list[Block]) -> list[Block]:
    """Give the last block the parameters of ``model`` that no block owns.

    So that freezing all blocks freezes the whole network (a ConvNeXt's final
    LayerNorm, a BERT pooler, a sentence-transformers ``Dense`` layer).
    """
    owned = {id(p) for block in blocks for p in block.parameters()}
    rest = tuple(p for p in model.parameters() if id(p) not in owned)
    if rest:
        last = blocks[-1]
        blocks[-1] = Block(last.name, last.modules, last.params + rest)
    return blocks


def _get(model, *names):
    values = [getattr(model, name, None) for name in names]
    return values if all(v is not None for v in values) else None


def _present(model, names):
    return tuple(m for m in (getattr(model, n, None) for n in names)
                 if isinstance(m, nn.Module))


def _resnet(model):
    layers = _get(model, "conv1", "layer1", "layer2", "layer3", "layer4")
    if layers is None:
        return None
    stem = _present(model, ["conv1", "bn1", "act1", "relu", "maxpool"])
    return [Block("stem", stem)] + [
        Block(f"layer{i}", (getattr(model, f"layer{i}"),)) for i in range(1, 5)
    ]


def _vit_torchvision(model):
    if _get(model, "conv_proj", "encoder", "class_token") is None:
        return None
    encoder = model.encoder
    embed = Block("embeddings", (model.conv_proj,),
                  (model.class_token, encoder.pos_embedding))
    layers = [Block(f"encoder.layers.{i}", (layer,))
              for i, layer in enumerate(encoder.layers)]
    return [embed, *layers, Block("encoder.ln", (encoder.ln,))]


def _vit_timm(model):
    if _get(model, "patch_embed", "blocks") is None:
        return None
    loose = tuple(p for p in (getattr(model, n, None)
                              for n in ("cls_token", "pos_embed", "reg_token"))
                  if isinstance(p, nn.Parameter))
    embed = Block("patch_embed", (model.patch_embed,), loose)
    layers = [Block(f"blocks.{i}", (b,)) for i, b in enumerate(model.blocks)]
    # fc_norm belongs to the pooled head, so the last block ends at ``norm``.
    tail = _present(model, ["norm"])
    return [embed, *layers] + ([Block("norm", tail)] if tail else [])


def _timm_efficientnet(model):
    if _get(model, "conv_stem", "blocks") is None:
        return None
    stem = _present(model, ["conv_stem", "bn1"])
    stages = [Block(f"blocks.{i}", (b,)) for i, b in enumerate(model.blocks)]
    head = _present(model, ["conv_head", "bn2"])
    return [Block("stem", stem), *stages] + ([Block("head", head)] if head else [])


def _staged(model):
    if _get(model, "stem", "stages") is None:
        return None
    stages = [Block(f"stages.{i}", (s,)) for i, s in enumerate(model.stages)]
    return [Block("stem", (model.stem,)), *stages]


def _vgg(model):
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or not any(
        isinstance(m, nn.MaxPool2d) for m in features
    ):
        return None
    blocks, current = [], []
    for module in features:
        current.append(module)
        if isinstance(module, nn.MaxPool2d):
            blocks.append(Block(f"conv{len(blocks) + 1}", tuple(current)))
            current = []
    if current:
        blocks.append(Block(f"conv{len(blocks) + 1}", tuple(current)))
    return blocks


def _features(model):
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return None
    return [Block(f"features.{i}", (m,)) for i, m in enumerate(features)]


def _generic(model):
    blocks = [Block(name, (child,)) for name, child in model.named_children()
              if any(True for _ in child.parameters())]
    return blocks or [Block("module", (model,))]


def frozen_block_count(
    freeze_depth: int | str,
    n_blocks: int,
    name: str = "this model",
) -> int:
    """How many leading blocks ``freeze_depth`` freezes (see FineTunedClassifier)."""
    if freeze_depth == "all":
        return n_blocks
    if isinstance(freeze_depth, bool) or not isinstance(freeze_depth, int):
        raise ParameterError(
            f"freeze_depth must be an int or 'all', got {freeze_depth!r}"
        )
    if not -n_blocks <= freeze_depth <= n_blocks:
        raise ParameterError(
            f"freeze_depth={freeze_depth} is out of range: {name} has {n_blocks} "
            f"blocks, so use an int in [{-n_blocks}, {n_blocks}] or 'all'"
        )
    return freeze_depth if freeze_depth >= 0 else n_blocks + freeze_depth


def set_frozen(blocks: Sequence[Block], n_frozen: int) -> None:
    """Freeze the first ``n_frozen`` blocks and make the others trainable."""
    for i, block in enumerate(blocks):
        for param in block.parameters():
            param.requires_grad_(i >= n_frozen)


def keep_frozen_in_eval(blocks: Sequence[Block], n_frozen: int) -> None:
    """Put the first ``n_frozen`` blocks in eval mode (call after ``train()``).

    A frozen block must compute exactly what the pretrained one did: its
    BatchNorm layers use (and do not update) their running statistics, and its
    dropout is off.
    """
    for block in blocks[:n_frozen]:
        for module in block.modules:
            module.eval()


def block_parameters(blocks: Sequence[Block], start: int = 0) -> Iterator[nn.Parameter]:
    """The parameters of ``blocks[start:]``, each once, in block order."""
    seen = set()
    for block in blocks[start:]:
        for param in block.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                yield param

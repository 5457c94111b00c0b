"""The network that is fine-tuned: a backbone, partly frozen, and a linear head."""

from __future__ import annotations

import contextlib
import hashlib

import torch
from torch import nn

from sktransfer.backbones import (
    block_parameters,
    keep_frozen_in_eval,
    run_module,
    set_frozen,
)
from sktransfer.finetune._adapt import BOTTLENECK
from sktransfer.finetune._lora import (
    is_adapter_parameter,
    is_batch_norm,
    trained_norms,
)

__all__ = ["FineTuneModule"]


class FineTuneModule(nn.Module):
    """``head(backbone.module(x))`` with the first ``n_frozen`` blocks frozen.

    Modality-agnostic: ``x`` is an image batch, or a dict of token tensors
    passed to ``backbone.module`` as keyword arguments. Frozen blocks have
    ``requires_grad=False`` and stay in eval mode whatever ``train()`` is
    called with, so their BatchNorm statistics never move. Their forward pass
    records no autograd graph: nothing upstream of a trainable weight requires
    grad, and a fully frozen backbone runs under ``torch.no_grad``.

    With ``inputs_are_features=True`` the input is the backbone's pooled
    output, computed beforehand, and only the head runs (the
    ``freeze_depth="all"`` fast path).

    A uint8 image batch (the image datasets' pixels, moved to the device as
    they are: a quarter of float32's bytes) is scaled and normalised here, on
    the device, with the weights' mean and std (``normalise``); float inputs
    are taken as already normalised.

    With an ``adapter`` (a domain-adaptation loss, ``finetune._adapt``) a
    trainable bottleneck ``neck`` (linear + ReLU) sits between the backbone and
    the head: ``represent(x)`` is its output, the features the adapter aligns
    (trainable even when the whole backbone is frozen). Without, ``neck`` is the
    identity.
    """

    def __init__(self, backbone, n_classes: int, n_frozen: int = 0, adapter=None,
                 lora: bool = False):
        super().__init__()
        self.lora = lora  # LoRA adapters in the blocks: only they train there
        self.backbone = backbone  # the Backbone record; its module registers below
        self.encoder = backbone.module
        width = backbone.out_features
        if adapter is None:
            self.neck: nn.Module = nn.Identity()
        else:
            self.neck = nn.Sequential(nn.Linear(width, BOTTLENECK), nn.ReLU())
            width = BOTTLENECK
            adapter = adapter(width)
        self.head = nn.Linear(width, n_classes)
        self.adapter = adapter  # None, or the loss module (its weights train)
        self.inputs_are_features = False
        # > 0: the input is the output of the first ``prefix_blocks`` blocks,
        # computed beforehand (the frozen-prefix cache); those blocks are skipped
        self.prefix_blocks = 0
        # The pretrained weights for the L2-SP penalty.
        self.reference: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        # LoRA: the BatchNorm layers of the adapted blocks, which train
        self.trained_norms: tuple[nn.Module, ...] = ()
        # True: every BatchNorm layer keeps its pretrained running statistics
        # while training (its affine weights still train where unfrozen)
        self.fixed_norm_statistics = False
        self.freeze(n_frozen)

    @property
    def n_blocks(self) -> int:
        return len(self.backbone.blocks)

    def freeze(self, n_frozen: int) -> None:
        """Freeze the first ``n_frozen`` blocks, make the others trainable."""
        self.n_frozen = n_frozen
        if not self.lora:
            set_frozen(self.backbone.blocks, n_frozen)
        else:  # base weights frozen everywhere; in blocks n_frozen: the
            # adapters and the BatchNorm layers train
            for param in self.encoder.parameters():
                param.requires_grad_(False)
            for block in self.backbone.blocks[n_frozen:]:
                for top in block.modules:
                    for name, param in top.named_parameters():
                        param.requires_grad_(is_adapter_parameter(name))
            # found once per freeze, not at every train() (skorch: every batch)
            self.trained_norms = tuple(norm for _, norm in
                                       trained_norms(self.backbone, n_frozen))
            for norm in self.trained_norms:
                norm.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        keep_frozen_in_eval(self.backbone.blocks, self.n_frozen)
        if self.n_frozen == self.n_blocks:
            self.encoder.eval()  # modules outside any block, too
        elif self.lora:  # BatchNorm statistics move in the adapted blocks only
            for module in self.encoder.modules():
                if is_batch_norm(module):
                    module.eval()
            for norm in self.trained_norms:
                norm.train(mode)
        if getattr(self, "fixed_norm_statistics", False):
            for module in self.encoder.modules():
                if is_batch_norm(module):
                    module.eval()
        return self

    def forward(self, x):
        return self.head(self.represent(x))

    def represent(self, x) -> torch.Tensor:
        """The head's input: the bottleneck's output on the backbone features."""
        return self.neck(x if self.inputs_are_features else self.encode(x))

    def encode(self, x) -> torch.Tensor:
        """The backbone's pooled features (no autograd when fully frozen)."""
        x = self.normalise(x)
        states = None  # text resumed from cached states: the skipped blocks' output
        if isinstance(x, dict) and "prefix_states" in x:
            x = dict(x)
            states = x.pop("prefix_states")
        skipping = _skipped(self.backbone.blocks[:getattr(self, "prefix_blocks", 0)],
                            states)
        with skipping, (torch.no_grad() if self.n_frozen == self.n_blocks
                        else contextlib.nullcontext()):
            features = run_module(self.encoder, x)
        if isinstance(features, (tuple, list)):
            features = features[0]
        return features.reshape(features.shape[0], -1)

    def prefix(self, x, n_blocks: int) -> torch.Tensor:
        """The output of the first ``n_blocks`` blocks for the input ``x``
        (the forward pass stops there): what ``prefix_blocks`` skips."""
        captured: list = []

        def hook(_module, _inputs, output):
            captured.append(output)
            raise _Stop

        x = self.normalise(x)
        handle = self.backbone.blocks[n_blocks - 1].output_module \
            .register_forward_hook(hook)
        try:
            with torch.no_grad():
                run_module(self.encoder, x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(f"block {n_blocks - 1} was not run")
        output = captured[0]
        if isinstance(output, (tuple, list)):
            raise RuntimeError("a block returning a tuple cannot be cached")
        return output

    def normalise(self, x):
        """A uint8 image batch as float32, scaled to [0, 1] and normalised
        with ``backbone.data_config``'s mean and std: the operations of
        torchvision's ``ToDtype(float32, scale=True)`` and ``Normalize``, in
        their order, so the values are theirs. Anything else is returned as
        it is."""
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
            return x
        config = self.backbone.data_config
        mean = torch.as_tensor(config["mean"], dtype=torch.float32,
                               device=x.device).view(-1, 1, 1)
        std = torch.as_tensor(config["std"], dtype=torch.float32,
                              device=x.device).view(-1, 1, 1)
        return x.to(torch.float32).mul_(1.0 / 255).sub(mean).div_(std)

    def prefix_digest(self, n_blocks: int) -> str:
        """SHA-256 of the first ``n_blocks`` blocks: names, structure, tensors."""
        digest = hashlib.sha256()
        for block in self.backbone.blocks[:n_blocks]:
            digest.update(block.name.encode() + b"\x00")
            for module in block.modules:
                digest.update(repr(module).encode())
                for name, tensor in module.state_dict().items():
                    value = tensor.detach().to("cpu").contiguous()
                    digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|"
                                  .encode())
                    digest.update(value.reshape(-1).view(torch.uint8).numpy()
                                  .tobytes())
            for param in block.params:
                value = param.detach().to("cpu").contiguous()
                digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def remember_start(self, first_trainable: int) -> None:
        """Record w0, the pretrained weights of blocks ``first_trainable:``."""
        params = list(block_parameters(self.backbone.blocks, first_trainable))
        self.reference = [(p, p.detach().clone()) for p in params]

    def l2sp_penalty(self) -> torch.Tensor:
        """sum ||w - w0||^2 over the backbone weights being trained."""
        total = self.head.weight.new_zeros(())
        for param, start in self.reference or ():
            if param.requires_grad:
                total = total + (param - start.to(param.device)).pow(2).sum()
        return total


class _Stop(Exception):
    pass


def _identity(x, *args, **kwargs):
    return x


@contextlib.contextmanager
def _skipped(blocks, output=None):
    """The modules of ``blocks`` pass their input through unchanged: a forward
    pass fed a block's cached output resumes after it (a chain of blocks).
    With ``output`` (a text encoder's cached hidden states, while the input
    is the token batch) each returns ``output`` instead, whatever it is
    called with: the embeddings then the frozen layers give the last frozen
    layer's output."""
    modules = [module for block in blocks for module in block.modules]
    saved = [module.__dict__.get("forward") for module in modules]
    skip = _identity if output is None else (lambda *args, **kwargs: output)
    for module in modules:
        module.forward = skip
    try:
        yield
    finally:
        for module, forward in zip(modules, saved, strict=True):
            if forward is None:
                del module.forward
            else:
                module.forward = forward

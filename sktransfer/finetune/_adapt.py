"""Deep domain adaptation for the fine-tuning core: the losses and the row pairing.

Each adaptation method is a small ``nn.Module`` with one method,
``forward(source, target, progress) -> loss``, on a batch of source features
and a batch of target features (skada.deep's ``BaseDALoss`` pattern). The core
adds ``adapt_weight * loss`` to the cross-entropy of the labelled source rows;
it never asks which method it holds. ``progress`` is the share of the training
steps done (0 -> 1), which DANN's schedule uses.

The features aligned are the output of a small trainable bottleneck between
the backbone and the head (see ``FineTuneModule``), so adaptation also works
when the whole backbone is frozen.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from sktransfer._utils.domains import split_domains
from sktransfer.exceptions import InvalidInputError

__all__ = ["ADAPT_LOSSES", "CORALLoss", "DANNLoss", "MMDLoss", "split_rows"]

BOTTLENECK = 256  # width of the features the losses align


class CORALLoss(nn.Module):
    """Deep CORAL (Sun & Saenko, 2016): ``||C_S - C_T||_F^2 / (4 d^2)``."""

    def __init__(self, n_features: int):
        super().__init__()

    def forward(self, source, target, progress: float) -> torch.Tensor:
        if len(source) < 2 or len(target) < 2:  # a covariance needs two rows
            return source.new_zeros(())
        d = source.shape[1]
        diff = torch.cov(source.T) - torch.cov(target.T)
        return diff.pow(2).sum() / (4 * d * d)


class MMDLoss(nn.Module):
    """Multi-kernel MMD² as in DAN (Long et al., 2015).

    A sum of Gaussian kernels ``exp(-||x - y||² / (4**k * m))``, ``k`` in -4..4
    (bandwidths 2^-8..2^8 times ``m``), where ``m`` is the median squared
    distance between two rows of the batch (the median heuristic); the biased
    (V-statistic) estimate. ``m`` stays in the graph: with a detached
    bandwidth, shrinking every feature toward one point lowers the loss at
    each step, and a large ``adapt_weight`` collapsed the features to zero.
    """

    def __init__(self, n_features: int):
        super().__init__()

    def forward(self, source, target, progress: float) -> torch.Tensor:
        both = torch.cat([source, target])
        distances = torch.cdist(both, both).pow(2)
        pairs = ~torch.eye(len(both), dtype=torch.bool, device=both.device)
        median = distances[pairs].median().clamp_min(1e-12)
        kernel = cast(torch.Tensor, sum(torch.exp(-distances / (median * 4.0**k))
                                        for k in range(-4, 5)))
        n = len(source)
        return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


class DANNLoss(nn.Module):
    """DANN (Ganin et al., 2016): a domain classifier behind a gradient reversal.

    The classifier learns to tell source from target features (balanced binary
    cross-entropy); the reversed gradient, scaled by Ganin et al.'s schedule
    ``2 / (1 + exp(-10 p)) - 1`` of the training progress ``p``, trains the
    features to fool it.
    """

    def __init__(self, n_features: int, hidden: int = 256):
        super().__init__()
        self.discriminator = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, source, target, progress: float) -> torch.Tensor:
        coefficient = 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0
        both = _ReverseGradient.apply(torch.cat([source, target]), coefficient)
        logits = self.discriminator(both).squeeze(1)
        is_target = torch.zeros_like(logits)
        is_target[len(source) :] = 1.0
        bce = nn.functional.binary_cross_entropy_with_logits
        n = len(source)
        return (bce(logits[:n], is_target[:n]) + bce(logits[n:], is_target[n:])) / 2


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coefficient):
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coefficient * grad, None


ADAPT_LOSSES = {"coral": CORALLoss, "dann": DANNLoss, "mmd": MMDLoss}


def split_rows(y, sample_domain, adapt):
    """Indices of the labelled rows and of the target rows; clear errors.

    ``y == -1`` marks unlabelled target rows; ``sample_domain`` (as in skada:
    > 0 or "source", < 0 or "target") may mark target rows explicitly,
    labelled or not.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    _, target, labelled_target = split_domains(y, sample_domain)
    labelled = ~target | labelled_target
    if not labelled.any():
        raise InvalidInputError(
            "Every row is unlabelled (y == -1): give labelled rows to train on; "
            "-1 marks the unlabelled target rows used by adapt."
        )
    if adapt is not None and not target.any():
        raise InvalidInputError(
            f"adapt={adapt!r} needs target rows: mark unlabelled target rows with "
            f"y == -1 (or pass sample_domain); got none. Use adapt=None to train "
            f"on labelled rows only."
        )
    return np.flatnonzero(labelled), np.flatnonzero(target)


class PairedRows(Dataset):
    """``(labelled row, random target row)`` pairs: ``((x_s, x_t), y_s)``.

    The target row is drawn afresh on each access from torch's generator,
    which the fit seeds, so every epoch pairs the source rows with new target
    rows and ``random_state`` still fixes the result.
    """

    def __init__(self, labelled: Dataset, targets):
        self.labelled, self.targets = labelled, targets

    def __len__(self):
        return len(self.labelled)

    def __getitem__(self, i):
        x, label = self.labelled[i]
        j = int(torch.randint(len(self.targets), ()).item())
        return (x, self.targets[j]), label


class PairedCollate:
    """One batch of ``source rows + target rows`` (in that order) and the labels
    of the source rows: the network runs once on both domains."""

    def __init__(self, collate_inputs=None):
        self.collate_inputs = collate_inputs

    def __call__(self, pairs):
        inputs, labels = zip(*pairs, strict=True)
        sources, targets = zip(*inputs, strict=True)
        collate = self.collate_inputs or default_collate
        return collate([*sources, *targets]), torch.as_tensor(labels)

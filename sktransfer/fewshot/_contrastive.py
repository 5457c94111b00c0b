"""SetFit's first stage: contrastive fine-tuning on pairs sampled on the fly.

Each step draws a batch of ``batch_size`` texts: two of each of
``batch_size // 2`` random classes, or, when there are fewer classes, all of
them with ``batch_size // n_classes`` texts each. Every pair inside the
batch is a training pair (``b * (b - 1) / 2`` of them for ``b`` texts), its
target 1 when both texts share a class and 0 otherwise, as in SetFit's
``CosineSimilarityLoss``: the squared error between the pair's cosine
similarity and its target, averaged over the positive pairs and over the
negative pairs separately, so that the few positives weigh as much as the many
negatives. No list of pairs exists: memory holds the tokenised texts (each
tokenised once) and one batch, whatever ``n``.

With label names, each class's name sentence is one more member of its
class: it is drawn into batches like the class's texts, so the texts are
pulled toward their name and away from the other classes' names. (A
cross-entropy of each text over its similarity to every name, added to this
loss, was measured on dev draws and dropped: no gain at 8 texts a class,
-0.011 at 2; see benchmarks/RESULTS.md, F1.)

Multi-label (``label_sets``: the 0/1 label indicator of every row): a
row is a member of each of its labels' groups, and a pair's target is the
Jaccard overlap of the two label sets (1 for the same set, 0.5 for {a, b}
and {a}, 0 for disjoint sets) rather than SetFit's "same set or not". With
one label a row, Jaccard is that 0/1 target: the single-label loss unchanged.

A batch runs through the encoder in groups of rows of similar length (token
counts in the same power of two, all rows up to 16 tokens in one group), the
groups' embeddings put back in the batch's order before the loss: one long
text no longer pads every short text of its batch to its length. The loss and
its gradient are those of one padded forward (the attention masks make the
padding inert); only the dropout masks are drawn differently. On the
multi-label few-shot benchmark (texts of 3 to 256 tokens, median 11) this cut
the contrastive stage about 5 times (benchmarks/RESULTS.md, "Multi-label").

A class with fewer texts than a batch takes from it repeats them: a class
with a single text pairs that text with itself, the two copies running
through the encoder with different dropout masks (SimCSE's positive pair);
with label names its name sentence is a second member anyway.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from sktransfer._utils import engine
from sktransfer.backbones import Backbone, block_parameters

__all__ = [
    "PairBatches",
    "contrastive_tune",
    "length_groups",
    "jaccard",
    "pair_loss",
    "pairs_per_batch",
]


def _shape(batch_size: int, n_classes: int) -> tuple[int, int]:
    """``(classes, texts a class)`` of a batch: two texts of each of
    ``batch_size // 2`` classes, or, with fewer classes, all of them with
    ``batch_size // n_classes`` texts each."""
    per_batch = min(max(batch_size // 2, 1), n_classes)
    return per_batch, max(batch_size // per_batch, 2)


def pairs_per_batch(batch_size: int, n_classes: int) -> int:
    """Pairs in one batch: every pair of its texts."""
    classes, each = _shape(batch_size, n_classes)
    b = classes * each
    return b * (b - 1) // 2


class PairBatches:
    """Rows of each training batch, drawn on the fly from ``groups``.

    Parameters
    ----------
    groups : list of int arrays
        The rows of each class (at least one each).
    batch_size : int
    rng : numpy Generator
    """

    def __init__(self, groups, batch_size: int, rng: np.random.Generator):
        self.groups = [np.asarray(g) for g in groups]
        self.per_batch, self.each = _shape(batch_size, len(self.groups))
        self.rng = rng

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, class_of_row)`` of one batch: distinct texts of a class
        as far as it has them, then repeats (dropout makes them differ)."""
        rng, each = self.rng, self.each
        classes = rng.choice(len(self.groups), self.per_batch, replace=False)
        rows: list[int] = []
        owners: list[int] = []
        for c in classes:
            group = self.groups[c]
            picked = rng.permutation(group)[:each]
            if len(picked) < each:
                picked = np.concatenate(
                    [picked, rng.choice(group, each - len(picked))])
            rows.extend(picked)
            owners.extend([c] * each)
        return np.asarray(rows), np.asarray(owners)


def jaccard(label_sets: np.ndarray) -> np.ndarray:
    """``(b, b)`` Jaccard overlap of the rows' label sets (0 for two empty sets)."""
    sets = np.asarray(label_sets, dtype=np.float64)
    both = sets @ sets.T
    either = sets.sum(1)[:, None] + sets.sum(1)[None, :] - both
    return np.divide(both, either, out=np.zeros_like(both), where=either > 0)


def pair_loss(embeddings: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
    """SetFit's cosine loss over every pair of the batch, classes balanced.

    ``owners``: the class of each row, or a ``(b, b)`` matrix of pair targets
    in [0, 1] (multi-label: ``jaccard``); pairs with a target above 0 are pulled
    to it, the others pushed to 0, the two kinds averaged separately.
    """
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    cosine = unit @ unit.T
    upper = torch.triu(torch.ones_like(cosine, dtype=torch.bool), diagonal=1)
    if owners.ndim == 2:
        target = owners.to(cosine.dtype)
    else:
        target = (owners[:, None] == owners[None, :]).to(cosine.dtype)
    same = target > 0
    positive, negative = same & upper, ~same & upper
    loss = (cosine[positive] - target[positive]).pow(2).mean()
    if negative.any():
        loss = loss + cosine[negative].pow(2).mean()
    return loss


def _trim(tokens: dict, rows: np.ndarray, device) -> dict:
    """The batch's rows, cut after the last real token of its longest text."""
    index = torch.as_tensor(rows)
    batch = {name: value[index] for name, value in tokens.items()}
    used = torch.nonzero(batch["attention_mask"].any(0))
    width = int(used[-1]) + 1 if len(used) else 1
    return engine.to_device({name: value[:, :width] for name, value in batch.items()},
                     device)


#: Rows up to this many tokens share one group (padding them is cheap).
SHORT_TOKENS = 16


def length_groups(lengths: np.ndarray) -> list[np.ndarray]:
    """Positions of the batch's rows grouped by length: token counts in the
    same power of two (all up to ``SHORT_TOKENS`` in one), so a group's
    padded width is under twice any of its rows' length (or ``SHORT_TOKENS``)."""
    lengths = np.maximum(np.asarray(lengths), 1)
    bucket = np.maximum(np.ceil(np.log2(lengths)), np.log2(SHORT_TOKENS))
    return [np.flatnonzero(bucket == b) for b in np.unique(bucket)]


def _embed_batch(module, tokens: dict, lengths: np.ndarray, rows: np.ndarray,
                 device) -> torch.Tensor:
    """The rows' embeddings in ``rows``' order, each length group run alone."""
    groups = length_groups(lengths[rows])
    if len(groups) == 1:
        return module(**_trim(tokens, rows, device))
    parts = [module(**_trim(tokens, rows[group], device)) for group in groups]
    order = torch.as_tensor(np.argsort(np.concatenate(groups)), device=device)
    return torch.cat(parts)[order]


def contrastive_tune(
    backbone: Backbone,
    tokens: dict,
    groups: list,
    *,
    n_pairs: int,
    max_epochs: int,
    batch_size: int,
    lr: float,
    n_frozen: int,
    seed: int,
    device: torch.device,
    progress: bool = False,
    label_sets: np.ndarray | None = None,
) -> list[float]:
    """Tune ``backbone.module`` in place; returns the mean loss of each epoch.

    ``tokens``: every text tokenised once (``backbone.preprocess``), padded
    to the longest; ``groups``: the rows of each class (multi-label: of each
    label, with ``label_sets`` the rows' 0/1 indicator). An epoch is
    ``ceil(n_pairs / pairs_per_batch)`` steps. Runs on the fine-tuners'
    training engine (``sktransfer._utils.engine``): seeding that leaves the
    caller's generators as they were, freezing, the fused optimiser, the
    device and precision decision, losses read once per epoch. The
    precision is fp32 (``mixed=False``): cosine targets of 0 and 1 on
    unit vectors, as SetFit trains them.
    """
    module, blocks = backbone.module, backbone.blocks
    engine.freeze(blocks, n_frozen)
    params = list(block_parameters(blocks, n_frozen))
    losses: list[float] = []
    if not params or n_pairs == 0 or len(groups) < 2:
        module.eval()
        return losses
    sampler = PairBatches(groups, batch_size, np.random.default_rng(seed))
    lengths = tokens["attention_mask"].sum(1).cpu().numpy()
    optimizer = engine.make_optimizer(torch.optim.AdamW, params, lr=lr)
    steps = math.ceil(n_pairs / pairs_per_batch(batch_size, len(groups)))
    amp, _ = engine.training_precision(device, mixed=False)
    module.to(device).train()
    engine.freeze(blocks, n_frozen)  # train() above: frozen blocks back to eval
    bar = tqdm(total=steps * max_epochs, disable=not progress, desc="contrastive",
               unit="step")
    with engine.seeded(seed, device), bar:
        for _ in range(max_epochs):
            meter = engine.LossMeter()
            for _ in range(steps):
                rows, owners = sampler.draw()
                with engine.autocast_for(device, amp):
                    embeddings = _embed_batch(module, tokens, lengths, rows, device)
                if label_sets is not None:  # multi-label: Jaccard targets
                    owners = jaccard(label_sets[rows])
                loss = pair_loss(embeddings, torch.as_tensor(owners, device=device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.add(loss)
                bar.update()
            losses.append(meter.mean())
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return losses

"""Text fine-tuning overhead: FineTunedTextClassifier vs a hand-written loop.

Epoch time of ``FineTunedTextClassifier`` / a hand-written PyTorch +
transformers loop doing the same work: the same encoder (the bundled
all-MiniLM-L6-v2 unless ``--model``), attention-masked mean pooling and linear
head, the same tokenisation (per batch, padded to the longest text, truncated
at ``--max-length``), batch size, freezing and Adam parameter groups; no
augmentation in either. Target <= 1.10.

Usage::

    PYTHONPATH=. python benchmarks/bench_finetune_text.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sktransfer.backbones import (
    frozen_block_count,
    mean_pool,
    resolve_backbone,
    set_frozen,
)
from sktransfer.datasets import load_chatterbot_topics
from sktransfer.finetune import FineTunedTextClassifier


def sktransfer_epochs(X, y, args) -> list[float]:
    clf = FineTunedTextClassifier(
        args.model,
        freeze_depth=args.freeze_depth,
        max_epochs=args.epochs,
        max_length=args.max_length,
        batch_size=args.batch_size,
        random_state=0,
    ).fit(X, y)
    durations = clf.history_[:, "dur"]
    return durations[1:] or durations


def hand_written_epochs(X, y, args) -> list[float]:
    torch.manual_seed(0)
    backbone = resolve_backbone(args.model, modality="text")
    model, tokenizer, blocks = (
        backbone.module.encoder,  # the transformers model, before pooling
        backbone.preprocess.tokenizer,
        backbone.blocks,
    )
    n_frozen = frozen_block_count(args.freeze_depth, len(blocks))
    set_frozen(blocks, n_frozen)
    head = nn.Linear(backbone.out_features, len(np.unique(y)))
    optimizer = torch.optim.Adam(
        [
            {"params": list(model.parameters()), "lr": 3e-5},
            {"params": list(head.parameters()), "lr": 1e-3},
        ]
    )
    labels = np.unique(y, return_inverse=True)[1]
    loader = DataLoader(
        list(zip(X, labels.tolist(), strict=True)),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=lambda pairs: tuple(zip(*pairs, strict=True)),
    )
    loss_fn = nn.CrossEntropyLoss()
    durations = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train(), head.train()
        for block in blocks[:n_frozen]:
            block.modules[0].eval()
        for texts, targets in loader:
            batch = tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            )
            hidden = model(**batch)[0]
            logits = head(mean_pool(hidden, batch["attention_mask"]))
            loss = loss_fn(logits, torch.as_tensor(targets))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        durations.append(time.perf_counter() - start)
    return durations[1:] or durations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--n", type=int, default=256, help="training texts")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--freeze-depth", type=int, default=-2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    texts, labels = load_chatterbot_topics()
    rows = np.random.RandomState(0).permutation(len(texts))[: args.n]
    X, y = [texts[i] for i in rows], [labels[i] for i in rows]
    print(
        f"{args.model}, {len(X)} texts ({len(set(y))} topics), max_length "
        f"{args.max_length}, batch {args.batch_size}, freeze_depth "
        f"{args.freeze_depth}, {args.epochs} epochs, torch threads "
        f"{torch.get_num_threads()}, device "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    # A shared machine: interleave the runs and compare the fastest epochs
    # (the least disturbed), and the medians.
    ours, hand = [], []
    for _ in range(args.repeats):
        ours += sktransfer_epochs(X, y, args)
        hand += hand_written_epochs(X, y, args)
    print(
        f"epoch (min / median of {len(ours)}): sktransfer {min(ours):.3f}s / "
        f"{statistics.median(ours):.3f}s, hand-written loop {min(hand):.3f}s / "
        f"{statistics.median(hand):.3f}s; ratio {min(ours) / min(hand):.3f} "
        f"(median {statistics.median(ours) / statistics.median(hand):.3f}; "
        f"target <= 1.10)"
    )


if __name__ == "__main__":
    main()

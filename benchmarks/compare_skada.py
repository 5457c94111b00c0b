"""skada 0.6 on the same shifts, backbones and budget as bench_adapt_shift.py.

The frozen backbone embeds every row once, as ``freeze_depth="all"`` does:
``--data photos`` (default), the bundled EfficientNet-Lite0 at 64 px, as
``FineTunedClassifier``; ``--data chatterbot`` (questions vs other statements),
the bundled all-MiniLM-L6-v2, mean-pooled and not normalised, ``max_length``
64, as ``FineTunedTextClassifier``. skada's deep methods
(``DeepCoral``, ``DAN``, ``DANN``) then train the same bottleneck (linear 256 +
ReLU) and linear head as ``adapt=...`` does, aligning the bottleneck's output,
with the same optimiser (Adam, lr 1e-3), batch size (32) and epochs. Its
shallow methods (JDOT, OT mapping, entropic OT, CORAL) train a logistic
regression on the same features.

Needs ``pip install skada==0.6`` (it brings POT). Run:
``python benchmarks/compare_skada.py [--data photos|chatterbot] [--epochs 30]
[--weights 1,10]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_adapt_shift import photo_shift, question_shift
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
from torch import nn
from torch.utils.data import DataLoader

from sktransfer.backbones import (
    make_eval_transform,
    resolve_backbone,
    resolve_image_backbone,
)
from sktransfer.data import ImageDataset
from sktransfer.finetune._adapt import BOTTLENECK
from sktransfer.finetune._text import TextDataset


def embed(images, size=64):
    """Pooled EfficientNet-Lite0 features, as the fast path computes them."""
    backbone = resolve_image_backbone("efficientnet_lite0", "DEFAULT")
    transform = make_eval_transform(backbone.data_config, size)
    dataset = ImageDataset(list(images), transform)
    module = backbone.module.eval()
    with torch.no_grad():
        chunks = [module(batch).flatten(1) for batch in DataLoader(dataset, 64)]
    return torch.cat(chunks).numpy().astype(np.float32)


def embed_texts(texts, max_length=64):
    """Mean-pooled MiniLM features, un-normalised, as the text fast path computes
    them (``FineTunedTextClassifier._resolve_backbone`` turns normalising off)."""
    backbone = resolve_backbone("all-MiniLM-L6-v2", modality="text")
    backbone.module.normalize = False
    module = backbone.module.eval()

    def tokenize(batch):
        return backbone.preprocess(list(batch), max_length=max_length)

    loader = DataLoader(TextDataset(list(texts)), 32, collate_fn=tokenize)
    with torch.no_grad():
        chunks = [module(**batch) for batch in loader]
    return torch.cat(chunks).numpy().astype(np.float32)


def shift_features(data, n_per_class):
    """Source features and labels, target features, test features and labels."""
    if data == "photos":
        Xs, ys, Xt, _, X_test, y_test = photo_shift(n_per_class)
        return embed(Xs), ys, embed(Xt), embed(X_test), y_test
    Xs, ys, Xt, _, X_test, y_test = question_shift()
    return embed_texts(Xs), ys, embed_texts(Xt), embed_texts(X_test), y_test


class BottleneckAndHead(nn.Module):
    """The layers ``adapt=...`` trains on frozen features (skada passes
    ``sample_weight`` to ``forward``)."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.neck = nn.Sequential(nn.Linear(n_features, BOTTLENECK), nn.ReLU())
        self.head = nn.Linear(BOTTLENECK, n_classes)

    def forward(self, x, sample_weight=None):
        return self.head(self.neck(x))


def deep_methods(n_features, n_classes, epochs, weights, seed=0):
    from skada.deep import DAN, DANN, DeepCoral

    common = dict(
        layer_name="neck",
        max_epochs=epochs,
        batch_size=32,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        train_split=False,
        verbose=0,
    )
    for weight in weights:
        for name, cls, extra in [
            ("DeepCoral", DeepCoral, {}),
            ("DAN", DAN, {}),
            ("DANN", DANN, {"num_features": BOTTLENECK}),
        ]:
            torch.manual_seed(seed)
            module = BottleneckAndHead(n_features, n_classes)
            yield (
                f"skada {name} reg={weight:g}",
                cls(module, reg=weight, **common, **extra),
            )


def shallow_methods():
    from skada import CORAL, EntropicOTMapping, JDOTClassifier, OTMapping

    def logistic():
        return LogisticRegression(max_iter=2000)

    # JDOT refits the classifier once per iteration: 20 iterations (default 100)
    yield (
        "skada JDOTClassifier (logistic, 20 it.)",
        JDOTClassifier(logistic(), n_iter_max=20),
    )
    yield "skada OTMapping + logistic", OTMapping(logistic())
    # the cost normalised by its median, else exp(-cost / reg_e) underflows
    yield (
        "skada EntropicOTMapping + logistic",
        EntropicOTMapping(logistic(), norm="median"),
    )
    yield "skada CORAL + logistic", CORAL(logistic())
    # reg="auto" (Ledoit-Wolf) leaves MiniLM's covariance singular: NaN on text
    yield "skada CORAL reg=0.1 + logistic", CORAL(logistic(), reg=0.1)


def main(data, epochs, weights, n_per_class, which="all", seed=0):
    start = time.perf_counter()
    Fs, ys, Ft, F_test, y_test = shift_features(data, n_per_class)
    print(
        f"{data}: features {Fs.shape[1]} dims, {len(Fs)} source, {len(Ft)} target, "
        f"{len(F_test)} test rows, {epochs} epochs, {time.perf_counter() - start:.0f} s"
    )
    encoder = LabelEncoder().fit(ys)
    X = np.r_[Fs, Ft]
    y = np.r_[encoder.transform(ys), -np.ones(len(Ft), dtype=np.int64)]
    domain = np.r_[np.ones(len(Fs)), -2 * np.ones(len(Ft))].astype(int)  # skada
    truth = encoder.transform(y_test)
    source = LogisticRegression(max_iter=2000).fit(Fs, encoder.transform(ys))
    print(f"{'method':40s} target accuracy")
    print(f"{'logistic regression, source only':40s} {source.score(F_test, truth):.3f}")
    methods = []
    if which in ("all", "deep"):
        methods += deep_methods(Fs.shape[1], len(encoder.classes_), epochs, weights,
                                seed)
    if which in ("all", "shallow"):
        methods += shallow_methods()
    for name, estimator in methods:
        start = time.perf_counter()
        try:
            estimator.fit(X, y, sample_domain=domain)
            # skada's deep estimators predict only rows marked as target
            test_domain = -2 * np.ones(len(F_test), dtype=int)
            extra = (
                {"sample_domain": test_domain}
                if "deep" in type(estimator).__module__
                else {}
            )
            score = np.mean(estimator.predict(F_test, **extra) == truth)
        except Exception as exc:  # report and go on: one method failing is data
            first = str(exc).splitlines()[0]
            print(f"{name:40s} failed: {type(exc).__name__}: {first}")
            continue
        print(
            f"{name:40s} {score:.3f}   ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["photos", "chatterbot"], default="photos")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--weights", default="1,10")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", choices=["all", "deep", "shallow"], default="all")
    parser.add_argument("--seed", type=int, default=0,
                        help="torch seed of the deep methods (init, shuffling)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = [float(w) for w in args.weights.split(",")]
    main(args.data, args.epochs, weights, args.n_per_class, args.methods, args.seed)

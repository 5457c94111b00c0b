"""Deep domain adaptation on real shifts: target accuracy per method.

``--data photos``: source = 64-px patches of eight scikit-image photos
(``load_photo_patches``), labelled. Target = other patches of the same photos
"recaptured" by a second camera (``sktransfer.datasets.recapture``: blur, blue
cast, JPEG quality 10), unlabelled in ``fit`` (``y == -1``). Accuracy is
measured on recaptured patches from the held-out right 40% of each photo.

``--data chatterbot``: topic classification (coding, conversations, emotion,
trivia) of chatterbot-corpus statements; source = the questions (ending in
"?"), target = the other statements (answers and remarks), half of them
unlabelled in ``fit``, the other half the test set. MiniLM, max_length 64.

The upper bound trains on the target rows *with* their labels.

Run: ``python benchmarks/bench_adapt_shift.py [--data photos|chatterbot]
[--freeze-depth all|-2] [--epochs 30] [--weights 1,10]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sktransfer.adapt import prediction_entropy_score, soft_neighborhood_density_score
from sktransfer.datasets import load_photo_patches, load_question_shift, recapture
from sktransfer.finetune import FineTunedClassifier, FineTunedTextClassifier


def photo_shift(n_per_class=40, size=64):
    """Source rows, unlabelled target rows, and a labelled target test set."""
    X_source, y_source = load_photo_patches(n_per_class, size, random_state=0)
    X_target, y_target = load_photo_patches(n_per_class, size, random_state=1)
    X_test, y_test = load_photo_patches(n_per_class, size, "test", random_state=2)
    return X_source, y_source, recapture(X_target), y_target, recapture(X_test), y_test


def question_shift(n_per_topic=60):
    """Questions (source), other statements (target, then test) per topic."""
    return load_question_shift(n_per_topic)


def make_classifier(data, freeze_depth, epochs, seed=0, **params):
    if data == "photos":
        return FineTunedClassifier(
            "efficientnet_lite0", freeze_depth=freeze_depth, image_size=64,
            max_epochs=epochs, random_state=seed, **params,
        )  # fmt: skip
    return FineTunedTextClassifier(
        freeze_depth=freeze_depth, max_length=64, max_epochs=epochs,
        random_state=seed, **params,
    )  # fmt: skip


def main(data, freeze_depth, epochs, weights, n_per_class, seed=0):
    shift = photo_shift(n_per_class) if data == "photos" else question_shift()
    Xs, ys, Xt, yt, X_test, y_test = shift
    X = [*Xs, *Xt]
    y = np.array([*ys, *[-1] * len(Xt)], dtype=object)  # -1: unlabelled target

    def run(name, X_fit, y_fit, **params):
        start = time.perf_counter()
        clf = make_classifier(data, freeze_depth, epochs, seed, **params)
        clf.fit(X_fit, y_fit)
        score = clf.score(list(X_test), y_test)
        seconds = time.perf_counter() - start
        # label-free selection scores on the unlabelled target rows of the fit
        entropy = prediction_entropy_score(clf, X, y)
        snd = soft_neighborhood_density_score(clf, X, y)
        print(
            f"{name:34s} {score:.3f}   {entropy:8.3f} {snd:6.3f}  ({seconds:.0f} s)",
            flush=True,
        )

    print(
        f"freeze_depth={freeze_depth!r}, {epochs} epochs, {len(Xs)} source rows, "
        f"{len(Xt)} target rows, {len(X_test)} target test rows"
    )
    print(f"{'method':34s} target accuracy, entropy score, SND")
    run("source only (adapt=None)", X, y)
    for method in ("coral", "mmd", "dann"):
        for weight in weights:
            run(
                f"adapt={method!r} adapt_weight={weight:g}",
                X,
                y,
                adapt=method,
                adapt_weight=weight,
            )
    run("target labels (upper bound)", list(Xt), yt)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["photos", "chatterbot"], default="photos")
    parser.add_argument("--freeze-depth", default="all")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--weights", default="1,10")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    depth = args.freeze_depth if args.freeze_depth == "all" else int(args.freeze_depth)
    main(
        args.data,
        depth,
        args.epochs,
        [float(w) for w in args.weights.split(",")],
        args.n_per_class,
        args.seed,
    )

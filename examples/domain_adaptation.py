"""
Domain adaptation: clean digit scans to blurred ones
====================================================

Source = 900 ``load_digits`` images, target = the other 897, blurred with a
Gaussian filter (sigma 1). Source-only training is compared with the three
families of ``sktransfer.adapt``: importance weighting (instance-based), CORAL
(feature-based) and regularisation toward the source model (parameter-based,
with 60 labelled target rows).

Run: ``python examples/domain_adaptation.py [--features pixels|pca|pretrained]``;
``pretrained`` adapts embeddings of the bundled ImageNet EfficientNet-Lite0
(about a minute on 2 CPU cores). The gallery runs ``pixels``.
"""

# %%
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
from _digit_domains import load_domains  # examples/_digit_domains.py
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from sktransfer.adapt import (
    CORAL,
    CORALClassifier,
    ImportanceWeightedClassifier,
    RegularizedTransferClassifier,
)

warnings.filterwarnings("ignore", category=UserWarning)
FEATURES = sys.argv[sys.argv.index("--features") + 1] if "--features" in sys.argv \
    else "pixels"

images_s, ys, images_t, yt = load_domains()
fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for k in range(8):
    axes[0, k].imshow(images_s[k], cmap="gray_r")
    axes[1, k].imshow(images_t[k], cmap="gray_r")
for ax in axes.ravel():
    ax.axis("off")
axes[0, 0].set_title("source", loc="left", fontsize=9)
axes[1, 0].set_title("target (blurred)", loc="left", fontsize=9)
plt.show()


# %%
# Features: pixels (default), their PCA, or pretrained embeddings.
def featurize(images_source, images_target, kind):
    if kind == "pretrained":
        from sktransfer import PretrainedImageFeatures

        Xs = list(images_source / 16)  # float images in [0, 1] are accepted as is
        embed = PretrainedImageFeatures("efficientnet_lite0").fit(Xs)
        Xs = embed.transform(Xs)
        Xt = embed.transform(list(np.clip(images_target / 16, 0, 1)))
        pca = PCA(n_components=64, random_state=0).fit(np.r_[Xs, Xt])
        return pca.transform(Xs), pca.transform(Xt)
    Xs = images_source.reshape(len(images_source), -1) / 16
    Xt = images_target.reshape(len(images_target), -1) / 16
    if kind == "pca":
        pca = PCA(n_components=30, random_state=0).fit(np.r_[Xs, Xt])
        Xs, Xt = pca.transform(Xs), pca.transform(Xt)
    return Xs, Xt


Xs, Xt = featurize(images_s, images_t, FEATURES)
X = np.r_[Xs, Xt]
y = np.r_[ys, -np.ones(len(yt), dtype=int)]  # -1: unlabelled target rows
print(f"features: {FEATURES} ({Xs.shape[1]} dims); {len(Xs)} source, {len(Xt)} target")

# %%
# Without target labels: one ``fit(X, y)`` gets the labelled source rows and
# the unlabelled target rows.
scores = {}
source = LogisticRegression(max_iter=1000).fit(Xs, ys)
scores["source only"] = source.score(Xt, yt)
scores["importance weighting"] = ImportanceWeightedClassifier().fit(X, y).score(Xt, yt)
for eps in (0.01, 0.1, 1.0):
    scores[f"CORAL eps={eps}"] = CORALClassifier(eps=eps).fit(X, y).score(Xt, yt)
for name, score in scores.items():
    print(f"{name:44s} {score:.3f}")

# %%
# With 60 labelled target rows (evaluated on 497 other target rows): a model
# regularised toward the source model's coefficients.
few = np.random.RandomState(0).choice(400, 60, replace=False)
X_test, y_test = Xt[400:], yt[400:]
few_scores = {"source only": source.score(X_test, y_test)}
target_only = LogisticRegression(C=100.0, max_iter=1000).fit(Xt[few], yt[few])
few_scores["target only (C=100)"] = target_only.score(X_test, y_test)
for alpha in (0.1, 1.0, 10.0):
    reg = RegularizedTransferClassifier(alpha=alpha, source_estimator=source)
    few_scores[f"toward source, alpha={alpha}"] = reg.fit(Xt[few], yt[few]).score(
        X_test, y_test)
for name, score in few_scores.items():
    print(f"{name:44s} {score:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
left.barh(list(scores), list(scores.values()), color="C0")
left.set_title("unlabelled target")
right.barh(list(few_scores), list(few_scores.values()), color="C2")
right.set_title("60 labelled target rows")
for ax in (left, right):
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("target accuracy")
fig.tight_layout()
plt.show()

# %%
# What CORAL does: the source features are re-coloured to the target's
# covariance. The first two principal components before and after.
pca = PCA(2, random_state=0).fit(Xt)
aligned = CORAL(eps=0.1).fit(X, y).transform(Xs)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True, sharey=True)
for ax, source_rows, title in ((axes[0], Xs, "before"), (axes[1], aligned, "after")):
    t, s = pca.transform(Xt), pca.transform(source_rows)
    ax.scatter(t[:, 0], t[:, 1], s=4, alpha=0.4, label="target", color="C1")
    ax.scatter(s[:, 0], s[:, 1], s=4, alpha=0.4, label="source", color="C0")
    ax.set_title(f"{title} CORAL")
axes[0].legend(markerscale=3)
plt.show()

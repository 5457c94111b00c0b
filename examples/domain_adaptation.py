"""Domain adaptation on digits: source = clean scans, target = blurred scans.

Compares source-only training with the three families in ``sktransfer.adapt``:
importance weighting (instance-based), CORAL (feature-based) and regularisation
toward a source model (parameter-based, with a few labelled target rows).

Run: ``python examples/domain_adaptation.py [--features pixels|pca|pretrained]``.
``pretrained`` adapts embeddings from the bundled ImageNet EfficientNet-Lite0
(``sktransfer.PretrainedImageFeatures``), about a minute on 2 CPU cores.
"""

import argparse
import warnings

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from sktransfer.adapt import (
    CORALClassifier,
    ImportanceWeightedClassifier,
    RegularizedTransferClassifier,
)


def load_domains(seed=0):
    """Source: 900 original digit images; target: the other 897, blurred."""
    digits = load_digits()
    idx = np.random.RandomState(seed).permutation(len(digits.target))
    src, tgt = idx[:900], idx[900:]
    blurred = np.stack([gaussian_filter(im, 1.0) for im in digits.images[tgt]])
    return digits.images[src], digits.target[src], blurred, digits.target[tgt]


def featurize(images_source, images_target, kind):
    """Image arrays -> feature matrices: pixels, their PCA, or pretrained embeddings."""
    if kind == "pretrained":
        from sktransfer import PretrainedImageFeatures

        # digits are 0..16 gray levels; float images in [0, 1] are accepted as is
        Xs = list(images_source / 16)
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


def main(kind="pixels"):
    images_s, ys, images_t, yt = load_domains()
    Xs, Xt = featurize(images_s, images_t, kind)
    X = np.r_[Xs, Xt]
    y = np.r_[ys, -np.ones(len(yt), dtype=int)]  # -1: unlabelled target rows
    base = LogisticRegression(max_iter=1000)
    source = base.fit(Xs, ys)
    print(f"features: {kind} ({Xs.shape[1]} dims); {len(Xs)} source, {len(Xt)} target")
    print(f"{'method':44s} target accuracy")
    print(f"{'source only':44s} {source.score(Xt, yt):.3f}")
    iw = ImportanceWeightedClassifier().fit(X, y)
    print(f"{'importance weighting (instance-based)':44s} {iw.score(Xt, yt):.3f}")
    for eps in (0.01, 0.1, 1.0):
        coral = CORALClassifier(eps=eps).fit(X, y)
        print(f"{f'CORAL eps={eps} (feature-based)':44s} {coral.score(Xt, yt):.3f}")
    # Parameter-based: 60 labelled target rows; evaluated on the last 497.
    few = np.random.RandomState(0).choice(400, 60, replace=False)
    X_test, y_test = Xt[400:], yt[400:]
    print(f"-- with 60 labelled target rows, tested on {len(y_test)} target rows")
    print(f"{'source only':44s} {source.score(X_test, y_test):.3f}")
    target_only = LogisticRegression(C=100.0, max_iter=1000).fit(Xt[few], yt[few])
    print(f"{'target only (C=100)':44s} {target_only.score(X_test, y_test):.3f}")
    for alpha in (0.1, 1.0, 10.0):
        reg = RegularizedTransferClassifier(alpha=alpha, source_estimator=source)
        reg.fit(Xt[few], yt[few])
        name = f"regularised toward source, alpha={alpha}"
        print(f"{name:44s} {reg.score(X_test, y_test):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", choices=["pixels", "pca", "pretrained"],
                        default="pixels")
    warnings.filterwarnings("ignore", category=UserWarning)
    main(parser.parse_args().features)

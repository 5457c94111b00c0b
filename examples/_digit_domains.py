"""The digits shift shared by the domain-adaptation examples (not an example)."""

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits


def load_domains(seed=0):
    """Source: 900 original digit images; target: the other 897, blurred."""
    digits = load_digits()
    idx = np.random.RandomState(seed).permutation(len(digits.target))
    src, tgt = idx[:900], idx[900:]
    blurred = np.stack([gaussian_filter(im, 1.0) for im in digits.images[tgt]])
    return digits.images[src], digits.target[src], blurred, digits.target[tgt]

"""From-scratch baselines: features that owe nothing to a pretrained network.

``RawPixels`` is the image comparisons' from-scratch baseline (see
:func:`sktransfer.evaluate.image_candidates`); it needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sktransfer.data import as_image_list, load_image

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from numpy.typing import ArrayLike
    from typing_extensions import Self

__all__ = ["RawPixels"]


class RawPixels(TransformerMixin, BaseEstimator):
    """Images -> flattened RGB pixels in [0, 1] at ``size`` x ``size``.

    The from-scratch baseline of the image comparisons.

    Parameters
    ----------
    size : int, default=32
        Side of the square each image is resized to.
    """

    def __init__(self, size: int = 32):
        self.size = size

    def fit(self, X: Any, y: ArrayLike | None = None) -> Self:
        as_image_list(X)
        self.n_features_out_ = 3 * self.size * self.size
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_out_")
        items = as_image_list(X)
        rows = [np.asarray(load_image(item, i).resize((self.size, self.size)))
                for i, item in enumerate(items)]
        return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0

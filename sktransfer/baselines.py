"""From-scratch baselines: features that owe nothing to a pretrained network.

``RawPixels`` is the image comparisons' from-scratch baseline (see
:func:`sktransfer.evaluate.image_candidates`); it needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from sktransfer._utils.params import declare, validate_params
from sktransfer.data import as_image_list, load_image

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from numpy.typing import ArrayLike
    from typing_extensions import Self

__all__ = ["RawPixels"]


@declare("raw_pixels")
class RawPixels(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Images -> flattened RGB pixels in [0, 1] at ``size`` x ``size``.

    The from-scratch baseline of the image comparisons. Feature names are
    ``rawpixels0``, ``rawpixels1``, ... (``get_feature_names_out``), so
    ``set_output(transform="pandas")`` works.

    Attributes
    ----------
    n_features_out_ : int
        ``3 * size * size``.
    """

    def __init__(self, size: int = 32):
        self.size = size

    def fit(self, X: Any, y: ArrayLike | None = None) -> Self:
        """Check the parameters and ``X`` (nothing is learned)."""
        validate_params(self)
        as_image_list(X)
        self.n_features_out_ = 3 * self.size * self.size
        return self

    @property
    def _n_features_out(self) -> int:  # ClassNamePrefixFeaturesOutMixin
        return self.n_features_out_

    def transform(self, X: Any) -> np.ndarray:
        """The flattened pixels of each image, shape (n_samples, 3 * size**2)."""
        check_is_fitted(self, "n_features_out_")
        items = as_image_list(X)
        rows = [np.asarray(load_image(item, i).resize((self.size, self.size)))
                for i, item in enumerate(items)]
        return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0

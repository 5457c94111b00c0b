"""``FewShotTextClassifier``: SetFit's two stages as one scikit-learn classifier."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from sktransfer._utils.device import resolve_device
from sktransfer._utils.multilabel import (
    decide,
    encode_multilabel,
    is_multilabel,
)
from sktransfer._utils.params import declare, store_parameters, validate_params
from sktransfer.backbones import (
    BUNDLED_TEXT,
    frozen_block_count,
    resolve_backbone,
    token_length,
)
from sktransfer.data import as_text_list
from sktransfer.exceptions import (
    InvalidInputError,
    InvalidParameterError,
    ModelNotAvailableError,
)
from sktransfer.fewshot._contrastive import contrastive_tune
from sktransfer.fewshot._embed import embed_with
from sktransfer.fewshot._labels import (
    DEFAULT_TEMPLATE,
    describe,
    resolve_use_label_names,
)
from sktransfer.fewshot._multilabel import fit_multilabel_head
from sktransfer.fewshot._predict import TextClassifierMixin

if TYPE_CHECKING:  # names used in annotations only
    from typing_extensions import Self

__all__ = ["FewShotTextClassifier", "NAME_WEIGHT"]

#: Sample weight of each label-name row in the head, relative to one text.
NAME_WEIGHT = 4.0


def default_head() -> LogisticRegression:
    """The head used when ``head=None``."""
    return LogisticRegression(max_iter=2000)


@declare("fewshot", "text")
class FewShotTextClassifier(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                            TextClassifierMixin, BaseEstimator):
    """Few-shot text classification: contrastive tuning, then a head.

    SetFit's two stages in one estimator:

    1. **contrastive fine-tuning** of the sentence encoder on pairs of texts
       sampled on the fly: each step takes ``batch_size`` texts (two of each
       of ``batch_size // 2`` random classes) and trains on every pair inside
       the batch, pulling the cosine similarity of same-class pairs to 1 and
       of other pairs to 0 (positives and negatives weighted equally). No pair
       list is built, and each text is tokenised once: memory stays flat in
       the number of texts;
    2. a scikit-learn **head** on the tuned, unit-norm embeddings.

    With ``use_label_names``, each class's name enters as a sentence
    (``"This is about {name}."``, ``_`` read as a space): one more member
    of its class in the pair batches, and a row of weight ``NAME_WEIGHT`` in
    the head. A class with a single text still gets positive pairs: the text is
    paired with its own copy (two dropout masks, as in SimCSE) and, with
    label names, with its name sentence.

    **Multi-label**: ``y`` may be a 0/1 indicator of shape (n_samples,
    n_labels) or a list of label lists. The pairs' targets then follow label
    overlap (the Jaccard index of the two label sets) rather than "same set or
    not", the head is ``OneVsRestClassifier(head)``, ``predict`` returns the
    indicator and ``predict_proba`` one column per label.

    Attributes
    ----------
    classes_ : ndarray
        The classes; multi-label: the label names, in ``predict``'s columns.
    thresholds_ : ndarray of shape (n_labels,)
        Multi-label only: each label's threshold.
    encoder_ : Backbone
        The tuned text backbone.
    head_ : classifier
        The fitted head.
    use_label_names_ : bool
    loss_curve_ : list of float
        Mean contrastive loss of each epoch.
    n_frozen_ : int
    max_length_ : int or None
    device_ : str

    See Also
    --------
    sktransfer.ZeroShotTextClassifier : labels described in words, no training.
    sktransfer.FineTunedTextClassifier : end-to-end fine-tuning with more labels.

    Examples
    --------
    >>> from sktransfer import FewShotTextClassifier
    >>> clf = FewShotTextClassifier(random_state=0).fit(
    ...     ["I love this film", "great movie", "my code fails", "a python bug"],
    ...     ["movies", "movies", "coding", "coding"])
    >>> clf.predict(["the compiler crashed"]).tolist()
    ['coding']
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        head: BaseEstimator | None = None,
        n_pairs: int = 4000,
        max_epochs: int = 1,
        batch_size: int = 16,
        lr: float = 2e-5,
        freeze_depth: int | str = 0,
        use_label_names: bool | str = "auto",
        max_length: int | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        progress: bool = False,
        threshold: str | float = "auto",
    ):
        store_parameters(self, locals())

    def set_params(self, **params) -> Self:
        """Set parameters; ``head__<name>`` needs a ``head`` (given before, or
        in the same call): ``head=None`` stays None until ``fit`` makes
        ``head_``."""
        nested = sorted(k for k in params if k.startswith("head__"))
        if nested and params.get("head", self.head) is None:
            raise InvalidParameterError(
                f"{nested[0]} sets a parameter of the head, but head=None: pass "
                f"head=LogisticRegression(max_iter=2000) (the default head) or "
                f"another classifier to set its parameters")
        return super().set_params(**params)

    def fit(self, X: Any, y: Any) -> Self:
        """Tune the encoder on pairs of ``X``'s texts, then fit the head.

        Parameters
        ----------
        X : sequence of str
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or multi-label: a 0/1 indicator or label lists.

        Returns
        -------
        self
        """
        validate_params(self)
        texts = as_text_list(X)
        self.__dict__.pop("thresholds_", None)
        if is_multilabel(y):
            return self._fit_multilabel(texts, y)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(texts):
            raise InvalidInputError(
                f"y must be 1-D with one label per text: {len(texts)} texts, "
                f"y of shape {y.shape}")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        backbone, rows, names = self._encoder_and_rows(texts)
        owners = np.concatenate([codes, np.arange(len(names))]).astype(int)
        groups = [np.flatnonzero(owners == c) for c in range(len(self.classes_))]
        tokens = backbone.preprocess(rows, max_length=self.max_length_)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        self.loss_curve_ = contrastive_tune(
            backbone, tokens, groups, n_pairs=self.n_pairs,
            max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
            n_frozen=self.n_frozen_, seed=seed, device=torch.device(self.device_),
            progress=self.progress)
        self.encoder_ = backbone
        features = self._embed(rows)
        weights = np.concatenate([np.ones(len(texts)),
                                  np.full(len(names), NAME_WEIGHT)])
        labels = self.classes_[owners]
        self.head_ = _fit_head(self.head, features, labels, weights)
        return self

    def _fit_multilabel(self, texts: list[str], y) -> Self:
        """Jaccard-target pairs, then a one-vs-rest head with tuned thresholds."""
        Y, self.classes_ = encode_multilabel(y)
        if len(Y) != len(texts):
            raise InvalidInputError(
                f"y must have one row per text: {len(texts)} texts, {len(Y)} "
                f"label rows")
        backbone, rows, names = self._encoder_and_rows(texts)
        sets = np.vstack([Y, np.eye(len(self.classes_), dtype=Y.dtype)[:len(names)]])
        groups = [np.flatnonzero(sets[:, j]) for j in range(len(self.classes_))]
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        self.loss_curve_ = contrastive_tune(
            backbone, backbone.preprocess(rows, max_length=self.max_length_),
            groups, n_pairs=self.n_pairs, max_epochs=self.max_epochs,
            batch_size=self.batch_size, lr=self.lr, n_frozen=self.n_frozen_,
            seed=seed, device=torch.device(self.device_), progress=self.progress,
            label_sets=sets)
        self.encoder_ = backbone
        features = self._embed(rows)
        head = default_head() if self.head is None else self.head
        self.head_, self.thresholds_ = fit_multilabel_head(
            head, features[:len(texts)], Y,
            features[len(texts):] if names else None,
            name_weight=int(NAME_WEIGHT), threshold=self.threshold, seed=seed)
        return self

    def _is_multilabel(self) -> bool:
        return "thresholds_" in self.__dict__

    def _encoder_and_rows(self, texts: list[str]):
        """``(backbone, rows, names)`` once ``classes_`` is set: the encoder on
        ``device_``, and the texts followed by the label-name sentences
        (``use_label_names_``)."""
        self.use_label_names_ = resolve_use_label_names(self.use_label_names,
                                                        self.classes_.tolist())
        names = ([describe(c, DEFAULT_TEMPLATE) for c in self.classes_]
                 if self.use_label_names_ else [])
        self.device_ = str(resolve_device(self.device))
        return self._load_backbone(), texts + names, names

    def _load_backbone(self):
        backbone = resolve_backbone(self.model, modality="text", device=self.device_)
        kind = backbone.data_config["kind"]
        if kind == "word2vec":
            raise ModelNotAvailableError(
                f"model={self.model!r} is a {kind} model, which cannot be "
                f"fine-tuned: use a transformer encoder (a sentence-transformers "
                f"name or folder, or 'hf/<name>')")
        self.max_length_ = token_length(backbone, self.max_length)
        self.n_frozen_ = frozen_block_count(self.freeze_depth, len(backbone.blocks),
                                            repr(self.model))
        return backbone

    def _embed(self, texts: list[str]) -> np.ndarray:
        return embed_with(self.encoder_, texts, max_length=self.max_length_,
                          device=self.device_)

    def transform(self, X: Any) -> np.ndarray:
        """Unit-norm embeddings of ``X`` by the tuned encoder.

        Parameters
        ----------
        X : sequence of str
            The texts to embed.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features), float32
            What the head is trained on; the columns are named
            ``fewshottextclassifier0``, ... (``get_feature_names_out``), so
            ``set_output(transform="pandas")`` gives a DataFrame.
        """
        check_is_fitted(self, "head_")
        return self._embed(as_text_list(X))

    @property
    def _n_features_out(self) -> int:  # get_feature_names_out: the embedding's
        return self.encoder_.out_features

    def _scores(self, X):  # predict / predict_proba: the head on the features
        # not self.transform: set_output(transform="pandas") wraps that one
        check_is_fitted(self, "head_")
        return self._embed(as_text_list(X))

    def _labels(self, features):
        if self._is_multilabel():
            head = self.head_
            scores = (head.predict_proba(features) if hasattr(head, "predict_proba")
                      else head.decision_function(features))
            return decide(scores, self.thresholds_)
        return self.head_.predict(features)

    def _proba(self, features):
        return self.head_.predict_proba(features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags


def _fit_head(head, features, labels, weights):
    head = default_head() if head is None else clone(head)
    if has_fit_parameter(head, "sample_weight"):
        return head.fit(features, labels, sample_weight=weights)
    return head.fit(features, labels)

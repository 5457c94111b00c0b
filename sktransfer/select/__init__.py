"""Which network, which layer: rank candidate feature extractors for a data set.

``rank_models(X, y)`` embeds ``X`` with each candidate (frozen, as
``PretrainedImageFeatures`` / ``PretrainedTextEmbeddings``) and scores how well
the features fit ``y`` without training a network:

- ``"logme"``: LogME (You et al., ICML 2021), the log marginal evidence of a
  Bayesian linear model of the targets given the features, maximised in
  closed form (:func:`logme`);
- ``"probe"``: a cross-validated linear probe (standardised features, then
  a ridge classifier, or ridge regression): accuracy or R^2.

Candidates that are layers of one network share ONE forward pass: every
requested layer is captured from it, and each candidate's features land in its
own cache entry (keyed by model, weights, layer and pooling), so fitting the
chosen candidate afterwards embeds nothing again. See docs/select.md.
"""

from sktransfer.select._rank import (
    METRICS,
    PROBE_MAX_CELLS,
    candidate_name,
    default_candidates,
    logme,
    rank_models,
)

__all__ = [
    "METRICS",
    "PROBE_MAX_CELLS",
    "candidate_name",
    "default_candidates",
    "logme",
    "rank_models",
]

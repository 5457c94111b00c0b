"""``sample_domain`` as skada encodes it: source > 0, target < 0 (defaults 1 and
-2), or "source" / "target"; 0 is refused with the convention explained."""

from __future__ import annotations

import numpy as np
import pytest

from sktransfer._utils.domains import domain_mask, split_domains
from sktransfer.adapt import CORAL, CORALClassifier, TrAdaBoostClassifier
from sktransfer.exceptions import InvalidInputError
from sktransfer.finetune._adapt import split_rows


def _shifted(seed=0):
    rng = np.random.RandomState(seed)
    Xs = rng.normal(size=(60, 4))
    ys = (Xs[:, 0] > 0).astype(int)
    Xt = 2.0 * rng.normal(size=(40, 4)) + 1.0
    return np.r_[Xs, Xt], np.r_[ys, -np.ones(40, int)]


def test_skada_defaults_read_source_and_target():
    assert domain_mask([1, -2, 3, -1], 4).tolist() == [False, True, False, True]
    assert domain_mask(["source", "target"], 2).tolist() == [False, True]
    assert domain_mask(np.array([1.0, -2.0]), 2).tolist() == [False, True]


def test_a_skada_array_fits_like_the_minus_one_convention():
    X, y = _shifted()
    skada = np.r_[np.ones(60, int), np.full(40, -2)]
    by_y = CORALClassifier().fit(X, y)
    by_domain = CORALClassifier().fit(X, y, sample_domain=skada)
    np.testing.assert_allclose(by_y.coral_.coral_matrix_,
                               by_domain.coral_.coral_matrix_)
    np.testing.assert_allclose(by_y.predict_proba(X), by_domain.predict_proba(X))
    # reading it backwards would align the target onto the source instead
    Z = CORAL().fit(X, sample_domain=skada).transform(X[:60])
    assert abs(Z.mean() - X[60:].mean()) < abs(Z.mean() - X[:60].mean())


@pytest.mark.parametrize("bad", [0, 0.0, "0"])
def test_zero_is_refused_with_the_convention(bad):
    with pytest.raises(InvalidInputError, match=r"sample_domain\[1\]") as info:
        domain_mask([1, bad, -2], 3)
    message = str(info.value)
    assert "positive integer marks a source row" in message
    assert "-2" in message and "'target'" in message
    if bad != "0":
        assert "0 is neither a source nor a target" in message


@pytest.mark.parametrize("bad", [True, 1.5, "src", None])
def test_other_values_are_refused(bad):
    with pytest.raises(InvalidInputError, match="as in skada"):
        domain_mask([1, bad], 2)


def test_labelled_target_rows_for_tradaboost():
    X, y = _shifted()
    y = np.r_[y[:60], (X[60:, 0] > 1).astype(int)]
    domain = np.r_[np.ones(60, int), np.full(40, -2)]
    source, target, labelled_target = split_domains(y, domain)
    assert source.sum() == 60 and labelled_target.sum() == 40
    TrAdaBoostClassifier(n_estimators=2).fit(X, y, sample_domain=domain)


def test_fine_tuning_reads_the_same_encoding():
    y = np.array([0, 1, 0, 1, -1, -1])
    labelled, target = split_rows(y, [1, 1, 1, 1, -2, -2], adapt="coral")
    assert list(labelled) == [0, 1, 2, 3] and list(target) == [4, 5]
    with pytest.raises(InvalidInputError, match="as in skada"):
        split_rows(y, [0, 0, 0, 0, 1, 1], adapt="coral")

"""One table of parameters (``sktransfer._utils.params``), one validation entry
point, one error family: every estimator takes its constraints, defaults and
parameter docs from the table, and every constraint violation is a
``sktransfer.exceptions.InvalidParameterError``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    InvalidParameterError as SklearnInvalidParameterError,
)

import sktransfer
import sktransfer.adapt
import sktransfer.baselines
from sktransfer._utils import options, params
from sktransfer.exceptions import InvalidParameterError, SktransferError

PACKAGE = Path(sktransfer.__file__).parent
TEXT = ["FewShotTextClassifier", "FineTunedTextClassifier", "FineTunedTextRegressor",
        "PretrainedTextEmbeddings", "ZeroShotTextClassifier"]
CORE = ["FineTunedClassifier", "FineTunedRegressor", "PretrainedImageFeatures",
        *TEXT]


def _estimators():
    found = {}
    for module in (sktransfer, sktransfer.adapt, sktransfer.baselines):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found[name] = obj
    return found


ESTIMATORS = _estimators()
DECLARED = {name: cls for name, cls in ESTIMATORS.items()
            if cls._validate_params is params._validate_params}


def test_the_core_estimators_read_the_table():
    assert set(CORE) <= set(DECLARED)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_constraints_docs_and_signature_agree(name):
    cls = DECLARED[name]
    signature = list(inspect.signature(cls).parameters)
    assert list(cls._parameter_constraints) == signature
    for parameter in signature:  # one generated numpydoc entry each
        assert f"\n{parameter} : " in "\n" + inspect.cleandoc(cls.__doc__)
    assert "%(" not in cls.__doc__


def test_every_public_estimator_reads_the_table():
    assert set(DECLARED) == set(ESTIMATORS)


def test_no_estimator_declares_constraints_of_its_own():
    """``_parameter_constraints`` is written in the table's module only."""
    written = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(getattr(t, "id", None) == "_parameter_constraints"
                   or getattr(t, "attr", None) == "_parameter_constraints"
                   for t in targets):
                written.append(path.relative_to(PACKAGE).as_posix())
    assert written == ["_utils/params.py"]


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_parameter_is_checked(name):
    """An arbitrary object breaks every parameter's constraint; the error
    names that parameter."""
    cls = DECLARED[name]
    for parameter in inspect.signature(cls).parameters:
        with pytest.raises(InvalidParameterError,
                           match=f"'{parameter}' parameter of {name}"):
            params.validate_params(cls(**{parameter: object()}))


@pytest.mark.parametrize("name", sorted(set(TEXT)))
@pytest.mark.parametrize("value", [1, 0, True, 2.5, "64"])
def test_max_length_has_one_rule(name, value):
    """``int >= 2`` or None (the model's own maximum) on every text estimator."""
    cls = DECLARED[name]
    assert inspect.signature(cls).parameters["max_length"].default is None
    params.validate_params(cls(max_length=None))
    params.validate_params(cls(max_length=2))
    with pytest.raises(InvalidParameterError, match="'max_length' parameter"):
        params.validate_params(cls(max_length=value))


def test_the_error_is_both_families():
    assert issubclass(InvalidParameterError, SktransferError)
    assert issubclass(InvalidParameterError, SklearnInvalidParameterError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


@pytest.mark.parametrize("name", CORE)
@pytest.mark.parametrize(("parameter", "value"), [
    ("device", 3), ("batch_size", 0), ("batch_size", True), ("progress", "yes")])
def test_fit_refuses_a_bad_value_before_loading_anything(name, parameter, value):
    cls = DECLARED[name]
    if parameter not in inspect.signature(cls).parameters:
        pytest.skip(f"{name} has no {parameter}")
    estimator = cls(**{parameter: value, "model": "no/such-model"})
    with pytest.raises(SktransferError) as info:
        estimator.fit(["a"] * 4, [0, 1, 0, 1])
    assert isinstance(info.value, InvalidParameterError)
    assert f"'{parameter}' parameter of {name}" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("estimator", "parameter"), [
    (sktransfer.adapt.CORAL(eps=-1.0), "eps"),
    (sktransfer.adapt.CORALClassifier(align_mean="yes"), "align_mean"),
    (sktransfer.adapt.TrAdaBoostClassifier(n_estimators=True), "n_estimators"),
    (sktransfer.adapt.TransferComponentAnalysis(kernel="gauss"), "kernel"),
    (sktransfer.adapt.RegularizedTransferRegressor(alpha=-1), "alpha"),
    (sktransfer.adapt.SubspaceAlignment(n_components=0), "n_components"),
])
def test_adapt_fit_raises_ours(estimator, parameter):
    X = np.random.RandomState(0).normal(size=(20, 3))
    y = np.r_[np.zeros(5), np.ones(5), -np.ones(10)].astype(int)
    with pytest.raises(SktransferError, match=f"'{parameter}' parameter"):
        estimator.fit(X, y)


def test_sklearn_fit_context_and_validate_params_raise_ours():
    """``_validate_params`` (what scikit-learn's ``_fit_context`` and the CLI
    call) is the same entry point."""
    estimator = sktransfer.PretrainedTextEmbeddings(runtime="tensorrt")
    with pytest.raises(InvalidParameterError, match="'runtime' parameter"):
        estimator._validate_params()


def test_validation_can_be_skipped_as_in_sklearn():
    from sklearn import config_context

    with config_context(skip_parameter_validation=True):
        params.validate_params(sktransfer.PretrainedTextEmbeddings(batch_size=0))


def test_a_signature_default_that_differs_from_the_table_fails_at_import():
    class Estimator(BaseEstimator):
        """%(parameters)s"""

        def __init__(self, device="cpu"):
            self.device = device

    with pytest.raises(AssertionError, match="table's default is 'auto'"):
        params.declare()(Estimator)


def test_an_unknown_parameter_fails_at_import():
    class Estimator(BaseEstimator):
        def __init__(self, colour=1):
            self.colour = colour

    with pytest.raises(KeyError, match="colour"):
        params.declare()(Estimator)


def test_the_option_names_are_the_implementations():
    from sktransfer.finetune._adapt import ADAPT_LOSSES
    from sktransfer.finetune._tasks import REGRESSION_LOSSES

    assert set(ADAPT_LOSSES) == set(options.ADAPT_LOSS_NAMES)
    assert set(REGRESSION_LOSSES) == set(options.REGRESSION_LOSS_NAMES)


def test_counts_refuse_bools_and_floats():
    constraint = params.count(1)
    assert constraint.is_satisfied_by(3) and constraint.is_satisfied_by(np.int64(3))
    assert not constraint.is_satisfied_by(True)
    assert not constraint.is_satisfied_by(np.bool_(True))
    assert not constraint.is_satisfied_by(3.0)
    assert "not a bool" in str(constraint)

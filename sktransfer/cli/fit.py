"""``sktransfer fit DATA --out MODEL``: cross-validate, fit and save a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT
from sktransfer.cli._inputs import (
    _ensure_writable,
    ensure_folder_creatable,
    load_training_data,
    resolve_task,
    split_tags,
)
from sktransfer.exceptions import CLIError

MODEL_FORMAT = "sktransfer-model"


def _freeze_depth(value: str):
    """An int when the option reads as one; anything else goes to the estimator,
    whose ``fit`` says what ``freeze_depth`` accepts."""
    try:
        return int(value)
    except ValueError:
        return value


def _weights(value):
    return None if value in ("None", "none", "random") else value


def build_estimator(args, modality, task="classification"):
    """Frozen features + a linear model, or the fine-tuned estimator, for the
    modality (``image`` / ``text``) and task (``classification`` / ``regression``)."""
    import sktransfer as skt
    from sktransfer.cli._fewshot import fewshot_estimator

    if (few_labels := fewshot_estimator(args, modality, task)) is not None:
        return few_labels
    regression = task == "regression"
    if args.finetune:
        if modality == "image":
            cls = skt.FineTunedRegressor if regression else skt.FineTunedClassifier
            return cls(args.model or BUNDLED_IMAGE,
                       weights=_weights(args.weights),
                       freeze_depth=_freeze_depth(args.freeze_depth),
                       max_epochs=args.max_epochs, image_size=args.image_size,
                       random_state=0, fast_decode=_fast_decode(args))
        cls = skt.FineTunedTextRegressor if regression else skt.FineTunedTextClassifier
        return cls(args.model or BUNDLED_TEXT,
                   freeze_depth=_freeze_depth(args.freeze_depth),
                   max_epochs=args.max_epochs, random_state=0)
    if getattr(args, "label_sep", None) is not None:  # tags: the one-vs-rest
        return _tags_estimator(args, modality)  # probe with tuned thresholds
    return _frozen_pipeline(args, modality, regression)


def _tags_estimator(args, modality):
    """Frozen features and one tuned logistic regression per label, with
    per-label thresholds: the head-only fine-tuner (docs/multilabel.md)."""
    import sktransfer as skt

    if modality == "image":
        return skt.FineTunedClassifier(
            args.model or BUNDLED_IMAGE, weights=_weights(args.weights),
            freeze_depth="all", image_size=args.image_size, random_state=0,
            fast_decode=_fast_decode(args))
    return skt.FineTunedTextClassifier(args.model or BUNDLED_TEXT,
                                       freeze_depth="all", random_state=0)


def _fast_decode(args) -> bool:
    return not getattr(args, "exact_decode", False)


def _frozen_pipeline(args, modality, regression):
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import sktransfer as skt

    runtime = getattr(args, "runtime", None) or "auto"
    head = (RidgeCV(np.logspace(-3, 4, 15)) if regression
            else LogisticRegression(max_iter=2000))
    if modality == "image":
        features = skt.PretrainedImageFeatures(
            args.model or BUNDLED_IMAGE, weights=_weights(args.weights),
            runtime=runtime, fast_decode=_fast_decode(args))
        return make_pipeline(features, StandardScaler(), head)
    return make_pipeline(skt.PretrainedTextEmbeddings(
        args.model or BUNDLED_TEXT, runtime=runtime), head)


def _cross_validate(args, X, y, estimator, task):
    from sktransfer.evaluate import compare, format_table

    if task == "regression":
        scoring = ("r2", "neg_mean_absolute_error")
        table = compare(X, y, {"model": estimator}, cv=args.cv, scoring=scoring,
                        progress=True)
        print(format_table(table, scoring))
        return
    table = compare(X, y, {"model": estimator}, cv=args.cv, progress=True)
    print(format_table(table))


def _write_report(args, X, y, modality, estimator, fitted):
    """``estimator`` (unfitted) is cross-validated; ``fitted`` (on all rows, the
    model just saved) gives the training curve of a fine-tuned one."""
    import webbrowser

    from sklearn.base import clone

    from sktransfer.report import write_report

    folder = report_folder(args)
    path = write_report(clone(estimator), X, y, folder, modality=modality,
                        cv=max(args.cv, 2), fitted=fitted,
                        title=f"sktransfer fit {Path(args.data).name}")
    print(f"wrote the report to {path}")
    if args.open:
        webbrowser.open(path.resolve().as_uri())


def report_folder(args):
    """``--report DIR``, or ``<out>.report`` for a bare ``--report`` / ``--open``;
    None without either."""
    if args.report is None and not args.open:
        return None
    return args.report or f"{args.out}.report"


def save_model(model, out, metadata) -> None:
    """``persist.save`` with the CLI's metadata; the folder of ``--out`` is made
    as ``--report``'s is (``run_fit`` checked that it can be)."""
    from sktransfer import persist

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    persist.save(model, out, metadata={"format": MODEL_FORMAT, **metadata})


def check_params(estimator) -> None:
    """The estimators' own parameter checks, run before any work: the CLI
    does not restate them.

    The boundary where scikit-learn's own steps (``LogisticRegression``,
    ``StandardScaler`` of a pipeline the CLI built or loaded) are checked:
    their ``InvalidParameterError`` becomes sktransfer's (a
    ``SktransferError``), so the CLI catches one family of user errors.
    """
    from sklearn.utils._param_validation import (
        InvalidParameterError as SklearnInvalidParameterError,
    )

    from sktransfer.exceptions import InvalidParameterError

    for _, step in getattr(estimator, "steps", [(None, estimator)]):
        if hasattr(step, "_validate_params"):
            try:
                step._validate_params()
            except InvalidParameterError:
                raise
            except SklearnInvalidParameterError as error:
                raise InvalidParameterError(str(error)) from None


def _fit_tags(args, X, tags, modality, out) -> None:
    """``--label-sep``: fit a multi-label model on label lists and save it
    (and write the multi-label fit report)."""
    from sklearn.base import clone

    estimator = build_estimator(args, modality, "classification")
    check_params(estimator)
    if args.cv >= 2:
        print("(no cross-validation table for tags yet: thresholds are chosen "
              "out-of-fold inside the fit)")
    fitted = clone(estimator).fit(X, tags)
    save_model(fitted, out, {"modality": modality, "text_column": args.text_column,
                             "task": "multilabel", "label_sep": args.label_sep})
    print(f"saved {modality} model ({len(tags)} samples, "
          f"{len(fitted.classes_)} labels: {', '.join(map(str, fitted.classes_))}) "
          f"to {out}")
    if args.report is not None or args.open:
        _write_report(args, X, tags, modality, estimator, fitted)


def run_fit(args):
    from sklearn.base import clone

    from sktransfer.cli._fewshot import fit_label_names_only

    out = _ensure_writable(args.out, create_parent=True)
    if (folder := report_folder(args)) is not None:  # before any work
        ensure_folder_creatable(folder, "--report")
    if fit_label_names_only(args, save_model):
        return
    tags = getattr(args, "label_sep", None) is not None
    if tags:
        split_tags(args, [])  # the folder, separator and task checks, first
    X, y, modality = load_training_data(args)
    if tags:
        return _fit_tags(args, X, split_tags(args, y), modality, out)
    task, y = resolve_task(args, y)
    estimator = build_estimator(args, modality, task)
    check_params(estimator)
    _, counts = np.unique(y, return_counts=True)
    # the frozen pipeline's head (LogisticRegression) says this with a plain
    # ValueError, after the embedding: named here, before any work
    if task != "regression" and len(counts) < 2:
        raise CLIError(f"{args.data!r} holds a single class: a classifier needs "
                       f"at least 2")
    if args.cv >= 2:
        _cross_validate(args, X, y, estimator, task)
    fitted = clone(estimator).fit(X, y)
    save_model(fitted, out, {"modality": modality, "text_column": args.text_column,
                             "task": task})
    kind = "regression" if task == "regression" else f"{len(counts)} classes"
    print(f"saved {modality} model ({len(y)} samples, {kind}) to {out}")
    if args.report is not None or args.open:
        _write_report(args, X, y, modality, estimator, fitted)

"""A self-contained HTML report on how well a model does on a data set.

``write_report(estimator, X, y, folder)`` cross-validates ``estimator``
(out-of-fold predictions for every row: nothing is scored on data it was
trained on), and writes ``folder/report.html`` with everything embedded (PNG /
JPEG data URIs, inline CSS: the page opens offline and can be mailed):

- classification: per-class precision / recall / F1 (``classification_report``),
  the confusion matrix (``ConfusionMatrixDisplay``), the learning curve
  (``sktransfer.evaluate.learning_curve``: held-out accuracy against labelled
  samples per class) and the misclassified examples, highest loss first;
- multi-label classification (a 0/1 indicator ``y`` or label lists): per
  label precision / recall / F1 / support and the decision threshold, micro,
  macro and samples F1 and the subset accuracy, a per-label 2×2 count table
  (no confusion matrix: labels are not exclusive), and per label its most
  confident mistakes (false positives with the highest score, false negatives
  with the lowest). The estimator's own thresholds are chosen inside each
  fold's fit, on that fold's training rows only. No learning curve;
- regression: R², MAE and RMSE per output, predicted-vs-true and residual plots
  (``PredictionErrorDisplay``), the learning curve (held-out R² against the
  number of training samples) and the examples with the largest errors.

Fine-tuned estimators also get their training curve (loss per epoch). The
page is ``templates/report.html`` (a Jinja2 template with autoescaping: every
label, text and file name is HTML-escaped) fed with the data collected here.
"""

from __future__ import annotations

import base64
import io
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from sktransfer.exceptions import InvalidInputError

if TYPE_CHECKING:  # names used in annotations only
    import os
    from typing import Any

    from numpy.typing import ArrayLike
    from sklearn.base import BaseEstimator

__all__ = ["MAX_EXAMPLES", "write_report"]

MAX_EXAMPLES = 24  # thumbnails in the examples grid
THUMBNAIL = 128  # pixels, longest side
TEXT_CHARS = 400  # texts are cut after this many characters


def write_report(
    estimator: BaseEstimator,
    X: Any,
    y: ArrayLike,
    folder: str | os.PathLike[str],
    *,
    modality: str = "image",
    cv: Any = 5,
    fitted: BaseEstimator | None = None,
    title: str = "sktransfer fit report",
    random_state: int = 0,
) -> Path:
    """Cross-validate ``estimator`` on ``(X, y)`` and write ``folder/report.html``.

    Parameters
    ----------
    estimator : classifier or regressor (unfitted; cloned for every fold)
    X : images (paths, PIL images, arrays) or texts
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), or label lists
        Class labels, numeric targets for a regressor, or tags for a
        multi-label classifier: a 0/1 indicator (a DataFrame's column names
        are the labels) or a list of label lists.
    folder : str or path
        Created if needed; the page is ``report.html`` inside it.
    modality : {"image", "text"}, default="image"
        How examples are shown: thumbnails or text.
    cv : int, default=5
        Folds of the out-of-fold predictions (capped by the smallest class).
    fitted : estimator, default=None
        The model fitted on all rows (a pipeline: its last step); the loss per
        epoch of a fine-tuned one (its ``history_``) is drawn and tabulated.
        Must be fitted: an unfitted one raises ``NotFittedError``.
    title : str, default="sktransfer fit report"
    random_state : int, default=0
        Seeds the folds and the learning curve's subsets.

    Returns
    -------
    pathlib.Path
        The written ``report.html``.
    """
    import matplotlib

    from sktransfer._utils.multilabel import is_multilabel

    history = None if fitted is None else _training_history(fitted)  # fails early
    rows: Any = y  # an indicator, label lists, labels or numbers
    n_samples = len(rows)
    if is_classifier(estimator) and is_multilabel(y):
        task = "multi-label classification"
        collect = _multilabel
    else:
        y = np.asarray(y)
        task = "classification" if is_classifier(estimator) else "regression"
        collect = _classification if task == "classification" else _regression
    # labels are text in every figure: "$x$" is not mathtext to parse (an
    # unknown command in a class name would crash the drawing)
    with matplotlib.rc_context({"text.parse_math": False}):
        data = collect(estimator, X, y, cv, random_state)
        if collect is _multilabel and fitted is not None:
            _final_thresholds(data["metrics"], fitted)
        if history is not None and len(history):
            data["figures"].append(_history_figure(history))
    data["summary"] = [
        ("data", f"{n_samples} {'images' if modality == 'image' else 'texts'}"),
        ("task", task),
        ("model", _describe(estimator)),
        *data["summary"],
    ]
    data["examples"] = [_example(X, i, modality, true, predicted, loss)
                        for i, true, predicted, loss in data.pop("worst")]
    for section in data.get("label_mistakes", ()):
        for kind in ("false_positives", "false_negatives"):
            section[kind] = [{**shown_item(X, i, modality), **shown}
                             for i, shown in section[kind]]
    data.update(title=title, note=_NOTE.format(cv=data.pop("cv")))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render(data), encoding="utf-8")
    return path


_NOTE = ("Metrics, plots and examples come from {cv}-fold out-of-fold "
         "predictions: every row is predicted by a model that did not see it.")


def _training_history(fitted):
    """``history_`` of a fitted fine-tuned model (or pipeline's last step), or None.

    Not ``hasattr``: ``NotFittedError`` is an ``AttributeError``, so an
    unfitted model would silently look like one without a history.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    final = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    check_is_fitted(final)
    try:
        return final.history_
    except NotFittedError:
        raise
    except AttributeError:  # not a fine-tuned estimator
        return None


def render(data: dict, template: str = "report.html") -> str:
    """Fill ``templates/<template>`` with ``data`` (autoescaped). The pages
    extend ``templates/_page.html`` (head, style, title, summary table)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FunctionLoader(_template),
                                     autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    return environment.get_template(template).render(data)


def _template(name: str) -> str:
    folder = resources.files("sktransfer").joinpath("templates")
    return folder.joinpath(name).read_text(encoding="utf-8")


# --- classification ---------------------------------------------------------------

def _classification(estimator, X, y, cv, random_state) -> dict:
    from sklearn.metrics import ConfusionMatrixDisplay, classification_report

    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise InvalidInputError(
            f"class {classes[counts.argmin()].item()!r} has a single example: "
            f"a report needs at least 2 per class"
        )
    cv = max(2, min(cv, counts.min()))
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    if hasattr(estimator, "predict_proba"):
        from sktransfer._utils.rows import out_of_fold_proba

        # the folds get the labels as given (a zero-shot model reads them)
        proba = out_of_fold_proba(estimator, X, y, folds)
        predicted = classes[proba.argmax(axis=1)]
        loss = -np.log(np.clip(proba[np.arange(len(y)), np.searchsorted(classes, y)],
                               1e-12, None))
    else:
        predicted = cross_val_predict(clone(estimator), X, y, cv=folds)
        loss = (predicted != y).astype(float)
    scores = classification_report(y, predicted, output_dict=True, zero_division=0)
    rows = [[str(c), *_prf(scores[str(c)])] for c in classes]
    rows += [[name, *_prf(scores[name])] for name in ("macro avg", "weighted avg")]
    display = ConfusionMatrixDisplay.from_predictions(
        y, predicted, xticks_rotation="vertical", colorbar=False, ax=_axes(6, 5))
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-loss[wrong], kind="stable")][:MAX_EXAMPLES]
    return {
        "cv": cv,
        "summary": [("classes", len(classes)),
                    ("accuracy", f"{np.mean(predicted == y):.3f}"),
                    ("misclassified", f"{len(np.flatnonzero(predicted != y))}")],
        "metrics": {"columns": ["class", "precision", "recall", "F1", "support"],
                    "rows": rows},
        "figures": [_figure(display.figure_, "Confusion matrix (rows: true class)",
                            _confusion_table(classes, display.confusion_matrix)),
                    _class_learning_curve(estimator, X, y, random_state)],
        "examples_title": "Misclassified examples (highest loss first)",
        "loss_name": "log loss" if hasattr(estimator, "predict_proba") else "error",
        "worst": [(i, y[i], predicted[i], loss[i]) for i in wrong],
    }


def _confusion_table(classes, counts) -> dict:
    """The confusion matrix's counts as a table (rows: true, columns: predicted)."""
    return {"columns": ["true \\ predicted", *map(str, classes)],
            "rows": [[str(c), *map(int, row)]
                     for c, row in zip(classes, counts, strict=True)]}


def _prf(row: dict) -> list:
    return [f"{row['precision']:.3f}", f"{row['recall']:.3f}",
            f"{row['f1-score']:.3f}", int(row["support"])]


def _class_learning_curve(estimator, X, y, random_state) -> dict:
    from sklearn.model_selection import train_test_split

    from sktransfer._utils.rows import take
    from sktransfer.evaluate import learning_curve, learning_curve_figure

    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.25, stratify=y,
                                   random_state=random_state)
    smallest = np.unique(y[train], return_counts=True)[1].min()
    steps = np.unique(np.geomspace(min(2, smallest), smallest, 4).round().astype(int))
    curve = learning_curve(take(X, train), y[train], take(X, test), y[test],
                           {"model": estimator}, per_class=steps.tolist(),
                           random_state=random_state)
    figure = learning_curve_figure(curve, "Learning curve (25% held out)")
    return _figure(figure, "Held-out accuracy against labelled samples per class")


# --- multi-label classification ------------------------------------------------

MAX_MISTAKES = 6  # per label and kind (false positives, false negatives)


def multilabel_folds(Y: np.ndarray, cv: int, random_state: int):
    """The report's folds for an indicator ``Y``: ``StratifiedKFold`` on each
    row's rarest label (``"none"`` for a row without a label), so the few
    positives of a rare label are spread over the folds."""
    import warnings

    counts = Y.sum(axis=0)
    rarest = np.where(Y.any(axis=1),
                      np.where(Y == 1, counts, np.iinfo(np.int64).max).argmin(axis=1),
                      -1)
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():  # a rare stratum: spread as well as can be
        warnings.filterwarnings("ignore", "The least populated class",
                                UserWarning)
        return list(folds.split(np.zeros(len(Y)), rarest))


def _multilabel(estimator, X, y, cv, random_state) -> dict:
    from sklearn.metrics import (
        accuracy_score,
        classification_report,
        f1_score,
        multilabel_confusion_matrix,
    )

    from sktransfer._utils.multilabel import encode_multilabel

    Y, classes = encode_multilabel(y)
    names = [str(c) for c in np.asarray(classes).tolist()]
    positives, negatives = Y.sum(axis=0), len(Y) - Y.sum(axis=0)
    fewest = int(np.argmin(np.minimum(positives, negatives)))
    if min(positives[fewest], negatives[fewest]) < 2:
        which = "positive" if positives[fewest] < 2 else "negative"
        raise InvalidInputError(
            f"label {names[fewest]!r} has a single {which} row: a report needs "
            f"at least 2 rows with and 2 without each label")
    cv = int(max(2, min(cv, positives.min(), negatives.min())))
    scores, predicted, thresholds = _multilabel_out_of_fold(
        estimator, X, y, Y, classes, multilabel_folds(Y, cv, random_state))
    report = classification_report(Y, predicted, target_names=names,
                                   output_dict=True, zero_division=0)
    threshold = (np.mean(thresholds, axis=0) if thresholds
                 else np.full(len(names), np.nan))
    rows = [[name, *_prf(report[name]), _threshold(t)]
            for name, t in zip(names, threshold, strict=True)]
    rows += [[avg, *_prf(report[avg]), ""]
             for avg in ("micro avg", "macro avg", "samples avg")]
    counts = multilabel_confusion_matrix(Y, predicted)  # [[tn, fp], [fn, tp]]
    grid = {"columns": ["label", "true positive", "false positive",
                        "false negative", "true negative"],
            "rows": [[name, int(c[1, 1]), int(c[0, 1]), int(c[1, 0]), int(c[0, 0])]
                     for name, c in zip(names, counts, strict=True)]}
    mistakes = []
    for j, name in enumerate(names):
        fp = np.flatnonzero((Y[:, j] == 0) & (predicted[:, j] == 1))
        fn = np.flatnonzero((Y[:, j] == 1) & (predicted[:, j] == 0))
        fp = fp[np.argsort(-scores[fp, j], kind="stable")][:MAX_MISTAKES]
        fn = fn[np.argsort(scores[fn, j], kind="stable")][:MAX_MISTAKES]
        mistakes.append({
            "label": name, "n_false_positives": int(counts[j, 0, 1]),
            "n_false_negatives": int(counts[j, 1, 0]),
            "false_positives": [(i, _tags(Y[i], predicted[i], scores[i, j], names))
                                for i in fp],
            "false_negatives": [(i, _tags(Y[i], predicted[i], scores[i, j], names))
                                for i in fn]})
    micro, macro, samples = (f1_score(Y, predicted, average=a, zero_division=0)
                             for a in ("micro", "macro", "samples"))
    return {
        "cv": cv,
        "summary": [("labels", len(names)),
                    ("micro F1", f"{micro:.3f}"), ("macro F1", f"{macro:.3f}"),
                    ("samples F1", f"{samples:.3f}"),
                    ("subset accuracy", f"{accuracy_score(Y, predicted):.3f}")],
        "metrics": {"columns": ["label", "precision", "recall", "F1", "support",
                                "threshold"], "rows": rows},
        "metrics_note": ("threshold: the mean of the cuts the folds' models chose "
                         "on their own training rows (blank for a model without "
                         "thresholds_); support: rows with the label."),
        "figures": [_figure(_label_scores_figure(names, report),
                            "Precision, recall and F1 per label", grid)],
        "figures_note": ("No learning curve for tags: its subsets are drawn per "
                         "class, and a row holds several labels."),
        "label_mistakes": mistakes,
        "examples_title": "Most confident mistakes per label",
        "loss_name": "score",
        "worst": [],
    }


def _multilabel_out_of_fold(estimator, X, y, Y, classes, folds):
    """Out-of-fold scores (``predict_proba``, else ``decision_function``) and
    predictions (``predict``: each fold's model decides with the thresholds its
    own fit chose), columns in ``classes`` order, and each fold's
    ``thresholds_`` (when the model has them). Every fold's clone is fitted on
    its rows of ``y`` as given (label lists keep their names)."""
    from sktransfer._utils.multilabel import to_indicator
    from sktransfer._utils.rows import take

    scores = np.zeros(Y.shape, dtype=float)
    predicted = np.zeros_like(Y)
    thresholds = []
    known = {c: j for j, c in enumerate(np.asarray(classes).tolist())}
    for train, test in folds:
        model = clone(estimator).fit(take(X, train), take(y, train))
        columns = _label_columns(model.classes_, known)
        method = (model.predict_proba if hasattr(model, "predict_proba")
                  else model.decision_function)
        scores[np.ix_(test, columns)] = method(take(X, test))
        decided = model.predict(take(X, test))
        if not (hasattr(decided, "ndim") and decided.ndim == 2):  # label lists
            decided = to_indicator(decided, np.asarray(model.classes_))
        predicted[np.ix_(test, columns)] = np.asarray(decided)
        if getattr(model, "thresholds_", None) is not None:
            fold = np.full(len(known), np.nan)
            fold[columns] = model.thresholds_
            thresholds.append(fold)
    return scores, predicted, thresholds


def _final_thresholds(metrics: dict, fitted) -> None:
    """A "final threshold" column: the thresholds the model fitted on all rows
    (the saved one) decides with, next to the folds' mean."""
    final = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    thresholds = getattr(final, "thresholds_", None)
    if thresholds is None:
        return
    chosen = {str(c): t for c, t in zip(np.asarray(final.classes_).tolist(),
                                         thresholds, strict=True)}
    metrics["columns"].append("final threshold")
    for row in metrics["rows"]:
        row.append(_threshold(chosen[row[0]]) if row[0] in chosen else "")


def _label_columns(model_classes, known: dict) -> list:
    """Where each of a fold model's labels sits among ``known`` (name -> column):
    by name, or by position for a model that numbers the columns of an
    indicator 0..k-1 (scikit-learn's ``OneVsRestClassifier`` on a DataFrame)."""
    labels = np.asarray(model_classes).tolist()
    if all(label in known for label in labels):
        return [known[label] for label in labels]
    if labels == list(range(len(known))):
        return labels
    raise InvalidInputError(
        f"a fold's model knows the labels {labels}, not {list(known)} of y")


def _threshold(value) -> str:
    return "" if np.isnan(value) else f"{value:.3f}"


def _tags(true, predicted, score, names) -> dict:
    def listed(row):
        return ", ".join(n for n, on in zip(names, row, strict=True) if on) or "(none)"

    return {"true": listed(true), "predicted": listed(predicted),
            "loss": f"{score:.4g}"}


def _label_scores_figure(names, report):
    ax = _axes(max(6, 0.6 * len(names) + 2), 4.5)
    positions = np.arange(len(names))
    for k, key in enumerate(("precision", "recall", "f1-score")):
        ax.bar(positions + (k - 1) * 0.27, [report[n][key] for n in names], 0.27,
               label=key.replace("f1-score", "F1"))
    ax.set_xticks(positions, names, rotation=45, ha="right")
    ax.set_ylim(0, 1.2)  # room for the legend above the bars
    ax.legend(loc="upper center", ncols=3)
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


# --- regression -------------------------------------------------------------------

def _regression(estimator, X, y, cv, random_state) -> dict:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    cv = max(2, min(cv, len(y) // 2))
    folds = KFold(cv, shuffle=True, random_state=random_state)
    predicted = cross_val_predict(clone(estimator), X, y, cv=folds)
    true2, pred2 = y.reshape(len(y), -1), predicted.reshape(len(y), -1)
    rows = [[f"output {j}" if true2.shape[1] > 1 else "target",
             f"{r2_score(true2[:, j], pred2[:, j]):.3f}",
             f"{mean_absolute_error(true2[:, j], pred2[:, j]):.4g}",
             f"{root_mean_squared_error(true2[:, j], pred2[:, j]):.4g}"]
            for j in range(true2.shape[1])]
    scale = true2.std(axis=0)
    error = (np.abs(true2 - pred2) / np.where(scale > 0, scale, 1)).sum(axis=1)
    worst = np.argsort(-error, kind="stable")[:MAX_EXAMPLES]
    figures = [fig for j in range(min(true2.shape[1], 3))
               for fig in _error_figures(true2[:, j], pred2[:, j], j, true2.shape[1])]
    figures.append(_regression_learning_curve(estimator, X, y, random_state))
    return {
        "cv": cv,
        "summary": [("outputs", true2.shape[1]),
                    ("R²", f"{r2_score(y, predicted):.3f}")],
        "metrics": {"columns": ["output", "R²", "MAE", "RMSE"], "rows": rows},
        "figures": figures,
        "examples_title": "Largest errors",
        "loss_name": "|error| / std",
        "worst": [(i, _fmt(y[i]), _fmt(predicted[i]), error[i]) for i in worst],
    }


def _fmt(value) -> str:
    return ", ".join(f"{v:.4g}" for v in np.atleast_1d(value))


def _error_figures(true, predicted, j, n_outputs) -> list:
    from sklearn.metrics import PredictionErrorDisplay

    name = f" (output {j})" if n_outputs > 1 else ""
    shown = []
    for kind, caption in (("actual_vs_predicted", "Predicted against true"),
                          ("residual_vs_predicted", "Residuals against predicted")):
        display = PredictionErrorDisplay.from_predictions(
            true, predicted, kind=kind, subsample=None, ax=_axes())
        shown.append(_figure(display.figure_, caption + name))
    return shown


def _regression_learning_curve(estimator, X, y, random_state) -> dict:
    from sklearn.model_selection import ShuffleSplit, learning_curve

    split = ShuffleSplit(1, test_size=0.25, random_state=random_state)
    sizes, _, test = learning_curve(clone(estimator), X, y, cv=split, scoring="r2",
                                    train_sizes=np.linspace(0.25, 1.0, 4))
    ax = _axes()
    ax.plot(sizes, test[:, 0], marker="o")
    ax.set_xlabel("training samples")
    ax.set_ylabel("held-out R²")
    ax.set_title("Learning curve (25% held out)")
    ax.grid(alpha=0.3)
    return _figure(ax.figure, "Held-out R² against the number of training samples")


# --- figures and examples -----------------------------------------------------------

def _axes(width=6, height=4.5):
    """Axes on a figure outside pyplot: no backend is touched or switched."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100).subplots()


def _history_figure(history) -> dict:
    ax = _axes()
    epochs = np.arange(1, len(history) + 1)
    # a loss may be missing from some epochs (validation added later): gaps
    keys = [k for k in ("train_loss", "valid_loss") if any(k in row for row in history)]
    for key in keys:
        ax.plot(epochs, [row.get(key, np.nan) for row in history], marker="o",
                label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    table = {"columns": ["epoch", *keys],
             "rows": [[epoch, *(f"{row[k]:.4g}" if k in row else "" for k in keys)]
                      for epoch, row in zip(epochs.tolist(), history, strict=True)]}
    return _figure(ax.figure, "Training curve of the final model (loss per epoch)",
                   table)


def _figure(figure, caption: str, table: dict | None = None) -> dict:
    """A matplotlib figure as a base64 PNG (closed if pyplot made it), with its
    numbers as an optional ``{"columns", "rows"}`` table."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    if figure.canvas.manager is not None:  # made by pyplot
        import matplotlib.pyplot as plt

        plt.close(figure)
    return {"png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "caption": caption, "table": table}


def _example(X, index, modality, true, predicted, loss) -> dict:
    return {**shown_item(X, index, modality), "true": str(true),
            "predicted": str(predicted), "loss": f"{loss:.4g}"}


def shown_item(X, index: int, modality: str) -> dict:
    """Row ``index`` of ``X`` as the pages show it: ``name`` (``#index``, and
    the file name of a path), ``text`` (cut after ``TEXT_CHARS``) or ``image``
    (a base64 JPEG thumbnail, ``THUMBNAIL`` pixels on its longest side)."""
    item = X.iloc[index] if hasattr(X, "iloc") else X[index]
    shown = {"name": f"#{index}", "image": None, "text": None}
    if modality == "text":
        text = str(item)
        shown["text"] = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…"
        return shown
    from sktransfer.data import load_image

    if isinstance(item, (str, Path)):
        shown["name"] = f"#{index} {Path(item).name}"
    image = load_image(item, index).convert("RGB")
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    shown["image"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return shown


def _describe(estimator) -> str:
    """``PretrainedImageFeatures(efficientnet_lite0) → StandardScaler →
    LogisticRegression``: each step, with the network it runs (its ``model``
    parameter, when that is a name) in brackets."""
    if hasattr(estimator, "steps"):
        return " → ".join(_describe(step) for _, step in estimator.steps)
    name = type(estimator).__name__
    model = (estimator.get_params(deep=False).get("model")
             if hasattr(estimator, "get_params") else None)
    return f"{name}({model})" if isinstance(model, str) else name

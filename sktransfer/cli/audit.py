"""``sktransfer audit DATA --report DIR``: label issues, duplicates and outliers.

DATA is read as ``sktransfer fit`` reads it (an image folder with one
sub-folder per class, or a CSV with ``--column`` and ``--target``). The inputs
are embedded once; the out-of-fold label check and the outlier scores use
those embeddings, and so does the duplicate search (with perceptual hashes
for images, character n-grams for texts: ``sktransfer.audit.find_duplicates``).
Writes
``DIR/audit.html`` (the ``templates/audit.html`` Jinja2 template fed with the
findings, autoescaped) and ``DIR/findings.csv`` (a text cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``:
a spreadsheet shows it instead of running it as a formula).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_audit_parser", "run_audit", "write_audit_report"]

MAX_SHOWN = 60  # label issues and outliers shown on the page (the CSV has all)
MAX_GROUPS = 40


def add_audit_parser(sub) -> None:
    from sktransfer.cli._options import add_model_options, add_runtime_options

    audit = sub.add_parser("audit", help="find wrong labels, duplicates and "
                                         "outliers in DATA")
    audit.add_argument("data", help="an image folder with one sub-folder per "
                                    "class, or a CSV file (--column, --target)")
    audit.add_argument("--report", required=True, metavar="DIR",
                       help="folder for audit.html and findings.csv")
    audit.add_argument("--column", "--text-column", dest="text_column",
                       help="CSV column holding the texts or image paths")
    audit.add_argument("--target", help="CSV column holding the labels")
    add_model_options(audit)
    audit.add_argument("--cv", type=int, default=5,
                       help="folds of the out-of-fold predictions")
    audit.add_argument("--method", choices=["auto", "confident", "cleanlab"],
                       default="auto", help="how label issues are decided")
    add_runtime_options(audit)


def run_audit(args) -> None:
    from tqdm.auto import tqdm

    from sktransfer.audit import (
        check_labels,
        find_duplicates,
        find_label_issues,
        find_outliers,
    )
    from sktransfer.cli._inputs import ensure_folder_creatable, load_training_data
    from sktransfer.cli.fit import build_estimator, check_params

    ensure_folder_creatable(args.report, "--report")  # before any work
    args.finetune = False
    X, y, modality = load_training_data(args)
    check_labels(y, cv=args.cv)  # find_label_issues' own checks, before any work
    pipeline = build_estimator(args, modality)
    check_params(pipeline)
    embedder, head = pipeline.steps[0][1], pipeline[1:]
    with tqdm(total=5, desc="audit", unit="step") as bar:
        bar.set_postfix_str("embedding")
        features = embedder.set_params(progress=True).fit(X).transform(X)
        bar.update()
        bar.set_postfix_str("label issues")
        issues = find_label_issues(head, features, y, cv=args.cv, method=args.method)
        bar.update()
        bar.set_postfix_str("duplicates")
        # perceptual hashes (images) or n-grams (texts) with the embeddings,
        # which the embedder's cache gives back without embedding again
        groups = find_duplicates(X, embedder=embedder)
        bar.update()
        bar.set_postfix_str("outliers")
        outliers = find_outliers(features, y, embedder="precomputed")
        bar.update()
        bar.set_postfix_str("report")
        path = write_audit_report(X, modality, issues, groups, outliers, args.report,
                                  title=f"sktransfer audit {Path(args.data).name}")
        bar.update()
    print(f"{int(issues['is_issue'].sum())} suspected label issues, {len(groups)} "
          f"duplicate groups, {int(outliers['is_outlier'].sum())} outliers (far "
          f"from every class; at most {outliers.attrs['contamination']:.0%} of "
          f"the rows are flagged); wrote {path} and {path.parent / 'findings.csv'}")


def write_audit_report(X, modality, issues, groups, outliers, folder, *,
                       title="sktransfer audit") -> Path:
    """``folder/audit.html`` and ``folder/findings.csv`` from the findings of
    ``find_label_issues``, ``find_duplicates`` and ``find_outliers``: the
    page is ``templates/audit.html``, rendered as the fit report is."""
    import csv

    import pandas as pd

    from sktransfer.report import render

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flagged = issues[issues["is_issue"]]
    odd = outliers[outliers["is_outlier"]]
    names = [_name(X, i) for i in range(len(issues))]
    rows = [{"finding": "label_issue", "row": i, "input": names[i],
             "label": r.label, "suggested": r.suggested, "score": r.quality,
             "group": None} for i, r in flagged.iterrows()]
    rows += [{"finding": "duplicate", "row": i, "input": names[i],
              "label": issues.at[i, "label"], "suggested": None, "score": None,
              "group": g} for g, group in enumerate(groups) for i in group]
    rows += [{"finding": "outlier", "row": i, "input": names[i],
              "label": issues.at[i, "label"], "suggested": None, "score": r.score,
              "group": None} for i, r in odd.iterrows()]
    columns = ["finding", "row", "input", "label", "suggested", "score", "group"]
    table = pd.DataFrame(rows, columns=columns)
    for column in ("input", "label", "suggested"):
        table[column] = table[column].map(spreadsheet_safe)
    # every text quoted: a carriage return inside a text stays in its cell
    table.to_csv(folder / "findings.csv", index=False,
                 quoting=csv.QUOTE_NONNUMERIC)
    data = {
        "title": title,
        "summary": [("inputs", f"{len(issues)} {modality}s"),
                    ("classes", issues["label"].nunique()),
                    ("suspected label issues", len(flagged)),
                    ("duplicate groups", len(groups)),
                    ("outliers", len(odd))],
        "note": "Label quality comes from out-of-fold predictions (every row is "
                "judged by a model that did not see it) and the labels of its 10 "
                "nearest neighbours in the embeddings.",
        "issues": [_item(X, i, modality, [("given", f"given: {r.label}"),
                                          ("suggested", f"suggested: {r.suggested}"),
                                          ("", f"quality {r.quality:.3f}")])
                   for i, r in flagged.head(MAX_SHOWN).iterrows()],
        "issues_total": len(flagged),
        "groups": [[_item(X, i, modality, [("", f"label: {issues.at[i, 'label']}")])
                    for i in group] for group in groups[:MAX_GROUPS]],
        "groups_total": len(groups),
        "outliers": [_item(X, i, modality, [("", f"label: {issues.at[i, 'label']}"),
                                            ("", f"score {r.score:.3f}")])
                     for i, r in odd.head(MAX_SHOWN).iterrows()],
        "outliers_total": len(odd),
    }
    path = folder / "audit.html"
    path.write_text(render(data, "audit.html"), encoding="utf-8")
    return path


#: what makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula (``=HYPERLINK(...)``,
    ``+cmd|...``), prefixed with ``'`` as OWASP advises for CSV exports, so it
    shows as the text it is; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _row(X, index):
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _name(X, index) -> str:
    item = _row(X, index)
    return str(item) if isinstance(item, (str, Path)) else f"#{index}"


def _item(X, index, modality, lines) -> dict:
    from sktransfer.report import shown_item  # the fit report's thumbnails

    return {**shown_item(X, index, modality),
            "lines": [{"kind": kind, "text": text} for kind, text in lines]}

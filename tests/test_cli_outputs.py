"""What the commands write is safe to open (issue 32): findings.csv cells a
spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sktransfer.cli.audit import spreadsheet_safe, write_audit_report


def test_findings_csv_neutralises_spreadsheet_formulas(tmp_path):
    texts = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0",
             "-2+3", "@SUM(A1)", "\tTab", "\rCR", "plain text", "a = b"]
    labels = ["=1+1", "ok", "ok", "ok", "-1", "ok", "ok", "ok"]
    issues = pd.DataFrame({"label": labels, "suggested": ["@x"] + ["ok"] * 7,
                           "quality": np.linspace(0, 1, 8),
                           "is_issue": [True] * 8})
    outliers = pd.DataFrame({"score": np.zeros(8), "is_outlier": [False] * 8})
    write_audit_report(texts, "text", issues, [[6, 7]], outliers, tmp_path)
    found = pd.read_csv(tmp_path / "findings.csv", keep_default_na=False)
    flagged = found[found["finding"] == "label_issue"]
    assert flagged["input"].tolist() == ["'" + t for t in texts[:6]] + texts[6:]
    assert flagged["label"].tolist() == ["'=1+1", "ok", "ok", "ok", "'-1", "ok",
                                         "ok", "ok"]
    assert flagged["suggested"].iloc[0] == "'@x"
    # no cell of the file starts a formula
    cells = [str(v) for v in found.to_numpy().ravel()]
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells)
    duplicates = found[found["finding"] == "duplicate"]
    assert duplicates["input"].tolist() == ["plain text", "a = b"]


def test_spreadsheet_safe_leaves_other_values():
    assert spreadsheet_safe(-1.5) == -1.5 and spreadsheet_safe(None) is None
    assert spreadsheet_safe("x=1") == "x=1"

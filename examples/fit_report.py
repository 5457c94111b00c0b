"""
The fit report: out-of-fold metrics, confusion matrix, misclassified examples
=============================================================================

``sktransfer fit DATA --out MODEL --report`` writes a self-contained HTML page
(``sktransfer.report.write_report`` from Python) computed from out-of-fold
predictions, so nothing is scored on rows it was trained on: per-class
precision, recall and F1, the confusion matrix, a learning curve and the
misclassified examples, highest loss first.

This example writes the report of frozen features + logistic regression on
the photo patches to a temporary folder, then draws the same out-of-fold
confusion matrix and the worst mistakes here.

Run: ``python examples/fit_report.py``
"""

# %%
import re
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches
from sktransfer.report import write_report

X, y = load_photo_patches(n_per_class=8, size=48, split="train")
# A shallow layer keeps some mistakes to look at.
model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0", layer="blocks.2"),
                      LogisticRegression(max_iter=2000))
folder = Path(tempfile.mkdtemp(prefix="sktransfer-report-"))
page = write_report(model, X, y, folder, modality="image", cv=3)
html = page.read_text(encoding="utf-8")
print(f"{page.name}: {len(html) / 1e3:.0f} kB, self-contained")
print("sections:", re.findall(r"<h2[^>]*>(.*?)</h2>", html))

# %%
# The out-of-fold predictions behind the page's confusion matrix (the
# embeddings are cached, so this costs no network pass).
folds = StratifiedKFold(3, shuffle=True, random_state=0)
probabilities = cross_val_predict(model, X, y, cv=folds, method="predict_proba")
classes = np.unique(y)
predicted = classes[probabilities.argmax(axis=1)]
print(f"out-of-fold accuracy: {(predicted == y).mean():.3f}")
fig, ax = plt.subplots(figsize=(6, 5.5))
ConfusionMatrixDisplay.from_predictions(y, predicted, ax=ax, colorbar=False,
                                        xticks_rotation=45)
ax.set_title("out-of-fold confusion matrix")
fig.tight_layout()
plt.show()

# %%
# The misclassified examples, highest loss first, as the report shows them.
loss = -np.log(probabilities[np.arange(len(y)), np.searchsorted(classes, y)])
wrong = np.flatnonzero(predicted != y)
wrong = wrong[np.argsort(-loss[wrong])][:8]
if len(wrong):
    fig, axes = plt.subplots(1, len(wrong), figsize=(1.8 * len(wrong), 2.2),
                             squeeze=False)
    for ax, index in zip(axes[0], wrong, strict=True):
        ax.imshow(X[index])
        ax.set_title(f"{y[index][:12]}\n→ {predicted[index][:12]}", fontsize=7)
        ax.axis("off")
    plt.show()

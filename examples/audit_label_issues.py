"""
Finding wrong labels and copies: an audit with planted errors
=============================================================

``sktransfer.audit.find_label_issues`` judges every row's label by a model
fitted without that row (out-of-fold probabilities) and flags the rows whose
given label the model finds improbable. To see how well that works, this
example plants the errors itself: 10% of the labels of a real image data set
(crops of eight scikit-image photos) are changed to another class, the audit
runs with frozen EfficientNet-Lite0 features and a logistic regression, and
its flags are compared with the planted rows. Then six copies are planted
and ``find_duplicates`` looks for them.

Run: ``python examples/audit_label_issues.py``
"""

# %%
# The data: 20 crops of each of eight photos; 16 of the 160 labels are
# replaced by a different class, chosen at random.
import io

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.audit import find_duplicates, find_label_issues
from sktransfer.datasets import PHOTO_CLASSES, load_photo_patches

X, y_true = load_photo_patches(n_per_class=20)
rng = np.random.default_rng(0)
planted = rng.choice(len(y_true), size=len(y_true) // 10, replace=False)
y_given = y_true.copy()
for i in planted:
    y_given[i] = rng.choice([c for c in PHOTO_CLASSES if c != y_true[i]])
print(f"{len(planted)} of {len(y_given)} labels changed")

# %%
# The audit. The pipeline starts with a frozen embedder, so the images are
# embedded once and only the scaler and the logistic regression are refitted
# in each of the 5 folds. The result has one row per input, most suspicious
# (lowest ``quality``: the out-of-fold probability of the given label averaged
# with the share of the row's 10 nearest neighbours in the embeddings that carry
# it) first.
model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"), StandardScaler(),
                      LogisticRegression(max_iter=2000))
issues = find_label_issues(model, X, y_given, cv=5)
flagged = issues.index[issues["is_issue"]].to_numpy()
print(issues.head(8).round(3).to_string())

# %%
# Precision: the share of flagged rows that were planted; recall: the share of
# planted rows that were flagged.
hits = np.isin(flagged, planted)
precision = hits.mean() if len(flagged) else float("nan")
recall = np.isin(planted, flagged).mean()
print(f"flagged {len(flagged)} rows: precision {precision:.3f}, recall {recall:.3f}")
suggested_right = np.mean(issues.loc[flagged[hits], "suggested"]
                          == y_true[flagged[hits]]) if hits.any() else float("nan")
print(f"the suggested label is the true one for {suggested_right:.0%} of the "
      f"planted rows found")

# %%
# The flagged crops, most suspicious first, with their given and suggested
# labels; a green frame marks a planted error, a red one a correct label
# flagged by mistake. A reviewer would look at these rows only, instead of
# all 160. The crops a model gets wrong are not always mislabelled: a close-up
# of the cat's fur or eye can look like another photo, and the audit cannot
# tell such a hard row from a wrong label; the reviewer can.
shown = flagged[:16]


def short(name):
    return name if len(name) <= 10 else name[:8] + "."


columns = 8
rows = int(np.ceil(len(shown) / columns)) or 1
fig, axes = plt.subplots(rows, columns, figsize=(12, 2.0 * rows), squeeze=False)
for ax in axes.ravel():
    ax.axis("off")
for ax, i in zip(axes.ravel(), shown, strict=False):
    ax.imshow(X[i])
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    color = "green" if i in planted else "red"
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(3)
    ax.set_title(f"given: {short(y_given[i])}\n"
                 f"suggested: {short(issues.loc[i, 'suggested'])}", fontsize=7)
fig.suptitle(f"Flagged rows ({len(flagged)}; planted {len(planted)}): precision "
             f"{precision:.2f}, recall {recall:.2f}. Green: planted error, red: "
             f"correct label flagged", fontsize=9)
fig.tight_layout()
plt.show()

# %%
# Near-duplicates: the same crops, with six of them copied the way files get
# copied in practice (cut 3% on every side, resized to 70%, saved as JPEG
# quality 50). ``find_duplicates`` combines a perceptual hash, the embeddings
# and the small copies aligned pixel by pixel, and returns groups of row
# numbers. Besides the planted copies it finds the near-duplicates the crops
# already had: random crops of one photo can overlap almost entirely, and
# crops of a nearly flat region (the moon's black sky) have the same pixels.


def jpeg_copy(image):
    picture = Image.fromarray(image)
    w, h = picture.size
    cut_w, cut_h = round(0.03 * w), round(0.03 * h)
    picture = picture.crop((cut_w, cut_h, w - cut_w, h - cut_h))
    picture = picture.resize((round(w * 0.7), round(h * 0.7)))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=50)
    return np.asarray(Image.open(buffer).convert("RGB"))


sources = rng.choice(len(X), size=6, replace=False)
with_copies = list(X) + [jpeg_copy(X[i]) for i in sources]
groups = find_duplicates(with_copies)
planted_pairs = {(int(i), len(X) + k) for k, i in enumerate(sources)}
found_pairs = {(a, b) for g in groups for a in g for b in g if a < b}
print(f"{len(groups)} groups found; {len(found_pairs & planted_pairs)} of the "
      f"{len(planted_pairs)} planted copies, {len(found_pairs - planted_pairs)} "
      f"other pairs")

fig, axes = plt.subplots(2, max(len(groups), 1), figsize=(2 * max(len(groups), 1), 4.2),
                         squeeze=False)
for column, group in enumerate(groups):
    for row, i in enumerate(group[:2]):
        ax = axes[row, column]
        ax.imshow(with_copies[i])
        ax.set_title(f"row {i} ({with_copies[i].shape[0]} px)", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
for ax in axes.ravel():
    if not ax.images:
        ax.axis("off")
fig.suptitle("Groups found by find_duplicates, one a column (top: its first "
             f"row, bottom: its second); rows {len(X)}-{len(with_copies) - 1} "
             "are the planted copies", fontsize=9)
fig.tight_layout()
plt.show()

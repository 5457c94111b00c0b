"""
Tags, not just one class: multi-label photos
============================================

Each image is a 2 x 2 mosaic of crops from one to three of scikit-image's
sample photos (``sktransfer.datasets.load_photo_mosaics``), tagged with every
photo it shows: a multi-label problem. ``y`` is a list of tag lists;
``FineTunedClassifier`` reads it as scikit-learn's 0/1 indicator, trains one
sigmoid output per tag and predicts the indicator.

With ``freeze_depth="all"`` the head is a one-vs-rest logistic regression on
the frozen features (what ``OneVsRestClassifier(LogisticRegression())`` on
``PretrainedImageFeatures`` gives), and ``threshold="auto"`` (the default)
then picks each tag's threshold on out-of-fold probabilities, never on the
test images. The figure compares it, tag by tag, with the usual 0.5.

Run: ``python examples/multilabel.py``
"""

# %%
# Training mosaics come from the left 60% of each photo, test mosaics from
# the rest.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_photo_mosaics

X_train, tags_train = load_photo_mosaics(120, 64, random_state=0)
X_test, tags_test = load_photo_mosaics(120, 64, split="test", random_state=1)
print(tags_train[:3])

# %%
# One fit: the frozen backbone embeds every image once, then one tuned
# logistic regression per tag, and per-tag thresholds from out-of-fold
# probabilities.
clf = FineTunedClassifier(freeze_depth="all", image_size=96, random_state=0)
clf.fit(X_train, tags_train)
print("tags:", clf.classes_.tolist())
print("thresholds:", np.round(clf.thresholds_, 2).tolist())

Y_test = MultiLabelBinarizer(classes=clf.classes_).fit_transform(tags_test)
proba = clf.predict_proba(X_test)  # (n_images, n_tags), each tag on its own
tuned = clf.predict(X_test)  # the 0/1 indicator at thresholds_
half = (proba >= 0.5).astype(int)
for name, predicted in [("thresholds_", tuned), ("0.5", half)]:
    print(f"micro-F1 at {name}: {f1_score(Y_test, predicted, average='micro'):.3f}")

# %%
# Per tag: F1 at the tuned thresholds and at 0.5 on the test mosaics.
tuned_f1 = f1_score(Y_test, tuned, average=None)
half_f1 = f1_score(Y_test, half, average=None)
positions = np.arange(len(clf.classes_))
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.bar(positions - 0.2, half_f1, 0.4, label="threshold 0.5")
ax.bar(positions + 0.2, tuned_f1, 0.4, label='threshold="auto" (out-of-fold)')
ax.set_xticks(positions, clf.classes_, rotation=30, ha="right")
ax.set_ylabel("F1 on test mosaics")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

"""
Fine-tuning: ``freeze_depth`` as an ordinary hyperparameter
===========================================================

A grid over how many EfficientNet-Lite0 blocks stay frozen (``"all"`` = a
linear probe on frozen features, ``-2`` = train the last two blocks, ``0`` =
train everything), against the same architecture trained from scratch. Small
images keep it CPU-friendly.

Run: ``python examples/finetune_freeze_depth.py``
"""

# %%
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_photo_patches

X_train, y_train = load_photo_patches(n_per_class=6, split="train")
X_test, y_test = load_photo_patches(n_per_class=6, split="test", random_state=1)

clf = FineTunedClassifier("efficientnet_lite0", image_size=48, max_epochs=2,
                          head_epochs=1, lr=3e-3, random_state=0)
search = GridSearchCV(clf, {"freeze_depth": ["all", -2, 0]}, cv=2)
search.fit(X_train, y_train)
depths = [str(p["freeze_depth"]) for p in search.cv_results_["params"]]
scores = search.cv_results_["mean_test_score"]
for depth, score in zip(depths, scores, strict=True):
    print(f"freeze_depth={depth:>4}: CV accuracy {score:.3f}")
print(f"best refit ({search.best_params_}), held-out accuracy: "
      f"{search.score(X_test, y_test):.3f}")

# %%
# The same network with random weights, trained for as many epochs.
scratch = FineTunedClassifier("efficientnet_lite0", weights=None, image_size=48,
                              max_epochs=3, lr=3e-3, random_state=0)
scratch_score = scratch.fit(X_train, y_train).score(X_test, y_test)
print(f"from scratch, held-out accuracy: {scratch_score:.3f}")

# %%
# The training history of the refitted best model: the head-only epoch
# first, then fine-tuning. With ``freeze_depth="all"`` the head is fitted in
# closed form as a tuned probe (``LogisticRegressionCV``), so there are no epochs.
history = search.best_estimator_.history_
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
left.bar(depths, scores, color="C0", label="pretrained")
left.axhline(scratch_score, color="C3", linestyle="--", label="from scratch (held out)")
left.set_xlabel("freeze_depth")
left.set_ylabel("CV accuracy")
left.set_ylim(0, 1)
left.legend(loc="lower right")
if len(history):
    right.plot(history[:, "epoch"], history[:, "train_loss"], marker="o")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss")
else:
    right.text(0.5, 0.5, "head fitted as a tuned probe:\nno training epochs",
               ha="center", va="center")
    right.set_axis_off()
right.set_title("best model's history_")
fig.tight_layout()
plt.show()

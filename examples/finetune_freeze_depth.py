"""Fine-tuning with `freeze_depth` as an ordinary hyperparameter.

Grid over how many EfficientNet-Lite0 blocks stay frozen ("all" = linear probe,
-2 = train the last two blocks, 0 = everything), against training the same
architecture from scratch. Small images keep it CPU-friendly.

Run: ``python examples/finetune_freeze_depth.py``
"""

from sklearn.model_selection import GridSearchCV

from sktransfer import FineTunedClassifier
from sktransfer.datasets import load_photo_patches

X_train, y_train = load_photo_patches(n_per_class=12, split="train")
X_test, y_test = load_photo_patches(n_per_class=12, split="test", random_state=1)

clf = FineTunedClassifier("efficientnet_lite0", image_size=96, max_epochs=4,
                          head_epochs=1, lr=3e-3, random_state=0)
search = GridSearchCV(clf, {"freeze_depth": ["all", -2, 0]}, cv=3)
search.fit(X_train, y_train)
for params, score in zip(search.cv_results_["params"],
                         search.cv_results_["mean_test_score"], strict=True):
    print(f"freeze_depth={params['freeze_depth']!s:>4}: CV accuracy {score:.3f}")
print(f"best refit, held-out accuracy: {search.score(X_test, y_test):.3f}")

scratch = FineTunedClassifier("efficientnet_lite0", weights=None, image_size=96,
                              max_epochs=5, lr=3e-3, random_state=0)
print(f"from scratch, held-out accuracy: "
      f"{scratch.fit(X_train, y_train).score(X_test, y_test):.3f}")

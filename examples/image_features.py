"""
Frozen image features + a linear model, tuned with GridSearchCV
===============================================================

Real photos (crops of scikit-image's sample photos), the bundled ImageNet
EfficientNet-Lite0, offline. ``PretrainedImageFeatures`` is an ordinary
scikit-learn transformer, so the layer the features come from is a
hyperparameter like the regularisation of the classifier after it.

The per-sample cache embeds each image once per layer across all folds and
candidates, so this grid search costs two passes of the network, not twelve.

Run: ``python examples/image_features.py``
"""

# %%
# The data: 64 x 64 crops of eight photos; the class is the photo. Training
# crops come from the left 60% of each photo, test crops from the rest.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import PHOTO_CLASSES, load_photo_patches

X_train, y_train = load_photo_patches(n_per_class=12, split="train")
X_test, y_test = load_photo_patches(n_per_class=12, split="test", random_state=1)

fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for column, name in enumerate(PHOTO_CLASSES):
    rows = [i for i, label in enumerate(y_train) if label == name][:2]
    for row, index in enumerate(rows):
        axes[row, column].imshow(X_train[index])
        axes[row, column].axis("off")
    axes[0, column].set_title(name, fontsize=8)
fig.suptitle("Training crops, two per class")
plt.show()

# %%
# A pipeline of frozen features, scaling and logistic regression; the grid
# searches over the layer (``None`` is the last block, ``"blocks.5"`` an
# earlier one) and the regularisation ``C``.
pipe = Pipeline([
    ("features", PretrainedImageFeatures("efficientnet_lite0")),
    ("scale", StandardScaler()),
    ("clf", LogisticRegression(max_iter=2000)),
])
grid = {"features__layer": [None, "blocks.5"], "clf__C": [0.01, 0.1, 1.0]}
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
print("best:", search.best_params_)
print(f"held-out accuracy: {search.score(X_test, y_test):.3f}")

# %%
# Cross-validated accuracy of every grid point.
results = pd.DataFrame(search.cv_results_["params"])
results["layer"] = results["features__layer"].fillna("last block")
results["accuracy"] = search.cv_results_["mean_test_score"]
table = results.pivot(index="clf__C", columns="layer", values="accuracy")

fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.8 / len(table.columns)
for k, layer in enumerate(table.columns):
    ax.bar(np.arange(len(table)) + k * width, table[layer], width, label=layer)
ax.set_xticks(np.arange(len(table)) + width * (len(table.columns) - 1) / 2,
              [f"C={c:g}" for c in table.index])
ax.set_ylim(0, 1)
ax.set_ylabel("CV accuracy")
ax.legend(title="features from")
ax.set_title("Layer and C, chosen by GridSearchCV")
plt.show()

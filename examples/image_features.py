"""Frozen pretrained image features + a linear model, tuned with GridSearchCV.

Real photos (scikit-image), the bundled ImageNet EfficientNet-Lite0, offline.
The per-sample cache embeds each image once across all folds and candidates,
including the `layer` candidates (each layer is its own cache key).

Run: ``python examples/image_features.py``
"""

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches

X_train, y_train = load_photo_patches(n_per_class=12, split="train")
X_test, y_test = load_photo_patches(n_per_class=12, split="test", random_state=1)

pipe = Pipeline([
    ("features", PretrainedImageFeatures("efficientnet_lite0", progress=True)),
    ("scale", StandardScaler()),
    ("clf", LogisticRegression(max_iter=2000)),
])
grid = {"features__layer": [None, "blocks.5"], "clf__C": [0.1, 1.0]}
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
print("best:", search.best_params_)
print(f"held-out accuracy: {search.score(X_test, y_test):.3f}")

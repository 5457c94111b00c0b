"""
Fine-tuning grid search: reusing the frozen blocks' work (``cache=True``)
=========================================================================

A grid over ``freeze_depth`` and ``lr`` refits the network once per fold and
candidate. With ``augment=None`` nothing random happens before the frozen
blocks, so their output for an image is the same in every epoch, fold and
candidate: with ``cache=True`` (the default) it is computed once per image and
freeze depth, and the epochs only run the trainable blocks and the head. The
same search with ``cache=False`` recomputes it at every step. Both searches
train the same models: the scores agree.

This gallery run is kept tiny (28 images of 64 px, 3 epochs) so the site
builds fast; at that size each fit's fixed costs (loading the weights, a
two-image check) are a large share and the saving is modest. With 60 images of
160 px and 5 epochs the cached search over ``lr`` took 0.22 of the time
(benchmarks/RESULTS.md, FT3).

Run: ``python examples/finetune_grid_cache.py``
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from sktransfer import FineTunedClassifier
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_photo_patches

X, y = load_photo_patches(n_per_class=4, size=64, random_state=0)
grid = {"freeze_depth": [-2, -1], "lr": [1e-3, 3e-3]}

seconds, scores = {}, {}
for cache in (False, True):
    clear_memory_cache()  # each search starts with an empty store
    clf = FineTunedClassifier("efficientnet_lite0", image_size=64, max_epochs=3,
                              augment=None, cache=cache, random_state=0)
    start = time.perf_counter()
    search = GridSearchCV(clf, grid, cv=2).fit(X, y)
    seconds[cache] = time.perf_counter() - start
    scores[cache] = search.cv_results_["mean_test_score"]
    print(f"cache={cache!s:5}: {seconds[cache]:5.1f} s, CV accuracy "
          f"{np.round(scores[cache], 3)}")
print(f"time with the cache / without: {seconds[True] / seconds[False]:.2f}; "
      f"largest score difference {np.abs(scores[True] - scores[False]).max():.4f}")

# %%
# Time of the whole search, and the accuracy of each candidate, both ways.
labels = [f"{p['freeze_depth']}, {p['lr']:g}" for p in search.cv_results_["params"]]
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
left.bar(["cache=False", "cache=True"], [seconds[False], seconds[True]],
         color=["C7", "C0"])
left.set_ylabel("GridSearchCV fit time (s)")
positions = np.arange(len(labels))
right.bar(positions - 0.2, scores[False], 0.4, color="C7", label="cache=False")
right.bar(positions + 0.2, scores[True], 0.4, color="C0", label="cache=True")
right.set_xticks(positions, labels, rotation=20)
right.set_xlabel("freeze_depth, lr")
right.set_ylabel("CV accuracy")
right.set_ylim(0, 1)
right.legend(loc="lower right")
fig.tight_layout()
plt.show()

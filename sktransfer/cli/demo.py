"""``sktransfer demo``: transfer learning vs training from scratch, on bundled
models (EfficientNet-Lite0, all-MiniLM-L6-v2) and bundled real data (photo
patches from scikit-image, topic-labelled chatterbot-corpus statements)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sktransfer.evaluate import (
    compare,
    format_table,
    image_candidates,
    learning_curve,
    plot_learning_curve,
    text_candidates,
)

__all__ = ["run", "run_demo"]

SETTINGS = {  # quick: < 3 minutes on 2 CPU cores
    True: {"images_per_class": 12, "texts_per_topic": 40, "cv": 3, "epochs": 4,
           "curve_images": (1, 3, 6, 12), "curve_texts": (2, 5, 10, 20)},
    False: {"images_per_class": 30, "texts_per_topic": 70, "cv": 5, "epochs": 6,
            "curve_images": (1, 3, 10, 30), "curve_texts": (2, 5, 15, 35)},
}


def run_demo(args):
    run(quick=args.quick, modality=args.modality, out=args.out)


def run(quick=False, modality="all", out="sktransfer-output"):
    """Run the comparison, print the tables, write CSVs and learning curves."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = SETTINGS[bool(quick)]
    start = time.perf_counter()
    results = {}
    if modality in ("image", "all"):
        results["image"] = _images(settings, out)
    if modality in ("text", "all"):
        results["text"] = _texts(settings, out)
    print(f"\ndone in {time.perf_counter() - start:.0f}s; outputs in {out}/")
    return results


def _report(title, table, curve, out: Path, stem: str):
    print(f"\n== {title} ==")
    print(format_table(table))
    table.to_csv(out / f"{stem}_comparison.csv")
    png = plot_learning_curve(curve, out / f"learning_curve_{stem}.png",
                              title=f"{title}: transfer vs from scratch")
    print(f"learning curve: {png}")
    return {"table": table, "curve": curve, "png": png}


def _images(settings, out):
    from sktransfer.datasets import PHOTO_CLASSES, load_photo_patches

    n = settings["images_per_class"]
    X, y = load_photo_patches(n, 64, "train", random_state=0)
    X_test, y_test = load_photo_patches(n, 64, "test", random_state=1)
    candidates = image_candidates(max_epochs=settings["epochs"])
    table = compare(X, y, candidates, cv=settings["cv"], progress=True)
    curve_models = {k: v for k, v in candidates.items() if "fine-tuned" not in k}
    curve = learning_curve(X, y, X_test, y_test, curve_models,
                           per_class=settings["curve_images"], progress=True)
    title = f"Photo patches, {len(PHOTO_CLASSES)} classes, {len(y)} images"
    return _report(title, table, curve, out, "images")


def _texts(settings, out):
    from sklearn.model_selection import train_test_split

    from sktransfer.datasets import load_chatterbot_topics

    texts, labels = load_chatterbot_topics()
    keep = _balanced(np.asarray(labels), settings["texts_per_topic"])
    texts, labels = [texts[i] for i in keep], np.asarray(labels)[keep]
    candidates = text_candidates(max_epochs=settings["epochs"])
    table = compare(texts, labels, candidates, cv=settings["cv"], progress=True)
    X_train, X_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.5, stratify=labels, random_state=0)
    curve_models = {k: v for k, v in candidates.items() if "fine-tuned" not in k}
    curve = learning_curve(X_train, y_train, X_test, y_test, curve_models,
                           per_class=settings["curve_texts"], progress=True)
    title = (f"chatterbot topics, {len(np.unique(labels))} classes, "
             f"{len(labels)} texts")
    return _report(title, table, curve, out, "text")


def _balanced(labels, per_class, random_state=0):
    rng = np.random.default_rng(random_state)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class]
            for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))

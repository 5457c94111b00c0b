"""Label audit and active learning on real data with known answers.

The first benchmark, one set per modality. Superseded by
``bench_audit_suite.py`` (several dev and held-out sets, the defaults chosen
on dev only; benchmarks/RESULTS.md). Kept runnable: since then
``find_duplicates`` of images combines a perceptual hash with embeddings, so
the ``threshold`` swept in part 2 is the embeddings' cosine in that rule.

1. Wrong labels: 10% of the labels flipped (to another class, at known rows) on
   photo patches (efficientnet_lite0 features, 320 crops of 8 photos) and on
   chatterbot topics (all-MiniLM-L6-v2, 1443 texts, 7 topics). Precision and
   recall of ``is_issue`` for ``find_label_issues`` (method="confident", the
   default), cleanlab's default filter on the same out-of-fold probabilities,
   and as many random picks. Goals: photos P & R >= 0.8; texts P >= 0.6,
   R >= 0.5.
2. Duplicates: 160 distinct photo crops (no two overlapping by more than half
   their area) plus 40 copies of some of them, JPEG re-encoded (quality 30-80),
   and in a second set also resized (x0.6-1.5) and cropped by up to 6% per
   side. Precision / recall of the copy pairs found by ``find_duplicates``
   (goal >= 0.9 both), at the default threshold and a few others. Texts
   (``text-duplicates``): the distinct chatterbot statements plus 100 copies
   with case, punctuation, spacing or one word changed.
3. Active learning: texts, 2 labelled per topic to start, 6 rounds of 10 picks
   from a pool, held-out accuracy after each round; mean over rounds, averaged
   over 5 draws, for every strategy. Goal: auto >= random + 0.02.

Run::

    PYTHONPATH=. python benchmarks/bench_audit.py [photos] [texts] [duplicates] \
        [text-duplicates] [active]
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
import warnings

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings
from sktransfer.active import suggest_labels
from sktransfer.audit import (
    DUPLICATE_THRESHOLDS,
    find_duplicates,
    find_label_issues,
    issues_from_proba,
    out_of_fold_proba,
)
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches

DRAWS = 5


def flip(y, rate, seed):
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    rows = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    flipped = y.copy()
    for i in rows:
        flipped[i] = rng.choice(classes[classes != y[i]])
    return flipped, rows


def precision_recall(flagged, truth):
    hits = len(set(flagged) & set(truth))
    return hits / max(len(flagged), 1), hits / len(truth)


def label_issues(name, estimator, X, y):
    from cleanlab.filter import find_label_issues as cleanlab_find

    results = {"confident (auto)": [], "cleanlab default": [], "random picks": []}
    for seed in range(DRAWS):
        noisy, truth = flip(y, 0.10, seed)
        if seed == 0:  # the public function, end to end
            found = find_label_issues(estimator, X, noisy)
        else:  # the same, sharing the out-of-fold probabilities with cleanlab
            proba, classes = out_of_fold_proba(estimator, X, noisy)
            found = issues_from_proba(noisy, proba, classes)
        ours = found.index[found["is_issue"]].to_numpy()
        proba, classes = out_of_fold_proba(estimator, X, noisy)  # same folds
        theirs = np.flatnonzero(cleanlab_find(np.searchsorted(classes, noisy), proba))
        rng = np.random.default_rng(seed + 1000)  # not the flips' stream
        picks = rng.choice(len(y), len(ours), replace=False)
        for key, flagged in zip(results, (ours, theirs, picks), strict=True):
            results[key].append(precision_recall(flagged, truth))
    print(f"\n{name}: 10% flipped, {len(y)} rows, {DRAWS} draws (mean precision / "
          f"recall of is_issue)")
    for key, values in results.items():
        p, r = np.mean(values, axis=0)
        print(f"  {key:18s} precision {p:.3f}  recall {r:.3f}")


def copy_of(image, rng, edits=True):
    """A JPEG re-encoding (quality 30-80); with ``edits`` also cropped by up to
    6% per side and resized x0.6-1.5 first."""
    picture = Image.fromarray(image)
    if edits:
        w, h = picture.size
        cut = rng.uniform(0, 0.06, 4)
        picture = picture.crop((int(cut[0] * w), int(cut[1] * h),
                                w - int(cut[2] * w), h - int(cut[3] * h)))
        scale = rng.uniform(0.6, 1.5)
        picture = picture.resize((max(8, int(w * scale)), max(8, int(h * scale))))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=int(rng.integers(30, 81)))
    return np.asarray(Image.open(buffer).convert("RGB"))


def distinct_crops(n_per_class, size=64, max_overlap=0.5, seed=1):
    """Random crops of the test half of the sample photos, no two of one photo
    sharing more than ``max_overlap`` of their area: a base set without
    near-duplicates of its own (``load_photo_patches`` draws windows freely, and
    two windows a few pixels apart are copies of each other)."""
    from sktransfer.datasets import PHOTO_CLASSES, _photo_region

    rng = np.random.default_rng(seed)
    images = []
    for name in PHOTO_CLASSES:
        photo = _photo_region(name, "test")
        height, width = photo.shape[:2]
        boxes = []
        for _ in range(1000 * n_per_class):
            if len(boxes) == n_per_class:
                break
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            if all(max(0, size - abs(top - t)) * max(0, size - abs(left - c))
                   <= max_overlap * size * size for t, c in boxes):
                boxes.append((top, left))
        images += [photo[t:t + size, c:c + size] for t, c in boxes]
    return images


def pair_scores(groups, truth):
    pairs = {(a, b) for g in groups for a in g for b in g if a < b}
    hits = len(pairs & truth)
    return hits / max(len(pairs), 1), hits / len(truth), len(pairs)


def duplicates():
    images = distinct_crops(20)
    for edits in (False, True):
        rng = np.random.default_rng(0)
        sources = rng.choice(len(images), 40, replace=False)
        inputs = list(images) + [copy_of(images[i], rng, edits) for i in sources]
        truth = {(int(i), len(images) + k) for k, i in enumerate(sources)}
        print(f"\nduplicates: {len(images)} distinct crops (no two overlapping by "
              f"more than half) + {len(sources)} copies, "
              f"{'re-encoded, resized and cropped' if edits else 're-encoded'} "
              f"(pairs: precision / recall)")
        for threshold in ("auto", 0.8, 0.85, 0.9, 0.95):
            p, r, n = pair_scores(find_duplicates(inputs, threshold=threshold), truth)
            print(f"  threshold {threshold!s:5s}  precision {p:.3f}  recall {r:.3f}"
                  f"  ({n} pairs)")


def text_copy(text, rng):
    """A near-identical text: case, punctuation and spacing changed, or one
    word dropped or doubled (what a re-typed or re-scraped copy looks like)."""
    words = text.split()
    edit = rng.integers(4)
    if edit == 0:
        return text.lower() if text != text.lower() else text.upper()
    if edit == 1:
        return text.rstrip(".!?") + rng.choice([".", "!", " ?", "..."])
    if edit == 2:
        return "  ".join(words) + " "
    i = int(rng.integers(len(words)))
    return " ".join(words[:i] + words[i + 1:] if len(words) > 4
                    else words[:i + 1] + words[i:])


def _words(text):
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def _one_edit_apart(a, b):
    """Same words but for case, punctuation, spacing and at most one word."""
    a, b = _words(a), _words(b)
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    a, b = (a, b) if len(a) > len(b) else (b, a)
    return len(a) == len(b) + 1 and any(a[:i] + a[i + 1:] == b for i in range(len(a)))


def text_duplicates(texts):
    """Distinct chatterbot statements + 100 edited copies. The corpus repeats
    itself ("Do you feel emotions" / "Do you feel emotions?"): statements of
    fewer than 3 words or within one edit of an earlier one are left out, so
    the planted copies are the only near-duplicates."""
    base: list[str] = []
    for text in (t.strip() for t in texts):
        if len(_words(text)) >= 3 and not any(_one_edit_apart(text, u) for u in base):
            base.append(text)
    rng = np.random.default_rng(0)
    sources = rng.choice(len(base), 100, replace=False)
    inputs = base + [text_copy(base[i], rng) for i in sources]
    truth = {(int(i), len(base) + k) for k, i in enumerate(sources)}
    print(f"\ntext duplicates: {len(base)} distinct statements + {len(sources)} "
          f"edited copies (case, punctuation, spacing, one word) (pairs)")
    features = PretrainedTextEmbeddings("all-MiniLM-L6-v2").fit(inputs).transform(
        inputs)
    for threshold in ("auto", 0.85, 0.9, 0.95, 0.97):
        auto = DUPLICATE_THRESHOLDS["text"]
        groups = find_duplicates(features, embedder="precomputed",
                                 threshold=auto if threshold == "auto" else threshold)
        p, r, n = pair_scores(groups, truth)
        print(f"  threshold {threshold!s:5s}  precision {p:.3f}  recall {r:.3f}  "
              f"({n} pairs)")


def active_learning(features, y):
    strategies = ("auto", "diverse", "margin", "entropy", "random")
    scores = {s: [] for s in strategies}
    for draw in range(DRAWS):
        pool, test = train_test_split(np.arange(len(y)), test_size=0.5,
                                      stratify=y, random_state=draw)
        rng = np.random.default_rng(draw)
        start = [rng.choice(pool[y[pool] == c], 2, replace=False)
                 for c in np.unique(y)]
        for strategy in strategies:
            labelled = list(np.concatenate(start))
            accuracies = []
            for _ in range(6):
                model = LogisticRegression(max_iter=2000)
                model.fit(features[labelled], y[labelled])
                left = np.setdiff1d(pool, labelled)
                picked = suggest_labels(model, features[left], 10,
                                        strategy=strategy, random_state=draw)
                labelled += list(left[picked])
                model.fit(features[labelled], y[labelled])
                accuracies.append(model.score(features[test], y[test]))
            scores[strategy].append(np.mean(accuracies))
    print(f"\nactive learning (texts): 14 labelled, 6 rounds of 10, mean held-out "
          f"accuracy over the rounds, {DRAWS} draws")
    for strategy, values in scores.items():
        print(f"  {strategy:8s} {np.mean(values):.3f}  (per draw "
              f"{' '.join(f'{v:.3f}' for v in values)})")


def main(parts):
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    if "photos" in parts:
        photos, photo_labels = load_photo_patches(n_per_class=40, size=64)
        images = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
                               StandardScaler(), LogisticRegression(max_iter=2000))
        label_issues("photos", images, list(photos), photo_labels)
    if "duplicates" in parts:
        duplicates()
    if "texts" in parts or "active" in parts or "text-duplicates" in parts:
        texts, topics = load_chatterbot_topics()
        embedder = PretrainedTextEmbeddings("all-MiniLM-L6-v2").fit(texts)
        features = embedder.transform(texts)  # cached: the pipeline reuses it
    if "texts" in parts:
        text_model = make_pipeline(PretrainedTextEmbeddings("all-MiniLM-L6-v2"),
                                   LogisticRegression(max_iter=2000))
        label_issues("texts", text_model, texts, np.asarray(topics))
    if "text-duplicates" in parts:
        text_duplicates(texts)
    if "active" in parts:
        active_learning(features, np.asarray(topics))
    print(f"\n{time.perf_counter() - started:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["photos", "texts", "duplicates", "text-duplicates",
                          "active"])

"""Duplicates and outliers planted in the real sets of ``bench_audit_data.py``.

Run through ``bench_audit_suite.py duplicates outliers`` (see there).

Duplicates: each set is first cleared of copies of its own (image sets are
crops no two of which overlap by more than half; texts within one edited
word of an earlier text are left out, as the chatterbot corpus repeats
itself; image crops nearly flat, every colour channel's pixel std < 8, are
left out as two of them are copies of each other), then copies are planted:
40 images cropped by up to 5% a side, resized x0.5-1.5 and saved as JPEG
quality 50; 60 texts with case, punctuation or spacing changed, or a word
dropped, doubled or mistyped.
Pairs found are scored against the planted pairs: ``find_duplicates``'
default (perceptual hash, also against each image's inner crop, + embeddings
+ thumbnails + aligned small copies, their pixels alone for tiny images and a
tighter veto for tiny and flat ones; n-grams + embeddings), round 5's image
default (without those three), round 3's image
default (no aligned small copies), the previous image default (no inner
crop, 12 x 12 thumbnails), the old image default (no thumbnails), the hash
alone (at most 10 of 64 bits apart, as imagehash is commonly used), the
n-grams alone (cosine >= 0.9) and the embeddings alone (cosine >= 0.95).

Outliers: 2% of the rows are replaced by rows of another set (photo crops
get digits, digits get photo crops, texts get texts of another corpus),
with random labels. Precision /
recall of ``is_outlier`` for ``find_outliers`` with the labels (the default
use, as the ``audit`` command calls it) and without, the old score (mean
cosine distance to 10 neighbours, 4 MADs above the median), and
scikit-learn's LocalOutlierFactor and IsolationForest at the same 2%
contamination. "worst class" is the largest share of one class's correct
rows that is flagged (a varied class flagged wholesale shows up there).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from bench_audit_data import DUPLICATES_ONLY, SETS, cached, embed, features, photo
from PIL import Image

from sktransfer.audit import (
    CROP_SHARE,
    duplicates_from_features,
    find_outliers,
    ngram_vectors,
    perceptual_hashes,
    small_copies,
    thumbnails,
)

IMAGE_COPIES, TEXT_COPIES = 40, 60


def image_copy(image, rng):
    picture = Image.fromarray(image)
    w, h = picture.size
    cut = rng.uniform(0, 0.05, 4)
    picture = picture.crop((int(cut[0] * w), int(cut[1] * h),
                            w - int(cut[2] * w), h - int(cut[3] * h)))
    scale = rng.uniform(0.5, 1.5)
    picture = picture.resize((max(8, round(w * scale)), max(8, round(h * scale))))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=50)
    return np.asarray(Image.open(buffer).convert("RGB"))


def issue_copy(image, rng):
    """Issue 34's own case: cropped 3% a side, resized x0.7, JPEG quality 50."""
    picture = Image.fromarray(image)
    w, h = picture.size
    cut_w, cut_h = round(0.03 * w), round(0.03 * h)
    picture = picture.crop((cut_w, cut_h, w - cut_w, h - cut_h))
    picture = picture.resize((max(8, round(w * 0.7)), max(8, round(h * 0.7))))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=50)
    return np.asarray(Image.open(buffer).convert("RGB"))


def text_copy(text, rng):
    words = text.split()
    edit = rng.integers(6)
    if edit == 0:
        return text.lower() if text != text.lower() else text.upper()
    if edit == 1:
        return text.rstrip(".!?") + str(rng.choice([".", "!", " ?", "..."]))
    if edit == 2:
        return "  ".join(words) + " "
    i = int(rng.integers(len(words)))
    if edit == 3 and len(words) > 4:
        return " ".join(words[:i] + words[i + 1:])
    if edit == 4:
        return " ".join(words[:i + 1] + words[i:])
    word = words[i]
    j = int(rng.integers(len(word)))
    typo = word[:j] + word[j + 1:] if len(word) > 3 else word + word[-1]
    return " ".join(words[:i] + [typo] + words[i + 1:])


def _words(text):
    import re

    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def distinct_texts(texts):
    """Texts of >= 3 words, none within one word of an earlier one."""
    base, seen = [], {}
    for index, text in enumerate(texts):
        words = _words(text)
        if len(words) < 3:
            continue
        keys = {" ".join(words)} | {" ".join(words[:i] + words[i + 1:])
                                    for i in range(len(words))}
        if any(k in seen for k in keys):
            continue
        for k in keys:
            seen[k] = index
        base.append(index)
    return base


def planted(name, copy=image_copy, tag=""):
    """``(embeddings, hashes or None, ngram vectors or None, true pairs,
    thumbnails or None, each image's smaller side or None, the images or
    None)``."""
    X, _, inputs = features(name)
    modality = SETS[name][0]
    rng = np.random.default_rng(7)
    if modality == "image":  # flat crops (night sky, a page's margin) are copies:
        # flat in every colour channel (the std of all values at once counted
        # a flat coloured crop, the channels' offsets, as textured)
        base = [i for i, image in enumerate(inputs) if _spread(image) >= 8]
        sources = rng.choice(len(base), IMAGE_COPIES, replace=False)
        copies = [copy(inputs[base[i]], rng) for i in sources]
    else:
        base = distinct_texts(inputs)
        sources = rng.choice(len(base), TEXT_COPIES, replace=False)
        copies = [text_copy(inputs[base[i]], rng) for i in sources]
    extra = cached(f"copies{tag}-{'flat2-' if modality == 'image' else ''}{name}",
                   lambda: embed(copies, modality))
    embeddings = np.vstack([X[base], extra])
    everything = [inputs[i] for i in base] + copies
    truth = {(int(i), len(base) + k) for k, i in enumerate(sources)}
    if modality == "image":
        return (embeddings, perceptual_hashes(everything), None, truth,
                thumbnails(everything),
                np.array([min(image.shape[:2]) for image in everything]),
                everything)
    return embeddings, None, ngram_vectors(everything), truth, None, None, None


def _spread(image):
    """The largest of an image's colour channels' pixel standard deviations."""
    pixels = np.asarray(image, dtype=np.float64)
    return float(pixels.reshape(-1, pixels.shape[-1] if pixels.ndim == 3 else 1)
                 .std(axis=0).max())


def pair_scores(groups, truth):
    pairs = {(a, b) for g in groups for a in g for b in g if a < b}
    hits = len(pairs & truth)
    return hits / max(len(pairs), 1), hits / len(truth), len(pairs)


def _pairs_above(matrix, threshold):
    found = np.argwhere(np.triu(matrix >= threshold, k=1))
    return [[int(i), int(j)] for i, j in found]


@contextlib.contextmanager
def rules(round6=True, bound=True):
    """``duplicates_from_features`` without round 6's rules for tiny and
    flat images (``round6=False``: round 5's default) or without the bound
    on each image's alignments (``bound=False``, ``ALIGN_TRIES``)."""
    import sktransfer.audit as audit

    saved = (audit.TINY_LEVELS, audit.TINY_APART, audit.FLAT_SPREAD,
             audit._nearest.__defaults__)
    if not round6:  # no pair is within -1 levels: the pixels' rule for tiny
        # images has no candidates (and costs no alignment)
        audit.TINY_LEVELS, audit.FLAT_SPREAD = -1.0, 0.0
        audit.TINY_APART = audit.ALIGN_APART
    if not bound:
        audit._nearest.__defaults__ = (1 << 30,)
    try:
        yield
    finally:
        (audit.TINY_LEVELS, audit.TINY_APART, audit.FLAT_SPREAD,
         audit._nearest.__defaults__) = saved


@contextlib.contextmanager
def counting_alignments():
    """Counts ``_Aligner.residual`` calls: yields ``{"alignments": n}``."""
    from sktransfer.audit import _Aligner

    counted = {"alignments": 0}
    residual = _Aligner.residual

    def counting(self, a, b, bound=0.0):
        counted["alignments"] += 1
        return residual(self, a, b, bound)

    _Aligner.residual = counting
    try:
        yield counted
    finally:
        _Aligner.residual = residual


def duplicates(names, issue_case=False):
    """Pairs found among planted copies. ``issue_case``: the image copies
    are issue 34's own (crop 3% a side, x0.7, JPEG q50) instead of the
    suite's harsher random ones; image sets only."""
    table = {}
    what = ("issue 34's case: crop 3% a side, resize x0.7, JPEG q50" if issue_case
            else "images: crop <= 5% a side, resize x0.5-1.5, JPEG q50; texts: "
            "case/punctuation/spacing/one word")
    print(f"\nduplicates: planted copies ({what}), pairs precision / recall")
    for name in names:
        if issue_case and SETS[name][0] != "image":
            continue
        embeddings, hashes, ngrams, truth, thumbs, sides, images = (
            planted(name, issue_copy, "-issue") if issue_case else planted(name))
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        inner = (perceptual_hashes(images, crop=CROP_SHARE)
                 if images is not None else None)
        pixels = small_copies(images) if images is not None else None
        rows = {"default": duplicates_from_features(embeddings, hashes=hashes,
                                                    ngrams=ngrams, thumbs=thumbs,
                                                    sides=sides, crop_hashes=inner,
                                                    pixels=pixels),
                "embeddings >= 0.95": _pairs_above(unit @ unit.T, 0.95)}
        if hashes is not None:
            # round 5's default: no pixels' rule or tighter veto for tiny or
            # flat images, no bound on the alignments
            with rules(round6=False, bound=False):
                rows["round 5"] = duplicates_from_features(
                    embeddings, hashes=hashes, thumbs=thumbs, sides=sides,
                    crop_hashes=inner, pixels=pixels)
            # round 3's default: no aligned small copies
            rows["round 3"] = duplicates_from_features(
                embeddings, hashes=hashes, thumbs=thumbs, sides=sides,
                crop_hashes=inner)
            # the previous default: no inner crop, 12 x 12 thumbnails
            thumbs12 = thumbnails(images, size=12)
            rows["previous default"] = duplicates_from_features(
                embeddings, hashes=hashes, thumbs=thumbs12, sides=sides)
            rows["old default"] = duplicates_from_features(embeddings, hashes=hashes)
            # the first round's default: thumbnails for every pair, any size
            rows["thumbnails any size"] = duplicates_from_features(
                embeddings, hashes=hashes, thumbs=thumbs12,
                sides=np.zeros(len(sides)))
            signs = np.where(hashes, 1.0, -1.0)
            rows["pHash <= 10 bits"] = _pairs_above(signs @ signs.T, 64 - 20)
        else:
            rows["n-grams >= 0.9"] = _pairs_above((ngrams @ ngrams.T).toarray(), 0.9)
        table[name] = {"split": SETS[name][1], "rows": len(unit),
                       "planted": len(truth)}
        line = []
        for key, groups in rows.items():
            p, r, n = pair_scores(groups, truth)
            table[name][key] = [p, r]
            line.append(f"{key} {p:.3f} / {r:.3f}")
        print(f"  {name + ' [' + SETS[name][1] + ']':28s} {len(unit)} rows: "
              + "   ".join(line), flush=True)
    return table


def duplicates_cost(names):
    """Seconds for the image duplicates' parts on every image set's distinct
    crops together (digits left out: 8x8 digits are all alike), best of 2:
    hashes and thumbnails, small copies, the comparisons without and with
    the small copies; 2,000 identical blank pages (one group); and inputs
    that make every pair a candidate (``_adversarial_cost``)."""
    import time

    embeddings, images = [], []
    for name in names:
        if SETS[name][0] == "image" and name != "digits" and (
                name not in DUPLICATES_ONLY):
            X, _, inputs = features(name)
            embeddings.append(X)
            images += list(inputs)
    X = np.vstack(embeddings)
    table = {"images": len(images)}
    for _ in range(2):
        started = time.perf_counter()
        hashes = perceptual_hashes(images)
        inner = perceptual_hashes(images, crop=CROP_SHARE)
        thumbs, sides = thumbnails(images), [min(im.shape[:2]) for im in images]
        signed = time.perf_counter()
        pixels = small_copies(images)
        copied = time.perf_counter()
        duplicates_from_features(X, hashes=hashes, thumbs=thumbs, sides=sides,
                                 crop_hashes=inner)
        before = time.perf_counter()
        with counting_alignments() as counted:
            duplicates_from_features(X, hashes=hashes, thumbs=thumbs, sides=sides,
                                     crop_hashes=inner, pixels=pixels)
        after = time.perf_counter()
        for key, value in (("hashes and thumbnails", signed - started),
                           ("small copies", copied - signed),
                           ("comparisons, round 3", before - copied),
                           ("comparisons, with small copies", after - before)):
            table[key] = min(table.get(key, np.inf), value)
    table["alignments"] = counted["alignments"]
    blank = [np.full((64, 64, 3), 200, np.uint8)] * 2000
    noise = np.random.default_rng(0).normal(size=(2000, 16))
    blank_hashes, blank_pixels = perceptual_hashes(blank), small_copies(blank)
    started = time.perf_counter()
    duplicates_from_features(noise, hashes=blank_hashes)
    table["blank pages, round 3"] = time.perf_counter() - started
    started = time.perf_counter()
    groups = duplicates_from_features(noise, hashes=blank_hashes, pixels=blank_pixels)
    table["blank pages, with small copies"] = time.perf_counter() - started
    table["blank pages, groups"] = [len(g) for g in groups]
    table.update(_adversarial_cost())
    print("\nduplicates cost:", {k: (round(v, 2) if isinstance(v, float) else v)
                                 for k, v in table.items()})
    return table


def _adversarial_cost():
    """Inputs that make every pair a candidate, with the default, without
    the bound on alignments and with round 5's rules: tiny gray noise patches
    (16 px, std 6: 8 x 8 levels within 4 of a quarter of the others, few
    align) and blank images of random colours (one hash for all; embeddings
    alike)."""
    import time

    rng = np.random.default_rng(0)
    table = {}

    def run(key, images, embeddings, variant):
        signatures = {"hashes": perceptual_hashes(images),
                      "thumbs": thumbnails(images),
                      "sides": [min(im.shape[:2]) for im in images],
                      "crop_hashes": perceptual_hashes(images, crop=CROP_SHARE),
                      "pixels": small_copies(images)}
        started = time.perf_counter()
        with rules(**variant), counting_alignments() as counted:
            groups = duplicates_from_features(embeddings, **signatures)
        table[key] = {"seconds": round(time.perf_counter() - started, 2),
                      "alignments": counted["alignments"],
                      "largest group": max(map(len, groups), default=1)}

    variants = (({}, "default"), ({"bound": False}, "no bound"),
                ({"round6": False, "bound": False}, "round 5"))
    for n in (300, 1000):
        patches = [np.clip(128 + rng.normal(0, 6, (16, 16, 1)).repeat(3, 2), 0, 255)
                   .astype(np.uint8) for _ in range(n)]
        for variant, label in variants:
            if n == 300 or label == "default":  # no bound at 1000: about 10 min
                run(f"{n} noise patches, {label}", patches, np.eye(n), variant)
    colours = [np.full((64, 64, 3), rng.integers(0, 256, 3), dtype=np.uint8)
               for _ in range(200)]
    for variant, label in variants:
        run(f"200 blank colours, {label}", colours, np.ones((200, 4)), variant)
    return table


def duplicates_photos(n=40, repeats=3):
    """``find_duplicates`` on ``n`` 12-MP phone-size JPEGs (bench_decode's,
    cycling through a few real photos: each repeat is an identical file),
    with the signatures decoded in full and in draft mode
    (``SIGNATURE_SIDE``), interleaved, best of ``repeats``; a fresh
    embedder each time (no cache)."""
    import tempfile
    import time

    from bench_decode import make_phone_photos

    import sktransfer.audit as audit
    from sktransfer import PretrainedImageFeatures

    draft = audit.SIGNATURE_SIDE
    table = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = make_phone_photos(folder, n)
        PretrainedImageFeatures(cache=False).fit(paths[:1]).transform(paths[:2])
        try:
            for _ in range(repeats):
                for label, side in (("full decode", None), ("draft", draft)):
                    audit.SIGNATURE_SIDE = side
                    embedder = PretrainedImageFeatures(cache=False).fit(paths[:1])
                    started = time.perf_counter()
                    groups = audit.find_duplicates(paths, embedder=embedder)
                    seconds = time.perf_counter() - started
                    started = time.perf_counter()
                    audit._image_signatures(paths, crop=audit.CROP_SHARE, pixels=True)
                    signing = time.perf_counter() - started
                    row = table.setdefault(label, {"find_duplicates": np.inf,
                                                   "signatures": np.inf})
                    row["find_duplicates"] = min(row["find_duplicates"], seconds)
                    row["signatures"] = min(row["signatures"], signing)
                    row["groups"] = groups
        finally:
            audit.SIGNATURE_SIDE = draft
    print(f"\nduplicates of {n} 12-MP JPEGs, best of {repeats}:")
    for label, row in table.items():
        print(f"  {label:12s} find_duplicates {row['find_duplicates']:.2f} s, "
              f"signatures {row['signatures']:.2f} s, {len(row['groups'])} groups")
    same = table["full decode"]["groups"] == table["draft"]["groups"]
    print(f"  same groups: {same}")
    return table


OUTLIER_SOURCES = {"photos8": "digits", "digits": "photos8",
                   "photos-hard-dev": "digits", "photos-tiny-dev": "digits",
                   "photos-smooth-dev": "digits", "photos-plain-dev": "digits",
                   "photos-other": "digits", "photos-hard": "digits",
                   "chatterbot7": "drug-condition", "drug-rating": "chatterbot7",
                   "chatterbot-small": "drug-rating",
                   "drug-condition": "chatterbot-small"}


def varied_class():
    """The issue's case: 5 classes of 30 photo crops, one of them ("misc")
    cut from 4 different photos; no outlier planted."""
    from bench_audit_data import crops

    images, labels = crops(("brick", "grass", "gravel", "coffee"), 30, 64, seed=5)
    misc = []
    for k, name in enumerate(("astronaut", "chelsea", "rocket", "camera")):
        picture = photo(name)
        rng = np.random.default_rng(k)
        for _ in range(8 if k < 3 else 6):
            t = int(rng.integers(0, picture.shape[0] - 64))
            c = int(rng.integers(0, picture.shape[1] - 64))
            misc.append(picture[t:t + 64, c:c + 64])
    inputs = list(images) + misc
    labels = np.concatenate([labels, ["misc"] * len(misc)])
    X = cached("embed-varied", lambda: embed(inputs, "image"))
    return X, labels


def old_outliers(X):
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    similar = unit @ unit.T
    np.fill_diagonal(similar, -np.inf)
    k = min(10, len(X) - 1)
    scores = 1 - (-np.partition(-similar, k - 1, axis=1)[:, :k]).mean(axis=1)
    median = np.median(scores)
    spread = np.median(np.abs(scores - median)) or 1e-12
    return np.flatnonzero(scores > median + 4 * spread)


def outliers(names):
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    table = {}
    print("\noutliers: 2% rows of another set planted with random labels; "
          "precision / recall, worst class (largest share of one class's "
          "correct rows flagged)")
    cases = [(name, *features(name)[:2]) for name in names
             if name not in DUPLICATES_ONLY]
    cases.append(("varied-class", *varied_class()))
    for name, X, y in cases:
        rng = np.random.default_rng(3)
        if name == "varied-class":
            truth = np.array([], dtype=int)
        else:
            other = features(OUTLIER_SOURCES[name])[0]
            truth = rng.choice(len(y), int(np.ceil(0.02 * len(y))), replace=False)
            X = X.copy()
            X[truth] = other[rng.choice(len(other), len(truth), replace=False)]
            y = y.copy()
            y[truth] = rng.choice(np.unique(y), len(truth))
        found = {
            "default (with labels)": lambda X=X, y=y: _flagged(
                find_outliers(X, y, embedder="precomputed")),
            "default, no labels": lambda X=X: _flagged(
                find_outliers(X, embedder="precomputed")),
            "old (kNN, 4 MADs)": lambda X=X: old_outliers(X),
            "LOF 2%": lambda X=X: np.flatnonzero(LocalOutlierFactor(
                contamination=0.02, metric="cosine").fit_predict(X) < 0),
            "IsolationForest 2%": lambda X=X: np.flatnonzero(IsolationForest(
                contamination=0.02, random_state=0).fit_predict(X) < 0),
        }
        split = "dev" if name == "varied-class" else SETS[name][1]
        table[name] = {"split": split}
        line = []
        clean = np.setdiff1d(np.arange(len(y)), truth)
        for key, run in found.items():
            flagged = run()
            hits = len(set(flagged.tolist()) & set(truth.tolist()))
            precision = hits / max(len(flagged), 1)
            recall = hits / len(truth) if len(truth) else float("nan")
            wrong = np.setdiff1d(flagged, truth)
            worst = max((np.sum(y[wrong] == c) / np.sum(y[clean] == c)
                         for c in np.unique(y[clean])), default=0.0)
            table[name][key] = {"precision": precision, "recall": recall,
                                "flagged": len(flagged), "worst_class": worst}
            line.append(f"{key} {precision:.2f}/{recall:.2f} n={len(flagged)} "
                        f"worst {worst:.2f}")
        print(f"  {name + ' [' + split + ']':28s} " + " | ".join(line), flush=True)
    return table


def _flagged(frame):
    return frame.index[frame["is_outlier"]].to_numpy()

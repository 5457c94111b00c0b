"""Label audit, duplicates, outliers and active learning on real data."""

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer.audit import (
    ALIGN_APART,
    ALIGN_SIDE,
    ALIGN_SURE,
    ALIGN_TRIES,
    CROP_SHARE,
    FLAT_SPREAD,
    HASH_MAYBE,
    HASH_SIDE,
    HASH_SURE,
    ISSUE_COUNT_RATIO,
    SIGNATURE_SIDE,
    THUMB_SIZE,
    TINY_ALIGN,
    TINY_APART,
    TINY_LEVELS,
    aligned_residual,
    confident_count,
    duplicates_from_features,
    find_duplicates,
    find_label_issues,
    find_outliers,
    issues_from_proba,
    mixture_count,
    neighbor_proba,
    ngram_vectors,
    out_of_fold_proba,
    perceptual_hashes,
    small_copies,
    thumbnails,
)
from sktransfer.exceptions import InvalidInputError, ParameterError


def flip(y, rate, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    rows = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    noisy = y.copy()
    for i in rows:
        noisy[i] = rng.choice(classes[classes != y[i]])
    return noisy, rows


def precision_recall(frame, truth):
    flagged = set(frame.index[frame["is_issue"]])
    hits = len(flagged & set(truth))
    return hits / max(len(flagged), 1), hits / len(truth)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def linear():
    return LogisticRegression(max_iter=1000)


@pytest.mark.parametrize("method", ["confident", "cleanlab"])
def test_finds_flipped_digit_labels(digits, method):
    X, y = digits
    noisy, truth = flip(y, 0.1)
    frame = find_label_issues(linear(), X, noisy, method=method)
    assert list(frame.columns) == ["label", "suggested", "quality", "is_issue"]
    assert sorted(frame.index) == list(range(len(y)))
    assert frame["quality"].is_monotonic_increasing
    assert (frame.loc[truth, "label"] == noisy[truth]).all()
    precision, recall = precision_recall(frame, truth)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    # most flipped rows get their true label back as the suggestion
    assert np.mean(frame.loc[truth, "suggested"] == y[truth]) >= 0.8


def test_flagged_count_follows_the_estimated_noise(digits):
    X, y = digits
    clean = find_label_issues(linear(), X, y)
    assert clean["is_issue"].mean() <= 0.05  # clean labels: few flagged
    noisy, truth = flip(y, 0.2, seed=3)
    frame = find_label_issues(linear(), X, noisy)
    flagged = int(frame["is_issue"].sum())
    # twice the noise, about twice the flags; the flags are the lowest quality
    assert 0.7 * len(truth) <= flagged <= 1.3 * len(truth)
    assert frame["is_issue"].iloc[:flagged].all()
    assert not frame["is_issue"].iloc[flagged:].any()


def test_neighbours_keep_a_weak_probe_from_flagging_its_own_mistakes():
    """Real digits at 4 x 4 pixels and a strongly regularised probe (C=0.02):
    the probe's own mistakes made the old default (probabilities alone,
    confident learning's count) flag ~1.5x the flips at precision ~0.4; the
    10 nearest neighbours' labels keep it near the
    true count."""
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(len(X), -1)[:600] / 16
    noisy, truth = flip(y[:600], 0.1, seed=0)
    probe = LogisticRegression(max_iter=1000, C=0.02)
    frame = find_label_issues(probe, X, noisy)
    precision, recall = precision_recall(frame, truth)
    assert precision >= 0.85 and recall >= 0.8, (precision, recall)
    assert frame["is_issue"].sum() <= 1.3 * len(truth)
    old = find_label_issues(probe, X, noisy, n_neighbors=0)
    old_precision, _ = precision_recall(old, truth)
    assert old["is_issue"].sum() >= 1.3 * len(truth) and old_precision < 0.6
    # n_neighbors=0: quality is the out-of-fold probability of the given label
    proba, classes = out_of_fold_proba(probe, X, noisy)
    given = np.searchsorted(classes, noisy)
    assert np.allclose(old.sort_index()["quality"], proba[np.arange(600), given])
    # the same table from the probabilities and the features
    again = issues_from_proba(noisy, proba, classes, features=X)
    assert again.equals(frame)
    with pytest.raises(ParameterError, match="n_neighbors must be an int >= 0"):
        find_label_issues(probe, X, noisy, n_neighbors=-1)


def test_features_that_are_not_a_matrix_fall_back_to_the_probabilities():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from sktransfer.datasets import load_chatterbot_topics

    texts, labels = load_chatterbot_topics(["science", "sports", "food"])
    labels = np.asarray(labels)
    noisy, _ = flip(labels, 0.1, seed=2)
    model = make_pipeline(TfidfVectorizer(), linear())
    frame = find_label_issues(model, texts, noisy)  # texts: no neighbours' view
    plain = find_label_issues(model, texts, noisy, n_neighbors=0)
    assert frame.equals(plain)


def test_confident_count_counts_confident_disagreements():
    given = np.array([0, 0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9],   # row 2: surely a 1
                      [0.2, 0.8], [0.3, 0.7], [0.55, 0.45]])  # row 5: unsure
    # class 0's threshold: mean p0 on rows labelled 0 = 0.6; row 5 (0.55) is
    # under it, row 2's p1 = 0.9 is over class 1's threshold (0.65)
    assert confident_count(given, proba) == 1


def test_label_issue_bad_input(digits):
    X, y = digits
    with pytest.raises(InvalidInputError, match="single class"):
        find_label_issues(linear(), X[:20], np.zeros(20))
    with pytest.raises(InvalidInputError, match="class 7 is on a single row"):
        find_label_issues(linear(), X[:3], np.array([1, 1, 7]))
    with pytest.raises(ParameterError, match="method must be one of"):
        find_label_issues(linear(), X, y, method="vote")


def test_duplicates_and_outliers_on_precomputed(digits):
    X, _ = digits
    base = X[:100]
    copies = base[[3, 50]] + 0.01  # near-identical rows
    features = np.vstack([base, copies])
    groups = find_duplicates(features, embedder="precomputed", threshold=0.995)
    assert groups == [[3, 100], [50, 101]]
    with pytest.raises(ParameterError, match="threshold"):
        find_duplicates(features, embedder="precomputed", threshold=1.5)
    rng = np.random.default_rng(0)
    odd = np.vstack([base, rng.uniform(-1, 1, (1, base.shape[1]))])
    frame = find_outliers(odd, embedder="precomputed")
    assert frame.index[0] == 100 and frame["is_outlier"].iloc[0]
    assert frame["is_outlier"].sum() <= 3  # at most 2% of 101 rows
    assert frame.attrs["contamination"] == 0.02


def photo_as_digit_features(name, count):
    """8 x 8 gray thumbnails of real photo crops, scaled as digits are: rows
    that belong to no digit class."""
    from PIL import Image
    from skimage import data

    photo = getattr(data, name)()
    photo = photo if photo.ndim == 2 else photo.mean(axis=2)
    rows = []
    for k in range(count):
        crop = photo[40 * k:40 * k + 64, 100:164].astype(np.uint8)
        small = Image.fromarray(crop).resize((8, 8), Image.BOX)
        rows.append(np.asarray(small, dtype=np.float64).ravel() / 16.0)
    return np.asarray(rows)


def test_outliers_are_far_from_every_class_not_a_varied_class():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    keep = np.flatnonzero(y < 5)[:300]
    varied = np.flatnonzero(y >= 5)[:60]  # five digits under one label
    labels = np.concatenate([y[keep].astype(str), ["misc"] * 60])
    planted = photo_as_digit_features("camera", 4)
    features = np.vstack([X[keep], X[varied], planted])
    labels = np.concatenate([labels, ["0", "3", "misc", "1"]])
    frame = find_outliers(features, labels, embedder="precomputed")
    flagged = set(frame.index[frame["is_outlier"]])
    assert set(range(360, 364)) <= flagged, frame.head(8)
    assert len(flagged) <= np.ceil(0.02 * 364)
    assert not flagged & set(range(300, 360))  # the varied class stays
    assert list(frame.columns) == ["score", "nearest_class", "is_outlier"]
    # without the labels the varied class looks spread out: scores say so
    plain = find_outliers(features, embedder="precomputed")
    assert plain["is_outlier"].sum() <= np.ceil(0.02 * 364)
    with pytest.raises(InvalidInputError, match="one label per input"):
        find_outliers(features, labels[:10], embedder="precomputed")
    with pytest.raises(ParameterError, match="contamination"):
        find_outliers(features, embedder="precomputed", contamination=0.9)
    with pytest.raises(InvalidInputError, match="single row"):
        find_outliers(features[:4], ["a", "b", "c", "d"], embedder="precomputed")


# --- real embeddings (bundled models) ---------------------------------------------

@pytest.mark.slow
def test_finds_flipped_photo_labels_and_embeds_once(monkeypatch):
    from sktransfer import PretrainedImageFeatures
    from sktransfer.datasets import load_photo_patches

    X, y = load_photo_patches(n_per_class=15, size=64)
    noisy, truth = flip(y, 0.1, seed=1)
    embedded = []
    original = PretrainedImageFeatures._embed_batches

    def counting(self, items, indices):
        embedded.extend(indices)
        return original(self, items, indices)

    monkeypatch.setattr(PretrainedImageFeatures, "_embed_batches", counting)
    model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
                          StandardScaler(), linear())
    frame = find_label_issues(model, list(X), noisy)
    assert sorted(embedded) == list(range(len(X)))  # once each, not per fold
    precision, recall = precision_recall(frame, truth)
    assert precision >= 0.75 and recall >= 0.75, (precision, recall)
    find_label_issues(model, list(X), noisy, cv=3)
    assert len(embedded) == len(X)  # the second audit hits the cache


@pytest.mark.slow
def test_count_is_the_confident_joint_unless_over_twice_the_mixture():
    """Real photo crops, 10% flipped, EfficientNet-Lite0 + LogisticRegression.
    64 px (a strong probe, ~0.95): the confident joint's count stands, where
    the first round's min(joint, mixture) under-counted. 16 px (a weak probe,
    ~0.75): the joint counts twice the flips and more, so the mixture's count
    is taken and precision holds."""
    from sktransfer import PretrainedImageFeatures
    from sktransfer.datasets import load_photo_patches

    for size, seed, kept in ((64, 1, "joint"), (16, 0, "mixture")):
        X, y = load_photo_patches(n_per_class=20, size=size)
        noisy, truth = flip(y, 0.1, seed=seed)
        model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
                              StandardScaler(), linear())
        frame = find_label_issues(model, list(X), noisy)
        features = model[0].fit(list(X)).transform(list(X))
        proba, classes = out_of_fold_proba(make_pipeline(StandardScaler(), linear()),
                                           features, noisy)
        given = np.searchsorted(classes, noisy)
        mixed = (proba + neighbor_proba(features, given, len(classes))) / 2
        joint = confident_count(given, mixed)
        mixture = mixture_count(mixed[np.arange(len(y)), given])
        flagged = int(frame["is_issue"].sum())
        precision, recall = precision_recall(frame, truth)
        if kept == "joint":
            assert mixture < joint <= ISSUE_COUNT_RATIO * mixture, (joint, mixture)
            assert flagged == joint and recall >= 0.9 and precision >= 0.9, (
                precision, recall)
        else:
            assert joint > ISSUE_COUNT_RATIO * mixture, (joint, mixture)
            assert flagged == mixture and precision >= 0.8, (precision, recall)


def jpeg_copy(image, quality, scale, crop):
    picture = Image.fromarray(image)
    w, h = picture.size
    picture = picture.crop((crop, crop, w - crop, h - crop))
    picture = picture.resize((int(w * scale), int(h * scale)))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def distinct_photo_crops(names=("brick", "grass", "coffee", "chelsea"), per=6):
    """64 px crops of real photos, no two of one photo overlapping (a 3 x 3
    grid at most)."""
    from skimage import data

    crops = []
    for name in names:
        photo = getattr(data, name)()
        photo = np.repeat(photo[..., None], 3, 2) if photo.ndim == 2 else photo
        crops += [photo[64 * (k // 3):64 * (k // 3) + 64, 64 * (k % 3):64 * (k % 3)
                        + 64].copy() for k in range(per)]
    return crops


def test_perceptual_hash_matches_cropped_resized_jpeg_copies():
    crops = distinct_photo_crops()
    copies = [jpeg_copy(crops[0], 50, 0.7, 2), jpeg_copy(crops[9], 50, 1.3, 1),
              jpeg_copy(crops[20], 50, 0.5, 2)]
    hashes = perceptual_hashes(crops + copies)
    assert hashes.shape == (27, 64) and hashes.dtype == bool
    apart = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    for k, source in enumerate((0, 9, 20)):
        assert apart[source, 24 + k] <= HASH_SURE, apart[source, 24 + k]
    distinct = apart[:24, :24][~np.eye(24, dtype=bool)]
    assert distinct.min() > HASH_MAYBE, distinct.min()
    # with embeddings that cannot tell the crops apart, the hash decides
    groups = duplicates_from_features(np.ones((27, 4)), hashes=hashes)
    assert groups == [[0, 24], [9, 25], [20, 26]]


def test_inner_crop_hash_finds_copies_cropped_on_every_side():
    """Issue 34's copies: 64-pixel photo crops cut 3% (2 px) on every side,
    resized x0.7 and saved as JPEG quality 50. The crop shifts pHash's grid
    (some copies differ from their source in more than HASH_SURE bits);
    each image's hash with CROP_SHARE cut off every side finds them, joins
    no two distinct crops, and ``find_duplicates`` uses it."""
    from sklearn.preprocessing import FunctionTransformer

    crops = distinct_photo_crops()
    copies = [jpeg_copy(crop, 50, 0.7, 2) for crop in crops]
    images = crops + copies
    hashes = perceptual_hashes(images)
    inner = perceptual_hashes(images, crop=CROP_SHARE)
    assert inner.shape == hashes.shape == (48, 64) and inner.dtype == bool
    assert (inner != hashes).any()
    apart = np.eye(len(images))  # embeddings that match nothing
    old = duplicates_from_features(apart, hashes=hashes)
    new = duplicates_from_features(apart, hashes=hashes, crop_hashes=inner)
    truth = [[i, 24 + i] for i in range(24)]
    assert all(group in truth for group in new), new  # no false copies
    assert set(map(tuple, old)) < set(map(tuple, new)), (old, new)
    missed = [g for g in new if g not in old]
    assert all((hashes[i] != hashes[j]).sum() > HASH_SURE for i, j in missed)
    # the public entry point hashes the inner crops itself, and aligns the
    # small copies too: every copy is found, nothing else
    nothing_alike = FunctionTransformer(lambda X: np.eye(len(X)))
    assert find_duplicates(images, embedder=nothing_alike) == truth
    with pytest.raises(ParameterError, match="crop_hashes needs the shape"):
        duplicates_from_features(apart, hashes=hashes, crop_hashes=inner[1:])
    with pytest.raises(ParameterError, match="crop_hashes needs hashes"):
        duplicates_from_features(apart, crop_hashes=inner)
    with pytest.raises(ParameterError, match="hashes need one row per embedding"):
        duplicates_from_features(apart[1:], hashes=hashes)
    with pytest.raises(ParameterError, match=r"crop must be .* \[0, 0.25\)"):
        perceptual_hashes(images, crop=0.3)


def test_thumbnails_find_tiny_copies_whose_hash_is_lost():
    """16-pixel crops of real photos and copies shrunk to 8 pixels and saved
    as JPEG quality 50: the pHash alone loses some of them; within
    HASH_LOOSE bits the THUMB_SIZE (6) x 6 thumbnails' correlation finds more,
    and joins no two distinct crops."""
    from skimage import data

    crops = []
    for name in ("astronaut", "coffee", "chelsea", "immunohistochemistry"):
        photo = getattr(data, name)()
        crops += [photo[100 + 32 * (k // 4):116 + 32 * (k // 4),
                        100 + 32 * (k % 4):116 + 32 * (k % 4)].copy()
                  for k in range(8)]
    crops = [c for c in crops if c.std() >= 8]
    sources = list(range(0, len(crops), 3))
    copies = [jpeg_copy(crops[i], 50, 0.5, 0) for i in sources]
    images = crops + copies
    thumbs = thumbnails(images)
    assert thumbs.shape == (len(images), THUMB_SIZE ** 2) == (len(images), 36)
    assert np.allclose(np.linalg.norm(thumbs, axis=1), 1)
    assert np.allclose(thumbs.sum(axis=1), 0, atol=1e-9)  # mean removed
    hashes = perceptual_hashes(images)
    apart = np.eye(len(images))  # embeddings that match nothing
    old = duplicates_from_features(apart, hashes=hashes)
    sides = [min(image.shape[:2]) for image in images]
    assert max(sides) < HASH_SIDE  # 16-pixel crops, 8-pixel copies
    new = duplicates_from_features(apart, hashes=hashes, thumbs=thumbs, sides=sides)
    truth = [[i, len(crops) + k] for k, i in enumerate(sources)]
    assert all(group in truth for group in new), new  # no false copies
    assert set(map(tuple, old)) < set(map(tuple, new)), (old, new)
    with pytest.raises(ParameterError, match="thumbs needs sides"):
        duplicates_from_features(apart, hashes=hashes, thumbs=thumbs)
    with pytest.raises(ParameterError, match="one row per embedding"):
        duplicates_from_features(apart, hashes=hashes, thumbs=thumbs, sides=sides[1:])


def _dev_photo_crops(size, stride):
    """size-px crops of four scikit-image photos of the dev sets, a 4 x 4
    grid of each, none flat in every colour channel."""
    from skimage import data

    crops = []
    for name in ("astronaut", "coffee", "chelsea", "immunohistochemistry"):
        photo = getattr(data, name)()
        crops += [photo[60 + stride * (k // 4):60 + size + stride * (k // 4),
                        60 + stride * (k % 4):60 + size + stride * (k % 4)].copy()
                  for k in range(16)]
    return [c for c in crops if c.reshape(-1, 3).std(axis=0).max() >= 8]


@pytest.mark.parametrize("size, stride, cut", [(48, 64, 2), (24, 40, 1)])
def test_aligned_small_copies_find_copies_the_hash_misses(size, stride, cut):
    """Issue 34's copies (cut on every side, x0.7, JPEG quality 50) of 48-
    and 24-px crops: the hashes, inner-crop hashes and thumbnails (round 3)
    miss some; the small copies aligned within ALIGN_SURE levels find more
    and join no two distinct crops. At 24 px a pair the hash joins without
    being a copy is more than ALIGN_APART levels apart, and is left out."""
    crops = _dev_photo_crops(size, stride)
    sources = list(range(0, len(crops), 2))
    images = crops + [jpeg_copy(crops[i], 50, 0.7, cut) for i in sources]
    truth = [[i, len(crops) + k] for k, i in enumerate(sources)]
    apart = np.eye(len(images))  # embeddings that match nothing
    signatures = {"hashes": perceptual_hashes(images), "thumbs": thumbnails(images),
                  "sides": [min(image.shape[:2]) for image in images],
                  "crop_hashes": perceptual_hashes(images, crop=CROP_SHARE)}
    before = duplicates_from_features(apart, **signatures)
    pixels = small_copies(images)
    after = duplicates_from_features(apart, pixels=pixels, **signatures)
    assert all(group in truth for group in after), after  # no false copies
    found_before = [g for g in before if g in truth]
    assert set(map(tuple, found_before)) < set(map(tuple, after)), (before, after)
    for i, j in (g for g in after if g not in before):
        assert aligned_residual(pixels[i], pixels[j]) <= ALIGN_SURE
    for i, j in (g for g in before if g not in truth):  # vetoed
        assert aligned_residual(pixels[i], pixels[j]) > ALIGN_APART


def test_tiny_copies_are_found_by_their_pixels_whatever_their_hashes():
    """Issue 34's copies (x0.7, JPEG quality 50) of 16-px crops are 11 px:
    their hashes are noise, some more than HASH_LOOSE bits from their
    source. Under HASH_SIDE px the 8 x 8 levels (within TINY_LEVELS) and the
    small copies aligned within TINY_ALIGN find them anyway, and join no two
    distinct crops; any pair joined there is within TINY_APART levels."""
    crops = _dev_photo_crops(16, 24)
    sources = list(range(0, len(crops), 2))
    images = crops + [jpeg_copy(crops[i], 50, 0.7, 0) for i in sources]
    truth = [[i, len(crops) + k] for k, i in enumerate(sources)]
    sides = [min(image.shape[:2]) for image in images]
    assert max(sides) < HASH_SIDE
    hashes = perceptual_hashes(images)
    signatures = {"hashes": hashes, "thumbs": thumbnails(images), "sides": sides,
                  "crop_hashes": perceptual_hashes(images, crop=CROP_SHARE)}
    pixels = small_copies(images)
    apart = np.eye(len(images))  # embeddings that match nothing
    found = duplicates_from_features(apart, pixels=pixels, **signatures)
    assert all(group in truth for group in found), found  # no false copies
    assert len(found) >= 0.8 * len(truth), (len(found), len(truth))
    bits = {(i, j): int((hashes[i] != hashes[j]).sum()) for i, j in found}
    lost = [pair for pair, b in bits.items() if b > 22]  # beyond HASH_LOOSE
    assert lost, bits  # found by their pixels alone
    for i, j in lost:
        assert aligned_residual(pixels[i], pixels[j]) <= TINY_ALIGN
        levels = [np.asarray(Image.fromarray(pixels[k]).convert("L").resize(
            (8, 8), Image.BOX), dtype=float) for k in (i, j)]
        assert np.sqrt(((levels[0] - levels[1]) ** 2).mean()) <= TINY_LEVELS
    # hashes and embeddings that call a pair a copy: two tiny images are
    # joined only within TINY_APART levels, two larger ones within ALIGN_APART
    residuals = {(i, j): aligned_residual(pixels[i], pixels[j])
                 for i in range(len(crops)) for j in range(i + 1, len(crops))}
    between = [p for p, r in residuals.items() if TINY_APART < r <= ALIGN_APART]
    near = [p for p, r in residuals.items() if r <= TINY_APART]
    assert len(between) >= 3 and near
    for i, j in between[:3] + near[:1]:
        pair = {"hashes": np.zeros((2, 64), dtype=bool),
                "pixels": [pixels[i], pixels[j]],
                "thumbs": signatures["thumbs"][[i, j]]}
        tiny = duplicates_from_features(np.ones((2, 4)), sides=[16, 16], **pair)
        large = duplicates_from_features(np.ones((2, 4)), sides=[64, 64], **pair)
        assert large == [[0, 1]]
        assert tiny == ([[0, 1]] if residuals[i, j] <= TINY_APART else [])
    assert TINY_APART < ALIGN_APART


def test_alignments_are_bounded_when_every_tiny_pair_is_a_candidate(monkeypatch):
    """Tiny, nearly flat noise patches: most pairs are within TINY_LEVELS of
    each other (candidates for the pixels' rule), few align. Each image is
    tried against at most ALIGN_TRIES of them a rule, so the alignments grow
    linearly, not with the pairs."""
    import sktransfer.audit as audit

    n = 150
    rng = np.random.default_rng(0)
    images = [np.clip(128 + rng.normal(0, 6, (16, 16, 1)).repeat(3, 2), 0, 255)
              .astype(np.uint8) for _ in range(n)]
    pixels = small_copies(images)
    levels = np.array([np.asarray(Image.fromarray(p).convert("L").resize(
        (8, 8), Image.BOX), dtype=float).ravel() for p in pixels])
    apart = np.sqrt(((levels[:, None] - levels[None]) ** 2).mean(axis=2))
    candidates = int(np.triu(apart <= TINY_LEVELS, k=1).sum())
    signatures = {"hashes": perceptual_hashes(images), "thumbs": thumbnails(images),
                  "sides": [16] * n, "pixels": pixels}
    within = audit._Aligner.within

    def tries(keep):  # alignments for the two rules (not the veto's)
        tried = []
        monkeypatch.setattr(audit._nearest, "__defaults__", (keep,))
        monkeypatch.setattr(audit._Aligner, "within", lambda self, a, b, bound: (
            bound <= ALIGN_SURE and tried.append((a, b))) or within(self, a, b, bound))
        groups = duplicates_from_features(np.eye(n), **signatures)
        return len(tried), groups

    assert ALIGN_TRIES == 8
    uncapped, _ = tries(n)
    capped, groups = tries(2)
    bound = 2 * 2 * n * 2  # two rules, either image among the other's 2 nearest
    assert candidates > 2 * bound and uncapped > 2 * bound  # quadratic
    assert capped <= bound, (capped, uncapped, candidates)
    assert all(len(g) >= 2 for g in groups)


def test_flat_images_are_copies_only_of_their_own_colour():
    """Blank images of several grays all have one hash (and here one
    embedding): a pair with a flat one is a copy only within ALIGN_SURE
    levels, so 100 and 103 are, 120, 140, ... 20 apart (within ALIGN_APART)
    are not chained into one group."""
    grays = [100, 103, 120, 140, 160, 180, 200, 100]
    images = [np.full((48, 40, 3), g, dtype=np.uint8) for g in grays]
    images.append(np.asarray(Image.fromarray(images[2]).resize((30, 36))))  # resized
    hashes = perceptual_hashes(images)
    assert (hashes == hashes[0]).all()  # the hash cannot tell them apart
    pixels = small_copies(images)
    assert all(p.reshape(-1, 3).std(axis=0).max() < FLAT_SPREAD for p in pixels)
    groups = duplicates_from_features(np.ones((len(images), 4)), hashes=hashes,
                                      sides=[36] * len(images),
                                      thumbs=thumbnails(images), pixels=pixels)
    assert groups == [[0, 1, 7], [2, 8]]
    assert aligned_residual(pixels[2], pixels[3]) == 20 < ALIGN_APART


def test_small_copies_and_their_alignment():
    """small_copies: RGB uint8 at most ALIGN_SIDE px a side, aspect kept.
    aligned_residual: 0 for an image and itself, either way round the same,
    a few levels for a copy cut 3% a side, resized and re-encoded, tens of
    levels for a crop of another photo or a colour-inverted one (which
    identical hashes cannot tell apart: the alignment vetoes them)."""
    photo_crops = distinct_photo_crops(names=("coffee", "chelsea"), per=2)
    wide = np.ascontiguousarray(np.concatenate(photo_crops[:2], axis=1))  # 64 x 128
    images = photo_crops + [jpeg_copy(photo_crops[0], 50, 0.7, 2),
                            255 - photo_crops[0], wide]
    pixels = small_copies(images)
    assert [p.shape for p in pixels] == [(32, 32, 3)] * 6 + [(16, 32, 3)]
    assert all(p.dtype == np.uint8 for p in pixels)
    assert aligned_residual(pixels[0], pixels[0]) == 0
    copy = aligned_residual(pixels[0], pixels[4])
    assert copy == aligned_residual(pixels[4], pixels[0]) and copy <= ALIGN_SURE
    assert aligned_residual(pixels[0], pixels[2]) > ALIGN_APART  # another photo
    assert aligned_residual(pixels[0], pixels[5]) > ALIGN_APART  # inverted
    # with a bound, the first alignment within it ends the search
    assert copy <= aligned_residual(pixels[0], pixels[4], bound=1e9) <= 1e9
    same = np.zeros((6, 64), dtype=bool)  # hashes that call everything a copy
    alike = np.ones((6, 4))
    assert duplicates_from_features(alike, hashes=same) == [[0, 1, 2, 3, 4, 5]]
    assert duplicates_from_features(alike, hashes=same, pixels=pixels[:6]) == [[0, 4]]
    with pytest.raises(ParameterError, match="pixels needs hashes"):
        duplicates_from_features(alike, pixels=pixels[:6])
    with pytest.raises(ParameterError, match=r"one small copy per embedding \(6\)"):
        duplicates_from_features(alike, hashes=same, pixels=pixels[:5])
    gray = pixels[:6]
    gray[3] = gray[3][..., 0]
    with pytest.raises(ParameterError, match=r"pixels\[3\] must be a \(height, width"):
        duplicates_from_features(alike, hashes=same, pixels=gray)
    with pytest.raises(ParameterError, match=r"b must be a \(height, width, 3\) uint8"):
        aligned_residual(pixels[0], pixels[1] / 255.0)  # floats are not levels
    with pytest.raises(ParameterError, match=r"a must be .* at most 32 px"):
        aligned_residual(photo_crops[0], pixels[1])  # 64 px: not a small copy
    assert ALIGN_SIDE == 32


def test_thumbnails_leave_larger_smooth_images_to_the_hash():
    """Distinct 64-pixel crops of scikit-image's colorwheel (smooth hues,
    overlapping by at most 1/8) share their coarse shape: with the
    thumbnails judging every pair some are joined, none when they judge only
    images smaller than pHash's 32 pixels (the default), as the hash alone."""
    from skimage import data

    photo = data.colorwheel()
    crops = [photo[t:t + 64, c:c + 64].copy() for t in range(0, 306, 56)
             for c in range(0, 307, 56)]
    crops = [c for c in crops if c.std() >= 8]
    hashes, thumbs = perceptual_hashes(crops), thumbnails(crops)
    apart = np.eye(len(crops))  # embeddings that match nothing
    hash_alone = duplicates_from_features(apart, hashes=hashes)
    everywhere = duplicates_from_features(apart, hashes=hashes, thumbs=thumbs,
                                          sides=np.zeros(len(crops)))
    default = duplicates_from_features(apart, hashes=hashes, thumbs=thumbs,
                                       sides=[64] * len(crops))
    assert len(everywhere) > len(hash_alone)  # false copies: distinct crops
    assert default == hash_alone


def test_text_ngrams_match_re_typed_copies_not_topic_mates():
    from sktransfer.datasets import load_chatterbot_topics

    texts, _ = load_chatterbot_topics(["science", "sports"])
    texts = list(dict.fromkeys(t for t in texts if len(t.split()) >= 6))[:30]
    copies = [texts[2].upper(), "  ".join(texts[11].split()) + " !",
              texts[25].replace(" ", "  ", 1)]
    ngrams = ngram_vectors(texts + copies)
    # embeddings that call everything alike: the n-grams must still separate
    groups = duplicates_from_features(np.ones((33, 4)), ngrams=ngrams)
    assert groups == [[2, 30], [11, 31], [25, 32]]


@pytest.mark.slow
def test_finds_re_encoded_jpeg_copies_with_the_bundled_model():
    crops = distinct_photo_crops()
    copies = [jpeg_copy(crops[0], 50, 0.7, 2), jpeg_copy(crops[9], 70, 1.5, 0),
              jpeg_copy(crops[20], 50, 1.0, 1)]
    # different crops of the same photos (similar content) are not copies
    assert find_duplicates(crops + copies) == [[0, 24], [9, 25], [20, 26]]


def test_large_jpeg_files_are_hashed_from_a_draft_decode(tmp_path, monkeypatch):
    """Photos saved as large JPEG files (3000 x 2400, as a phone's) are
    decoded at the smallest DCT scale that keeps SIGNATURE_SIDE pixels: the
    hashes and thumbnails are those of the full decode, and a copy cut 3% a
    side, resized x0.7 and saved as JPEG quality 50 is still found."""
    from skimage import data
    from sklearn.preprocessing import FunctionTransformer

    paths = []
    for k, name in enumerate(("astronaut", "coffee", "chelsea")):
        photo = Image.fromarray(getattr(data, name)())
        photo = photo.resize((3000, 2400), Image.BICUBIC)
        paths.append(tmp_path / f"photo{k}.jpg")
        photo.save(paths[-1], quality=90)
    copy = Image.fromarray(jpeg_copy(np.asarray(Image.open(paths[0])), 50, 0.7, 90))
    paths.append(tmp_path / "copy.jpg")
    copy.save(paths[-1], quality=50)
    full = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    assert SIGNATURE_SIDE == 256
    assert (perceptual_hashes(paths) != perceptual_hashes(full)).sum(axis=1).max() <= 2
    assert np.allclose((thumbnails(paths) * thumbnails(full)).sum(axis=1), 1, atol=1e-3)
    assert all(max(p.shape[:2]) <= ALIGN_SIDE for p in small_copies(paths))
    nothing_alike = FunctionTransformer(lambda X: np.eye(len(X)))
    import sktransfer.data

    decoded, load_image = [], sktransfer.data.load_image

    def spy(item, index, min_size=None):
        image = load_image(item, index, min_size=min_size)
        decoded.append(image.size)
        return image

    monkeypatch.setattr(sktransfer.data, "load_image", spy)
    assert find_duplicates(paths, embedder=nothing_alike) == [[0, 3]]
    # 1/8 of the photos, 1/4 of the 2100 x 1680 copy (1/8 would leave 210 px)
    assert decoded == [(375, 300)] * 3 + [(525, 420)]


@pytest.mark.slow
def test_a_varied_class_of_photos_is_not_flagged_wholesale():
    """The issue's case: 4 texture classes and a "misc" class cut from four
    different photos; the old default flagged 15%, all of "misc"."""
    from skimage import data

    crops = distinct_photo_crops(("brick", "grass", "gravel", "coffee"), per=9)
    misc = []
    for name in ("astronaut", "chelsea", "rocket", "camera"):
        photo = getattr(data, name)()
        photo = np.repeat(photo[..., None], 3, 2) if photo.ndim == 2 else photo
        misc += [photo[64 * k:64 * k + 64, 128:192].copy() for k in range(3)]
    labels = ["brick"] * 9 + ["grass"] * 9 + ["gravel"] * 9 + ["coffee"] * 9 \
        + ["misc"] * 12
    frame = find_outliers(crops + misc, labels)
    flagged = frame.index[frame["is_outlier"]]
    assert len(flagged) <= 1  # at most 2% of 48
    assert not any(labels[i] == "misc" for i in flagged)


@pytest.mark.slow
def test_finds_re_typed_text_copies_with_the_bundled_model():
    from sktransfer.datasets import load_chatterbot_topics

    texts, _ = load_chatterbot_topics(["science", "sports", "money"])
    texts = list(dict.fromkeys(t for t in texts if len(t.split()) >= 5))[:40]
    copies = [texts[3].upper(), texts[17].rstrip(".!?") + " !",
              "  ".join(texts[29].split())]
    # statements on one topic are similar, not copies
    assert find_duplicates(texts + copies) == [[3, 40], [17, 41], [29, 42]]


@pytest.mark.slow
def test_audit_command_reports_a_moved_image_and_a_copy(tmp_path):
    import subprocess
    import sys

    import pandas as pd

    from sktransfer.datasets import load_photo_patches

    X, y = load_photo_patches(8, 64, classes=("brick", "grass", "coffee"))
    root = tmp_path / "photos"
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / label / f"{i}.png")
    (root / "brick" / "0.png").rename(root / "grass" / "moved.png")  # a wrong label
    Image.fromarray(X[20]).save(root / "coffee" / "copy.jpg", quality=60)
    result = subprocess.run(
        [sys.executable, "-m", "sktransfer.cli", "audit", str(root), "--report",
         str(tmp_path / "out"), "--cv", "3", "--runtime", "torch"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "audit" in result.stderr  # the progress bar
    findings = pd.read_csv(tmp_path / "out" / "findings.csv")
    issues = findings[findings["finding"] == "label_issue"]
    moved = issues[issues["input"].str.endswith("moved.png")]
    assert len(moved) == 1 and moved["suggested"].iloc[0] == "brick"
    assert len(issues) <= 3
    groups = findings[findings["finding"] == "duplicate"].groupby("group")["input"]
    names = [sorted(v.str.rsplit("/", n=1).str[-1]) for _, v in groups]
    assert ["20.png", "copy.jpg"] in names
    page = (tmp_path / "out" / "audit.html").read_text()
    assert "moved.png" in page and "data:image/jpeg;base64," in page
    assert "suggested: brick" in page


def test_audit_command_refuses_a_single_class(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "one.csv"
    data.write_text("text,topic\nhello there,greeting\ngood morning,greeting\n")
    result = subprocess.run(
        [sys.executable, "-m", "sktransfer.cli", "audit", str(data), "--column",
         "text", "--target", "topic", "--report", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "single class" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()

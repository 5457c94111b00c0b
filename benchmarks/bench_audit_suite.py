"""The audit and active-learning tools on several real data sets, dev and held-out.

The sets (``bench_audit_data.py``) are embedded once with the bundled models
and cached; every tool then runs on those embeddings, so the whole suite
costs minutes on 2 CPU cores. Defaults were chosen on the DEV sets only;
HELD-OUT sets are reported, never tuned on.

Parts (all by default):

issues      10% of labels flipped to another class at known rows, 5 draws;
            out-of-fold probabilities of the probe (images: StandardScaler +
            LogisticRegression, texts: LogisticRegression; 5 folds). Precision
            / recall of ``is_issue`` for ``find_label_issues``' default (the
            probabilities and the embeddings' 10 nearest neighbours; the
            confident joint's count unless over twice the mixture's), the
            first round's (the same ranking, count = min(joint, mixture)), the
            old default (``n_neighbors=0``: the probabilities alone,
            confident learning's count), cleanlab 2.9's
            ``filter.find_label_issues`` (defaults) on the same
            probabilities, the default's ranking cut at the true count (an
            oracle count: what a perfect count would give) and random picks.
duplicates  copies planted in sets without copies of their own; pairs found.
duplicates-issue  the image sets with issue 34's own copies (crop 3% a side,
            resize x0.7, JPEG q50) instead of the suite's harsher random ones.
duplicates-cost  the image duplicates' cost on every image set's distinct
            crops together (digits left out): signatures, small copies and
            the comparisons with and without them; 2,000 blank pages; and
            inputs that make every pair a candidate (tiny noise patches,
            blank images of random colours): the default, without the
            bound on alignments, and round 5.
duplicates-photos  find_duplicates on 40 12-MP JPEGs, the signatures decoded
            in full and in draft mode (SIGNATURE_SIDE), best of 3.
outliers    rows of another set planted (2%) with random labels; and a varied
            class made of crops of 4 different photos.
active      2 labelled per class, 6 rounds of 2 x n_classes picks, 5 draws;
            held-out accuracy after each round (mean = area under the curve,
            and the last). Strategies: the default, margin, entropy, a core-set
            (k-center greedy on the embeddings, as small-text / modAL offer
            it) and random picks.

Run::

    PYTHONPATH=. python benchmarks/bench_audit_suite.py [issues] [duplicates] \\
        [duplicates-issue] [duplicates-cost] [duplicates-photos] [outliers] \\
        [active] [--sets NAME,NAME]

Writes ``benchmarks/results/audit_suite_<part>.json`` with every figure.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from bench_audit import flip  # noqa: E402  (the one label-flipping rule)
from bench_audit_data import DUPLICATES_ONLY, SETS, cached, features  # noqa: E402

from sktransfer.active import suggest_labels  # noqa: E402
from sktransfer.audit import (  # noqa: E402
    confident_count,
    issues_from_proba,
    mixture_count,
    neighbor_proba,
    out_of_fold_proba,
)

DRAWS = 5
RESULTS = Path(__file__).parent / "results"


def probe(modality):
    if modality == "image":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return LogisticRegression(max_iter=2000)


def mark(name):
    return f"{name} [{SETS[name][1]}]"


def label_issues(names):
    from cleanlab.filter import find_label_issues as cleanlab_find

    table = {}
    print("\nlabel issues: 10% flipped, 5 draws, mean precision / recall "
          "(flagged / true count)")
    for name in (n for n in names if n not in DUPLICATES_ONLY):
        X, y, _ = features(name)
        rows: dict[str, list] = {"default": [], "first round": [],
                                 "old default": [], "cleanlab": [],
                                 "oracle count": [], "random": []}
        accuracy = []
        for seed in range(DRAWS):
            noisy, truth = flip(y, 0.10, seed)
            head = probe(SETS[name][0])
            proba = cached(f"oof-{name}-0.1-{seed}", lambda head=head, X=X,
                           noisy=noisy: out_of_fold_proba(head, X, noisy)[0])
            classes = np.unique(y)
            accuracy.append(np.mean(classes[proba.argmax(1)] == y))
            frame = issues_from_proba(noisy, proba, classes, features=X)
            ours = frame.index[frame["is_issue"]].to_numpy()
            before = issues_from_proba(noisy, proba, classes, n_neighbors=0)
            old = before.index[before["is_issue"]].to_numpy()
            given = np.searchsorted(classes, noisy)
            theirs = np.flatnonzero(cleanlab_find(given, proba))
            oracle = frame.index[:len(truth)].to_numpy()
            # the first round's count: min(confident joint, mixture), same ranking
            given_k = np.searchsorted(classes, noisy)
            mixed = (proba + neighbor_proba(X, given_k, len(classes))) / 2
            first = frame.index[:min(
                confident_count(given_k, mixed),
                mixture_count(mixed[np.arange(len(y)), given_k]))].to_numpy()
            picks = np.random.default_rng(seed + 1000).choice(len(y), len(ours),
                                                              replace=False)
            for key, flagged in zip(rows, (ours, first, old, theirs, oracle, picks),
                                    strict=True):
                hits = len(set(flagged.tolist()) & set(truth.tolist()))
                rows[key].append((hits / max(len(flagged), 1), hits / len(truth),
                                  len(flagged) / len(truth)))
        table[name] = {"split": SETS[name][1], "n": len(y),
                       "classes": len(np.unique(y)),
                       "probe_accuracy": float(np.mean(accuracy)),
                       **{k: [float(v) for v in np.mean(r, axis=0)]
                          for k, r in rows.items()}}
        print(f"  {mark(name):28s} {len(y)} rows, {len(np.unique(y))} classes, "
              f"probe accuracy {np.mean(accuracy):.3f}")
        for key, values in rows.items():
            p, r, c = np.mean(values, axis=0)
            print(f"      {key:13s} {p:.3f} / {r:.3f}  (x{c:.2f})")
    return table


def coreset(features_pool, features_labelled, n):
    """k-center greedy (Sener & Savarese 2018): repeatedly the pool row
    farthest from everything labelled or picked."""
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    pool, known = unit(features_pool), unit(features_labelled)
    nearest = (1 - pool @ known.T).min(axis=1)
    picked = []
    for _ in range(n):
        i = int(np.argmax(nearest))
        picked.append(i)
        nearest = np.minimum(nearest, 1 - pool @ pool[i])
        nearest[picked] = -np.inf
    return np.asarray(picked)


STRATEGIES = ("auto", "representative", "margin", "entropy", "coreset", "random")


def active(names, strategies=STRATEGIES, rounds=6):
    table = {}
    print(f"\nactive learning: 2 labelled a class, {rounds} rounds of 2 x n_classes, "
          f"{DRAWS} draws; mean held-out accuracy over the rounds (last round)")
    for name in (n for n in names if n not in DUPLICATES_ONLY):
        X, y, _ = features(name)
        classes, sizes = np.unique(y, return_counts=True)
        if sizes.min() < 6:  # 2 to start with in the pool half, and a test half
            print(f"  {mark(name):28s} skipped: class {classes[sizes.argmin()]!r} "
                  f"has {sizes.min()} rows (2 labelled in a pool half need >= 6)")
            continue
        batch = 2 * len(classes)
        curves: dict[str, list] = {s: [] for s in strategies}
        for draw in range(DRAWS):
            pool, test = train_test_split(np.arange(len(y)), test_size=0.5,
                                          stratify=y, random_state=draw)
            rng = np.random.default_rng(draw)
            start = np.concatenate([rng.choice(pool[y[pool] == c], 2, replace=False)
                                    for c in classes])
            for strategy in strategies:
                labelled = list(start)
                curve = []
                for _ in range(rounds):
                    model = probe(SETS[name][0]).fit(X[labelled], y[labelled])
                    left = np.setdiff1d(pool, labelled)
                    if strategy == "coreset":
                        picked = coreset(X[left], X[labelled], batch)
                    else:
                        picked = suggest_labels(model, X[left], batch,
                                                strategy=strategy, random_state=draw)
                    labelled += list(left[picked])
                    model = probe(SETS[name][0]).fit(X[labelled], y[labelled])
                    curve.append(model.score(X[test], y[test]))
                curves[strategy].append(curve)
        table[name] = {"split": SETS[name][1], "batch": batch,
                       **{s: {"area": float(np.mean(c)),
                              "last": float(np.mean(np.asarray(c)[:, -1])),
                              "per_draw": [float(np.mean(d)) for d in c]}
                          for s, c in curves.items()}}
        line = "  ".join(f"{s} {table[name][s]['area']:.3f} "
                         f"({table[name][s]['last']:.3f})" for s in strategies)
        print(f"  {mark(name):28s} {line}", flush=True)
    if "random" in strategies:
        for split in ("dev", "held-out"):
            chosen = [n for n in names if SETS[n][1] == split and n in table]
            if chosen:
                gains = {s: np.mean([table[n][s]["area"] - table[n]["random"]["area"]
                                     for n in chosen]) for s in strategies}
                print(f"  mean gain over random, {split}: "
                      + "  ".join(f"{s} {g:+.3f}" for s, g in gains.items()))
    return table


def markdown():
    """The tables of RESULTS.md, from the JSON files the parts wrote."""
    def load(part):
        path = RESULTS / f"audit_suite_{part}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def pr(pair):
        return f"{pair[0]:.3f} / {pair[1]:.3f}"

    issues = load("issues")
    if issues:
        print("| set | split | rows, classes | probe acc. | default P / R (flagged "
              "/ true) | first round (min count) | old default | cleanlab P / R "
              "(flagged / true) | ranking cut at the true count | random |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
        for name, r in issues.items():
            print(f"| {name} | {r['split']} | {r['n']}, {r['classes']} | "
                  f"{r['probe_accuracy']:.3f} | {pr(r['default'])} "
                  f"(x{r['default'][2]:.2f}) | {pr(r['first round'])} "
                  f"(x{r['first round'][2]:.2f}) | {pr(r['old default'])} "
                  f"(x{r['old default'][2]:.2f}) | {pr(r['cleanlab'])} "
                  f"(x{r['cleanlab'][2]:.2f}) | {pr(r['oracle count'])} | "
                  f"{pr(r['random'])} |")
    for part in ("duplicates", "duplicates-issue"):
        duplicates = load(part)
        if duplicates:
            print(f"\n{part}:\n| set | split | rows (planted pairs) | "
                  "default P / R | round 5 (no rules for tiny or flat images) | "
                  "round 3 (no aligned pixels) | previous "
                  "default (no inner crop, 12 px thumbnails) | old default | "
                  "hash or n-grams alone | embeddings alone (>= 0.95) |\n"
                  "|---|---|---|---|---|---|---|---|---|---|")
            for name, r in duplicates.items():
                before = r.get("previous default")
                round3, round5 = r.get("round 3"), r.get("round 5")
                alone = r.get("pHash <= 10 bits") or r.get("n-grams >= 0.9")
                label = ("pHash <= 10 bits" if "pHash <= 10 bits" in r
                         else "n-grams >= 0.9")
                print(f"| {name} | {r['split']} | {r['rows']} ({r['planted']}) | "
                      f"{pr(r['default'])} | "
                      f"{pr(round5) if round5 else 'same'} | "
                      f"{pr(round3) if round3 else 'same'} | "
                      f"{pr(before) if before else 'same'} | "
                      f"{pr(r['old default']) if 'old default' in r else 'same'} | "
                      f"{pr(alone)} ({label}) | "
                      f"{pr(r['embeddings >= 0.95'])} |")
    outliers = load("outliers")
    if outliers:
        keys = [k for k in next(iter(outliers.values())) if k != "split"]
        print("\n| set | split | " + " | ".join(keys) + " |\n|---|---|"
              + "---|" * len(keys))
        for name, r in outliers.items():
            cells = [f"{r[k]['precision']:.2f} / {r[k]['recall']:.2f}, "
                     f"{r[k]['flagged']} flagged, worst class {r[k]['worst_class']:.2f}"
                     for k in keys]
            print(f"| {name} | {r['split']} | " + " | ".join(cells) + " |")
    active_table = load("active")
    if active_table:
        keys = [k for k in next(iter(active_table.values()))
                if k not in ("split", "batch")]
        print("\n| set | split | batch | " + " | ".join(keys)
              + " |\n|---|---|---|" + "---|" * len(keys))
        for name, r in active_table.items():
            print(f"| {name} | {r['split']} | {r['batch']} | " + " | ".join(
                f"{r[k]['area']:.3f} ({r[k]['last']:.3f})" for k in keys) + " |")


def main(argv):
    warnings.filterwarnings("ignore")
    if "--markdown" in argv:
        return markdown()
    names = list(SETS)
    if "--sets" in argv:
        names = argv[argv.index("--sets") + 1].split(",")
        argv = [a for a in argv if a not in ("--sets", ",".join(names))]
    parts = argv or ["issues", "duplicates", "outliers", "active"]
    started = time.perf_counter()
    for part in parts:
        if part == "issues":
            table = label_issues(names)
        elif part == "active":
            table = active(names)
        elif part == "duplicates":
            from bench_audit_copies import duplicates

            table = duplicates(names)
        elif part == "duplicates-issue":
            from bench_audit_copies import duplicates

            table = duplicates(names, issue_case=True)
        elif part == "duplicates-cost":
            from bench_audit_copies import duplicates_cost

            table = duplicates_cost(names)
        elif part == "duplicates-photos":
            from bench_audit_copies import duplicates_photos

            table = duplicates_photos()
        elif part == "outliers":
            from bench_audit_copies import outliers

            table = outliers(names)
        else:
            raise SystemExit(f"unknown part {part!r}")
        RESULTS.mkdir(exist_ok=True)
        if names == list(SETS):
            (RESULTS / f"audit_suite_{part}.json").write_text(
                json.dumps(table, indent=1))
    print(f"\n{time.perf_counter() - started:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} (shared 2-core machine)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Multi-label (tags), side by side with frozen features + one-vs-rest (issue 36).

Three data sets, each drawn twice: ``--draw 0`` is the dev draw (looked at
while building), ``--draw 1`` the held-out draw (run once, after). Any other
seed draws afresh; for ``images``, ``--draw 2`` and ``--draw 3`` are dev
draws too (the multi-label fine-tuning default was chosen on 0, 2 and 3):

- ``images``: ``load_photo_mosaics`` (2 x 2 mosaics of crops of 1-3 of the 8
  sample photos), train from the left 60% of each photo, test from the rest.
  Default ``FineTunedClassifier`` (tuned thresholds) vs
  ``PretrainedImageFeatures`` + ``OneVsRestClassifier(LogisticRegression)``.
- ``texts``: ``load_chatterbot_tags`` (one or two topics joined, 7 topics).
  Head-only ``FineTunedTextClassifier(freeze_depth="all")`` at its own
  thresholds vs frozen embeddings + one-vs-rest logistic regression at 0.5
  and at the best single threshold chosen ON THE TEST SET (an oracle).
- ``fewshot``: the same texts, about 5 training texts per label.
  ``FewShotTextClassifier`` (defaults) vs that oracle baseline and setfit
  1.2's one-vs-rest (``multi_target_strategy="one-vs-rest"``, its default
  ``TrainingArguments``; benchmark-only dependency, ``--setfit``).

Metric: micro-F1 on the test rows; fit seconds on the shared 2-core box.

    PYTHONPATH=. python benchmarks/bench_multilabel.py images texts --draw 0
    PYTHONPATH=.:/tmp/i36-setfit python benchmarks/bench_multilabel.py \\
        fewshot --setfit --draw 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier

from sktransfer._utils.multilabel import to_indicator
from sktransfer.datasets import load_chatterbot_tags, load_photo_mosaics


def micro(Y, P) -> float:
    return round(float(f1_score(Y, P, average="micro")), 4)


def oracle(Y, proba) -> tuple[float, float]:
    """The best single threshold for every label, chosen on the test set."""
    cuts = np.linspace(0.01, 0.99, 99)
    scores = [f1_score(Y, (proba >= c).astype(int), average="micro") for c in cuts]
    best = int(np.argmax(scores))
    return round(float(scores[best]), 4), round(float(cuts[best]), 2)


def ovr_lr():
    return OneVsRestClassifier(LogisticRegression(max_iter=2000))


def timed(fit):
    start = time.perf_counter()
    model = fit()
    return model, round(time.perf_counter() - start, 1)


def bench_images(draw: int) -> list[dict]:
    from sktransfer import FineTunedClassifier, PretrainedImageFeatures

    X, tags = load_photo_mosaics(160, 128, random_state=draw)
    X_test, tags_test = load_photo_mosaics(200, 128, split="test",
                                           random_state=100 + draw)
    clf, seconds = timed(lambda: FineTunedClassifier(random_state=draw).fit(X, tags))
    Y = to_indicator(tags, clf.classes_)
    Y_test = to_indicator(tags_test, clf.classes_)
    rows = [dict(data="images", method="FineTunedClassifier (default)",
                 micro_f1=micro(Y_test, clf.predict(X_test)), seconds=seconds)]
    features = PretrainedImageFeatures().fit(X)
    F, F_test = features.transform(X), features.transform(X_test)
    lr, seconds = timed(lambda: ovr_lr().fit(F, Y))
    proba = lr.predict_proba(F_test)
    rows.append(dict(data="images", method="frozen + OvR LR @0.5",
                     micro_f1=micro(Y_test, lr.predict(F_test)), seconds=seconds))
    rows.append(dict(data="images", method="frozen + OvR LR @oracle",
                     micro_f1=oracle(Y_test, proba)[0],
                     cut=oracle(Y_test, proba)[1]))
    return rows


def text_split(draw: int, n_train: int | None):
    texts, tags = load_chatterbot_tags(600, random_state=draw)
    names = sorted({t for row in tags for t in row})
    if n_train is None:  # 300 / 300
        return texts[:300], tags[:300], texts[300:], tags[300:], names
    chosen, counts = [], dict.fromkeys(names, 0)  # ~5 texts a label
    for i, row in enumerate(tags):
        if any(counts[t] < n_train for t in row):
            chosen.append(i)
            for t in row:
                counts[t] += 1
        if min(counts.values()) >= n_train:
            break
    rest = [i for i in range(len(texts)) if i not in set(chosen)][:300]
    return ([texts[i] for i in chosen], [tags[i] for i in chosen],
            [texts[i] for i in rest], [tags[i] for i in rest], names)


def frozen_rows(data, X, tags, X_test, Y_test, classes):
    from sktransfer import PretrainedTextEmbeddings

    embedder = PretrainedTextEmbeddings().fit(X)
    lr, seconds = timed(lambda: ovr_lr().fit(embedder.transform(X),
                                             to_indicator(tags, classes)))
    proba = lr.predict_proba(embedder.transform(X_test))
    score, cut = oracle(Y_test, proba)
    return [dict(data=data, method="frozen + OvR LR @0.5",
                 micro_f1=micro(Y_test, (proba >= 0.5).astype(int)),
                 seconds=seconds),
            dict(data=data, method="frozen + OvR LR @oracle", micro_f1=score,
                 cut=cut)]


def bench_texts(draw: int) -> list[dict]:
    from sktransfer import FineTunedTextClassifier

    X, tags, X_test, tags_test, names = text_split(draw, None)
    clf, seconds = timed(lambda: FineTunedTextClassifier(
        freeze_depth="all", random_state=draw).fit(X, tags))
    Y_test = to_indicator(tags_test, clf.classes_)
    rows = [dict(data="texts", method="FineTunedTextClassifier head-only",
                 micro_f1=micro(Y_test, clf.predict(X_test)), seconds=seconds)]
    return rows + frozen_rows("texts", X, tags, X_test, Y_test, clf.classes_)


def fit_setfit(X, tags, classes, seed):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from sktransfer.backbones import bundled_text_path

    model = SetFitModel.from_pretrained(bundled_text_path(),
                                        multi_target_strategy="one-vs-rest")
    Y = to_indicator(tags, classes)
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(seed=seed, output_dir=scratch, save_strategy="no")
        Trainer(model=model, args=args, train_dataset=Dataset.from_dict(
            {"text": list(X), "label": Y.tolist()})).train()
    return model


def bench_fewshot(draw: int, setfit: bool) -> list[dict]:
    from sktransfer import FewShotTextClassifier

    X, tags, X_test, tags_test, names = text_split(draw, 5)
    clf, seconds = timed(lambda: FewShotTextClassifier(random_state=draw).fit(
        X, tags))
    Y_test = to_indicator(tags_test, clf.classes_)
    rows = [dict(data="fewshot", method="FewShotTextClassifier", n_train=len(X),
                 micro_f1=micro(Y_test, clf.predict(X_test)), seconds=seconds)]
    rows += frozen_rows("fewshot", X, tags, X_test, Y_test, clf.classes_)
    if setfit:
        model, seconds = timed(lambda: fit_setfit(X, tags, clf.classes_, draw))
        predicted = np.asarray(model.predict(list(X_test)))
        rows.append(dict(data="fewshot", method="setfit one-vs-rest (default)",
                         micro_f1=micro(Y_test, predicted), seconds=seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", choices=["images", "texts", "fewshot"])
    parser.add_argument("--draw", type=int, default=0)
    parser.add_argument("--setfit", action="store_true")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    for name in args.sets:
        if name == "images":
            rows = bench_images(args.draw)
        elif name == "texts":
            rows = bench_texts(args.draw)
        else:
            rows = bench_fewshot(args.draw, args.setfit)
        for row in rows:
            row["draw"] = args.draw
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

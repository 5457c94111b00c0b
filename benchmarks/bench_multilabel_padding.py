"""Contrastive batches in length groups vs one padded forward (issue 36).

The few-shot multi-label fit of ``bench_multilabel.py fewshot`` (dev draw:
28 texts, defaults), once with the batches run through the encoder in length
groups (the current code) and once as one forward padded to the batch's
longest text (the code before), in one process, alternating:

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_multilabel_padding.py
"""

from __future__ import annotations

import json
import time

from bench_multilabel import micro, text_split

import sktransfer.fewshot._contrastive as contrastive
from sktransfer import FewShotTextClassifier
from sktransfer._utils.multilabel import to_indicator


def padded(module, tokens, lengths, rows, device):
    """The code before: one forward padded to the batch's longest text."""
    return module(**contrastive._trim(tokens, rows, device))


def main() -> None:
    X, tags, X_test, tags_test, _ = text_split(0, 5)
    grouped = contrastive._embed_batch
    for name, embed in (("one padded forward (before)", padded),
                        ("length groups", grouped)):
        contrastive._embed_batch = embed
        start = time.perf_counter()
        clf = FewShotTextClassifier(random_state=0).fit(X, tags)
        seconds = round(time.perf_counter() - start, 1)
        Y_test = to_indicator(tags_test, clf.classes_)
        print(json.dumps(dict(method=name, seconds=seconds,
                              micro_f1=micro(Y_test, clf.predict(X_test)))),
              flush=True)
    contrastive._embed_batch = grouped


if __name__ == "__main__":
    main()

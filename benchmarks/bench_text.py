"""PretrainedTextEmbeddings: throughput vs raw sentence-transformers, and the cache.

(P5) ``transform`` throughput / raw ``SentenceTransformer.encode`` throughput on
the same texts, batch size and device (target >= 0.95), and the wall time of
GridSearchCV(Pipeline[PretrainedTextEmbeddings, LogisticRegression], 3 C,
5 folds) without vs with the per-sample cache.

Texts are real: statements from the chatterbot English corpus.

    python benchmarks/bench_text.py [--n-texts 300] [--grid-texts 300] [--skip-grid]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from sktransfer.cache import clear_memory_cache  # noqa: E402
from sktransfer.datasets import load_chatterbot_topics  # noqa: E402
from sktransfer.text import PretrainedTextEmbeddings  # noqa: E402


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def throughput(args, texts) -> dict:
    """Seconds per pass for raw encode and transform: interleaved passes in a
    rotating order, so that load from other processes hits all alike."""
    ours = PretrainedTextEmbeddings(
        args.model, batch_size=args.batch_size, device=args.device, cache=False
    ).fit(texts[:2])
    cached = PretrainedTextEmbeddings(
        args.model, batch_size=args.batch_size, device=args.device
    ).fit(texts[:2])
    # The hand-written baseline: sentence-transformers itself, same weights.
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(
        ours.backbone_.data_config["source"], device=ours.device_,
        local_files_only=True,
    )

    def raw():
        st.encode(
            texts,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def cold_cache():
        clear_memory_cache()
        cached.transform(texts)

    runs = {
        "raw": raw,
        "transform (cache=False)": lambda: ours.transform(texts),
        "transform (cache=True, cold)": cold_cache,
    }
    raw()  # warm-up
    times = {name: [] for name in runs}
    names = list(runs)
    for i in range(args.repeats):
        for name in names[i % 3 :] + names[: i % 3]:
            times[name].append(seconds(runs[name]))
    return times


def grid_search(args, texts, labels) -> dict:
    times = {}
    for cache in (False, True):
        clear_memory_cache()
        pipe = make_pipeline(
            PretrainedTextEmbeddings(
                args.model, batch_size=args.batch_size, device=args.device, cache=cache
            ),
            LogisticRegression(max_iter=2000),
        )
        grid = GridSearchCV(
            pipe,
            {"logisticregression__C": [0.1, 1.0, 10.0]},
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
        )
        start = time.perf_counter()
        grid.fit(texts, labels)
        times[cache] = time.perf_counter() - start
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--n-texts", type=int, default=300)
    parser.add_argument("--grid-texts", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="throughput passes (interleaved); the best counts",
    )
    parser.add_argument("--skip-grid", action="store_true")
    args = parser.parse_args()

    all_texts, _ = load_chatterbot_topics(min_per_topic=1)
    texts = all_texts[: args.n_texts]
    rng = np.random.default_rng(0)
    topic_texts, topic_labels = load_chatterbot_topics(
        ["ai", "coding", "emotion", "literature", "psychology"]
    )
    pick = rng.permutation(len(topic_texts))[: args.grid_texts]
    grid_x = [topic_texts[i] for i in pick]
    grid_y = [topic_labels[i] for i in pick]

    print(
        f"# {platform.processor() or platform.machine()}, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}, "
        f"device {args.device}, model {args.model}, batch {args.batch_size}"
    )
    times = throughput(args, texts)
    raw_median, raw_best = np.median(times["raw"]), min(times["raw"])
    print(
        f"\n{'P5 throughput, ' + str(len(texts)) + ' texts':<32}"
        f"{'texts/s':>9}{'ratio (median)':>16}{'ratio (best)':>14}"
    )
    for name, values in times.items():
        median, best = np.median(values), min(values)
        print(
            f"{name:<32}{len(texts) / median:>9.1f}"
            f"{raw_median / median:>16.3f}{raw_best / best:>14.3f}"
        )

    if args.skip_grid:
        return
    grid = grid_search(args, grid_x, grid_y)
    print(f"\nGridSearchCV 5 folds x 3 C + refit, {len(grid_x)} texts")
    print(f"{'cache=False':<34}{grid[False]:>9.1f}s")
    print(f"{'cache=True':<34}{grid[True]:>9.1f}s")
    print(f"{'speed-up (uncached / cached)':<34}{grid[False] / grid[True]:>9.1f}x")


if __name__ == "__main__":
    main()

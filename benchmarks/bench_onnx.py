"""ONNX Runtime / eager torch on the CPU, as ratios measured in one process.

O1  EfficientNet-Lite0 (bundled): ``PretrainedImageFeatures(runtime="onnx")``'s
    runner / the torch runner (channels-last, ``inference_mode``) on the same
    preprocessed batches                                    (goal >= 1.8)
O2  all-MiniLM-L6-v2 (bundled): ``PretrainedTextEmbeddings(runtime="onnx")
    .transform`` / ``runtime="torch"`` on real texts, cache off
    (transformer + mean pooling + normalisation exported together)
                                                            (goal >= 1.2)
Both print the largest absolute difference of the outputs (goal <= 1e-4).
Runs are interleaved, alternating which goes first; best and median of the
paired ratios are reported. The export itself is cached on disk (first run
only).

    python benchmarks/bench_onnx.py
    python benchmarks/bench_onnx.py --repeats 7 --batches 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings


def paired(fn_a, fn_b, repeats):
    """Best and median of (time_b / time_a) over interleaved runs."""
    ratios, best_a, best_b = [], float("inf"), float("inf")
    for i in range(repeats):
        times = {}
        for which in (("a", "b") if i % 2 == 0 else ("b", "a")):
            start = time.perf_counter()
            (fn_a if which == "a" else fn_b)()
            times[which] = time.perf_counter() - start
        ratios.append(times["b"] / times["a"])
        best_a, best_b = min(best_a, times["a"]), min(best_b, times["b"])
    return best_b / best_a, statistics.median(ratios)


def image(repeats: int, batches: int, batch_size: int) -> None:
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    fitted = {runtime: PretrainedImageFeatures(
        "efficientnet_lite0", runtime=runtime, cache=False).fit(photos)
        for runtime in ("onnx", "torch")}
    assert fitted["onnx"].runtime_ == "onnx", "the export fell back to torch"
    preprocess = fitted["torch"].backbone_.preprocess
    from PIL import Image

    x = torch.stack([preprocess(Image.fromarray(photos[i % 4]))
                     for i in range(batch_size)])
    runners = {k: v.runner_ for k, v in fitted.items()}
    difference = np.abs(runners["onnx"].run({"images": x})
                        - runners["torch"].run({"images": x})).max()

    def run(name):
        return lambda: [runners[name].run({"images": x}) for _ in range(batches)]

    best, median = paired(run("onnx"), run("torch"), repeats)
    print(f"O1 efficientnet_lite0 batch {batch_size} x {batches}: onnx / torch "
          f"speed best {best:.2f}, median {median:.2f} (goal >= 1.8); "
          f"max abs difference {difference:.1e}")


def text(repeats: int) -> None:
    from sktransfer.datasets import load_chatterbot_topics

    texts, _ = load_chatterbot_topics()
    texts = texts[:512]
    fitted = {runtime: PretrainedTextEmbeddings(runtime=runtime, cache=False).fit(
        texts[:2]) for runtime in ("onnx", "torch")}
    assert fitted["onnx"].runtime_ == "onnx", "the export fell back to torch"
    difference = np.abs(fitted["onnx"].transform(texts)
                        - fitted["torch"].transform(texts)).max()
    best, median = paired(lambda: fitted["onnx"].transform(texts),
                          lambda: fitted["torch"].transform(texts), repeats)
    print(f"O2 all-MiniLM-L6-v2 {len(texts)} texts: onnx / torch speed best "
          f"{best:.2f}, median {median:.2f} (goal >= 1.2); max abs difference "
          f"{difference:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", choices=["image", "text"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.only != "text":
        image(args.repeats, args.batches, args.batch_size)
    if args.only != "image":
        text(args.repeats)


if __name__ == "__main__":
    main()

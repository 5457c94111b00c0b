"""Embedding folders of phone photos: decoding, overlap and runtime, as ratios.

D1  ``PretrainedImageFeatures("efficientnet_lite0").transform(paths)`` images/s
    on N 12-MP JPEGs (4032x3024) / the network's eager torch forward-only
    images/s on ready tensors, same process                   (goal >= 0.8)
D2  the same / a hand-written best-practice loop: PIL draft decoding,
    torchvision transform, ``torch.inference_mode``, one thread
D3  the same with ``fast_decode=False, runtime="torch"`` (the exact decode:
    what the package did before) / forward-only
D4  peak RSS transforming N 12-MP files (each N in a fresh subprocess)
                                                     (target <= 1.5 GB, flat)

The JPEGs are made from scikit-image photos upscaled with PIL, plus light noise
so that they weigh about 2 MB like camera files, in a temporary directory.

    python benchmarks/bench_decode.py                     # D1-D3, 24 files
    python benchmarks/bench_decode.py --n 48 --repeats 3
    python benchmarks/bench_decode.py --rss 24 240        # D4
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from sktransfer import PretrainedImageFeatures
from sktransfer.backbones import resolve_image_backbone

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry")


def make_phone_photos(directory: str, n: int, size=(4032, 3024)) -> list[str]:
    """``n`` 12-MP JPEGs from real photos (cycled), about 2 MB each."""
    from skimage import data

    noise = np.random.default_rng(0).normal(0, 4, (size[1], size[0], 1))
    noise = noise.astype(np.int16)
    bigs = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, 2)
        big = np.asarray(Image.fromarray(photo[..., :3]).resize(size, Image.BICUBIC))
        bigs.append(np.clip(big + noise, 0, 255).astype(np.uint8))
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"IMG_{i:04d}.jpg")
        if i < len(bigs):
            Image.fromarray(bigs[i]).save(path, quality=90)
        else:  # same bytes as an earlier file: decoding cost is what matters
            os.link(paths[i % len(bigs)], path)
        paths.append(path)
    return paths


def forward_only(backbone, n: int, batch_size: int) -> float:
    """Images/s of the eager torch forward pass on ready, preprocessed tensors."""
    module = backbone.module.eval().to(memory_format=torch.channels_last)
    size = backbone.data_config["input_size"]
    x = torch.randn(batch_size, *size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        module(x)
        start = time.perf_counter()
        for _ in range(-(-n // batch_size)):
            module(x)
    return -(-n // batch_size) * batch_size / (time.perf_counter() - start)


def best_practice(backbone, paths, batch_size: int) -> np.ndarray:
    """What a careful PyTorch user writes: draft decode, transform, batch."""
    module = backbone.module.eval().to(memory_format=torch.channels_last)
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            tensors = []
            for path in paths[start:start + batch_size]:
                with Image.open(path) as image:
                    image.draft("RGB", (256, 256))
                    tensors.append(backbone.preprocess(image.convert("RGB")))
            x = torch.stack(tensors).contiguous(memory_format=torch.channels_last)
            out.append(module(x).numpy())
    return np.concatenate(out)


def images_per_second(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def throughput(n: int, batch_size: int, repeats: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as directory:
        paths = make_phone_photos(directory, n)
        mb = np.mean([os.path.getsize(p) for p in paths]) / 1e6
        backbone = resolve_image_backbone("efficientnet_lite0")
        fast = PretrainedImageFeatures("efficientnet_lite0", batch_size=batch_size,
                                       cache=False).fit(paths[:1])
        exact = PretrainedImageFeatures("efficientnet_lite0", batch_size=batch_size,
                                        cache=False, fast_decode=False,
                                        runtime="torch").fit(paths[:1])
        rates = {"forward": [], "ours": [], "best": [], "exact": []}
        for _ in range(repeats):
            rates["forward"].append(forward_only(backbone, n, batch_size))
            rates["ours"].append(images_per_second(lambda: fast.transform(paths), n))
            rates["best"].append(images_per_second(
                lambda: best_practice(backbone, paths, batch_size), n))
            rates["exact"].append(images_per_second(lambda: exact.transform(paths), n))
        best = {key: max(values) for key, values in rates.items()}
        print(f"{n} JPEGs 4032x3024, {mb:.1f} MB each, batch {batch_size}, "
              f"runtime {fast.runtime_}; best of {repeats} (img/s): " +
              ", ".join(f"{k} {v:.1f}" for k, v in best.items()))
        ratio = best["ours"] / best["forward"]
        print(f"D1 sktransfer / eager forward-only: {ratio:.2f} (goal >= 0.8)")
        print(f"D2 sktransfer / hand-written draft loop: "
              f"{best['ours'] / best['best']:.2f}")
        print(f"D3 exact decode + torch / eager forward-only: "
              f"{best['exact'] / best['forward']:.2f}")


def rss(paths: list[str], batch_size: int) -> None:
    features = PretrainedImageFeatures("efficientnet_lite0", batch_size=batch_size,
                                       cache=False).fit(paths[:1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = features.transform(paths)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"D4 n={len(paths)} 12-MP files: peak RSS {peak:.0f} MB (before the "
          f"transform {before:.0f} MB), {seconds:.1f}s, output {out.shape} "
          f"(target <= 1500 MB, flat in n)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss", type=int, nargs="*", help="D4 for these N")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        paths = sorted(os.path.join(args.rss_child, name)
                       for name in os.listdir(args.rss_child))
        rss(paths, args.batch_size)
    elif args.rss:
        with tempfile.TemporaryDirectory() as directory:
            paths = make_phone_photos(directory, max(args.rss))
            for n in args.rss:  # a fresh process each: ru_maxrss is per process
                subset = os.path.join(directory, f"first{n}")
                os.mkdir(subset)
                for path in paths[:n]:
                    os.link(path, os.path.join(subset, os.path.basename(path)))
                subprocess.run([sys.executable, __file__, "--rss-child", subset,
                                "--batch-size", str(args.batch_size)], check=True)
    else:
        throughput(args.n, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()

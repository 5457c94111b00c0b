"""The ``sktransfer`` command: demo, fit, predict, models, embed, audit.

Every expected failure (a missing path, an empty class folder, unreadable
images, a CSV without the named column, a model spec that does not resolve, a
missing optional dependency, a file that is not a sktransfer model, a pickle
without ``--trust-pickle``) raises one of the package's own exceptions
(``sktransfer.exceptions.SktransferError``), printed as one
``sktransfer: error: ...`` line with exit status 2. Anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from sktransfer.cli._options import add_model_options, add_runtime_options
    from sktransfer.cli._rank import add_rank_arguments

    parser = argparse.ArgumentParser(
        prog="sktransfer",
        description="Transfer learning with pretrained networks, the "
                    "scikit-learn way.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="transfer vs from-scratch on bundled "
                                       "models and data")
    demo.add_argument("--quick", action="store_true",
                      help="smaller data and fewer epochs (< 3 minutes on 2 CPUs)")
    demo.add_argument("--modality", choices=["image", "text", "all"], default="all")
    demo.add_argument("--out", default="sktransfer-output",
                      help="folder for the tables and learning-curve PNGs")

    fit = sub.add_parser("fit", help="cross-validate and fit a model on DATA")
    fit.add_argument("data", nargs="?",  # none: fit --zero-shot --labels
                     help="an image folder with one sub-folder per class, "
                          "or a CSV / parquet table (a column of texts "
                          "or of image paths, and a --target column)")
    add_model_options(fit)
    fit.add_argument("--column", "--text-column", dest="text_column",
                     help="table column holding the texts, or the image paths "
                          "(relative to the CSV's folder)")
    fit.add_argument("--target", help="table column holding the labels")
    fit.add_argument("--label-sep", default=None, metavar="SEP",
                     help="tags: each --target cell holds several labels "
                          "separated by SEP (e.g. '|'); a multi-label model "
                          "with per-label thresholds is fitted")
    fit.add_argument("--finetune", action="store_true",
                     help="fine-tune the network instead of frozen features")
    fit.add_argument("--freeze-depth", default="-2",
                     help="with --finetune: blocks to freeze (int or 'all')")
    fit.add_argument("--max-epochs", type=int, default=5)
    fit.add_argument("--image-size", type=int, default=None)
    fit.add_argument("--cv", type=int, default=5)
    fit.add_argument("--out", default="model.skt",
                     help="the model file to write (sktransfer.save format: "
                          "no pickle)")
    fit.add_argument("--task", choices=["auto", "classification", "regression"],
                     default="auto",
                     help="auto: as scikit-learn's type_of_target reads the CSV "
                          "target: non-integer numbers are regression; integers "
                          "(class ids), labels and image folders are "
                          "classification")
    fit.add_argument("--report", nargs="?", const="", metavar="DIR",
                     help="write DIR/report.html (metrics, plots, worst "
                          "examples; DIR defaults to <out>.report)")
    fit.add_argument("--open", action="store_true",
                     help="open the report in a browser (implies --report)")

    from sktransfer.cli._fewshot import add_fewshot_arguments

    add_fewshot_arguments(fit)

    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model_file", help="a file written by sktransfer.save "
                                            "or 'sktransfer fit'")
    predict.add_argument("inputs", nargs="+",
                         help="image files or folders, or one CSV / parquet "
                              "table (a column of texts or image paths)")
    predict.add_argument("--output", help="write a CSV instead of printing")
    predict.add_argument("--column", "--text-column", dest="column",
                         help="the table column to predict on (default: the one "
                              "'sktransfer fit' was given, else the table's only "
                              "column, else 'text' for a text model and 'path', "
                              "'image' or 'file' for an image model)")
    predict.add_argument("--trust-pickle", action="store_true",
                         help="also accept a pickle/joblib model file; loading one "
                              "runs whatever code it holds: only for files you "
                              "trust")

    for command in (fit, predict):
        add_runtime_options(command)

    models = sub.add_parser("models", help="model specs, block counts, offline "
                                           "availability; --rank DATA ranks them")
    add_rank_arguments(models)

    from sktransfer.cli.embed import add_embed_parser

    add_embed_parser(sub)
    from sktransfer.cli.audit import add_audit_parser  # issue 24

    add_audit_parser(sub)

    from sktransfer.cli.export import add_export_parser

    add_export_parser(sub)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    # one module per command: sktransfer/cli/<command>.py defines run_<command>
    command = import_module(f"sktransfer.cli.{args.command}")
    handler = getattr(command, f"run_{args.command}")
    try:
        handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sktransfer.exceptions import SktransferError

        # one family: sklearn's own parameter errors are converted where the
        # CLI checks a pipeline's steps (cli.fit.check_params); anything else
        # escaping a command is a bug and keeps its traceback
        if not isinstance(exc, SktransferError):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"sktransfer: error: {message}", file=sys.stderr)
        return 2
    return 0

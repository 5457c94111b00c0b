"""``sktransfer models --rank DATA``: rank the offline models (and layers) for
DATA, read as ``sktransfer fit`` reads it. Imports nothing heavy until used."""

from __future__ import annotations

__all__ = ["add_rank_arguments", "run_rank"]


def add_rank_arguments(parser) -> None:
    """The ``--rank`` options of the ``models`` subcommand."""
    parser.add_argument("--rank", metavar="DATA",
                        help="rank the models that resolve offline for DATA (an "
                             "image folder with one sub-folder per class, or a CSV "
                             "with --column and --target), best first")
    parser.add_argument("--column", "--text-column", dest="text_column",
                        help="with --rank: the CSV column of texts or image paths")
    parser.add_argument("--target", help="with --rank: the CSV column of labels "
                                         "(numbers that are not whole: regression)")
    parser.add_argument("--layers", action="store_true",
                        help="with --rank: also rank earlier layers of each network")
    parser.add_argument("--cv", type=int, default=5,
                        help="with --rank: folds of the probe (default: 5)")
    parser.add_argument("--metric", choices=["auto", "logme", "probe"],
                        default="auto", help="with --rank: what the score is "
                                             "(default: auto, by size)")


def run_rank(args) -> bool:
    """Print the ranking when ``--rank`` is given; False when it is not."""
    from sktransfer.exceptions import CLIError

    if args.rank is None:
        given = [flag for flag, value in (("--column", args.text_column),
                                          ("--target", args.target),
                                          ("--layers", args.layers),
                                          ("--cv", args.cv != 5)) if value]
        if given:
            raise CLIError(f"{', '.join(given)} only apply with --rank DATA")
        return False
    from sktransfer.cli._inputs import load_training_data, resolve_task
    from sktransfer.select import default_candidates, rank_models

    args.data, args.task = args.rank, "auto"
    X, y, modality = load_training_data(args)
    task, y = resolve_task(args, y)
    if task != "regression" and y.dtype.kind == "f":
        y = y.astype(str)  # whole-number class ids read as floats
    candidates = default_candidates(modality, layers=args.layers)
    table = rank_models(X, y, candidates, metric=args.metric, cv=args.cv,
                        modality=modality)
    print(table.round(4).to_string())
    return True

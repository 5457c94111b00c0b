"""``sktransfer fit`` for few labels or none: ``--few-shot``, ``--zero-shot``.

Hooked into the ``fit`` parser by ``add_fewshot_arguments``; the fit command
asks ``fewshot_estimator`` for its estimator and ``fit_label_names_only``
whether the call needs no data at all::

    sktransfer fit texts.csv --column text --target label --few-shot
    sktransfer fit texts.csv --column text --target label --zero-shot
    sktransfer fit --zero-shot --labels sports,cooking,politics --out m.skt
    sktransfer predict m.skt new.csv --column text
"""

from __future__ import annotations

from sktransfer.backbones import BUNDLED_TEXT
from sktransfer.exceptions import CLIError

__all__ = ["add_fewshot_arguments", "fewshot_estimator", "fit_label_names_only"]


def add_fewshot_arguments(fit) -> None:
    """The options of ``fit`` for the few-shot and zero-shot classifiers."""
    group = fit.add_argument_group("few labels or none (text)")
    modes = group.add_mutually_exclusive_group()
    modes.add_argument("--few-shot", action="store_true",
                       help="FewShotTextClassifier: contrastive tuning of the "
                            "sentence encoder, then logistic regression (and the "
                            "class names when they are words)")
    modes.add_argument("--zero-shot", action="store_true",
                       help="ZeroShotTextClassifier: similarity to each class's "
                            "description, blended with the examples when DATA "
                            "is given; without DATA, --labels names the classes")
    group.add_argument("--labels", metavar="A,B,...",
                       help="with --zero-shot and no DATA: the class names, "
                            "comma-separated")
    group.add_argument("--template", default="This is about {}.",
                       help="with --zero-shot: the sentence a label name goes in "
                            "(default: %(default)r)")


def fewshot_estimator(args, modality: str, task: str):
    """The estimator ``--few-shot`` / ``--zero-shot`` asks for, or None."""
    few, zero = getattr(args, "few_shot", False), getattr(args, "zero_shot", False)
    if not (few or zero):
        return None
    flag = "--few-shot" if few else "--zero-shot"
    if modality != "text" or task != "classification":
        raise CLIError(f"{flag} classifies texts: give a CSV with --column and a "
                       f"--target of class labels (got {modality} {task})")
    if getattr(args, "finetune", False):
        raise CLIError(f"{flag} and --finetune are two different estimators: "
                       f"pick one")
    model = args.model or BUNDLED_TEXT
    import sktransfer as skt

    if few:
        return skt.FewShotTextClassifier(model, random_state=0)
    labels = _labels(args) if args.labels else None
    return skt.ZeroShotTextClassifier(labels, template=args.template, model=model)


def fit_label_names_only(args, save) -> bool:
    """``fit --zero-shot --labels ...`` without DATA: fit, save, say so; True.

    False when DATA is given (the usual fit runs). ``save(estimator, out,
    metadata)`` writes the model file as ``sktransfer fit`` does.
    """
    if args.data is not None:
        if getattr(args, "labels", None) and not getattr(args, "zero_shot", False):
            raise CLIError("--labels goes with --zero-shot")
        return False
    if not (getattr(args, "zero_shot", False) and args.labels):
        raise CLIError("sktransfer fit needs DATA (an image folder or a CSV), "
                       "unless it is 'fit --zero-shot --labels A,B,...'")
    import sktransfer as skt

    labels = _labels(args)
    model = skt.ZeroShotTextClassifier(
        labels, template=args.template,
        model=args.model or BUNDLED_TEXT).fit()
    save(model, args.out, {"modality": "text", "text_column": args.text_column,
                           "task": "classification"})
    print(f"saved a zero-shot text model ({len(labels)} classes: "
          f"{', '.join(labels)}) to {args.out}")
    return True


def _labels(args) -> list[str]:
    labels = [label.strip() for label in args.labels.split(",")]
    if len(labels) < 2:
        raise CLIError(f"--labels {args.labels!r} names {len(labels)} class: a "
                       f"classifier needs at least 2, comma-separated")
    return labels

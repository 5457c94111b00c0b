"""Class names as text: which labels are words, their checks and templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sktransfer.exceptions import InvalidInputError, ParameterError

__all__ = [
    "DEFAULT_TEMPLATE",
    "check_template",
    "describe",
    "label_descriptions",
    "label_name",
    "labels_are_words",
    "resolve_use_label_names",
]

#: How a label name becomes a sentence to embed (``{}``: the name).
DEFAULT_TEMPLATE = "This is about {}."


def label_name(label) -> str:
    """The words of a label: ``"tech_support"`` -> ``"tech support"``."""
    return " ".join(str(label).replace("_", " ").split())


def _is_number(label) -> bool:
    if isinstance(label, (bool, np.bool_, int, float, np.integer, np.floating)):
        return True
    try:
        float(str(label))
    except ValueError:
        return False
    return True


def labels_are_words(classes: Sequence) -> bool:
    """Whether every label is a string that is not a number (``"3"`` is one)."""
    return all(isinstance(c, str) and not _is_number(c) for c in classes)


def check_names(labels: Sequence, what: str, error=ParameterError) -> None:
    """Refuse an empty label name and two labels with the same name.

    ``"Sports"`` and ``"sports "`` (or ``"tech_support"`` and ``"tech
    support"``) would embed as the same sentence, so they are duplicates.
    """
    seen: dict[str, object] = {}
    for label in labels:
        name = label_name(label)
        if not name:
            raise error(
                f"{what} holds the empty label name {label!r}: every label needs "
                f"at least one visible character to be described"
            )
        key = name.casefold()
        if key in seen:
            same = "twice" if seen[key] == label else f"and {seen[key]!r}"
            raise error(
                f"{what} holds the label {label!r} {same}: labels must be "
                f"distinct names (compared without case, spaces and '_')"
            )
        seen[key] = label


def resolve_use_label_names(use, classes: Sequence) -> bool:
    """``use_label_names`` ("auto", True, False) for these classes."""
    if use == "auto":
        words = labels_are_words(classes)
    elif use is True:
        numbers = [c for c in classes if not labels_are_words([c])]
        if numbers:
            raise ParameterError(
                f"use_label_names=True but the label {numbers[0]!r} is a number "
                f"or id, not a name; use words as labels (e.g. 'sports'), or "
                f"use_label_names='auto' / False"
            )
        words = True
    else:
        words = False
    if words:
        check_names(classes, "y", InvalidInputError)
    return words


def check_template(template) -> None:
    """A template must be a str holding one ``{}``."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ParameterError(
            f"template={template!r} must be a str with exactly one '{{}}' where "
            f"the label name goes, e.g. {DEFAULT_TEMPLATE!r}"
        )


def describe(label, template: str) -> str:
    """The sentence that stands for ``label``."""
    return template.replace("{}", label_name(label))


def label_descriptions(labels, template: str) -> tuple[list, list[str]]:
    """``(labels, sentences)`` from a list of labels or a dict label -> text.

    A dict's values are used as written (no template); a list goes through
    ``template``.
    """
    if isinstance(labels, Mapping):
        keys = list(labels)
        check_names(keys, "labels")
        texts = []
        for key in keys:
            text = labels[key]
            if not isinstance(text, str) or not text.strip():
                raise ParameterError(
                    f"labels[{key!r}] is {text!r}: a description must be a "
                    f"non-empty str"
                )
            texts.append(text)
        return keys, texts
    if isinstance(labels, str) or not isinstance(labels, Sequence | np.ndarray):
        raise ParameterError(
            f"labels={labels!r} must be a list of label names or a dict "
            f"label -> description"
        )
    keys = list(labels)
    check_names(keys, "labels")
    return keys, [describe(key, template) for key in keys]

"""Few labels or none: text classifiers that also read the class names.

``FewShotTextClassifier`` tunes a sentence encoder contrastively on a few
labelled texts (SetFit's recipe) and fits a scikit-learn head on it;
``ZeroShotTextClassifier`` classifies by similarity to a description of each
label, and blends in labelled examples when it is given some. See
docs/fewshot.md.
"""

from sktransfer.fewshot import _persist  # noqa: F401 - registers its save/load hooks
from sktransfer.fewshot._classifier import FewShotTextClassifier
from sktransfer.fewshot._zeroshot import ZeroShotTextClassifier

__all__ = ["FewShotTextClassifier", "ZeroShotTextClassifier"]

"""Text classification: TF-IDF vs frozen MiniLM embeddings vs fine-tuned MiniLM.

Topic-labelled statements from chatterbot-corpus, the bundled all-MiniLM-L6-v2,
offline. Same cross-validation folds for every model (sktransfer.evaluate).

Run: ``python examples/text_classification.py``
"""

import numpy as np

from sktransfer.datasets import load_chatterbot_topics
from sktransfer.evaluate import compare, format_table, text_candidates

texts, labels = load_chatterbot_topics(["ai", "coding", "emotion", "psychology"])
rng = np.random.default_rng(0)
keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(np.asarray(labels) == t))
                               [:40] for t in sorted(set(labels))]))
texts, labels = [texts[i] for i in keep], np.asarray(labels)[keep]

table = compare(texts, labels, text_candidates(max_epochs=4), cv=3, progress=True)
print(format_table(table))

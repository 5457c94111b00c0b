"""
What to label next: an active-learning curve against random picks
=================================================================

``sktransfer.active.suggest_labels(model, X_pool, n)`` asks a fitted model
which ``n`` unlabelled rows are worth labelling next. Here it is used as in a
real labelling loop, on chatterbot-corpus statements in seven topics with
frozen all-MiniLM-L6-v2 embeddings and a logistic regression: start from two
labelled statements a topic, then in each round label the rows it suggests
(the "labelling" reads the known topic), refit, and measure accuracy on
held-out statements. The same loop with random picks is the baseline.

Run: ``python examples/active_learning.py``
"""

# %%
# The data: 300 held-out statements for the test, the rest is the pool. The
# embeddings are computed once (the embedder's per-sample cache) and reused by
# every fit and every suggestion.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedTextEmbeddings
from sktransfer.active import suggest_labels
from sktransfer.datasets import load_chatterbot_topics

texts, labels = load_chatterbot_topics()
texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
topics = sorted(set(labels))
order = np.random.default_rng(0).permutation(len(texts))
test, pool = order[:300], order[300:]
X_test, y_test = texts[test].tolist(), labels[test]
model = make_pipeline(PretrainedTextEmbeddings(), StandardScaler(),
                      LogisticRegression(max_iter=2000))
model[0].fit(texts.tolist()).transform(texts.tolist())  # embed everything once
print(f"{len(topics)} topics, pool of {len(pool)} statements, {len(test)} for the test")

# %%
# The loop: 6 rounds of 14 labels after the first 14 (two a topic), for the
# default strategy and for random picks, each from five different starting
# sets.
n_rounds, batch = 6, 14


def labelling_run(strategy, seed):
    rng = np.random.default_rng(seed)
    labelled = [int(i) for t in topics
                for i in rng.choice(pool[labels[pool] == t], 2, replace=False)]
    curve = []
    for _ in range(n_rounds + 1):
        model.fit(texts[labelled].tolist(), labels[labelled])
        curve.append(model.score(X_test, y_test))
        unlabelled = np.setdiff1d(pool, labelled)
        if strategy == "random":
            picks = rng.choice(len(unlabelled), size=batch, replace=False)
        else:
            picks = suggest_labels(model, texts[unlabelled].tolist(), batch,
                                   random_state=seed)
        labelled += unlabelled[picks].tolist()
    return curve


seeds = [0, 1, 2, 3, 4]
curves = {name: np.array([labelling_run(strategy, s) for s in seeds])
          for name, strategy in (("suggest_labels (default strategy)", "auto"),
                                 ("random picks", "random"))}
n_labels = 2 * len(topics) + batch * np.arange(n_rounds + 1)
for name, values in curves.items():
    print(f"{name:35s}", " ".join(f"{v:.3f}" for v in values.mean(axis=0)),
          f"(mean over rounds {values.mean():.3f})")

# %%
# Held-out accuracy against the number of labelled statements (mean of five
# starting sets, band: their range). Both loops start from the same 14
# labels. From the second round on, the rows the model asked for teach it
# more than random rows do: when this was written, about 0.02 more accuracy
# on average over the rounds, the same accuracy reached with 14 to 28 fewer
# labels. The gain is real but modest on these short chatterbot statements;
# docs/audit.md compares the strategies (margin, entropy, the default) with
# random picks on the benchmark data sets.
fig, ax = plt.subplots(figsize=(6.5, 4))
for k, (name, values) in enumerate(curves.items()):
    ax.plot(n_labels, values.mean(axis=0), marker="o", color=f"C{k}",
            label=f"{name}, mean {values.mean():.3f}")
    ax.fill_between(n_labels, values.min(axis=0), values.max(axis=0),
                    color=f"C{k}", alpha=0.2)
ax.set_xlabel("labelled statements")
ax.set_ylabel("held-out accuracy (300 statements)")
ax.set_title("chatterbot topics, 7 classes, frozen MiniLM + logistic regression")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

"""
Classical adapters and choosing hyperparameters without target labels
=====================================================================

The numbers behind docs/adapt.md ("Classical estimators" and "Choosing
hyperparameters without target labels") on the blurred-digits shift: target
accuracy of logistic regression on pixels / 16 after kernel mean matching,
subspace alignment and transfer component analysis; TrAdaBoost with a few
labelled target rows; and which ``eps`` of ``CORALClassifier`` each label-free
scorer picks in ``GridSearchCV``.

Run: ``python examples/adapt_classical.py``
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from _digit_domains import load_domains  # examples/_digit_domains.py
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer.adapt import (
    CORALClassifier,
    KernelMeanMatchingClassifier,
    SubspaceAlignment,
    TrAdaBoostClassifier,
    TransferComponentAnalysis,
    make_adaptation_scorer,
)

warnings.simplefilter("ignore")


def lr(C=1.0):
    return LogisticRegression(C=C, max_iter=1000)


images_s, ys, images_t, yt = load_domains()
Xs = images_s.reshape(len(images_s), -1) / 16
Xt = images_t.reshape(len(images_t), -1) / 16
X, y = np.r_[Xs, Xt], np.r_[ys, -np.ones(len(Xt), dtype=int)]  # -1: unlabelled

# %%
# Unlabelled target rows: each adapter sees them in ``fit``.
scores = {"source only": lr().fit(Xs, ys).score(Xt, yt)}
scores["KMM (rbf)"] = KernelMeanMatchingClassifier().fit(X, y).score(Xt, yt)
sa = SubspaceAlignment(30).fit(X, y)
Zt = sa.transform(Xt, sample_domain=np.full(len(Xt), -2))
scores["subspace alignment, d=30"] = lr().fit(sa.transform(Xs), ys).score(Zt, yt)
for mu in (1.0, 100.0):  # mu trades alignment against variance
    tca = TransferComponentAnalysis(30, mu=mu).fit(X, y)
    scores[f"TCA, 30 components, mu={mu:g}"] = lr().fit(
        tca.transform(Xs), ys).score(tca.transform(Xt), yt)
for name, score in scores.items():
    print(f"{name:40s} {score:.3f}")

# %%
# 60 labelled target rows (tested on 497 others), marked by ``sample_domain``.
train = np.random.RandomState(0).choice(400, 60, replace=False)
Xf, yf, X_test, y_test = Xt[train], yt[train], Xt[400:], yt[400:]
pooled_X, pooled_y = np.r_[Xs, Xf], np.r_[ys, yf]
domain = np.r_[np.ones(len(Xs)), -2 * np.ones(60)]  # skada: 1 / -2
few = {"target only": lr().fit(Xf, yf).score(X_test, y_test),
       "source + target pooled": lr().fit(pooled_X, pooled_y).score(X_test, y_test)}
boost = TrAdaBoostClassifier(n_estimators=10).fit(pooled_X, pooled_y,
                                                  sample_domain=domain)
few["TrAdaBoost, 10 rounds"] = boost.score(X_test, y_test)
for name, score in few.items():
    print(f"{name:40s} {score:.3f}")

# %%
# Choosing ``eps`` of ``CORALClassifier`` without target labels: each scorer
# of ``make_adaptation_scorer`` drives a ``GridSearchCV``; the true target
# accuracy of every ``eps`` is shown for reference.
rng = np.random.RandomState(1)
si, ti = rng.choice(900, 300, replace=False), rng.choice(len(Xt), 300, False)
Xsub = np.r_[Xs[si], Xt[ti]]
ysub = np.r_[ys[si], -np.ones(300, dtype=int)]
grid = [0.001, 0.01, 0.1, 1.0, 10.0]
truth = {e: CORALClassifier(lr(10.0), eps=e).fit(Xsub, ysub).score(Xt, yt)
         for e in grid}
picks = {}
for name in ("entropy", "snd", "iwcv"):
    search = GridSearchCV(CORALClassifier(lr(10.0)), {"eps": grid},
                          scoring=make_adaptation_scorer(name),
                          cv=StratifiedKFold(2, shuffle=True, random_state=0))
    picks[name] = search.fit(Xsub, ysub).best_params_["eps"]
    eps = picks[name]
    print(f"{name}: picks eps={eps:g}, target accuracy {truth[eps]:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
left.barh(list(scores) + list(few), list(scores.values()) + list(few.values()),
          color=["C0"] * len(scores) + ["C2"] * len(few))
left.invert_yaxis()
left.set_xlim(0, 1)
left.set_xlabel("target accuracy")
left.set_title("blue: unlabelled target; green: 60 target labels", fontsize=9)
right.semilogx(grid, [truth[e] for e in grid], marker="o", color="k",
               label="true target accuracy")
for k, (name, eps) in enumerate(picks.items()):
    right.axvline(eps, color=f"C{k + 3}", linestyle="--", label=f"{name} picks")
right.set_xlabel("CORAL eps")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

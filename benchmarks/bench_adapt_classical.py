"""Classical adapters and unsupervised model selection on two digits shifts.

Prints the numbers of docs/adapt.md ("Classical estimators" and "Choosing
hyperparameters without target labels"): target accuracy of logistic
regression on pixels / 16 after each adapter, and which ``eps`` of
``CORALClassifier`` each unsupervised scorer picks in ``GridSearchCV``.

Run: ``python benchmarks/bench_adapt_classical.py`` (about a minute on 2 CPU
cores; set ``OMP_NUM_THREADS=1`` on a shared machine). The gallery example
``examples/adapt_classical.py`` runs a shorter subset of it, with figures.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer.adapt import (
    CORALClassifier,
    ImportanceWeightedClassifier,
    KernelMeanMatchingClassifier,
    SubspaceAlignment,
    TrAdaBoostClassifier,
    TransferComponentAnalysis,
    make_adaptation_scorer,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _digit_domains import load_domains  # noqa: E402  (examples/_digit_domains.py)


def lr(C=1.0):
    return LogisticRegression(C=C, max_iter=1000)


def row(name, value):
    print(f"{name:<52} {value:.3f}", flush=True)


def unlabelled(Xs, ys, Xt):
    return np.r_[Xs, Xt], np.r_[ys, -np.ones(len(Xt), dtype=int)]


def blur_unsupervised(Xs, ys, Xt, yt):
    print("-- blur, unlabelled target (900 source, 897 target)")
    X, y = unlabelled(Xs, ys, Xt)
    row("source only", lr().fit(Xs, ys).score(Xt, yt))
    row("KMM (rbf, B=1000)", KernelMeanMatchingClassifier().fit(X, y).score(Xt, yt))
    for d in (20, 30, 40):
        sa = SubspaceAlignment(d).fit(X, y)
        Zt = sa.transform(Xt, sample_domain=np.full(len(Xt), -2))
        row(f"subspace alignment d={d}", lr().fit(sa.transform(Xs), ys).score(Zt, yt))
    for mu in (1.0, 10.0, 100.0, 1000.0):
        tca = TransferComponentAnalysis(30, mu=mu).fit(X, y)
        score = lr().fit(tca.transform(Xs), ys).score(tca.transform(Xt), yt)
        row(f"TCA linear, 30 components, mu={mu:g}", score)


def blur_few_labels(Xs, ys, Xt, yt):
    print("-- blur, 60 labelled target rows, tested on 497 other target rows")
    train = np.random.RandomState(0).choice(400, 60, replace=False)
    Xf, yf, X_test, y_test = Xt[train], yt[train], Xt[400:], yt[400:]
    X, y = np.r_[Xs, Xf], np.r_[ys, yf]
    domain = np.r_[np.ones(len(Xs)), -2 * np.ones(60)]  # skada: 1 / -2
    row("source only", lr().fit(Xs, ys).score(X_test, y_test))
    row("target only", lr().fit(Xf, yf).score(X_test, y_test))
    row("source + target pooled", lr().fit(X, y).score(X_test, y_test))
    for n in (10, 20):
        model = TrAdaBoostClassifier(n_estimators=n).fit(X, y, sample_domain=domain)
        row(f"TrAdaBoost N={n}", model.score(X_test, y_test))


def ink_bias(seeds=(0, 1, 2), C=0.01):
    print(f"-- ink-bias selection shift, LogisticRegression(C={C}), seeds {seeds}")
    digits = load_digits()
    X, y = digits.data / 16, digits.target
    ink = X.sum(axis=1)
    p_source = 1 / (1 + np.exp(0.4 * (ink - np.median(ink))))
    for seed in seeds:
        s = np.random.RandomState(seed).rand(len(y)) < p_source
        Xs, ys, Xt, yt = X[s], y[s], X[~s], y[~s]
        Xc, yc = unlabelled(Xs, ys, Xt)
        row(f"seed {seed}: source only", lr(C).fit(Xs, ys).score(Xt, yt))
        iw = ImportanceWeightedClassifier(lr(C)).fit(Xc, yc)
        row(f"seed {seed}: importance weighting", iw.score(Xt, yt))
        kmm = KernelMeanMatchingClassifier(lr(C)).fit(Xc, yc)
        row(f"seed {seed}: KMM", kmm.score(Xt, yt))


def scorer_picks(Xs, ys, Xt, yt):
    print("-- eps of CORALClassifier(LogisticRegression(C=10)) picked without labels")
    rng = np.random.RandomState(1)
    si, ti = rng.choice(900, 300, replace=False), rng.choice(len(Xt), 300, False)
    X, y = unlabelled(Xs[si], ys[si], Xt[ti])
    grid = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    truth = {e: CORALClassifier(lr(10.0), eps=e).fit(X, y).score(Xt, yt) for e in grid}
    print("true target accuracy per eps:", {e: round(a, 3) for e, a in truth.items()})
    for name in ("entropy", "snd", "dev", "iwcv"):
        search = GridSearchCV(
            CORALClassifier(lr(10.0)),
            {"eps": grid},
            scoring=make_adaptation_scorer(name),
            cv=StratifiedKFold(2, shuffle=True, random_state=0),
        ).fit(X, y)
        eps = search.best_params_["eps"]
        row(f"{name}: picks eps={eps:g}, target accuracy", truth[eps])


def main():
    warnings.simplefilter("ignore")
    images_s, ys, images_t, yt = load_domains()
    Xs = images_s.reshape(len(images_s), -1) / 16
    Xt = images_t.reshape(len(images_t), -1) / 16
    blur_unsupervised(Xs, ys, Xt, yt)
    blur_few_labels(Xs, ys, Xt, yt)
    ink_bias()
    scorer_picks(Xs, ys, Xt, yt)


if __name__ == "__main__":
    main()

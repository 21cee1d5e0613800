"""Corpus-level estimates from model predictions plus a hand-coded random
sample: prediction-powered inference (Angelopoulos et al., Science 2023;
PPI++, Angelopoulos, Duchi & Zrnic 2023) through ``ppi_py``, next to the
classical (hand-coded sample only) and naive (predictions as truth) answers.

Every estimator here is ppi_py's; this module only arranges the arrays and
returns plain columns. Intervals are two-sided CLT intervals at ``level``.
"""
import contextlib

import numpy as np

METHODS = ("naive", "classical", "ppi", "ppi++")
# lam = 1 is plain PPI, lam = None lets PPI++ tune it from the data (clipped
# to [0, 1]), lam = 0 would be the classical estimate.
LAMBDA = {"ppi": 1.0, "ppi++": None}


def _arr(x):
    return np.asarray(x, dtype=np.float64)


def _weights(w):
    return None if w is None else _arr(w)


def prevalence(y, yhat, yhat_corpus, naive_corpus, w=None, level=0.95, methods=METHODS):
    """One class's share: ``y`` the coded 0/1 truths, ``yhat`` the model's
    predictions (probabilities or 0/1) for the same rows, ``yhat_corpus`` for
    the corpus images not coded (PPI's independent unlabelled sample) and
    ``naive_corpus`` the 0/1 labels of every image.
    ``w``: the coded rows' sampling weights (1 / inclusion probability)."""
    import ppi_py
    y, yhat, yhat_corpus = _arr(y), _arr(yhat), _arr(yhat_corpus)
    w, alpha = _weights(w), 1 - float(level)
    out = {"method": [], "estimate": [], "lower": [], "upper": []}

    def add(method, est, ci):
        out["method"].append(method)
        out["estimate"].append(float(np.squeeze(est)))
        out["lower"].append(float(np.squeeze(ci[0])))
        out["upper"].append(float(np.squeeze(ci[1])))

    for method in methods:
        if method == "naive":
            naive = _arr(naive_corpus)
            add(method, naive.mean(), ppi_py.classical_mean_ci(naive, alpha=alpha))
        elif method == "classical":
            est = y.mean() if w is None else np.sum(w * y) / np.sum(w)
            add(method, est, ppi_py.classical_mean_ci(y, w=w, alpha=alpha))
        else:
            # nothing left uncoded: PPI is the classical estimate (lam = 0)
            lam = LAMBDA[method] if len(yhat_corpus) else 0.0
            yhat_corpus = yhat_corpus if len(yhat_corpus) else yhat
            est = ppi_py.ppi_mean_pointestimate(y, yhat, yhat_corpus, lam=lam, w=w)
            add(method, est, ppi_py.ppi_mean_ci(y, yhat, yhat_corpus, alpha=alpha, lam=lam, w=w))
    return out


def regression(x, y, yhat, x_corpus, yhat_corpus, naive_corpus, x_all, family="gaussian",
               w=None, level=0.95, methods=METHODS):
    """Coefficients of a linear (``gaussian``) or logistic (``binomial``)
    regression of the image label on covariates ``x`` (design matrices with
    the intercept column, given as lists of columns): one block of rows per
    method, terms in column order. ``x_corpus``/``yhat_corpus`` are the
    uncoded images, ``naive_corpus`` the 0/1 labels of every image (with
    ``x_all``, the design of every image, for the naive fit)."""
    import ppi_py
    x, y, yhat = _columns(x), _arr(y), _arr(yhat)
    yhat_corpus, naive, x_all = _arr(yhat_corpus), _arr(naive_corpus), _columns(x_all)
    x_corpus = _columns(x_corpus) if len(yhat_corpus) else x[:0]
    alpha, w = 1 - float(level), _weights(w)
    gaussian = family == "gaussian"
    out = {"method": [], "term": [], "estimate": [], "lower": [], "upper": []}
    for method in methods:
        if method in ("naive", "classical"):
            xs, ys, ws = (x_all, naive, None) if method == "naive" else (x, y, w)
            est, ci = _classical_fit(xs, ys, ws, gaussian, alpha)
        else:
            fit = (ppi_py.ppi_ols_pointestimate, ppi_py.ppi_ols_ci) if gaussian else \
                (ppi_py.ppi_logistic_pointestimate, ppi_py.ppi_logistic_ci)
            # nothing left uncoded: PPI is the classical fit (lam = 0)
            uncoded = len(yhat_corpus) > 0
            args = (x, y, yhat, x_corpus, yhat_corpus) if uncoded else (x, y, yhat, x, yhat)
            lam = LAMBDA[method] if uncoded else 0.0
            est = fit[0](*args, lam=lam, w=w)
            ci = fit[1](*args, alpha=alpha, lam=lam, w=w)
        _add_terms(out, method, est, ci)
    return out


def _add_terms(out, method, est, ci):
    est = np.atleast_1d(np.squeeze(est))
    out["method"] += [method] * len(est)
    out["term"] += list(range(len(est)))
    out["estimate"] += est.tolist()
    out["lower"] += np.atleast_1d(ci[0]).tolist()
    out["upper"] += np.atleast_1d(ci[1]).tolist()


def regression_covariate(outcome, x0, d, coded, truth, yhat, naive, family="gaussian",
                         level=0.95, methods=METHODS, times=1000, seed=1):
    """Coefficients of a linear or logistic regression of ``outcome`` in which
    the image label is a covariate. The design of image i is ``x0 + label_i *
    d`` (lists of columns: the design with the label at 0, and what a label
    of 1 adds), so the label may enter through interactions. ``coded`` holds
    the 0-based rows with a hand-coded ``truth``; ``yhat`` is the model's
    prediction of every row (probability or 0/1), ``naive`` its 0/1 label.

    PPI and PPI++ are ppi_py's prediction-powered bootstrap (``ppboot``;
    Zrnic 2024), with ppboot's "Y" the label and its "X" the outcome and the
    design: percentile intervals over ``times`` resamples drawn from ``seed``."""
    fit = _ols if family == "gaussian" else _logit
    k = len(x0)
    packed = _columns([outcome] + list(x0) + list(d))

    def design(x, label):
        return x[:, 1:k + 1] + label[:, None] * x[:, k + 1:]

    def estimator(x, label):
        return fit(design(x, label), x[:, 0])

    coded = np.asarray(coded, dtype=int)
    uncoded = np.setdiff1d(np.arange(len(packed)), coded)
    truth, yhat, alpha = _arr(truth), _arr(yhat), 1 - float(level)
    out = {"method": [], "term": [], "estimate": [], "lower": [], "upper": []}
    for method in methods:
        if method in ("naive", "classical"):
            rows, label = (slice(None), _arr(naive)) if method == "naive" else (coded, truth)
            x = packed[rows]
            est, ci = _classical_fit(design(x, label), x[:, 0], None, family == "gaussian", alpha)
        else:
            # nothing left uncoded: PPI is the classical estimate (lam = 0)
            lam = LAMBDA[method] if len(uncoded) else 0.0
            rest = uncoded if len(uncoded) else coded
            data = (packed[coded], truth, yhat[coded], packed[rest], yhat[rest])
            with _seeded(seed):
                est, ci = _ppboot(estimator, data, lam, int(times), alpha)
        _add_terms(out, method, est, ci)
    return out


def _ppboot(estimator, data, lam, times, alpha):
    """ppi_py.ppboot's point estimate and interval. ppboot returns only the
    interval, so PPI++'s lambda is tuned here as ppboot tunes it, then handed
    to ppboot: the point estimate is the one its interval is built around."""
    import ppi_py
    x, y, yhat, x_u, yhat_u = data
    if lam is None:
        lam = _ppboot_lambda(estimator, data)
    est = lam * estimator(x_u, yhat_u) + estimator(x, y) - lam * estimator(x, yhat)
    ci = ppi_py.ppboot(estimator, y, yhat, yhat_u, X=x, X_unlabeled=x_u, lam=lam,
                       n_resamples=times, alpha=alpha)
    return est, ci


def _ppboot_lambda(estimator, data, n_resamples=50):
    """PPI++'s power-tuning parameter exactly as ppi_py.ppboot computes it
    (its default ``n_resamples_lam`` = 50; not clipped to [0, 1], as there):
    summed over coefficients, cov(theta(X, Y), theta(X, Yhat)) over
    var(theta(X, Yhat)) + var(theta(X_unlabeled, Yhat_unlabeled)), from a
    bootstrap that draws the labelled and unlabelled rows independently."""
    from ppi_py.utils import bootstrap
    x, y, yhat, x_u, yhat_u = data

    def thetas(x, y, yhat, x_u, yhat_u):
        return estimator(x, y), estimator(x, yhat), estimator(x_u, yhat_u)

    draws = bootstrap([x, y, yhat, x_u, yhat_u], thetas, n_resamples=n_resamples,
                      paired=[[0, 1, 2], [3, 4]])
    th_y, th_yhat, th_u = (np.stack([draw[i] for draw in draws]) for i in range(3))
    cov = np.sum([np.cov(th_y[:, j], th_yhat[:, j])[0, 1] for j in range(th_y.shape[1])])
    return cov / (np.var(th_yhat, axis=0).sum() + np.var(th_u, axis=0).sum())


@contextlib.contextmanager
def _seeded(seed):
    """ppi_py's bootstrap draws from NumPy's global generator: seed it for
    the call and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(int(seed))
    try:
        yield
    finally:
        np.random.set_state(state)


def _ols(x, y):
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _logit(x, y):
    # unpenalised maximum likelihood (Newton), fast enough to refit per resample
    import statsmodels.api as sm
    return np.asarray(sm.Logit(y, x).fit(disp=0).params)


def _columns(cols):
    return np.column_stack([_arr(c) for c in cols])


def _classical_fit(x, y, w, gaussian, alpha):
    import ppi_py
    if gaussian:
        # lam = 0 drops the predictions: the least-squares fit on the coded rows
        est = ppi_py.ppi_ols_pointestimate(x, y, y, x, y, lam=0, w=w)
        return est, ppi_py.classical_ols_ci(x, y, w=w, alpha=alpha)
    return ppi_py.logistic(x, y), ppi_py.classical_logistic_ci(x, y, alpha=alpha)


def power(y, yhat, n_corpus, width, level=0.95, correlation=None, prevalence=None):
    """How many images to hand-code for an interval of ``width`` on one
    class's share. The classical sample size n0 gives the width from the
    share's variance; ppi_py's power analysis (Broska, Howes & van Loon 2024)
    turns it into the coded sample n that gives PPI the same standard error
    with ``n_corpus`` predicted images. ``correlation`` (the PPI correlation
    between truth and prediction) and ``prevalence`` replace the pilot's."""
    import ppi_py
    from scipy.stats import norm
    z = norm.ppf(1 - (1 - float(level)) / 2)
    p = float(np.mean(_arr(y))) if prevalence is None else float(prevalence)
    n0 = max(1.0, z ** 2 * p * (1 - p) / (float(width) / 2) ** 2)
    # a prediction costs next to nothing beside a hand label
    costs = dict(cost_Y=1.0, cost_Yhat=1e-6)
    if correlation is None:
        res = ppi_py.ppi_mean_power(_arr(y), _arr(yhat), effective_n=n0, n_max=int(n_corpus), **costs)
    else:
        res = ppi_py.ppi_power(float(correlation), cost_X=0.0, effective_n=n0, n_max=int(n_corpus), **costs)
    return {"n_classical": int(np.ceil(n0)), "n_ppi": int(res["n"]),
            "correlation": float(res["ppi_corr"]), "prevalence": p}


def width_curve(n, prevalence, correlation, n_corpus, level=0.95):
    """Expected interval widths at ``n`` coded images: classical, and PPI via
    the effective sample size n (n + N) / (n + (1 - rho^2) N) of the power
    analysis above (the formula ppi_py's power functions invert)."""
    from scipy.stats import norm
    z = norm.ppf(1 - (1 - float(level)) / 2)
    n = _arr(n)
    big_n, rho2 = float(n_corpus), float(correlation) ** 2
    sd = np.sqrt(float(prevalence) * (1 - float(prevalence)))
    n_eff = n * (n + big_n) / (n + (1 - rho2) * big_n)
    return {"n": n.tolist(), "classical": (2 * z * sd / np.sqrt(n)).tolist(),
            "ppi": (2 * z * sd / np.sqrt(n_eff)).tolist()}


def simulate_coverage(share=0.3, sensitivity=0.9, specificity=0.8, n_corpus=5000,
                      n_coded=300, reps=1000, level=0.95, seed=1, methods=METHODS):
    """Coverage of each method's interval for a known prevalence ``share``: each
    replication draws a corpus of true 0/1 labels, a classifier with
    class-dependent errors (``sensitivity`` on positives, ``specificity`` on
    negatives), and a simple random coded sample."""
    rng = np.random.default_rng(int(seed))
    covered = {m: 0 for m in methods}
    widths = {m: [] for m in methods}
    for _ in range(int(reps)):
        truth = rng.random(int(n_corpus)) < share
        right = rng.random(int(n_corpus)) < np.where(truth, sensitivity, specificity)
        pred = np.where(right, truth, ~truth).astype(float)
        coded = rng.choice(int(n_corpus), int(n_coded), replace=False)
        uncoded = np.setdiff1d(np.arange(int(n_corpus)), coded)
        res = prevalence(truth[coded].astype(float), pred[coded], pred[uncoded], pred,
                            level=level, methods=methods)
        for m, lo, hi in zip(res["method"], res["lower"], res["upper"]):
            covered[m] += lo <= share <= hi
            widths[m].append(hi - lo)
    return {"method": list(methods), "coverage": [covered[m] / int(reps) for m in methods],
            "mean_width": [float(np.mean(widths[m])) for m in methods]}


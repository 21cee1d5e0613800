"""Prediction-powered estimates: coverage by simulation, PPI against the
classical interval, a hand computation, and regression against plain fits."""
import numpy as np
import pytest
from scipy.stats import norm

from tidyvision import estimates


def test_coverage_ppi_holds_and_naive_fails():
    # 30% prevalence; the model finds 90% of positives but calls 20% of negatives positive
    res = estimates.simulate_coverage(share=0.3, sensitivity=0.9, specificity=0.8, n_corpus=4000,
                                      n_coded=300, reps=1000, seed=11)
    cov = dict(zip(res["method"], res["coverage"]))
    print("coverage", cov)
    assert 0.93 <= cov["ppi"] <= 0.97
    assert 0.93 <= cov["ppi++"] <= 0.97
    assert 0.93 <= cov["classical"] <= 0.97
    assert cov["naive"] < 0.5  # its share is 0.41, not 0.3: it misses almost always


def test_ppi_narrower_than_classical_with_a_good_model():
    res = estimates.simulate_coverage(share=0.3, sensitivity=0.95, specificity=0.95, n_corpus=4000,
                                      n_coded=200, reps=100, seed=2)
    width = dict(zip(res["method"], res["mean_width"]))
    assert width["ppi"] < 0.8 * width["classical"]
    assert width["ppi++"] <= width["ppi"] + 1e-9


def test_ppi_mean_equals_hand_computation():
    y = np.array([1, 0, 1, 1, 0, 0], float)
    yhat = np.array([1, 0, 0, 1, 1, 0], float)
    corpus = np.array([1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0], float)
    res = estimates.prevalence(y, yhat, corpus, np.r_[yhat, corpus], level=0.9,
                               methods=["ppi", "classical", "naive"])
    out = {m: (e, lo, hi) for m, e, lo, hi in zip(res["method"], res["estimate"], res["lower"], res["upper"])}
    # PPI: mean of the corpus predictions plus the mean error on the coded rows
    est = corpus.mean() + (y - yhat).mean()
    se = np.sqrt(corpus.var() / len(corpus) + (y - yhat).var() / len(y))
    z = norm.ppf(0.95)
    assert out["ppi"] == pytest.approx((est, est - z * se, est + z * se))
    assert out["classical"][0] == pytest.approx(y.mean())
    assert out["classical"][2] - out["classical"][0] == pytest.approx(z * y.std() / np.sqrt(len(y)))
    assert out["naive"][0] == pytest.approx(np.r_[yhat, corpus].mean())


def test_regression_fully_coded_equals_least_squares_and_logistic():
    rng = np.random.default_rng(0)
    n = 400
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ [-0.3, 1.2])))).astype(float)
    yhat = np.where(rng.random(n) < 0.8, y, 1 - y)
    cols = [x[:, 0].tolist(), x[:, 1].tolist()]
    ols = np.linalg.lstsq(x, y, rcond=None)[0]
    # every image coded: nothing left to predict, so PPI is the classical fit
    res = estimates.regression(cols, y, yhat, [[], []], [], yhat, cols, family="gaussian")
    for m in ("classical", "ppi", "ppi++"):
        got = [e for mm, e in zip(res["method"], res["estimate"]) if mm == m]
        np.testing.assert_allclose(got, ols, atol=1e-8)
    import statsmodels.api as sm
    glm = sm.Logit(y, x).fit(disp=0).params
    res = estimates.regression(cols, y, yhat, [[], []], [], yhat, cols, family="binomial",
                               methods=["classical", "ppi"])
    for m in ("classical", "ppi"):
        got = [e for mm, e in zip(res["method"], res["estimate"]) if mm == m]
        np.testing.assert_allclose(got, glm, atol=1e-4)


def test_regression_ppi_corrects_a_biased_model():
    rng = np.random.default_rng(3)
    big = 6000
    x = np.column_stack([np.ones(big), rng.normal(size=big)])
    y = (rng.random(big) < 1 / (1 + np.exp(-(x @ [-0.5, 1.0])))).astype(float)
    # the model over-calls the label where x is high: the naive slope is biased
    yhat = np.where(rng.random(big) < 0.15 * (x[:, 1] > 0), 1.0, y)
    coded = np.arange(600)
    rest = np.arange(600, big)
    cols = lambda rows: [x[rows, 0].tolist(), x[rows, 1].tolist()]
    truth = np.linalg.lstsq(x, y, rcond=None)[0][1]
    res = estimates.regression(cols(coded), y[coded], yhat[coded], cols(rest), yhat[rest], yhat,
                               cols(np.arange(big)), family="gaussian")
    slope = {m: (lo, hi) for m, t, lo, hi in zip(res["method"], res["term"], res["lower"], res["upper"]) if t == 1}
    assert slope["ppi++"][0] <= truth <= slope["ppi++"][1]
    assert not slope["naive"][0] <= truth <= slope["naive"][1]


def test_power_needs_fewer_coded_images_for_a_better_model():
    weak = estimates.power([], [], 10000, 0.05, correlation=0.3, prevalence=0.3)
    strong = estimates.power([], [], 10000, 0.05, correlation=0.9, prevalence=0.3)
    assert weak["n_classical"] == strong["n_classical"] == int(np.ceil(norm.ppf(0.975) ** 2 * 0.21 / 0.025 ** 2))
    assert strong["n_ppi"] < weak["n_ppi"] <= weak["n_classical"]
    curve = estimates.width_curve([strong["n_ppi"]], 0.3, 0.9, 10000)
    assert curve["ppi"][0] == pytest.approx(0.05, rel=0.02)


def _label_covariate_corpus(rng, n=2000, sens=0.85, spec=0.9):
    """retweets = 1 + 0.5 protest + 0.3 followers + noise, where followers
    is higher on protest images, and a classifier that finds 85% of the
    protests and calls 10% of the rest protest. The design is x0 + label * d."""
    z = (rng.random(n) < 0.3).astype(float)
    followers = rng.normal(size=n) + 0.5 * z
    y = 1 + 0.5 * z + 0.3 * followers + rng.normal(size=n)
    pred = np.where(rng.random(n) < np.where(z == 1, sens, spec), z, 1 - z)
    ones, zeros = np.ones(n), np.zeros(n)
    return y, [ones, zeros, followers], [zeros, ones, zeros], z, pred


def _slopes(res, term=1):
    return {m: (e, lo, hi) for m, t, e, lo, hi in
            zip(res["method"], res["term"], res["estimate"], res["lower"], res["upper"]) if t == term}


def _rows(res, method):
    return [(e, lo, hi) for m, e, lo, hi in zip(res["method"], res["estimate"], res["lower"], res["upper"])
            if m == method]


def test_label_as_covariate_coverage_ppi_holds_and_naive_fails():
    # 300 corpora of 2,000 images, 200 coded, 200 bootstrap resamples each
    rng = np.random.default_rng(7)
    reps = 300
    hits = {"naive": 0, "ppi": 0, "ppi++": 0}
    for r in range(reps):
        y, x0, d, z, pred = _label_covariate_corpus(rng)
        coded = rng.choice(len(y), 200, replace=False)
        res = estimates.regression_covariate(y, x0, d, coded, z[coded], pred, pred, times=200, seed=r,
                                             methods=list(hits))
        for m, (_, lo, hi) in _slopes(res).items():
            hits[m] += lo <= 0.5 <= hi
    cov = {m: h / reps for m, h in hits.items()}
    print("label-as-covariate slope coverage", cov)
    # nominal 95%; a percentile bootstrap on 200 coded images runs a little
    # under it, and 300 replications have a standard error of ~1.3 points
    assert 0.88 <= cov["ppi"] <= 0.985
    assert 0.88 <= cov["ppi++"] <= 0.985
    assert cov["naive"] < 0.5  # misclassification attenuates its slope


def test_label_as_covariate_fully_coded_equals_least_squares_and_logistic():
    rng = np.random.default_rng(1)
    y, x0, d, z, pred = _label_covariate_corpus(rng, n=300)
    design = np.column_stack(x0) + z[:, None] * np.column_stack(d)
    everyone = np.arange(len(y))
    res = estimates.regression_covariate(y, x0, d, everyone, z, pred, pred, times=50)
    ols = np.linalg.lstsq(design, y, rcond=None)[0]
    for m in ("classical", "ppi", "ppi++"):
        np.testing.assert_allclose([v[0] for v in _rows(res, m)], ols, atol=1e-8)
    import statsmodels.api as sm
    event = (y > np.median(y)).astype(float)
    res = estimates.regression_covariate(event, x0, d, everyone, z, pred, pred, family="binomial",
                                         methods=["classical", "ppi"], times=50)
    glm = sm.Logit(event, design).fit(disp=0).params
    for m in ("classical", "ppi"):
        np.testing.assert_allclose([v[0] for v in _rows(res, m)], glm, atol=1e-4)


def test_label_as_covariate_point_estimate_and_lambda_are_ppboots():
    import ppi_py
    rng = np.random.default_rng(5)
    y, x0, d, z, pred = _label_covariate_corpus(rng, n=1000)
    coded = np.arange(150)
    rest = np.arange(150, 1000)
    res = estimates.regression_covariate(y, x0, d, coded, z[coded], pred, pred, methods=["ppi", "ppi++"],
                                         times=300, seed=3)
    design = np.column_stack(x0) + pred[:, None] * np.column_stack(d)
    design_coded = np.column_stack(x0)[coded] + z[coded, None] * np.column_stack(d)[coded]

    def ols(x, yy):
        return np.linalg.lstsq(x, yy, rcond=None)[0]
    # PPI: the fit on the predicted uncoded images, rectified by the coded ones
    ppi = ols(design[rest], y[rest]) + ols(design_coded, y[coded]) - ols(design[coded], y[coded])
    np.testing.assert_allclose([v[0] for v in _rows(res, "ppi")], ppi, atol=1e-10)
    # PPI++'s lambda is ppboot's own: with the same draws, ppboot tuning it
    # gives the interval that the lambda tuned here gives
    packed = np.column_stack([y] + x0 + d)

    def estimator(x, label):
        return ols(x[:, 1:4] + label[:, None] * x[:, 4:], x[:, 0])
    data = (packed[coded], z[coded], pred[coded], packed[rest], pred[rest])
    np.random.seed(9)
    tuned = ppi_py.ppboot(estimator, data[1], data[2], data[4], X=data[0], X_unlabeled=data[3], lam=None,
                          n_resamples=100)
    np.random.seed(9)
    lam = estimates._ppboot_lambda(estimator, data)
    given = ppi_py.ppboot(estimator, data[1], data[2], data[4], X=data[0], X_unlabeled=data[3], lam=lam,
                          n_resamples=100)
    np.testing.assert_allclose(tuned, given)
    assert lam != 1.0
    est, ci = estimates._ppboot(estimator, data, lam, 300, 0.05)
    np.testing.assert_allclose(est, lam * estimator(data[3], data[4]) + estimator(data[0], data[1])
                               - lam * estimator(data[0], data[2]))


def test_label_as_covariate_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    y, x0, d, z, pred = _label_covariate_corpus(rng, n=500)
    coded = np.arange(100)
    run = lambda seed: estimates.regression_covariate(y, x0, d, coded, z[coded], pred, pred,
                                                      methods=["ppi++"], times=100, seed=seed)
    state = np.random.get_state()[1].copy()
    assert run(4) == run(4)
    assert run(4)["lower"] != run(5)["lower"]
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # the global generator is left alone


def test_ppi_on_a_stratified_sample_uses_its_weights():
    # coded rows drawn with unequal inclusion probabilities: weights 1 / p
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0], float)
    yhat = np.array([1, 0, 0, 1, 1, 0, 1, 1], float)
    w = np.array([1, 1, 4, 4, 4, 1, 2, 2], float)
    corpus = np.array([1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1], float)
    res = estimates.prevalence(y, yhat, corpus, np.r_[yhat, corpus], w=w, methods=["ppi", "ppi++", "classical"])
    out = dict(zip(res["method"], res["estimate"]))
    # the weighted hand formula: corpus mean plus the weighted mean error of the coded rows
    assert out["ppi"] == pytest.approx(corpus.mean() + np.sum(w * (y - yhat)) / np.sum(w))
    assert out["classical"] == pytest.approx(np.sum(w * y) / np.sum(w))
    import ppi_py
    assert out["ppi++"] == pytest.approx(float(ppi_py.ppi_mean_pointestimate(y, yhat, corpus, lam=None, w=w)[0]))
    assert out["ppi"] != pytest.approx(corpus.mean() + (y - yhat).mean())  # the weights matter here


def test_ppi_plus_plus_tunes_lambda_and_is_strictly_narrower_with_a_weak_model():
    rng = np.random.default_rng(3)
    truth = (rng.random(4000) < 0.3).astype(float)
    weak = np.where(rng.random(4000) < 0.55, truth, 1 - truth)  # barely better than chance
    coded = rng.choice(4000, 300, replace=False)
    rest = np.setdiff1d(np.arange(4000), coded)
    res = estimates.prevalence(truth[coded], weak[coded], weak[rest], weak, methods=["ppi", "ppi++"])
    out = {m: (e, hi - lo) for m, e, lo, hi in zip(res["method"], res["estimate"], res["lower"], res["upper"])}
    assert out["ppi++"][1] < 0.9 * out["ppi"][1]
    import ppi_py
    tuned = float(ppi_py.ppi_mean_pointestimate(truth[coded], weak[coded], weak[rest], lam=None)[0])
    assert out["ppi++"][0] == pytest.approx(tuned)

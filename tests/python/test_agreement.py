"""Agreement between coders, against published and kept implementations."""
import numpy as np
import pytest

from tidyvision import agreement

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 coders x 12 units, nominal values 1-5 with missing data.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


def _as_codes(data):
    """Values 1-5 as class indices 0-4, as R sends nominal labels."""
    return [[None if v is None else v - 1 for v in row] for row in data]


def _metric(res, name, coders=None):
    rows = [i for i, m in enumerate(res[".metric"]) if m == name
            and (coders is None or res["coders"][i] == coders)]
    assert len(rows) == 1
    return {k: v[rows[0]] for k, v in res.items()}


def test_published_example_nominal_and_interval():
    coders = ["A", "B", "C", "D"]
    nominal = agreement.agreement(_as_codes(KRIPPENDORFF_2011), coders, "nominal", n_values=5, times=200)
    a = _metric(nominal, "krippendorff_alpha")
    assert round(a[".estimate"], 3) == 0.743
    assert a[".lower"] < a[".estimate"] < a[".upper"] <= 1
    # unit 12 has one value only: not pairable
    assert a["n_units"] == 11 and a["n_coders"] == 4
    interval = agreement.agreement(KRIPPENDORFF_2011, coders, "interval", times=0)
    assert round(interval[".estimate"][0], 3) == 0.849
    assert interval[".metric"] == ["krippendorff_alpha"]
    assert interval[".lower"][0] is None


def test_kappas_match_kept_implementations():
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 60)
    coded = np.array([np.where(rng.random(60) < 0.75, truth, rng.integers(0, 3, 60)) for _ in range(3)])
    res = agreement.agreement(coded.tolist(), ["a", "b", "c"], "nominal", n_values=3, times=0)
    table, _ = aggregate_raters(coded.T)
    assert _metric(res, "fleiss_kappa")[".estimate"] == pytest.approx(fleiss_kappa(table), abs=1e-12)
    assert _metric(res, "cohen_kappa", "a, c")[".estimate"] == pytest.approx(
        cohen_kappa_score(coded[0], coded[2]), abs=1e-12)
    share = np.mean([(coded[i] == coded[j]).mean() for i, j in ((0, 1), (0, 2), (1, 2))])
    assert _metric(res, "percent_agreement")[".estimate"] == pytest.approx(share)
    # a pair is compared on the units both coded
    partial = coded.astype(float)
    partial[1, :10] = np.nan
    res = agreement.agreement(partial.tolist(), ["a", "b", "c"], "nominal", n_values=3, times=0)
    ab = _metric(res, "cohen_kappa", "a, b")
    assert ab["n_units"] == 50
    assert ab[".estimate"] == pytest.approx(cohen_kappa_score(coded[0, 10:], coded[1, 10:]))


def test_bootstrap_is_seeded_and_covers():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 80)
    coded = [np.where(rng.random(80) < 0.85, truth, 1 - truth).tolist() for _ in range(2)]
    one = agreement.agreement(coded, ["a", "b"], "nominal", n_values=2, times=300, seed=4)
    two = agreement.agreement(coded, ["a", "b"], "nominal", n_values=2, times=300, seed=4)
    assert one == two
    for lo, est, hi in zip(one[".lower"], one[".estimate"], one[".upper"]):
        assert lo <= est <= hi and hi - lo > 0.01


def test_perfect_and_degenerate_agreement():
    same = [[0, 1, 1, 0], [0, 1, 1, 0]]
    res = agreement.agreement(same, ["a", "b"], "nominal", n_values=2, times=50)
    assert _metric(res, "krippendorff_alpha")[".estimate"] == 1
    assert _metric(res, "percent_agreement")[".estimate"] == 1
    # one class only: kappa and alpha are undefined, agreement is still 1
    flat = agreement.agreement([[0, 0, 0], [0, 0, 0]], ["a", "b"], "nominal", n_values=2, times=0)
    assert _metric(flat, "krippendorff_alpha")[".estimate"] is None
    assert _metric(flat, "cohen_kappa")[".estimate"] is None
    assert _metric(flat, "percent_agreement")[".estimate"] == 1


def test_the_bootstrap_draws_every_unit_as_a_hand_resample_does():
    # the coders disagree on the last unit only: a bootstrap that never draws it agrees fully
    coded = np.array([[0, 1, 1, 0, 1, 0, 1, 1], [0, 1, 1, 0, 1, 0, 1, 0]], float)
    res = agreement.agreement(coded.tolist(), ["a", "b"], "nominal", n_values=2, times=400, seed=9)
    # the same resamples by hand: 400 draws of 8 units with replacement from the seed's generator
    rng = np.random.default_rng(9)
    draws = [rng.integers(0, 8, 8) for _ in range(400)]
    assert max(d.max() for d in draws) == 7  # the last unit is drawn
    agree = [float(np.mean(coded[0, d] == coded[1, d])) for d in draws]
    lo, hi = np.quantile(agree, [0.025, 0.975])
    pct = _metric(res, "percent_agreement")
    assert lo < 1
    assert (pct[".lower"], pct[".upper"]) == pytest.approx((lo, hi))

"""Agreement between coders: Krippendorff's alpha (the ``krippendorff``
package), Fleiss' and Cohen's kappa and percent agreement, each with a
percentile interval from a bootstrap over units (images).

Reliability data arrive as one list per coder, one value per unit, NaN where
the coder did not code the unit. Nominal values are class indices 0..K-1.

Fleiss' kappa and percent agreement are taken over the units that at least
two coders coded, in the generalised form that allows a varying number of
coders per unit (each unit's share of agreeing coder pairs); with every unit
coded by every coder this is Fleiss (1971). Cohen's kappa uses the units both
coders of a pair coded.
"""
import warnings

import numpy as np


def agreement(codes, coders, level="nominal", n_values=None, times=1000, conf_level=0.95,
              seed=1):
    """Columns .metric, .estimate, .lower, .upper, n_units, n_coders, coders."""
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in codes], float)
    data = data.reshape(len(coders), -1)
    nominal = level == "nominal"
    if nominal:
        domain = np.arange(int(n_values))
    else:
        domain = np.unique(data[np.isfinite(data)])
    counts = value_counts(data, domain)
    rows = _rows(data, counts, list(coders), nominal)
    boot = _bootstrap(data, counts, domain, level, nominal, rows, int(times), int(seed))
    tail = (1 - float(conf_level)) / 2
    out = {k: [] for k in (".metric", ".estimate", ".lower", ".upper", "n_units", "n_coders", "coders")}
    for j, row in enumerate(rows):
        est = row["fun"](data, counts, domain, level)
        lo, hi = _percentiles(boot[:, j], tail) if len(boot) else (np.nan, np.nan)
        for key, value in ((".metric", row["metric"]), (".estimate", _na(est)), (".lower", _na(lo)),
                           (".upper", _na(hi)), ("n_units", row["n_units"]),
                           ("n_coders", row["n_coders"]), ("coders", row["coders"])):
            out[key].append(value)
    return out


def _na(x):
    """NaN as None, which R reads as NA."""
    return float(x) if np.isfinite(x) else None


def value_counts(data, domain):
    """(units, values): how many coders gave each value to each unit."""
    return (data.T[..., None] == domain[None, None, :]).sum(axis=1).astype(float)


def alpha(counts, domain, level):
    """Krippendorff's alpha of the units in ``counts``; NaN when undefined
    (fewer than two values in the data, or no pairable unit)."""
    import krippendorff
    counts = counts[counts.sum(1) >= 2]
    if len(counts) == 0 or (counts.sum(0) > 0).sum() < 2:
        return np.nan
    with np.errstate(all="ignore"):
        return float(krippendorff.alpha(value_counts=counts, value_domain=domain,
                                        level_of_measurement=level))


def fleiss_kappa(counts):
    p_obs, p_exp = _pair_agreement(counts)
    return _kappa(p_obs, p_exp)


def percent_agreement(counts):
    return _pair_agreement(counts)[0]


def cohen_kappa(a, b, n_values):
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return np.nan
    a, b = a[both].astype(int), b[both].astype(int)
    pa = np.bincount(a, minlength=n_values) / len(a)
    pb = np.bincount(b, minlength=n_values) / len(b)
    return _kappa(float(np.mean(a == b)), float(pa @ pb))


def _pair_agreement(counts):
    """Observed share of agreeing coder pairs (mean over pairable units) and
    the share expected by chance from the pooled value proportions."""
    counts = counts[counts.sum(1) >= 2]
    if len(counts) == 0:
        return np.nan, np.nan
    n = counts.sum(1)
    p_obs = float(np.mean((counts * (counts - 1)).sum(1) / (n * (n - 1))))
    p = counts.sum(0) / n.sum()
    return p_obs, float(p @ p)


def _kappa(p_obs, p_exp):
    if not np.isfinite(p_obs) or not p_exp < 1:
        return np.nan
    return (p_obs - p_exp) / (1 - p_exp)


def _rows(data, counts, coders, nominal):
    """The metrics reported, each with the function that computes it."""
    coded = np.isfinite(data)
    pairable = coded.sum(0) >= 2
    panel = dict(coders=", ".join(coders), n_units=int(pairable.sum()),
                 n_coders=int((coded[:, pairable]).any(1).sum()))
    rows = [dict(panel, metric="krippendorff_alpha", fun=lambda d, c, v, lvl: alpha(c, v, lvl))]
    if not nominal:
        return rows
    rows.append(dict(panel, metric="fleiss_kappa", fun=lambda d, c, v, lvl: fleiss_kappa(c)))
    for i in range(len(coders)):
        for j in range(i + 1, len(coders)):
            both = coded[i] & coded[j]
            rows.append(dict(metric="cohen_kappa", coders=f"{coders[i]}, {coders[j]}",
                             n_units=int(both.sum()), n_coders=2,
                             fun=lambda d, c, v, lvl, i=i, j=j: cohen_kappa(d[i], d[j], len(v))))
    rows.append(dict(panel, metric="percent_agreement", fun=lambda d, c, v, lvl: percent_agreement(c)))
    return rows


def _bootstrap(data, counts, domain, level, nominal, rows, times, seed):
    """(times, metrics): every metric on each resample of the units."""
    rng = np.random.default_rng(seed)
    n_units = data.shape[1]
    out = np.full((times, len(rows)), np.nan)
    for b in range(times):
        idx = rng.integers(0, n_units, n_units)
        d, c = data[:, idx], counts[idx]
        for j, row in enumerate(rows):
            out[b, j] = row["fun"](d, c, domain, level)
    return out


def _percentiles(values, tail):
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(float(q) for q in np.quantile(values, [tail, 1 - tail]))

"""Confident learning and uncertainty sampling in the engine alone."""
from pathlib import Path

import numpy as np

from tidyvision import label_issues, suggest_labels

EXTDATA = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images"


def test_flipped_labels_are_issues_and_unlabelled_rows_are_none():
    paths = [str(p) for c in ("animals", "tools") for p in sorted((EXTDATA / c).glob("*.jpg"))[:10]]
    y = [0] * 10 + [1] * 10
    y[0], y[15] = 1, 0  # two flips
    y[5] = -1  # no label
    res = label_issues.find_label_issues(paths, y, 2, folds=3, seed=1, image_size=128)
    assert res["is_issue"][0] and res["is_issue"][15]
    assert res["suggested"][0] == 0 and res["suggested"][15] == 1
    assert res["label_quality"][5] is None and res["is_issue"][5] is None
    # The flips rank among the lowest quality scores, whatever the CPU's float order: among the
    # lowest four of 19 (a correct label can sit between them when the two scores are ~0.01 apart).
    quality = np.array([np.inf if q is None else q for q in res["label_quality"]])
    lowest = set(np.argsort(quality, kind="stable")[:4].tolist())
    assert {0, 15} <= lowest, f"flips ranked {sorted(np.argsort(np.argsort(quality))[[0, 15]] + 1)} of 19"
    np.testing.assert_allclose(np.delete(res["prob"], 5, 0).sum(1), 1)
    # each row's score is cleanlab's for that row's own label and out-of-fold probabilities
    from cleanlab.rank import get_label_quality_scores
    labelled = [i for i in range(len(y)) if y[i] >= 0]
    expected = get_label_quality_scores(np.array(y)[labelled], res["prob"][labelled])
    np.testing.assert_allclose([res["label_quality"][i] for i in labelled], expected)


def test_uncertainty_scores_and_ranking():
    prob = np.array([[0.9, 0.1, 0], [0.4, 0.35, 0.25], [0.5, 0.5, 0], [np.nan, np.nan, np.nan]])
    margin = suggest_labels.uncertainty(prob, "margin")
    np.testing.assert_allclose(margin[:3], [0.2, 0.95, 1.0])
    entropy = suggest_labels.uncertainty(prob, "entropy")
    assert entropy[1] > entropy[2] > entropy[0] and np.isnan(entropy[3])
    out = suggest_labels.rank(prob, 5, "margin")
    assert out["order"].tolist() == [2, 1, 0]  # unreadable rows are never suggested
    r1 = suggest_labels.rank(prob, 2, "random", seed=3)["order"]
    assert r1.tolist() == suggest_labels.rank(prob, 2, "random", seed=3)["order"].tolist()


def test_k_center_spreads_picks_over_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16) * 10
    x = np.concatenate([c + rng.normal(0, 0.1, (5, 16)) for c in centres])
    candidates = np.arange(15)
    picked = suggest_labels.k_center(x, candidates, 3)
    assert picked[0] == 0 and sorted(p // 5 for p in picked) == [0, 1, 2]
    # near copies (identical rows) are never picked twice
    dup = np.repeat(x[:1], 4, axis=0)
    assert len(set(suggest_labels.k_center(dup, np.arange(4), 4).tolist())) == 4


def test_flips_rank_at_least_as_well_as_cleanlabs_reference_head():
    """On hard inputs (photos at 48 px) standardised features ranked 27% of the flips among
    the lowest scores, cleanlab's reference (plain logistic regression) 64%: ours must match it."""
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from tidyvision import embeddings
    classes = sorted(p.name for p in EXTDATA.iterdir() if p.is_dir())
    paths = [str(p) for c in classes for p in sorted((EXTDATA / c).glob("*.jpg"))]
    truth = np.array([classes.index(Path(p).parent.name) for p in paths])
    x = embeddings.embed(paths, image_size=48)["embedding"]
    rng = np.random.default_rng(0)
    ours, reference = [], []
    for draw in range(20):
        y = truth.copy()
        flips = rng.choice(len(y), 9, replace=False)
        for i in flips:
            y[i] = rng.choice([c for c in range(3) if c != truth[i]])
        res = label_issues.find_label_issues(paths, y.tolist(), 3, seed=draw, image_size=48)
        ours.append(len(set(np.argsort(res["label_quality"])[:9]) & set(flips)) / 9)
        ref = np.zeros((len(y), 3))
        for train, test in StratifiedKFold(5, shuffle=True, random_state=draw).split(x, y):
            head = LogisticRegression(max_iter=2000).fit(x[train], y[train])
            ref[np.ix_(test, head.classes_)] = head.predict_proba(x[test])
        reference.append(len(set(np.argsort(get_label_quality_scores(y, ref))[:9]) & set(flips)) / 9)
    assert np.mean(ours) >= np.mean(reference) - 0.1, (np.mean(ours), np.mean(reference))
    assert np.mean(ours) >= 0.5, ours

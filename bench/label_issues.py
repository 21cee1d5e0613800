"""How well find_label_issues() ranks flipped labels, against cleanlab's reference.

The 89 shipped photos, 10% of their labels (9) flipped at random, 20 draws:
the share of flips among the 9 lowest label_quality scores, with out-of-fold
(5 stratified folds) probabilities from three linear heads on Lite0
embeddings: standardised features (the head tidyvision used before), plain
logistic regression on the raw features (the reference: cleanlab's defaults
on sklearn's defaults), and unit-length rows (tidyvision's head now). The
photos are embedded at several sizes: smaller inputs make the task harder.

    python bench/label_issues.py [--sizes 224 64 48] [--draws 20]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "inst" / "python"))

from tidyvision import embeddings  # noqa: E402


def heads():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return {
        "standardised (before)": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "raw (cleanlab reference)": lambda: LogisticRegression(max_iter=2000),
        "unit rows (now)": lambda: embeddings._head(1, rows="unit"),
    }


def out_of_fold(x, y, make, k, seed):
    from sklearn.model_selection import StratifiedKFold
    out = np.zeros((len(y), k))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        head = make().fit(x[train], y[train])
        out[np.ix_(test, head.classes_)] = head.predict_proba(x[test])
    return out


def main():
    from cleanlab.rank import get_label_quality_scores
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 64, 48])
    ap.add_argument("--draws", type=int, default=20)
    args = ap.parse_args()
    root = ROOT / "inst" / "extdata" / "images"
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths = [str(p) for c in classes for p in sorted((root / c).glob("*.jpg"))]
    truth = np.array([classes.index(Path(p).parent.name) for p in paths])
    n_flip = round(0.1 * len(paths))
    print(f"{len(paths)} photos, {n_flip} labels flipped, {args.draws} draws; share of flips among the "
          f"{n_flip} lowest label_quality scores (mean, sd)")
    print("| input size | " + " | ".join(heads()) + " |")
    print("|---" * (len(heads()) + 1) + "|")
    for size in args.sizes:
        x = embeddings.embed(paths, image_size=size)["embedding"]
        rng = np.random.default_rng(0)
        found = {name: [] for name in heads()}
        for draw in range(args.draws):
            y = truth.copy()
            flips = rng.choice(len(y), n_flip, replace=False)
            for i in flips:
                y[i] = rng.choice([c for c in range(len(classes)) if c != truth[i]])
            for name, make in heads().items():
                q = get_label_quality_scores(y, out_of_fold(x, y, make, len(classes), draw))
                found[name].append(len(set(np.argsort(q, kind="stable")[:n_flip]) & set(flips)) / n_flip)
        print(f"| {size} | " + " | ".join(f"{np.mean(v):.2f} ({np.std(v):.2f})" for v in found.values()) + " |")


if __name__ == "__main__":
    main()

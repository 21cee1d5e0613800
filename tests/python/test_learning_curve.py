"""Learning curves in the engine alone: each point is a head fitted on a class-complete
subset of the training rows and scored on exactly the validation rows."""
from pathlib import Path

import numpy as np

from tidyvision import embeddings, learning_curve

EXTDATA = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images"


def test_each_point_predicts_the_validation_rows_from_its_own_subset():
    classes = sorted(p.name for p in EXTDATA.iterdir() if p.is_dir())
    paths = [str(p) for c in classes for p in sorted((EXTDATA / c).glob("*.jpg"))[:8]]
    labels = [i // 8 for i in range(len(paths))]
    order = [i for k in range(3) for i in range(k * 8, k * 8 + 6)] + [i for k in range(3) for i in range(k * 8 + 6, k * 8 + 8)]
    paths, labels = [paths[i] for i in order], [labels[i] for i in order]  # 18 to train, then 6 to validate
    out = learning_curve.curve(paths, labels, 18, [3, 9], 2, 3, seed=4, image_size=64)
    assert out["val"] == list(range(6))
    assert out["size"] == [3, 3, 9, 9] and out["rep"] == [1, 2, 1, 2]
    emb = embeddings.embed(paths, image_size=64)["embedding"]
    y = np.asarray(labels)
    for k, (size, rep) in enumerate(zip(out["size"], out["rep"])):
        sub = learning_curve._subset(np.arange(18), y, size, np.random.default_rng([4, size, rep - 1]))
        assert len(set(y[sub])) == 3 and sub.max() < 18  # class-complete, training rows only
        expected = embeddings.fit_predict(emb[sub], y[sub], emb[18:], 3, seed=4 + rep - 1).argmax(1)
        assert out["pred"][k] == expected.tolist()

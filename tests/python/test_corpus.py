import json
import sqlite3

import numpy as np
import pytest
import torch

from tidyvision import classifier, corpus, images
from tidyvision.errors import TidyvisionError
import fixtures


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    paths = sorted(fixtures.make_class_folder(root / "imgs", n_per_class=15, size=48))
    (root / "imgs" / "red" / "zz_bad.jpg").write_bytes(b"not a jpeg")
    model = classifier.build_classifier("efficientnet_lite0", 2, pretrained=True)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.head.weight, 0.0, 0.5)  # a head whose answers vary between images
    weights = classifier.save_weights(model, str(root / "model.safetensors"))
    task = {"kind": "classifier", "weights": weights, "backbone": "efficientnet_lite0",
            "classes": ["blue", "red"], "resize": "squish", "image_size": 32,
            "device": "cpu", "precision": "fp32"}
    return {"root": root, "paths": images.find_image_paths(root / "imgs"), "task": task}


def plan(setup, file, fingerprint='{"w": 1}', n_shards=1, shard_ids=(1,)):
    return corpus.plan([str(file)], list(shard_ids), n_shards, setup["task"], fingerprint,
                       {"tidyvision": "test"}, root=str(setup["root"] / "imgs"))


def results(file):
    con = sqlite3.connect(file)
    rows = con.execute("SELECT * FROM results ORDER BY path").fetchall()
    con.close()
    return rows


def test_listing_walks_names_only_and_matches_rglob(tmp_path):
    fixtures.make_odd_folder(tmp_path)
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "x.jpg").write_bytes(b"")
    (tmp_path / "cat" / "._x.jpg").write_bytes(b"")
    expected = sorted(str(p) for p in tmp_path.rglob("*") if p.is_file() and images.is_image_path(p))
    assert images.find_image_paths(tmp_path) == expected
    assert len(expected) == 18


def test_a_run_equals_predict_row_for_row_with_a_problem_row(setup, tmp_path):
    file = tmp_path / "out.sqlite"
    assert plan(setup, file)["pending"] == [31]
    summary = corpus.run(str(file), setup["task"], chunk_size=7, batch_size=3)
    assert summary["done"] == 31 and summary["problems"] == 1
    t = setup["task"]
    pred = classifier.predict(setup["paths"], t["weights"], t["backbone"], 2, t["resize"], t["image_size"],
                              "cpu", "fp32", batch_size=3)
    rows = results(str(file))
    assert [r[0] for r in rows] == setup["paths"]
    bad = setup["paths"].index(str(setup["root"] / "imgs" / "red" / "zz_bad.jpg"))
    assert rows[bad][1] is None and "not an image Pillow can read" in rows[bad][4]
    ok = [i for i in range(31) if i != bad]
    got = np.array([[rows[i][2], rows[i][3]] for i in ok])
    assert np.allclose(got, pred["prob"][ok], atol=1e-4)  # batches differ: float noise only
    assert [rows[i][1] for i in ok] == [["blue", "red"][j] for j in pred["prob"][ok].argmax(1)]
    assert len({rows[i][1] for i in ok}) == 2
    con = sqlite3.connect(str(file))
    assert con.execute("SELECT count(*), sum(n_images) FROM chunks").fetchone() == (5, 31)
    con.close()
    # a finished run has nothing to do
    assert plan(setup, file)["pending"] == [0]
    assert corpus.run(str(file), setup["task"], chunk_size=7)["done"] == 0


def test_a_crash_leaves_whole_chunks_and_a_rerun_fills_the_rest(setup, tmp_path):
    whole = tmp_path / "whole.sqlite"
    plan(setup, whole)
    corpus.run(str(whole), setup["task"], chunk_size=4, batch_size=2)
    broken = tmp_path / "broken.sqlite"
    plan(setup, broken)

    def crash(done, total):
        if done == 10:  # half-way through the third chunk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        corpus.run(str(broken), setup["task"], chunk_size=4, batch_size=2, progress=crash)
    con = sqlite3.connect(str(broken))
    assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 8  # chunks 1-2, not the third's half
    assert con.execute("SELECT count(*) FROM images WHERE chunk IS NULL").fetchone()[0] == 23
    con.close()
    assert plan(setup, broken)["pending"] == [23]
    corpus.run(str(broken), setup["task"], chunk_size=4, batch_size=2)
    assert results(str(broken)) == results(str(whole))


def test_a_failure_inside_a_commit_rolls_the_whole_chunk_back(setup, tmp_path):
    file = tmp_path / "out.sqlite"
    plan(setup, file)
    con = sqlite3.connect(str(file))
    con.execute("CREATE TRIGGER full AFTER INSERT ON chunks WHEN NEW.chunk = 3 "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    con.commit()
    con.close()
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        corpus.run(str(file), setup["task"], chunk_size=4, batch_size=2)
    con = sqlite3.connect(str(file))
    assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 8
    assert con.execute("SELECT count(chunk) FROM images").fetchone()[0] == 8
    con.close()


def test_another_task_is_a_mismatch(setup, tmp_path):
    file = tmp_path / "out.sqlite"
    plan(setup, file, fingerprint=json.dumps({"sha256": "aaa", "image_size": 32}))
    with pytest.raises(TidyvisionError) as e:
        plan(setup, file, fingerprint=json.dumps({"sha256": "bbb", "image_size": 32}))
    assert e.value.kind == "corpus_mismatch" and "sha256" in str(e.value) and "image_size" not in str(e.value)
    with pytest.raises(TidyvisionError) as e:
        plan(setup, file, fingerprint=json.dumps({"sha256": "aaa", "image_size": 32}), n_shards=2)
    assert e.value.kind == "corpus_mismatch"


def test_shards_split_every_path_once_by_its_hash(setup, tmp_path):
    files = [str(tmp_path / f"s{k}.sqlite") for k in (1, 2, 3)]
    got = corpus.plan(files, [1, 2, 3], 3, setup["task"], "{}", {}, paths=setup["paths"])
    assert sum(got["pending"]) == 31 and min(got["pending"]) > 0
    listed = []
    for k, f in enumerate(files, start=1):
        con = sqlite3.connect(f)
        mine = [r[0] for r in con.execute("SELECT path FROM images")]
        con.close()
        assert all(corpus.shard_of(p, 3) == k for p in mine)
        listed += mine
    assert sorted(listed) == setup["paths"]

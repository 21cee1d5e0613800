import errno
import json
import os
import shutil
import subprocess
import sys
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
    assert len(expected) == 18 + images.HEIF  # and the iPhone photo


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
    assert rows[bad][1] is None and "not an image Pillow can read" in rows[bad][5]
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


# Trust: foreign files, changed and removed images, old outputs, full disks, two runs ------

def own_copy(setup, tmp_path):
    """A copy of the images that a test may change, and a task over it."""
    folder = tmp_path / "imgs"
    shutil.copytree(setup["root"] / "imgs", folder)
    return folder, images.find_image_paths(folder)


def plan_paths(setup, file, paths):
    return corpus.plan([str(file)], [1], 1, setup["task"], '{"w": 1}', {}, paths=paths)


def test_a_database_of_someone_else_is_refused_and_left_as_it_was(setup, tmp_path):
    file = tmp_path / "survey.sqlite"
    con = sqlite3.connect(file)
    con.execute("CREATE TABLE respondents (id INTEGER, answer TEXT)")
    con.execute("INSERT INTO respondents VALUES (1, 'yes')")
    con.commit()
    con.close()
    with pytest.raises(TidyvisionError) as e:
        plan(setup, file)
    assert e.value.kind == "not_a_corpus" and "respondents" in str(e.value)
    con = sqlite3.connect(file)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["respondents"]
    con.close()


def test_a_changed_image_is_redone_a_touched_one_is_not_and_a_removed_one_is_flagged(setup, tmp_path):
    folder, paths = own_copy(setup, tmp_path)
    file = tmp_path / "out.sqlite"
    plan_paths(setup, file, paths)
    corpus.run(str(file), setup["task"], chunk_size=8, batch_size=4)
    changed, touched, removed = paths[0], paths[1], paths[2]
    before = {r[0]: r[1:] for r in results(str(file))}
    assert before[changed][0] != before[paths[20]][0]  # a blue image becomes a red one
    shutil.copyfile(paths[20], changed)  # another image under the old name
    os.utime(touched, ns=(1, 1))
    os.remove(removed)
    got = plan_paths(setup, file, paths)
    assert (got["changed"], got["missing"], got["pending"]) == ([1], [1], [1])
    assert corpus.run(str(file), setup["task"], chunk_size=8)["done"] == 1
    rows = {r[0]: r[1:] for r in results(str(file))}
    # the new content's answer, not the old one's (batches differ: float noise only)
    assert rows[changed][0] == rows[paths[20]][0]
    assert rows[changed][1:3] == pytest.approx(rows[paths[20]][1:3], abs=1e-4)
    assert rows[touched] == before[touched]
    con = sqlite3.connect(file)
    flags = dict(con.execute("SELECT path, missing FROM images"))
    assert con.execute("SELECT count(*) FROM results WHERE path = ?", (changed,)).fetchone()[0] == 1
    con.close()
    assert flags[removed] == 1 and sum(flags.values()) == 1
    assert removed in rows  # its rows are kept


def test_an_image_changed_while_its_chunk_ran_gets_no_hash_so_it_is_redone(setup, tmp_path):
    folder, paths = own_copy(setup, tmp_path)
    file = tmp_path / "out.sqlite"
    plan_paths(setup, file, paths)

    def edit(done, total):
        if done == 4:  # decoded, not yet committed: chunks are 8
            with open(paths[0], "ab") as f:
                f.write(b"\0")
            os.utime(paths[0], ns=(5, 5))

    corpus.run(str(file), setup["task"], chunk_size=8, batch_size=4, progress=edit)
    con = sqlite3.connect(file)
    assert con.execute("SELECT sha256 FROM images WHERE path = ?", (paths[0],)).fetchone()[0] is None
    assert con.execute("SELECT count(sha256) FROM images").fetchone()[0] == 30
    con.close()
    assert plan_paths(setup, file, paths)["changed"] == [1]


def test_an_output_of_format_1_is_migrated_and_resumes(setup, tmp_path):
    whole = tmp_path / "whole.sqlite"
    plan(setup, whole)
    corpus.run(str(whole), setup["task"], chunk_size=4, batch_size=2)
    old = tmp_path / "old.sqlite"
    plan(setup, old)

    def stop(done, total):
        if done == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        corpus.run(str(old), setup["task"], chunk_size=4, batch_size=2, progress=stop)
    con = sqlite3.connect(old)  # what tidyvision 0.x (format 1) wrote
    for name, _ in corpus.IMAGE_COLUMNS:
        con.execute(f"ALTER TABLE images DROP COLUMN {name}")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    con.commit()
    con.close()
    assert plan(setup, old)["pending"] == [19]
    corpus.run(str(old), setup["task"], chunk_size=4, batch_size=2)
    assert results(str(old)) == results(str(whole))
    con = sqlite3.connect(old)
    assert con.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0] == "3"
    assert con.execute("SELECT count(size), sum(missing) FROM images").fetchone() == (31, 0)
    con.close()


def seen_task(setup, paths):
    from tidyvision import fine_tune
    return dict(setup["task"], seen=fine_tune.seen_images(paths, []))


def test_the_fits_own_images_and_their_copies_are_flagged_trained(setup, tmp_path):
    train = setup["paths"][:4]
    copies = [fixtures.write_copy(train[0], str(tmp_path / "half.png"), "half") or str(tmp_path / "half.png"),
              fixtures.write_copy(train[1], str(tmp_path / "q40.jpg"), "jpeg40") or str(tmp_path / "q40.jpg")]
    shutil.copy(train[2], tmp_path / "renamed.jpg")
    copies.append(str(tmp_path / "renamed.jpg"))
    others = [p for p in setup["paths"][4:] if not p.endswith("zz_bad.jpg")]
    bad = [p for p in setup["paths"] if p.endswith("zz_bad.jpg")]
    index = corpus.SeenIndex(seen_task(setup, train))
    assert index.flags(train + copies) == [1] * 7
    assert index.flags(others) == [0] * len(others)
    assert index.flags(bad) == [None]
    # a fit that does not carry its images: unknown, never "not trained"
    assert corpus.SeenIndex(setup["task"]).flags(train[:1]) == [None]


def test_a_classifier_output_of_format_2_gets_trained_on_its_next_plan(setup, tmp_path):
    task = seen_task(setup, setup["paths"][:4])
    file = tmp_path / "f2.sqlite"
    corpus.plan([str(file)], [1], 1, task, "{}", {}, root=str(setup["root"] / "imgs"))
    corpus.run(str(file), task, chunk_size=8, batch_size=4)
    con = sqlite3.connect(file)
    con.execute("ALTER TABLE results DROP COLUMN trained")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    con.commit()
    con.close()
    corpus.plan([str(file)], [1], 1, task, "{}", {}, root=str(setup["root"] / "imgs"))
    con = sqlite3.connect(file)
    flags = dict(con.execute("SELECT path, trained FROM results").fetchall())
    assert con.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0] == "3"
    con.close()
    assert [flags[p] for p in setup["paths"][:4]] == [1] * 4
    assert sum(v == 1 for v in flags.values()) == 4
    assert [v for p, v in flags.items() if p.endswith("zz_bad.jpg")] == [None]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MB file system (tmpfs), mounted for the test: needs root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"can't mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder):
    """Write a file until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_a_full_disk_says_so_and_keeps_the_finished_chunks(setup, tiny_disk):
    file = tiny_disk / "out.sqlite"
    plan(setup, file)

    def fill_at(done, total):
        if done == 8:  # two chunks committed
            fill(tiny_disk)

    with pytest.raises(TidyvisionError) as e:
        corpus.run(str(file), setup["task"], chunk_size=4, batch_size=4, progress=fill_at)
    assert e.value.kind == "disk_full"
    assert "full" in str(e.value) and "finished chunks are kept" in str(e.value) and str(file) in str(e.value)
    (tiny_disk / "filler").unlink()
    con = sqlite3.connect(file)
    assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 8
    con.close()
    assert plan(setup, file)["pending"] == [23]


HOLD = """
import sys
from tidyvision import corpus
corpus.lock([sys.argv[1]])
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_run_is_refused_while_one_holds_the_file_and_not_after_it_is_killed(setup, tmp_path):
    file = str(tmp_path / "out.sqlite")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, file], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TidyvisionError) as e:
            plan(setup, file)
        assert e.value.kind == "corpus_busy" and f"process {holder.pid}" in str(e.value)
    finally:
        holder.kill()  # SIGKILL: no clean-up runs
        holder.wait()
    assert plan(setup, file)["pending"] == [31]
    assert not os.path.exists(file + ".lock")


def test_a_damaged_output_names_the_file_and_what_to_do(setup, tmp_path):
    file = tmp_path / "out.sqlite"
    plan(setup, file)
    data = bytearray(file.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    file.write_bytes(bytes(data))
    with pytest.raises(TidyvisionError) as e:
        plan(setup, file)
    assert e.value.kind == "corpus_corrupt" and str(file) in str(e.value) and "backup" in str(e.value)


def test_a_lock_file_that_cant_be_made_is_a_user_error(setup, tmp_path):
    file = tmp_path / "out.sqlite"
    (tmp_path / "out.sqlite.lock").mkdir()
    with pytest.raises(TidyvisionError) as e:
        plan(setup, file)
    assert e.value.kind == "write_failed" and "out.sqlite.lock" in str(e.value)

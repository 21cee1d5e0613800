import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tidyvision import faces
import fixtures
from tidyvision.errors import TidyvisionError

FACES = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "faces"
ASTRONAUT = str(FACES / "astronaut_collins.jpg")
# Eileen Collins' face in scikit-image's 512 x 512 astronaut photo, by eye.
ASTRONAUT_FACE = (160, 60, 260, 190)


def iou(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def rows(cols):
    return [dict(zip(cols, values)) for values in zip(*cols.values())]


def boxes_of(found):
    return {k: [r[k] for r in found] for k in ("xmin", "ymin", "xmax", "ymax")}


def test_models_are_found_without_importing_pkg_resources():
    code = ("import sys; from tidyvision import faces; faces.model_file('embedding'); "
            "print('face_recognition_models' in sys.modules, 'pkg_resources' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(faces.__file__).parents[1], check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_missing_model_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDYVISION_FACE_MODELS", str(tmp_path))
    with pytest.raises(TidyvisionError) as e:
        faces.detect([ASTRONAUT], model="cnn")
    assert e.value.kind == "weights_missing"
    assert "mmod_human_face_detector.dat" in str(e.value)
    assert "install_tidyvision" in str(e.value)


def test_confidence_is_the_logistic_of_the_score():
    assert faces.confidence_of(0) == 0.5
    assert faces.confidence_of(1) == pytest.approx(1 / (1 + math.exp(-1)))
    assert faces.score_of(faces.confidence_of(0.4)) == pytest.approx(0.4)


def test_hog_box_overlaps_the_astronauts_face_and_skips_the_weak_false_hit():
    found = rows(faces.detect([ASTRONAUT]))
    assert len(found) == 1
    face = found[0]
    assert face["face"] == 1 and face["problem"] is None
    assert iou([face[k] for k in ("xmin", "ymin", "xmax", "ymax")], ASTRONAUT_FACE) > 0.5
    assert (face["image_width"], face["image_height"]) == (512, 512)
    # dlib's own threshold (confidence 0.5) also returns a patch of the suit
    loose = rows(faces.detect([ASTRONAUT], confidence=0.5))
    assert len(loose) == 2 and loose[1]["confidence"] < 0.6
    assert [r["face"] for r in loose] == [1, 2]


def test_boxes_are_clipped_to_the_image(tmp_path):
    # Cut the photo through the face: dlib then reports a box past the edge.
    path = tmp_path / "cut.png"
    Image.open(ASTRONAUT).crop((215, 40, 512, 300)).save(path)
    found = rows(faces.detect([str(path)], confidence=0.5, upsample=1))
    assert found and found[0]["face"] == 1
    for face in found:
        assert 0 <= face["xmin"] < face["xmax"] <= 297
        assert 0 <= face["ymin"] < face["ymax"] <= 260


def test_boxes_are_in_displayed_pixels_for_exif_rotated_files(tmp_path):
    rotated = fixtures.exif_rotated_copy(ASTRONAUT, tmp_path / "rotated.jpg")
    a, b = rows(faces.detect([ASTRONAUT, rotated]))
    assert iou([a[k] for k in ("xmin", "ymin", "xmax", "ymax")],
               [b[k] for k in ("xmin", "ymin", "xmax", "ymax")]) > 0.8


def test_a_53_px_face_needs_the_default_upsampling():
    small = str(FACES / "obama_small_face.jpg")
    assert rows(faces.detect([small], upsample=0))[0]["face"] is None
    face = rows(faces.detect([small]))[0]
    assert face["face"] == 1 and 40 <= face["xmax"] - face["xmin"] <= 60


def test_unreadable_and_faceless_images_keep_one_row(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    blank = tmp_path / "blank.png"
    fixtures.photo_like(1, (120, 90)).save(blank)
    found = rows(faces.detect([str(bad), str(blank), ASTRONAUT]))
    assert [r["face"] for r in found] == [None, None, 1]
    assert "not an image Pillow can read" in found[0]["problem"]
    assert found[1]["problem"] is None and found[1]["image_width"] == 120


def test_cnn_detector_finds_the_face(tmp_path):
    path = tmp_path / "small.jpg"
    Image.open(FACES / "obama_portrait.jpg").resize((240, 300)).save(path)
    face = rows(faces.detect([str(path)], model="cnn", upsample=0))[0]
    assert face["face"] == 1 and face["confidence"] > 0.6
    assert iou([face[k] for k in ("xmin", "ymin", "xmax", "ymax")], (94, 35, 163, 103)) > 0.5


def test_augmented_copies_embed_close_and_another_person_far(tmp_path):
    paths = [ASTRONAUT] + fixtures.face_variants(ASTRONAUT, tmp_path) + [str(FACES / "biden.jpg")]
    found = rows(faces.detect(paths))
    assert [r["face"] for r in found] == [1] * len(paths)
    emb = faces.embed([r["path"] for r in found], boxes_of(found))["embedding"]
    assert emb.shape == (len(paths), 128)
    same = np.linalg.norm(emb[1:-1] - emb[0], axis=1)
    assert (same < 0.6).all(), same
    other = np.linalg.norm(emb[:-1] - emb[-1], axis=1)
    assert (other > 0.6).all(), other


def test_rows_without_a_box_embed_as_nan():
    boxes = {"xmin": [float("nan"), 175.0], "ymin": [None, 76.0], "xmax": [1.0, 266.0],
             "ymax": [1.0, 167.0]}
    res = faces.embed([ASTRONAUT, ASTRONAUT], boxes)
    assert np.isnan(res["embedding"][0]).all() and np.isfinite(res["embedding"][1]).all()


def test_anonymize_changes_only_the_face(tmp_path):
    src = fixtures.write_copy(ASTRONAUT, tmp_path / "astronaut.png", "png")
    before = np.asarray(Image.open(src), dtype=np.int16)
    box = next(r for r in rows(faces.detect([src])))
    for method in faces.METHODS:
        dst = str(tmp_path / method / "astronaut.png")
        res = faces.anonymize([src], [dst], method=method, model="hog", upsample=1, confidence=0.6,
                              margin=0)
        assert res == {"n_faces": [1], "status": ["faces_obscured"], "problem": [None]}
        after = np.asarray(Image.open(dst), dtype=np.int16)
        inside = np.zeros(before.shape[:2], bool)
        inside[box["ymin"]:box["ymax"], box["xmin"]:box["xmax"]] = True
        diff = np.abs(after - before).sum(axis=2)
        assert (diff[~inside] == 0).all(), method
        assert (diff[inside] > 0).mean() > 0.8 and diff[inside].mean() > 30, method
        again = [r for r in rows(faces.detect([dst], confidence=0.5)) if r["face"]]
        assert all(iou([r[k] for k in ("xmin", "ymin", "xmax", "ymax")], ASTRONAUT_FACE) < 0.1
                   for r in again), method
    assert (np.asarray(Image.open(src), dtype=np.int16) == before).all()


def test_anonymize_uses_given_boxes_and_reports_every_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    blank = tmp_path / "blank.png"
    fixtures.photo_like(2, (80, 60)).save(blank)
    paths = [ASTRONAUT, str(bad), str(blank)]
    outputs = [str(tmp_path / "out" / Path(p).name) for p in paths]
    res = faces.anonymize(paths, outputs, boxes=[[[0, 0, 10, 10], [20, 20, 40, 40]], [], []])
    assert res["status"] == ["faces_obscured", "unreadable", "no_face_found"]
    assert res["n_faces"] == [2, None, 0]
    assert os.path.exists(outputs[0]) and not os.path.exists(outputs[1])
    assert Image.open(outputs[2]).size == (80, 60)


def test_writes_are_atomic_and_refuse_to_overwrite(tmp_path):
    dst = tmp_path / "x.jpg"
    dst.write_bytes(b"precious")
    im = Image.new("RGB", (8, 8))
    with pytest.raises(TidyvisionError) as e:
        faces.save_atomic(im, str(dst))
    assert e.value.kind == "exists" and dst.read_bytes() == b"precious"
    faces.save_atomic(im, str(dst), overwrite=True)
    assert Image.open(dst).size == (8, 8)
    assert sorted(os.listdir(tmp_path)) == ["x.jpg"]


def test_crops_are_square_and_stay_inside_the_image(tmp_path):
    assert faces.expand_box((0, 0, 20, 20), 0.5, 100, 100, square=True) == (0, 0, 40, 40)
    assert faces.expand_box((90, 40, 100, 60), 0.2, 100, 100, square=True) == (72, 36, 100, 64)
    out = [str(tmp_path / "a.jpg"), ""]
    boxes = {"xmin": [175.0, 175.0], "ymin": [76.0, 76.0], "xmax": [266.0, 266.0],
             "ymax": [167.0, 167.0]}
    res = faces.crop([ASTRONAUT, ASTRONAUT], boxes, out, size=64)
    assert res["problem"] == [None, None]
    assert Image.open(out[0]).size == (64, 64)
    assert os.listdir(tmp_path) == ["a.jpg"]


def test_progress_is_reported_from_the_calling_thread():
    import threading
    ticks = []
    main = threading.get_ident()
    paths = [str(p) for p in sorted(FACES.glob("*.jpg"))]
    faces.detect(paths, progress=lambda done, total: ticks.append((done, total, threading.get_ident())),
                 workers=2)
    assert ticks[-1][:2] == (5, 5)
    assert [t[0] for t in ticks] == sorted(t[0] for t in ticks)
    assert {t[2] for t in ticks} == {main}


def test_loaded_models_are_in_the_engine_cache_and_can_be_freed():
    from tidyvision import cache
    cache.clear("faces")
    faces.detect([ASTRONAUT], model="cnn", upsample=0)
    info = cache.describe()
    held = dict(zip(info["space"], info["bytes"]))
    assert held["faces"] >= os.path.getsize(faces.model_file("cnn"))
    assert cache.clear("faces") == held["faces"]
    assert "faces" not in cache.describe()["space"]


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder this process can't write in: read-only, or immutable for root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    locked_by = "chmod"
    if os.access(folder, os.W_OK):
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            folder.chmod(0o755)
            pytest.skip("no way to make a folder unwritable here")
        locked_by = "chattr"
    yield folder
    if locked_by == "chattr":
        subprocess.run(["chattr", "-i", str(folder)])
    folder.chmod(0o755)


def test_an_unwritable_folder_is_named(unwritable_dir):
    with pytest.raises(TidyvisionError) as e:
        faces.save_atomic(Image.new("RGB", (8, 8)), str(unwritable_dir / "copy.jpg"))
    assert e.value.kind == "not_writable"
    assert str(unwritable_dir) in str(e.value)
    with pytest.raises(TidyvisionError) as e:
        faces.save_atomic(Image.new("RGB", (8, 8)), str(unwritable_dir / "sub" / "copy.jpg"))
    assert e.value.kind == "not_writable"

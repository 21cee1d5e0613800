import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

# Keep ultralytics' settings and any weights out of the user's cache.
os.environ.setdefault("TIDYVISION_CACHE_DIR", tempfile.mkdtemp(prefix="tidyvision-cache-"))

import fixtures  # noqa: E402
from tidyvision import detect, detect_train  # noqa: E402
from tidyvision.errors import TidyvisionError  # noqa: E402

ENGINE = str(Path(__file__).resolve().parents[2] / "inst" / "python")
# A tiny detector learns one shape per image in ~30 epochs of 24 images (~1 s each).
FAST = dict(warmup_epochs=0, nbs=4, optimizer="AdamW", lr0=0.003, mosaic=0)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def boxes_of(out, path):
    return [(out["class"][i], [out[k][i] for k in ("xmin", "ymin", "xmax", "ymax")], out["confidence"][i])
            for i, p in enumerate(out["path"]) if p == path and out["object"][i] is not None]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    shapes = fixtures.make_shapes(root / "images", n=24, n_empty=2)
    classes = list(fixtures.SHAPES)
    splits = ["train"] * 20 + ["val"] * 6
    has = [k for k, c in enumerate(shapes["class"]) if c is not None]
    ds = detect_train.write_dataset(
        root / "dataset", shapes["path"], splits, has, [classes.index(shapes["class"][k]) for k in has],
        *([shapes[c][k] for k in has] for c in ("xmin", "ymin", "xmax", "ymax")), classes)
    ticks = []
    res = detect_train.train(ds["data"], root / "run", model=detect_train.TINY, epochs=30, image_size=128,
                             batch_size=4, progress=lambda done, total: ticks.append((done, total)), **FAST)
    return {"shapes": shapes, "fit": res, "ticks": ticks, "root": root}


def test_training_reports_each_epoch_and_its_metrics(trained):
    fit = trained["fit"]
    assert trained["ticks"] == [(e, 30) for e in range(1, 31)]
    assert fit["classes"] == ["square", "disc"]
    assert fit["history"]["epoch"] == list(range(1, 31))
    assert Path(fit["weights"]).is_file() and fit["weights"].startswith(str(trained["root"] / "run"))
    assert max(fit["history"]["map50"]) > 0.7
    assert all(s > 0 for s in fit["history"]["seconds"])


def test_detector_finds_the_drawn_shapes_on_training_images(trained):
    shapes = trained["shapes"]
    out = detect.detect(shapes["path"][:20], trained["fit"]["weights"], confidence=0.1)
    found = 0
    for path, kind, *truth in zip(*(shapes[k][:20] for k in shapes)):
        best = max((iou(b, truth) for c, b, _ in boxes_of(out, path) if c == kind), default=0)
        found += best >= 0.5
    assert found >= 16, f"only {found} of 20 shapes found with IoU >= 0.5"


def test_boxes_are_pixels_inside_the_image_and_empty_images_are_kept(trained):
    shapes = trained["shapes"]
    out = detect.detect(shapes["path"], trained["fit"]["weights"], confidence=0.01, batch_size=5)
    assert set(out) == {"path", "object", "class", "confidence", "xmin", "ymin", "xmax", "ymax",
                        "image_width", "image_height", "problem"}
    assert list(dict.fromkeys(out["path"])) == shapes["path"]  # input order, every image
    for i in range(len(out["path"])):
        assert out["image_width"][i] == 128 and out["image_height"][i] == 128
        if out["object"][i] is not None:
            assert 0 <= out["xmin"][i] < out["xmax"][i] <= 128
            assert 0 <= out["ymin"][i] < out["ymax"][i] <= 128
            assert 0 < out["confidence"][i] <= 1
    # Objects are numbered from 1 within every image, most confident first;
    # at confidence 0.01 the trained detector finds several in most images.
    several = 0
    for path in shapes["path"]:
        objs = [(o, c) for p, o, c in zip(out["path"], out["object"], out["confidence"]) if p == path]
        if objs[0][0] is None:
            assert len(objs) == 1
            continue
        several += len(objs) > 1
        assert [o for o, _ in objs] == list(range(1, len(objs) + 1))
        assert [c for _, c in objs] == sorted((c for _, c in objs), reverse=True)
    assert several >= len(shapes["path"]) // 2
    strict = detect.detect(shapes["path"][-2:], trained["fit"]["weights"], confidence=0.99)
    assert strict["object"] == [None, None] and strict["image_width"] == [128, 128]


def test_boxes_follow_the_exif_orientation(trained, tmp_path):
    src = trained["shapes"]["path"][2]
    turned = fixtures.exif_rotated_copy(src, tmp_path / "turned.jpg", orientation=6)
    out = detect.detect([src, turned], trained["fit"]["weights"], confidence=0.1)
    a, b = boxes_of(out, src), boxes_of(out, turned)
    assert a and b and a[0][0] == b[0][0]
    assert iou(a[0][1], b[0][1]) > 0.8
    assert out["image_width"][-1] == 128 and out["image_height"][-1] == 128


def test_unreadable_images_are_a_row_with_a_problem(trained, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    good = trained["shapes"]["path"][0]
    out = detect.detect([str(bad), good], trained["fit"]["weights"])
    assert out["path"][0] == str(bad) and out["problem"][0]
    assert out["object"][0] is None and out["image_width"][0] is None
    assert good in out["path"] and all(p is None for p in out["problem"][1:])


def test_class_filter_and_unknown_classes(trained):
    weights = trained["fit"]["weights"]
    out = detect.detect(trained["shapes"]["path"][:8], weights, confidence=0.05, classes=["disc"])
    assert set(out["class"]) <= {"disc", None}
    with pytest.raises(TidyvisionError, match="no class 'flag'.*square, disc") as e:
        detect.detect(trained["shapes"]["path"][:1], weights, classes=["flag"])
    assert e.value.kind == "unknown_class"
    assert detect.model_info(weights)["classes"] == ["square", "disc"]


def test_torch_threads_are_left_as_they_were(trained):
    import torch
    before = torch.get_num_threads()
    detect.detect(trained["shapes"]["path"][:2], trained["fit"]["weights"])
    assert torch.get_num_threads() == before
    assert not torch.are_deterministic_algorithms_enabled()


def test_missing_weights_offline_are_a_quick_classed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TIDYVISION_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    detect.ultralytics_module()  # the import is the slow part, and happens once
    start = time.time()
    with pytest.raises(TidyvisionError, match=r"\"yolov8n.pt\" are not on this machine.*offline.*github.com") as e:
        detect.resolve_weights("yolov8n.pt")
    assert e.value.kind == "weights_missing" and time.time() - start < 5
    with pytest.raises(TidyvisionError, match="does not exist") as e:
        detect.resolve_weights(str(tmp_path / "models" / "best.pt"))
    assert e.value.kind == "weights_missing"
    with pytest.raises(TidyvisionError, match="is not a model ultralytics publishes"):
        detect.resolve_weights("my_detector.pt")
    with pytest.raises(TidyvisionError, match="must be a .pt weights file"):
        detect.resolve_weights("yolov8n")


def test_a_payload_checkpoint_runs_no_code_in_any_verb(trained, tmp_path):
    marker = tmp_path / "marker"
    bare = fixtures.plant_payload(tmp_path / "bare.pt", marker)
    inside = fixtures.plant_payload(tmp_path / "inside.pt", marker, trained["fit"]["weights"])
    paths = trained["shapes"]["path"][:2]
    for f in (bare, inside):
        for call in (lambda: detect.detect(paths, f), lambda: detect.model_info(f)):
            with pytest.raises(TidyvisionError) as e:
                call()
            assert e.value.kind in ("weights_unsafe", "weights_unreadable"), e.value
        with pytest.raises(TidyvisionError):
            detect_train.train(trained["fit"]["data"], tmp_path / "run", model=f, epochs=1, image_size=64)
    with pytest.raises(TidyvisionError, match="would run code it names .*exec.*ran none") as e:
        detect.load_model(inside)
    assert e.value.kind == "weights_unsafe"
    assert not marker.exists(), "a planted checkpoint ran code"
    # The real checkpoint it was planted in still loads, weights-only.
    assert detect.model_info(trained["fit"]["weights"])["classes"] == ["square", "disc"]


def test_a_bare_name_never_means_a_file_in_the_working_directory(trained, monkeypatch, tmp_path):
    monkeypatch.setenv("TIDYVISION_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    fixtures.plant_payload(tmp_path / "yolov8n.pt", marker, trained["fit"]["weights"])
    with pytest.raises(TidyvisionError, match="not on this machine") as e:
        detect.detect(trained["shapes"]["path"][:1], "yolov8n.pt")
    assert e.value.kind == "weights_missing" and str(tmp_path) not in str(e.value)
    fixtures.plant_payload(tmp_path / "best.pt", marker, trained["fit"]["weights"])
    with pytest.raises(TidyvisionError, match=r"never means a file in the working directory.*\./best\.pt"):
        detect.resolve_weights("best.pt")
    # A model yaml by bare name is ultralytics' own, not one planted here.
    (tmp_path / "yolov8n.yaml").write_text("nc: 2\nbackbone: [[-1, 1, torch_load, ['best.pt']]]\nhead: []\n")
    (tmp_path / "run").mkdir()
    source = detect_train._model_source("yolov8n.yaml", tmp_path / "run", 2)
    assert Path(source).parent == tmp_path / "run" and "torch_load" not in Path(source).read_text()
    assert not marker.exists()
    # A path to it, given on purpose, is used (and still loaded weights-only).
    assert detect.resolve_weights("./yolov8n.pt") == str(tmp_path / "yolov8n.pt")


def test_data_yaml_is_copied_with_absolute_paths_and_no_download_script(tmp_path):
    shapes = fixtures.make_shapes(tmp_path / "src", n=4)
    yaml_path = Path(fixtures.write_yolo_folder(tmp_path / "yolo", shapes))
    yaml_path.write_text(yaml_path.read_text() + "download: |\n  import os; os.system('touch pwned')\n")
    copied = json.loads(Path(detect_train.copy_data_yaml(yaml_path, tmp_path / "run")).read_text())
    assert copied["train"] == copied["val"] == str((tmp_path / "yolo" / "images").resolve())
    assert "download" not in copied and list(copied["names"].values()) == ["square", "disc"]
    yaml_path.write_text("train: images\nval: nowhere\nnames: [a]\n")
    with pytest.raises(TidyvisionError, match="`val: nowhere`.*does not exist") as e:
        detect_train.copy_data_yaml(yaml_path, tmp_path / "run")
    assert e.value.kind == "path_not_found"


def test_boxes_outside_the_image_are_refused(tmp_path):
    shapes = fixtures.make_shapes(tmp_path / "src", n=2)
    with pytest.raises(TidyvisionError, match="not inside the image .*128 x 128") as e:
        detect_train.write_dataset(tmp_path / "ds", shapes["path"], ["train", "val"], [0], [0],
                                   [10], [10], [200], [50], ["square"])
    assert e.value.kind == "bad_boxes"


OFFLINE_SCRIPT = textwrap.dedent("""
    import json, socket, sys
    attempts = []
    def refuse(kind):
        def f(*args, **kwargs):
            attempts.append([kind, repr(args[:2])])
            raise OSError("network disabled by the test")
        return f
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.create_connection = refuse("create_connection")
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    sys.path.insert(0, str(Path(sys.argv[1]).parents[1] / "tests" / "python"))
    from tidyvision import detect, detect_train
    import fixtures
    from tidyvision.errors import TidyvisionError
    root = Path(sys.argv[2])
    shapes = fixtures.make_shapes(root / "src", n=4, size=(64, 64))
    data = fixtures.write_yolo_folder(root / "yolo", shapes)
    # A labels.cache is a pickle: one that runs code when loaded must stay unread.
    import numpy as np
    class Planted:
        def __reduce__(self):
            return (open, (str(root / "unpickled"), "w"))
    np.save(root / "yolo" / "labels.cache.npy", np.array(Planted(), dtype=object), allow_pickle=True)
    (root / "yolo" / "labels.cache.npy").rename(root / "yolo" / "labels.cache")
    planted = (root / "yolo" / "labels.cache").read_bytes()
    fit = detect_train.train(data, root / "run", model="yolov8-tiny.yaml", epochs=1, image_size=64, batch_size=4)
    out = detect.detect(shapes["path"], fit["weights"])
    before = len(attempts)
    try:
        detect.resolve_weights("yolov8n.pt")
        error = None
    except TidyvisionError as e:
        error = e.kind
    print(json.dumps({"before": attempts[:before], "probe": attempts[before:], "error": error,
                      "rows": len(out["path"]), "unpickled": (root / "unpickled").exists(),
                      "cache_kept": (root / "yolo" / "labels.cache").read_bytes() == planted,
                      "cache_files": [p.name for p in (root / "yolo").iterdir() if p.suffix == ".cache"]}))
""")


def test_training_and_detection_never_touch_the_network(tmp_path):
    env = {**os.environ, "TIDYVISION_CACHE_DIR": str(tmp_path / "cache")}
    for var in ("YOLO_OFFLINE", "TIDYVISION_OFFLINE", "YOLO_CONFIG_DIR"):
        env.pop(var, None)
    res = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, ENGINE, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["before"] == [], "ultralytics tried the network while importing, training or detecting"
    assert got["rows"] >= 4 and got["error"] == "weights_missing"
    # The only attempt is tidyvision's own check before downloading weights asked for by name.
    assert len(got["probe"]) == 1 and "github.com" in got["probe"][0][1]
    # Nothing written into the user's dataset folder, nothing unpickled from it.
    assert got["cache_files"] == ["labels.cache"] and got["cache_kept"] and not got["unpickled"]
    assert (tmp_path / "cache" / "ultralytics").is_dir()


def test_unknown_model_files_are_a_classed_error(tmp_path):
    with pytest.raises(TidyvisionError, match="is not a model ultralytics ships") as e:
        detect_train._model_source("yolov99z.yaml", tmp_path, 2)
    assert e.value.kind == "unknown_model"
    with pytest.raises(TidyvisionError, match="Can't find the model file"):
        detect_train._model_source("https://example.org/evil.yaml", tmp_path, 2)
    assert detect_train._model_source("yolov8n.yaml", tmp_path, 2) == str(tmp_path / "yolov8n.yaml")
    assert detect_train._model_source(detect_train.TINY, tmp_path, 2) == str(tmp_path / detect_train.TINY)


def test_importing_ultralytics_leaves_pillow_alone(tmp_path):
    from PIL import Image
    from tidyvision import detect, images
    detect.ultralytics_module()
    assert Image.open.__module__.startswith("PIL")
    bad = tmp_path / "text.jpg"
    bad.write_text("not an image")
    assert "not an image" in images.header_info(str(bad))["problem"]

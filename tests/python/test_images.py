from pathlib import Path

import pytest

from tidyvision import images
import fixtures
from tidyvision.errors import TidyvisionError


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    fixtures.make_odd_folder(root)
    cols = images.list_images(str(root))
    skipped = cols.pop("skipped")
    rows = {Path(p).name: {k: v[i] for k, v in cols.items()} for i, p in enumerate(cols["path"])}
    rows["skipped"] = dict(zip((Path(p).name for p in skipped["path"]), skipped["kind"]))
    return rows


def test_files_that_are_not_images_are_named_by_kind(odd):
    assert odd["skipped"] == {"clip.mp4": "video", "notes.txt": "other"}
    assert odd["iphone.heic"]["readable"] and odd["iphone.heic"]["format"] == "HEIF"


def test_odd_files_are_readable(odd):
    for name in ["normal.jpg", "UPPER.JPG", "cmyk.jpg", "gray.png", "sixteen.png",
                 "palette.gif", "alpha.png", "photo.webp", "photo.bmp", "photo.tiff"]:
        assert odd[name]["readable"], name
        assert (odd[name]["width"], odd[name]["height"]) == (60, 40)


def test_exif_rotation_swaps_sides(odd):
    assert (odd["rotated.jpg"]["width"], odd["rotated.jpg"]["height"]) == (40, 60)


@pytest.mark.parametrize("name,word", [("truncated.jpg", "truncated"), ("truncated.png", "truncated"),
                                       ("empty.jpg", "empty"), ("text.png", "not an image"),
                                       ("bomb.bmp", "decompression bomb")])
def test_bad_files(odd, name, word):
    assert not odd[name]["readable"]
    assert word in odd[name]["problem"]


def test_every_odd_mode_decodes_to_rgb(tmp_path):
    fixtures.make_odd_folder(tmp_path)
    for name in ["cmyk.jpg", "sixteen.png", "palette.gif", "alpha.png", "gray.png", "rotated.jpg"]:
        path = next(tmp_path.rglob(name))
        im = images.load_rgb(str(path))
        assert im.mode == "RGB"
    sixteen = images.load_rgb(str(next(tmp_path.rglob("sixteen.png"))))
    gray = images.load_rgb(str(next(tmp_path.rglob("gray.png"))))
    assert abs(sum(sixteen.getpixel((10, 10))) - sum(gray.getpixel((10, 10)))) <= 6
    assert images.load_rgb(str(next(tmp_path.rglob("rotated.jpg")))).size == (40, 60)


def test_missing_folder_is_a_tidyvision_error(tmp_path):
    with pytest.raises(TidyvisionError) as e:
        images.list_images(str(tmp_path / "nope"))
    assert e.value.kind == "path_not_found"


def test_macos_metadata_is_not_an_image():
    assert images.is_image_path("/a/cat/x.jpg")
    assert not images.is_image_path("/a/cat/._x.jpg")
    assert not images.is_image_path("/a/__MACOSX/cat/x.jpg")
    assert not images.is_image_path("/a/cat/.DS_Store")


def test_list_files_labels_from_folders_below_the_common_one(tmp_path):
    paths = (fixtures.make_class_folder(tmp_path, n_per_class=1, size=16, split="train")
             + fixtures.make_class_folder(tmp_path, n_per_class=1, size=16, split="val"))
    cols = images.list_files(paths + [str(tmp_path / "notes.txt")])
    assert cols["path"] == paths
    assert cols["label"] == ["red", "blue", "red", "blue"]
    assert cols["split"] == ["train", "train", "val", "val"]
    assert images.list_files(paths[:1])["label"] == [None]

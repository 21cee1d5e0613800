import os
from pathlib import Path

import numpy as np
import pytest

from tidyvision import tags
import fixtures
from tidyvision.errors import TidyvisionError

FIXTURES = Path(__file__).resolve().parents[1] / "testthat" / "fixtures" / "rekognition"
EXTDATA = Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images"


def rows(out):
    return list(zip(out["path"], out["tag"], out["confidence"], out["source"]))


def test_imagenet_classes_are_1000_unique_lowercase_names():
    names = tags.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert all(n == n.lower() and n.strip() == n and n for n in names)
    assert names[0] == "tench" and names[207] == "golden retriever" and names[474] == "cardigan"
    assert names[264] == "cardigan welsh corgi"


def test_imagenet_tags_a_shipped_photo_and_keeps_an_unreadable_one(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    hen = str(EXTDATA / "animals" / "chicken.jpg")
    hammer = str(EXTDATA / "tools" / "hammer1.jpg")
    out = tags.imagenet([hen, str(bad), hammer], top_k=3)
    assert out["path"] == [hen] * 3 + [str(bad)] + [hammer] * 3
    assert out["tag"][0] == "hen" and out["tag"][4] == "hammer"
    conf = np.array(out["confidence"][:3])
    assert np.all(np.diff(conf) <= 0) and 0 < conf.sum() <= 1.0001
    assert out["tag"][3] is None and out["confidence"][3] is None and out["problem"][3]
    assert out["problem"][0] is None


def test_imagenet_top_k_is_capped_and_batches_agree(tmp_path):
    paths = fixtures.make_class_folder(tmp_path, n_per_class=3, size=48)
    one = tags.imagenet(paths, top_k=2, batch_size=1)
    many = tags.imagenet(paths, top_k=2, batch_size=32)
    assert one["tag"] == many["tag"]
    assert np.allclose(one["confidence"], many["confidence"], atol=2e-2)
    assert len(tags.imagenet(paths[:1], top_k=5000)["tag"]) == 1000


def test_single_response_takes_its_name_from_the_file():
    out = tags.read_rekognition(FIXTURES / "protest_01.jpg.json")
    assert rows(out)[:2] == [
        ("protest_01.jpg", "Person", pytest.approx(0.995312271118164), tags.LABELS_SOURCE),
        ("protest_01.jpg", "Crowd", pytest.approx(0.9714), tags.LABELS_SOURCE),
    ]
    assert len(out["tag"]) == 4


@pytest.mark.parametrize("name, prefix", [("detect_labels.json", ""), ("detect_labels.jsonl", "photos/"),
                                          ("awsrekognition_labels.csv", ""),
                                          ("labels_response_only.csv", "")])
def test_every_labels_format_gives_the_same_tags(name, prefix):
    out = tags.read_rekognition(FIXTURES / name)
    got = rows(out)
    assert len(got) == 4 + 3 + 1 + 2
    assert got[4] == (prefix + "protest_02.jpg", "Human", pytest.approx(0.98), tags.LABELS_SOURCE)
    # An image with no labels is kept, as one row with no tag.
    assert got[7] == (prefix + "street_03.jpg", None, None, tags.LABELS_SOURCE)
    # Commas and quotes in a file name survive the CSV.
    assert got[8][:3] == (prefix + 'flag, "red" 04.jpg', "Flag", pytest.approx(0.9375))


@pytest.mark.parametrize("name", ["celebrities.json", "awsrekognition_celeb_detect.csv"])
def test_celebrities_give_names_with_match_confidence(name):
    got = rows(tags.read_rekognition(FIXTURES / name))
    assert got == [
        ("obama_speech.jpg", "Barack Obama", pytest.approx(0.99), tags.CELEBS_SOURCE),
        ("summit_02.jpg", "Barack Obama", pytest.approx(0.965), tags.CELEBS_SOURCE),
        ("summit_02.jpg", "Joe Biden", pytest.approx(0.8825), tags.CELEBS_SOURCE),
        ("crowd_03.jpg", None, None, tags.CELEBS_SOURCE),
    ]


def test_code_in_a_response_column_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TidyvisionError, match="not a Python literal") as e:
        tags.read_rekognition(FIXTURES / "unsafe.csv")
    assert e.value.kind == "bad_tags"
    assert not (tmp_path / "tidyvision-was-here").exists()


def test_records_without_an_image_name_are_an_error(tmp_path):
    f = tmp_path / "many.json"
    f.write_text('[{"image": "a.jpg", "Labels": []}, {"Labels": [{"Name": "Cat", "Confidence": 90}]}]')
    with pytest.raises(TidyvisionError, match="Record 2 .* does not name its image"):
        tags.read_rekognition(f)


def test_other_files_are_an_error_that_says_what_is_expected(tmp_path):
    f = tmp_path / "faces.json"
    f.write_text('{"FaceDetails": []}')
    with pytest.raises(TidyvisionError, match="neither DetectLabels"):
        tags.read_rekognition(f)
    g = tmp_path / "other.csv"
    g.write_text("id,label\n1,cat\n")
    with pytest.raises(TidyvisionError, match="needs `image_id`"):
        tags.read_rekognition(g)
    h = tmp_path / "broken.jsonl"
    h.write_text('{"image": "a.jpg", "Labels": []}\n{"image": \n')
    with pytest.raises(TidyvisionError, match="neither JSON nor JSON lines: line 2"):
        tags.read_rekognition(h)
    with pytest.raises(TidyvisionError) as e:
        tags.read_rekognition(tmp_path / "missing.json")
    assert e.value.kind == "path_not_found"


def test_responses_keyed_by_image_name_and_single_celebrity_responses(tmp_path):
    f = tmp_path / "batch.json"
    f.write_text('{"a.jpg": {"Labels": [{"Name": "Flag", "Confidence": 91.5}]},'
                 ' "b.jpg": {"Labels": []}}')
    assert rows(tags.read_rekognition(f)) == [("a.jpg", "Flag", pytest.approx(0.915), tags.LABELS_SOURCE),
                                              ("b.jpg", None, None, tags.LABELS_SOURCE)]
    g = tmp_path / "speech.jpg.json"
    g.write_text('{"CelebrityFaces": [{"Name": "Angela Merkel", "MatchConfidence": 97.0, "Urls": []}],'
                 ' "UnrecognizedFaces": []}')
    assert rows(tags.read_rekognition(g)) == [("speech.jpg", "Angela Merkel", pytest.approx(0.97),
                                               tags.CELEBS_SOURCE)]

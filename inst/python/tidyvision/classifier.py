"""An image classifier: a pretrained body with a new last layer.

Building, predicting and the weights file. Weights live in safetensors files;
loaded models are cached by path and modification time so repeated predict()
calls don't rebuild them.
"""
import os

import numpy as np

from . import config, images, speed, transforms
from .backbones import build_backbone, load_safetensors, split_head
from .cache import CACHE
from .errors import check, weights_unreadable



def _module():
    import torch.nn as nn

    class ImageClassifier(nn.Module):
        """``body`` maps images to features; ``head`` is the book's new last layer."""

        def __init__(self, body, n_features, n_classes):
            super().__init__()
            self.body = body
            self.head = nn.Linear(n_features, n_classes)
            nn.init.normal_(self.head.weight, 0.0, 0.01)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            return self.head(self.body(x))

    return ImageClassifier


def build_classifier(backbone, n_classes, pretrained=True, weights=None):
    body, n_features, _ = split_head(build_backbone(backbone, pretrained, weights))
    return _module()(body, n_features, n_classes)


def save_weights(model, path):
    """Write the state dict as safetensors, atomically."""
    from safetensors.torch import save_file
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = f"{path}.tmp-{os.getpid()}"
    save_file(state, tmp)
    os.replace(tmp, path)
    return path


def load_model(weights_path, backbone, n_classes, device="cpu"):
    """The classifier in eval mode, channels_last, from a safetensors file."""
    import torch
    check(str(weights_path).endswith(".safetensors"), "weights_unsafe",
          f"{weights_path} is not a .safetensors file; tidyvision never unpickles weights.")
    key = (str(weights_path), os.path.getmtime(weights_path), device)

    def load():
        model = build_classifier(backbone, int(n_classes), pretrained=False)
        state = load_safetensors(weights_path)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:  # valid tensors of another model (backbone or classes)
            raise weights_unreadable(weights_path, e) from None
        return model.eval().to(device=device, memory_format=torch.channels_last)
    return CACHE.get("classifier", key, load)


def eval_loader(mode, size):
    """PIL -> the fixed uint8 input of validation and prediction."""
    return lambda im: transforms.to_tensor_u8(transforms.resize_image(im, mode, size))


def forward_probs(model, x_u8, device, precision, batch_size=64):
    """Softmax probabilities (float32 numpy) for a uint8 NCHW tensor."""
    import torch
    out, batch_size = [], config.forward_batch(device, batch_size)
    with torch.inference_mode(), config.autocast(device, precision):
        for i in range(0, len(x_u8), batch_size):
            logits = model(transforms.normalize(x_u8[i:i + batch_size], device))
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def predict(paths, weights_path, backbone, n_classes, resize="rescale_crop", image_size=224,
            device="auto", precision="auto", batch_size=64, progress=None):
    """Class probabilities, one row per path in order; NaN rows where unreadable.

    Decoding the next chunk (threads) overlaps the forward pass of this one.
    """
    paths = list(paths)
    probs = np.full((len(paths), int(n_classes)), np.nan, dtype=np.float32)
    problems = [None] * len(paths)
    batches = images.batched(paths, int(batch_size))
    for offset, chunk, p, prob in predict_batches(batches, weights_path, backbone, n_classes, resize,
                                                  image_size, device, precision):
        probs[offset:offset + len(chunk)] = p
        problems[offset:offset + len(chunk)] = prob
        if progress is not None:
            progress(offset + len(chunk), len(paths))
    return {"prob": probs, "problem": problems}


def predict_batches(batches, weights_path, backbone, n_classes, resize="rescale_crop", image_size=224,
                    device="auto", precision="auto"):
    """(offset, paths, probabilities, problems) for each batch of paths, in
    order: the loop of predict(), shared with classify_folder() (corpus.py)."""
    import torch
    device = config.resolve_device(device)
    model = load_model(weights_path, backbone, n_classes, device)
    precision = speed.inference(precision, device, model, backbone, image_size)
    loader, min_side = eval_loader(resize, int(image_size)), transforms.decode_min_side(resize, int(image_size))

    def decode(path):
        im, problem = images.try_load_rgb(path, min_side)
        return (loader(im), None) if im is not None else (None, problem)

    for offset, chunk, decoded in images.prefetched_batches(batches, decode):
        probs = np.full((len(chunk), int(n_classes)), np.nan, dtype=np.float32)
        ok = [j for j, (t, _) in enumerate(decoded) if t is not None]
        if ok:
            probs[ok] = forward_probs(model, torch.stack([decoded[j][0] for j in ok]), device, precision)
        yield offset, chunk, probs, [problem for _, problem in decoded]

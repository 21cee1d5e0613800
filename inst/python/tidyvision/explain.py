"""Grad-CAM: where in an image a classifier found the evidence for a class.

Stands on captum's ``LayerGradCam`` (with ``relu_attributions=True``, as in
Selvaraju et al. 2017) over the last convolutional stage of the body, upsampled
bilinearly with ``LayerAttribution.interpolate`` to the network input: the
``image_size`` x ``image_size`` image after the classifier's resize, i.e. the
picture ``plot_resizing()`` shows for its ``resize`` mode. Each heatmap is
divided by its maximum, so it runs from 0 (no evidence) to 1 (the strongest);
a map with no positive evidence stays all 0.
"""
import os

import numpy as np

from . import config, images, speed, transforms
from .classifier import eval_loader, load_model
from .errors import check, writing_in

METHODS = ("gradcam",)


def target_layer(body, image_size=224):
    """The body's last convolutional stage: the last of its parts that runs
    once and gives a spatial (N, C, H, W) map before the global pooling.

    Found by running the body once: ``layer4`` in torchvision's ResNets,
    ``features`` in its EfficientNets and MobileNets, the head convolution's
    batch norm (``_bn1``) in EfficientNet-Lite, whose ReLU6 module also runs
    in the stem and so can't be hooked on its own."""
    import torch
    import torch.nn as nn
    pooling = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.MaxPool2d)
    children = dict(body.named_children())
    calls = []
    hooks = [child.register_forward_hook(lambda m, i, o, name=name: calls.append((name, o)))
             for name, child in children.items()]
    try:
        device = next(body.parameters()).device
        with torch.inference_mode():
            body(torch.zeros(1, 3, int(image_size), int(image_size), device=device))
    finally:
        for h in hooks:
            h.remove()
    runs = {}
    for name, _ in calls:
        runs[name] = runs.get(name, 0) + 1
    spatial = [name for name, out in calls if torch.is_tensor(out) and out.dim() == 4
               and runs[name] == 1 and not isinstance(children[name], pooling)]
    check(len(spatial) > 0, "unsupported_backbone",
          "Grad-CAM needs a convolutional backbone (one that makes a spatial feature map), "
          "such as efficientnet_lite0 or resnet18.")
    return children[spatial[-1]]


def _gradcam(model, layer, x, targets, size):
    """Heatmaps (n, size, size) in [0, 1] for the logits ``targets`` of ``x``."""
    import torch
    from captum.attr import LayerAttribution, LayerGradCam
    with torch.enable_grad():
        attr = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
    heat = LayerAttribution.interpolate(attr.detach().float(), (size, size), "bilinear")[:, 0]
    top = heat.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1)
    return (heat / top).clamp_(0, 1).cpu().numpy()


def save_heatmap(heat, path):
    """A heatmap as an 8-bit greyscale PNG (0-255 for 0-1), written atomically."""
    from PIL import Image
    tmp = f"{path}.tmp-{os.getpid()}.png"
    with writing_in(os.path.dirname(os.path.abspath(path))):
        Image.fromarray(np.round(heat * 255).astype(np.uint8), "L").save(tmp)
        os.replace(tmp, path)
    return path


def read_heatmaps(paths):
    """Heatmaps saved by save_heatmap(), as float arrays in [0, 1]."""
    from PIL import Image

    def read(path):
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.float64) / 255
    return [read(p) for p in paths]


def explain(paths, weights_path, backbone, n_classes, targets=None, method="gradcam",
            resize="rescale_crop", image_size=224, device="auto", precision="auto",
            batch_size=64, files=None, progress=None):
    """Grad-CAM heatmaps, one per path in order.

    ``targets``: 0-based class per image, or None (or -1) for the predicted
    class. ``files``: when given, heatmaps are written there as PNGs (one path
    per image) instead of returned. Returns columns ``class_index``,
    ``probability`` (of that class), ``problem`` and ``heatmap`` (n, size,
    size; NaN where unreadable) or ``file``.
    """
    import torch
    check(method in METHODS, "bad_argument", f"`method` must be one of {', '.join(METHODS)}, not {method!r}.")
    device = config.resolve_device(device)
    size, paths = int(image_size), [str(p) for p in paths]
    targets = [-1 if t is None else int(t) for t in (targets or [None] * len(paths))]
    model = load_model(weights_path, backbone, n_classes, device)
    precision = speed.inference(precision, device, model, backbone, size)
    model.requires_grad_(False)  # gradients are only needed from the layer on
    layer = target_layer(model.body, size)
    loader, min_side = eval_loader(resize, size), transforms.decode_min_side(resize, size)
    out = {"class_index": [None] * len(paths), "probability": [None] * len(paths),
           "problem": [None] * len(paths)}
    heatmaps = np.full((0 if files else len(paths), size, size), np.nan, np.float32)

    def decode(path):
        im, problem = images.try_load_rgb(path, min_side)
        return (loader(im), None) if im is not None else (None, problem)

    step = config.forward_batch(device, batch_size)
    for offset, chunk, decoded in images.prefetched(paths, int(batch_size), decode):
        ok = [offset + j for j, (t, _) in enumerate(decoded) if t is not None]
        for j, (_, problem) in enumerate(decoded):
            out["problem"][offset + j] = problem
        for s in range(0, len(ok), step):
            rows = ok[s:s + step]
            x = transforms.normalize(torch.stack([decoded[i - offset][0] for i in rows]), device)
            with config.autocast(device, precision):
                with torch.inference_mode():
                    probs = torch.softmax(model(x).float(), dim=1).cpu().numpy()
                chosen = [targets[i] if targets[i] >= 0 else int(probs[k].argmax()) for k, i in enumerate(rows)]
                heat = _gradcam(model, layer, x, chosen, size)
            for k, i in enumerate(rows):
                out["class_index"][i], out["probability"][i] = chosen[k], float(probs[k, chosen[k]])
                if files:
                    save_heatmap(heat[k], files[i])
                else:
                    heatmaps[i] = heat[k]
        if progress is not None:
            progress(offset + len(chunk), len(paths))
    if files:
        out["file"] = [f if out["problem"][i] is None else None for i, f in enumerate(files)]
    else:
        out["heatmap"] = heatmaps
    return out


def network_inputs(paths, resize="rescale_crop", image_size=224):
    """What the network saw: each image after ``resize`` (size, size, 3 uint8),
    None where unreadable; for drawing heatmaps over."""
    size = int(image_size)
    loader, min_side = eval_loader(resize, size), transforms.decode_min_side(resize, size)

    def one(path):
        im, _ = images.try_load_rgb(path, min_side)
        return None if im is None else loader(im).permute(1, 2, 0).numpy()
    return images.parallel_map(one, [str(p) for p in paths])

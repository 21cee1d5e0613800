"""Tags for images: an offline ImageNet tagger, and reading commercial taggers' output.

``imagenet_classes.txt`` holds the 1000 ImageNet-1k class names in index
order, lowercased, from torchvision
(``ResNet18_Weights.IMAGENET1K_V1.meta["categories"]``), with the two corgi
breeds spelled out ("cardigan welsh corgi", "pembroke welsh corgi") so that
the dog no longer shares its name with the sweater.

Amazon Rekognition output is read from raw JSON responses (DetectLabels,
RecognizeCelebrities) or from the CSV files of the book's companion scripts,
whose ``*_response`` columns are Python dict literals, parsed with
``ast.literal_eval`` (literals only: nothing is evaluated).
"""
import ast
import csv
import functools
import io
import json
from pathlib import Path

import numpy as np

from . import classifier, config, images, speed, transforms
from .backbones import LITE0, build_backbone
from .cache import CACHE
from .errors import TidyvisionError, check

IMAGENET_SOURCE = "efficientnet_lite0 (ImageNet-1k)"
LABELS_SOURCE = "Amazon Rekognition DetectLabels"
CELEBS_SOURCE = "Amazon Rekognition RecognizeCelebrities"
# Fields that name the image of a response record, in the order they are tried.
NAME_FIELDS = ("path", "image", "Image", "image_id", "file", "filename", "name")


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    with open(Path(__file__).with_name("imagenet_classes.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _lite0(device):
    import torch
    return CACHE.get("tagger", device, lambda: build_backbone(LITE0).eval().to(
        device=device, memory_format=torch.channels_last))


def imagenet(paths, top_k=5, batch_size=32, device="auto", precision="auto", progress=None):
    """The ``top_k`` ImageNet classes of each image with their probabilities.

    Images are resized as for prediction with a classifier (shorter side 256,
    centre crop 224, ImageNet normalisation). Rows are per image, most
    probable first; an unreadable image is one row with tag None and a
    ``problem``.
    """
    paths = [str(p) for p in paths]
    out = {k: [] for k in ("path", "tag", "confidence", "problem")}
    for offset, chunk, cols in imagenet_batches(images.batched(paths, int(batch_size)), top_k,
                                                device, precision):
        for k in out:
            out[k].extend(cols[k])
        if progress is not None:
            progress(offset + len(chunk), len(paths))
    return out


def imagenet_batches(batches, top_k=5, device="auto", precision="auto"):
    """(offset, paths, columns) for each batch of paths: the loop of
    imagenet(), shared with classify_folder() (corpus.py)."""
    import torch
    device = config.resolve_device(device)
    model, names = _lite0(device), imagenet_classes()
    precision = speed.inference(precision, device, model, "efficientnet_lite0", 224)
    loader, min_side = classifier.eval_loader("rescale_crop", 224), transforms.decode_min_side("rescale_crop", 224)
    top_k = max(1, min(int(top_k), len(names)))

    def decode(path):
        res, problems = transforms.decode_many([path], loader, min_side, workers=1)
        return res[0], problems[0]

    for offset, chunk, decoded in images.prefetched_batches(batches, decode):
        out = {k: [] for k in ("path", "tag", "confidence", "problem")}
        ok = [t for t, _ in decoded if t is not None]
        probs = iter(classifier.forward_probs(model, torch.stack(ok), device, precision) if ok else [])
        for path, (tensor, problem) in zip(chunk, decoded):
            if tensor is None:
                _append(out, path, None, None, problem)
                continue
            p = next(probs)
            for i in np.argsort(-p, kind="stable")[:top_k]:
                _append(out, path, names[i], float(p[i]), None)
        yield offset, chunk, out


def _append(out, path, tag, confidence, problem=None):
    out["path"].append(path)
    out["tag"].append(tag)
    out["confidence"].append(confidence)
    if "problem" in out:
        out["problem"].append(problem)


# Amazon Rekognition ---------------------------------------------------------

def read_rekognition(path):
    """Columns path, tag, confidence (0-1), source from one Rekognition file."""
    path = Path(path)
    check(path.is_file(), "path_not_found", f"Can't find {path}.")
    text = path.read_text(encoding="utf-8-sig")
    out = {k: [] for k in ("path", "tag", "confidence", "source")}
    first = text.lstrip()[:1]
    if first in ("{", "["):
        for name, response in _json_records(text, path):
            _add_response(out, name, response, path)
    else:
        _read_csv(out, text, path)
    return out


def _json_records(text, path):
    """(image name, response) pairs from one response, an array, JSON lines, or
    an object keyed by image name."""
    try:
        data = json.loads(text)
        if _keyed_by_image(data):
            return [(name, response) for name, response in data.items()]
        records = data if isinstance(data, list) else [data]
        single = not isinstance(data, list)
    except json.JSONDecodeError:
        records, single = [], False
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TidyvisionError("bad_tags", f"{path} is neither JSON nor JSON lines: line {n}: {e}") from None
    pairs = []
    for n, record in enumerate(records, start=1):
        check(isinstance(record, dict), "bad_tags", f"Record {n} of {path} is not a JSON object.")
        name = _image_name(record)
        if name is None and single:
            name = path.name[:-5] if path.name.lower().endswith(".json") else path.stem
        check(name is not None, "bad_tags",
              f"Record {n} of {path} does not name its image. Add a field "
              f"{' / '.join(repr(f) for f in NAME_FIELDS[:4])} with the file name or path to each record.")
        response = record.get("response", record.get("Response", record))
        pairs.append((name, response))
    return pairs


def _is_response(x):
    return isinstance(x, dict) and ("Labels" in x or "CelebrityFaces" in x)


def _keyed_by_image(data):
    """{"photo1.jpg": {response}, ...}: an object of responses keyed by image name."""
    return (isinstance(data, dict) and bool(data) and not _is_response(data)
            and all(_is_response(v) for v in data.values()))


def _image_name(record):
    for field in NAME_FIELDS:
        value = record.get(field)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):  # the request's {"S3Object": {"Bucket": ..., "Name": ...}}
            s3 = value.get("S3Object") or {}
            if isinstance(s3.get("Name"), str):
                return s3["Name"]
    return None


def _add_response(out, name, response, path):
    if isinstance(response, dict) and isinstance(response.get("Labels"), list):
        items = [(x.get("Name"), x.get("Confidence")) for x in response["Labels"]]
        source = LABELS_SOURCE
    elif isinstance(response, dict) and isinstance(response.get("CelebrityFaces"), list):
        items = [(x.get("Name"), x.get("MatchConfidence")) for x in response["CelebrityFaces"]]
        source = CELEBS_SOURCE
    else:
        keys = ", ".join(list(response)[:8]) if isinstance(response, dict) else type(response).__name__
        raise TidyvisionError(
            "bad_tags", f"The response for {name} in {path} is neither DetectLabels (\"Labels\") nor "
            f"RecognizeCelebrities (\"CelebrityFaces\"); it has: {keys}.")
    if not items:
        items = [(None, None)]
    for tag, conf in items:
        _add(out, name, tag, conf, source)


def _add(out, name, tag, confidence, source):
    out["path"].append(name)
    out["tag"].append(tag if tag not in ("", None) else None)
    out["confidence"].append(float(confidence) / 100 if confidence not in ("", None) else None)
    out["source"].append(source)


CSV_KINDS = {
    # response column: (tag column, confidence column, source)
    "full_detect_labels_response": ("label_str", "label_conf", LABELS_SOURCE),
    "celeb_full_response": ("celeb_name", "celeb_match_conf", CELEBS_SOURCE),
}


def _read_csv(out, text, path):
    """The companion scripts' CSVs: one row per tag, an empty tag for an image with none.

    The tag columns are used as they are; the response column is parsed
    (a Python literal) where they are empty or missing.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = reader.fieldnames or []
    kind = next((k for k in CSV_KINDS if k in fields), None)
    check("image_id" in fields and kind is not None, "bad_tags",
          f"{path} is not a Rekognition file tidyvision knows: a CSV needs `image_id` and "
          "`full_detect_labels_response` (labels) or `celeb_full_response` (celebrities); "
          f"its columns are {', '.join(fields[:10])}.")
    tag_col, conf_col, source = CSV_KINDS[kind]
    seen = set()
    for line, row in enumerate(reader, start=2):
        image, literal = row["image_id"], (row.get(kind) or "").strip()
        tag, conf = (row.get(tag_col) or "").strip(), (row.get(conf_col) or "").strip()
        if tag or not literal:
            _add(out, image, tag, conf, source)
        elif tag_col in fields:
            _add(out, image, *_row_tag(_literal(literal, kind, path, line), kind, row), source)
        elif image not in seen:  # no tag columns: every tag of the image's response, once
            _add_response(out, image, _literal(literal, kind, path, line) if kind != "celeb_full_response"
                          else {"CelebrityFaces": [_literal(literal, kind, path, line)]}, path)
        seen.add(image)


def _literal(text, kind, path, line):
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        raise TidyvisionError(
            "bad_tags", f"Line {line} of {path}: `{kind}` is not a Python literal ({type(e).__name__}); "
            "tidyvision reads literals only and never evaluates code.") from None
    check(isinstance(value, dict), "bad_tags", f"Line {line} of {path}: `{kind}` is not a dict.")
    return value


def _row_tag(response, kind, row):
    """The one tag a row stands for: its face, or label number ``label_num`` of the response."""
    if kind == "celeb_full_response":
        return response.get("Name"), response.get("MatchConfidence")
    labels = response.get("Labels") or []
    try:
        k = int(row.get("label_num") or 1) - 1
    except ValueError:
        k = 0
    if not 0 <= k < len(labels):
        return None, None
    return labels[k].get("Name"), labels[k].get("Confidence")

"""Throughput of the face verbs on the shipped photos (not a test).

    cd inst/python && python ../../bench/faces.py

Prints images (or faces) per second for detection, embeddings and
anonymised copies with one and with all worker threads, and the time HOG
takes on one large photo.
"""
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inst", "python"))

from PIL import Image  # noqa: E402

from tidyvision import faces  # noqa: E402
from tidyvision.images import default_workers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = sorted(glob.glob(os.path.join(HERE, "..", "inst", "extdata", "faces", "*.jpg")))


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(copies=4):
    paths = PHOTOS * copies
    found = faces.detect(paths[:2])  # build the models once
    found = faces.detect(paths)
    boxes = {k: found[k] for k in ("xmin", "ymin", "xmax", "ymax")}
    out = tempfile.mkdtemp()
    outputs = [os.path.join(out, f"{i}.jpg") for i in range(len(paths))]
    for workers in sorted({1, default_workers()}):
        hog = timed(lambda: faces.detect(paths, workers=workers))
        emb = timed(lambda: faces.embed(found["path"], boxes, workers=workers))
        anon = timed(lambda: faces.anonymize(paths, outputs, overwrite=True, workers=workers))
        print(f"workers {workers}: detect (HOG, upsample 1) {len(paths) / hog:5.1f} img/s | "
              f"embed {len(paths) / emb:5.1f} faces/s | anonymize {len(paths) / anon:5.1f} img/s")
    cnn = timed(lambda: faces.detect(PHOTOS[4:5], model="cnn", upsample=0))
    print(f"CNN, upsample 0, 250x480: {cnn:.2f} s per image")
    big = os.path.join(out, "big.jpg")
    Image.open(PHOTOS[0]).resize((3000, 3000)).save(big)
    for up in (0, 1):
        print(f"HOG on a 3000x3000 photo, upsample {up}: "
              f"{timed(lambda: faces.detect([big], upsample=up)):.1f} s")


if __name__ == "__main__":
    main()

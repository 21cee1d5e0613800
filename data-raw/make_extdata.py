#!/usr/bin/env python3
"""Rebuild the example images shipped in ``inst/extdata/``.

Produces

* ``inst/extdata/images/{animals,buildings,tools}/*.jpg`` -- a small, real-photo
  image-classification demo set (every photo is Public Domain or CC0-1.0),
* ``inst/extdata/faces/*.jpg`` -- a handful of real photos of human faces
  (US federal government works, public domain in the US),
* ``inst/extdata/README.md`` -- per-file provenance and licence table.

Sources (download once, with the ordinary registry clients)::

    mkdir -p /tmp/tidyvision-src && cd /tmp/tidyvision-src
    # Debian (bookworm): GCompris data, photos live inside Qt .rcc resource files
    apt-get download gcompris-qt-data=3.1-2
    # PyPI: sdist of face_recognition (tests/test_images/*.jpg)
    pip download --no-deps --no-binary :all: -d . face_recognition==1.3.0
    # PyPI: a scikit-image wheel (skimage/data/astronaut.png); any platform's
    # wheel of this version carries the same file
    pip download --no-deps --only-binary :all: -d . scikit-image==0.26.0

Then, from the package root::

    pip install pillow
    python3 data-raw/make_extdata.py /tmp/tidyvision-src

The script needs only Python >= 3.8 and Pillow: it unpacks the .deb (ar +
data.tar.xz), the Qt ``.rcc`` resource bundles (documented binary format,
zlib-compressed entries), the sdist and the wheel itself.  Attribution for the
GCompris photos is read from the per-folder ``README`` files that upstream
ships next to the images inside the .rcc bundles.

Processing: every image is decoded, alpha (if any) is flattened onto white,
resized with Lanczos so that the long side is at most ``LONG_SIDE`` px
(``FACE_LONG_SIDE`` for the faces), and re-encoded as baseline JPEG
(quality ``QUALITY``) with no EXIF/XMP/ICC metadata.  No other edits.
"""

import glob
import io
import os
import re
import shutil
import struct
import sys
import tarfile
import zipfile
import zlib

from PIL import Image

LONG_SIDE = 320
QUALITY = 80
FACE_QUALITY = 85

GCOMPRIS_DEB = "gcompris-qt-data_3.1-2_all.deb"
GCOMPRIS_PKG = "gcompris-qt-data 3.1-2 (Debian bookworm)"
FR_SDIST = "face_recognition-1.3.0.tar.gz"
FR_PKG = "face_recognition 1.3.0 (PyPI sdist)"
SKIMAGE_GLOB = "scikit_image-0.26.0-*.whl"
SKIMAGE_PKG = "scikit-image 0.26.0 (PyPI wheel)"
RCC_DIR = "usr/share/gcompris-qt/rcc/"

# --------------------------------------------------------------------------
# Selection.  (class, rcc bundle, path inside the bundle below
# /gcompris/src/activities/, output name)
# Only files whose upstream README says "Public Domain" or "CC0-1.0" are used.
# --------------------------------------------------------------------------
WA = "explore_world_animals/resource/animals/"
FA = "explore_farm_animals/resource/animals/"
ER = "erase/resource/"
EM = "explore_monuments/resource/"
CM = "categorization/resource/images/monuments/"
CT = "categorization/resource/images/tools/"

ANIMALS = (
    [("explore_world_animals", WA + n + ".webp", n) for n in [
        "bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog",
        "jaguar", "kangaroo", "koala", "lemur", "moose", "narwhal", "panda",
        "polar_bear", "scarlet_macaw"]]
    + [("explore_farm_animals", FA + n + ".webp", n) for n in [
        "cat", "chicken", "cow", "dog", "duck", "horse", "owl", "pig",
        "sheep"]]
    + [("erase", ER + n + ".webp", out) for n, out in [
        ("giraffe", "giraffe_2"), ("pika", "pika"), ("crab", "crab"),
        ("kingfisher", "kingfisher"), ("red_panda", "red_panda")]]
)

BUILDINGS = (
    [("explore_monuments", EM + p + ".webp", p.split("/")[1]) for p in [
        "france/arlesAmphitheater", "france/chateaudeChambord",
        "france/chateaudeChenonceau", "france/citedeCarcassonne",
        "france/eiffelTower", "france/montStMichel", "france/palaisdesPapes",
        "france/reimsCathedral",
        "germany/aulaPalatina", "germany/berlinCathedral",
        "germany/brandenburgGate", "germany/neuschwansteinCastle",
        "germany/schwerinPalace", "germany/trierImperialBaths",
        "germany/wormsCathedral",
        "india/charminar", "india/gatewayofIndia", "india/goldenTemple",
        "india/hawaMahal", "india/konarkSunTemple", "india/mysorePalace",
        "india/qutubMinar", "india/victoriaMemorial",
        "usa/lincolnMemorial", "usa/georgeWashingtonBirthplace",
        "wonders/colosseum"]]
    + [("categorization", CM + n + ".webp", n) for n in [
        "empireState", "usCapitol", "operaHouse", "tajMahal"]]
)

TOOLS = [("categorization", CT + n + ".webp", n) for n in [
    "cuttingTool", "hammer1", "hammer2", "hammer3", "hammer4", "hammer5",
    "hammer6", "hammer7", "measuringTape1", "measuringTape2",
    "measuringTape3", "measuringTape4", "measuringTape5", "multimeter1",
    "multimeter2", "multimeter3", "plier1", "plier2", "plier3", "plier4",
    "scissors1", "scissors2", "scissors3", "scissors4", "screwDriver",
    "screwDriver1", "screwDriver2", "sideCutter1", "wrench", "wrench1"]]

CLASSES = {"animals": ANIMALS, "buildings": BUILDINGS, "tools": TOOLS}

# Typos in upstream README "Files:" lists -> real file names.
README_ALIASES = {"audaPalatina.webp": "aulaPalatina.webp",
                  "screDriver.webp": "screwDriver.webp"}

# Faces: (source, member path, output name, long side, author, licence, note)
WH_NOTE = ("Official White House photo by Pete Souza (EXIF credit); work of a "
           "US federal employee, public domain in the US (17 U.S.C. 105). The "
           "White House's EXIF notice restricts endorsement-like use")
FACES = [
    ("skimage", "skimage/data/astronaut.png", "astronaut_collins", 512,
     "NASA (astronaut Eileen Collins)", "Public domain (NASA)",
     "scikit-image's `astronaut` image"),
    ("fr", "face_recognition-1.3.0/tests/test_images/obama.jpg",
     "obama_portrait", 480, "Pete Souza / The White House",
     "Public domain (US federal government work)",
     "Obama, official portrait sitting, Oval Office, 6 Dec 2012. " + WH_NOTE),
    ("fr", "face_recognition-1.3.0/tests/test_images/obama2.jpg",
     "obama_speech", 480, "Pete Souza / The White House",
     "Public domain (US federal government work)",
     "Obama, health care address to Congress, 9 Sep 2009. " + WH_NOTE),
    ("fr", "face_recognition-1.3.0/tests/test_images/biden.jpg",
     "biden", 560, "Pete Souza / The White House",
     "Public domain (US federal government work)",
     "Biden; crop (by face_recognition) of a Blue Room photo, 10 May 2010. "
     + WH_NOTE),
    ("fr", "face_recognition-1.3.0/tests/test_images/obama3.jpg",
     "obama_small_face", 400, "Pete Souza / The White House",
     "Public domain (US federal government work)",
     "Obama; another crop of the same 10 May 2010 photo, downscaled so the "
     "face is ~53 px wide. " + WH_NOTE),
]


# --------------------------------------------------------------------------
# Unpacking helpers
# --------------------------------------------------------------------------
def deb_members(deb_path, prefix):
    """Yield (path, bytes) for files under `prefix` in a .deb's data.tar.*."""
    with open(deb_path, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"!<arch>\n", "not an ar archive"
    pos = 8
    while pos < len(data):
        name = data[pos:pos + 16].decode().strip()
        size = int(data[pos + 48:pos + 58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tf:
                for m in tf.getmembers():
                    p = m.name.lstrip("./")
                    if m.isfile() and p.startswith(prefix):
                        yield p, tf.extractfile(m).read()
            return
    raise RuntimeError("no data.tar in " + deb_path)


def read_rcc(blob):
    """Parse a Qt binary resource (.rcc) file -> {path: bytes}."""
    assert blob[:4] == b"qres", "not an rcc file"
    ver, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 14 if ver == 1 else 22

    def name(off):
        ln = struct.unpack(">H", blob[names + off:names + off + 2])[0]
        return blob[names + off + 6:names + off + 6 + 2 * ln].decode("utf-16-be")

    out = {}

    def walk(idx, prefix):
        p = tree + idx * node
        noff, flags = struct.unpack(">IH", blob[p:p + 6])
        nm = name(noff) if idx else ""
        if flags & 2:  # directory
            cnt, child = struct.unpack(">II", blob[p + 6:p + 14])
            for c in range(child, child + cnt):
                walk(c, prefix + nm + "/" if idx else "/")
        else:
            doff = struct.unpack(">I", blob[p + 10:p + 14])[0]
            ln = struct.unpack(">I", blob[data + doff:data + doff + 4])[0]
            raw = blob[data + doff + 4:data + doff + 4 + ln]
            if flags & 1:
                raw = zlib.decompress(raw[4:])
            elif flags & 4:
                import zstandard  # only needed for zstd-compressed bundles
                raw = zstandard.ZstdDecompressor().decompress(
                    raw, max_output_size=1 << 28)
            out[prefix + nm] = raw

    walk(0, "")
    return out


def parse_readme(text):
    """GCompris README blocks -> {file basename: {author, source, license}}."""
    info = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        fields, files, in_files = {}, [], False
        for line in block.splitlines():
            line = line.strip()
            m = re.match(r"^(Copyright|Source|License|Licence|Comments?|Files):\s*(.*)$", line)
            if m:
                key, val = m.group(1).lower(), m.group(2).strip()
                in_files = key == "files"
                if in_files:
                    files += val.split()
                else:
                    fields["license" if key.startswith("licen") else key] = val
            elif in_files and line:
                files += line.split()
        for f in files:
            base = os.path.basename(f)
            info[README_ALIASES.get(base, base)] = fields
    return info


NICE_NAMES = {"chateaudeChambord": "chateau_de_chambord",
              "chateaudeChenonceau": "chateau_de_chenonceau",
              "citedeCarcassonne": "cite_de_carcassonne",
              "palaisdesPapes": "palais_des_papes",
              "gatewayofIndia": "gateway_of_india"}


def snake(name):
    if name in NICE_NAMES:
        return NICE_NAMES[name]
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def to_jpeg(raw, long_side, quality):
    im = Image.open(io.BytesIO(raw))
    im.load()
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, "white")
        bg.paste(im, mask=im.split()[-1])
        im = bg
    else:
        im = im.convert("RGB")
    w, h = im.size
    s = min(1.0, long_side / max(w, h))
    if s < 1.0:
        im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)  # no exif/icc passed
    return buf.getvalue(), im.size


# --------------------------------------------------------------------------
def main(src_dir, pkg_root):
    ext = os.path.join(pkg_root, "inst", "extdata")
    img_root = os.path.join(ext, "images")
    face_root = os.path.join(ext, "faces")
    for d in (img_root, face_root):
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    # ---- GCompris rcc bundles ------------------------------------------------
    needed = {rcc for sel in CLASSES.values() for rcc, _, _ in sel}
    bundles = {}
    for path, blob in deb_members(os.path.join(src_dir, GCOMPRIS_DEB), RCC_DIR):
        stem = os.path.basename(path)[:-4]
        if stem in needed:
            bundles[stem] = {k.split("/activities/", 1)[1]: v
                             for k, v in read_rcc(blob).items()}
    readmes = {}
    for b in bundles.values():
        for k, v in b.items():
            if os.path.basename(k) == "README":
                readmes[os.path.dirname(k)] = parse_readme(v.decode("utf-8"))

    rows = []
    for cls, sel in CLASSES.items():
        os.makedirs(os.path.join(img_root, cls))
        for rcc, member, out in sel:
            raw = bundles[rcc][member]
            # the README sits in the image's folder or one level up
            # (explore_monuments/resource/README covers france/*, india/*, ...)
            d, meta = os.path.dirname(member), None
            while meta is None and d:
                meta = readmes.get(d, {}).get(os.path.basename(member))
                d = os.path.dirname(d)
            assert meta is not None, "no README entry for " + member
            lic = meta["license"]
            assert re.search(r"public domain|cc0", lic, re.I), (member, lic)
            jpg, size = to_jpeg(raw, LONG_SIDE, QUALITY)
            fname = snake(out) + ".jpg"
            with open(os.path.join(img_root, cls, fname), "wb") as fh:
                fh.write(jpg)
            rows.append((f"images/{cls}/{fname}", GCOMPRIS_PKG,
                         f"/{RCC_DIR}{rcc}.rcc : /gcompris/src/activities/{member}",
                         meta.get("copyright", "?"), lic, meta.get("source", "")))

    # ---- faces --------------------------------------------------------------
    fr = tarfile.open(os.path.join(src_dir, FR_SDIST))
    whl = zipfile.ZipFile(sorted(glob.glob(os.path.join(src_dir, SKIMAGE_GLOB)))[0])
    face_rows = []
    for src, member, out, long_side, author, lic, note in FACES:
        raw = fr.extractfile(member).read() if src == "fr" else whl.read(member)
        jpg, size = to_jpeg(raw, long_side, FACE_QUALITY)
        fname = out + ".jpg"
        with open(os.path.join(face_root, fname), "wb") as fh:
            fh.write(jpg)
        pkg = FR_PKG if src == "fr" else SKIMAGE_PKG
        face_rows.append((f"faces/{fname}", pkg, member, author, lic,
                          f"{size[0]}x{size[1]}; {note}"))

    write_readme(ext, rows, face_rows)
    print(f"wrote {len(rows)} class images and {len(face_rows)} face images")


def md(s):
    return str(s).replace("|", "\\|")


def dir_size(d):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(d, "**", "*.jpg"),
                                                     recursive=True))


def write_readme(ext, rows, face_rows):
    counts = {}
    for r in rows:
        c = r[0].split("/")[1]
        counts[c] = counts.get(c, 0) + 1
    L = []
    L.append("# Example images shipped with tidyvision\n")
    L.append("Generated by `data-raw/make_extdata.py` (which documents the exact "
             "download commands); do not edit by hand.\n")
    L.append("## Contents\n")
    L.append("* `images/<class>/` -- real photographs for the classification "
             "demo: " + ", ".join(f"`{k}` ({v})" for k, v in counts.items())
             + f"; {dir_size(os.path.join(ext, 'images')) / 1e6:.2f} MB in total. "
             "Every one is Public Domain or CC0-1.0 according to the "
             "per-folder `README` that GCompris ships beside the images.")
    L.append("* `faces/` -- real photographs containing human faces, for face "
             f"detection tests; {dir_size(os.path.join(ext, 'faces')) / 1e6:.2f} MB. "
             "Three people: Eileen Collins (1 photo), Barack Obama (3), Joe Biden (1). "
             "`obama_small_face.jpg` has a face of roughly 53 px.\n")
    L.append("**Processing.** Each file was decoded from its original (WebP, "
             "PNG or JPEG), alpha flattened onto white where present, resized "
             "with Lanczos to at most 320 px on the long side (faces: 400-560 px), "
             "and re-encoded as JPEG (quality 80; faces 85) with all EXIF/XMP/ICC "
             "metadata stripped. No other changes (no cropping or retouching by "
             "us; GCompris upstream had already cropped/sharpened some photos).\n")
    L.append("**Licences.** Public Domain and CC0-1.0 impose no conditions; the "
             "authors are credited below anyway. The GCompris package as a whole "
             "is GPL-3+, but upstream's per-file READMEs (shipped inside the .rcc "
             "bundles) give the individual photo licences used here. The White "
             "House photos are US federal government works (public domain in the "
             "US); their embedded notice asks that they not be used to suggest "
             "endorsement and not be manipulated -- that is a use restriction "
             "(publicity/endorsement), not copyright. Persons shown may have "
             "personality rights.\n")
    L.append("**Face detection check** (dlib 20.0.1 HOG "
             "`get_frontal_face_detector`, via `pip install dlib-bin`): each face "
             "file gives exactly one confident detection (face widths: astronaut "
             "~90 px, obama_portrait ~109, obama_speech ~109, biden ~75, "
             "obama_small_face ~53 px; the last is found only with upsample=1). "
             "`astronaut_collins.jpg` also yields a second, very low-score "
             "(0.0-0.12) false positive near the lower left; use a score "
             "threshold > 0.5 in tests.\n")
    L.append("**Provenance of the face photos.** face_recognition is MIT-licensed "
             "but says nothing about its test images; their provenance comes from "
             "the EXIF/IPTC captions embedded in the originals (stripped from our "
             "copies), which credit \"Official White House Photo by Pete Souza\". "
             "The scikit-image `astronaut` image is the NASA portrait of Eileen "
             "Collins (scikit-image documents it as public domain).\n")
    L.append("## Classification images\n")
    L.append("| file | source package (registry) | original path in package | author | licence | original source |")
    L.append("|---|---|---|---|---|---|")
    for r in rows:
        L.append("| " + " | ".join(md(x) for x in r) + " |")
    L.append("\n## Face images\n")
    L.append("| file | source package (registry) | original path in package | author | licence | notes |")
    L.append("|---|---|---|---|---|---|")
    for r in face_rows:
        L.append("| " + " | ".join(md(x) for x in r) + " |")
    with open(os.path.join(ext, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(L) + "\n")


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tidyvision-src"
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    main(src, root)

"""label_images() in a real browser: headless Chromium (Debian's) driven by
Playwright, against the app running in a child R process that the test kills
with SIGKILL mid-session.

The child loads the package from this source tree with pkgload::load_all()
(what pytest tests is the tree, as for the engine); without pkgload it falls
back to the installed package.
"""
import csv
import http.client
import io
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CLASSES = ["animals", "buildings", "tools"]

CHILD = r"""
root <- Sys.getenv("TV_ROOT")
if (requireNamespace("pkgload", quietly = TRUE)) {
  pkgload::load_all(root, quiet = TRUE, export_all = FALSE, helpers = FALSE)
} else {
  library(tidyvision)
}
label_images(strsplit(Sys.getenv("TV_IMAGES"), "\n")[[1]], classes = c("animals", "buildings", "tools"),
             output = Sys.getenv("TV_OUTPUT"), coder = "ana", port = as.integer(Sys.getenv("TV_PORT")),
             launch.browser = FALSE)
"""

pw = pytest.importorskip("playwright.sync_api")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """The app in a child R process, in its own process group."""

    def __init__(self, images, output, log):
        self.port = free_port()
        env = dict(os.environ, TV_ROOT=str(ROOT), TV_IMAGES="\n".join(map(str, images)),
                   TV_OUTPUT=str(output), TV_PORT=str(self.port))
        self.proc = subprocess.Popen(["Rscript", "-e", CHILD], env=env, stdout=log, stderr=log,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, "the app's R process died: " + Path(log.name).read_text()
            if get(self.port, "/")[0] == 200:
                return
            time.sleep(0.2)
        raise AssertionError("the app did not start: " + Path(log.name).read_text())

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def get(port, path):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)  # sent as is: no normalisation of ../
        r = conn.getresponse()
        return r.status, r.read()
    except OSError:
        return None, b""


def rows(output):
    lines = Path(output).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#tidyvision-labels ")
    return [r for r in csv.DictReader(lines[1:])]


def wait_rows(output, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = rows(output)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    raise AssertionError(f"expected {n} rows in the label file, found {len(rows(output))}")


def shown_file(page):
    page.wait_for_function("() => document.querySelector('.tv-label-file') !== null")
    return page.inner_text(".tv-label-file")


def wait_shown(page, name):
    page.wait_for_function(
        "(n) => { const f = document.querySelector('.tv-label-file');"
        " const i = document.getElementById('tv-label-img');"
        " return f && f.innerText === n && i && i.alt === n; }", arg=name, timeout=10000)


def listening_address(port):
    """The local address the app's socket listens on, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            return ".".join(str(int(ip[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return None


@pytest.fixture
def browser():
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


def test_keys_are_saved_at_once_and_survive_a_killed_r(tmp_path, browser):
    folder = ROOT / "inst" / "extdata" / "images"
    images = [folder / "animals" / "cat.jpg", folder / "buildings" / "colosseum.jpg",
              folder / "tools" / "hammer1.jpg", folder / "animals" / "dog.jpg",
              folder / "tools" / "wrench.jpg"]
    output = tmp_path / "labels.csv"
    log = open(tmp_path / "r.log", "w")
    app = App(images, output, log)
    assert listening_address(app.port) == "127.0.0.1"
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(app.url)
    wait_shown(page, "cat.jpg")

    page.keyboard.press("1")
    got = wait_rows(output, 1)
    assert [got[0][k] for k in ("path", "coder", "action", "label")] == [str(images[0]), "ana", "label", "animals"]
    wait_shown(page, "colosseum.jpg")
    page.keyboard.press("2")
    assert wait_rows(output, 2)[1]["label"] == "buildings"
    page.keyboard.press("s")
    got = wait_rows(output, 3)
    assert (got[2]["path"], got[2]["action"], got[2]["label"]) == (str(images[2]), "skip", "")
    wait_shown(page, "dog.jpg")
    page.keyboard.press("u")
    got = wait_rows(output, 4)
    assert (got[3]["path"], got[3]["action"]) == (str(images[2]), "undo")
    wait_shown(page, "hammer1.jpg")
    page.keyboard.press("3")
    assert wait_rows(output, 5)[4]["label"] == "tools"
    wait_shown(page, "dog.jpg")
    assert "3 labelled" in page.inner_text(".tv-label-side")

    # The image is drawn: decoded, laid out large, and not blank in its box.
    assert page.evaluate("() => { const i = document.getElementById('tv-label-img');"
                         " return i.complete && i.naturalWidth > 0; }")
    box = page.locator("#tv-label-img").bounding_box()
    assert box["width"] > 700 and box["height"] > 600
    page.screenshot(path=str(tmp_path / "app.png"))
    shot = np.asarray(Image.open(io.BytesIO(page.locator("#tv-label-img").screenshot())).convert("L"))
    h, w = shot.shape
    middle = shot[h // 3: 2 * h // 3, w // 3: 2 * w // 3]  # inside the photo, whatever its aspect
    assert middle.std() > 20 and len(np.unique(middle)) > 50

    # Security: only the given images, by number; no path from the URL is read.
    src = page.get_attribute("#tv-label-img", "src")
    status, body = get(app.port, "/" + src)
    assert status == 200 and body == images[3].read_bytes()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    base = "/" + src.rsplit("&i=", 1)[0]
    session = "/" + src.split("/dataobj/")[0]
    for bad in [base + "&i=0", base + "&i=6", base + "&i=../../../../etc/passwd",
                base + "&i=" + str(secret), base + "&i=%2Fetc%2Fpasswd", base + "&i=1/../../etc/passwd",
                session + "/dataobj/../../../../etc/passwd", session + "/dataobj/" + str(secret),
                "/../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", str(secret),
                str(folder / "animals" / "owl.jpg"), "/" + str(folder.relative_to(ROOT) / "animals" / "owl.jpg")]:
        status, body = get(app.port, bad)
        assert status is not None and status >= 400, bad
        assert b"root:" not in body and b"top secret" not in body and b"JFIF" not in body[:20], bad

    # Kill R mid-session: every pressed key is on disk, and a restart opens at
    # the first image this coder has not labelled.
    app.kill()
    before = rows(output)
    assert len(before) == 5
    app = App(images, output, log)
    page.goto(app.url)
    wait_shown(page, "dog.jpg")
    assert "3 labelled, 0 skipped" in page.inner_text(".tv-label-side")
    page.keyboard.press("ArrowLeft")
    wait_shown(page, "hammer1.jpg")
    page.keyboard.press("1")  # relabel hammer1: the last action wins
    got = wait_rows(output, 6)
    assert got[:5] == before and (got[5]["path"], got[5]["label"]) == (str(images[2]), "animals")
    page.keyboard.press("u")  # undo reaches back past the restart
    got = wait_rows(output, 7)
    assert (got[6]["path"], got[6]["action"]) == (str(images[2]), "undo")
    wait_shown(page, "hammer1.jpg")
    assert "tools" in page.inner_text(".tv-label-class.tv-on")

    page.keyboard.press("?")
    assert page.is_visible("#tv-label-help")
    assert "undo" in page.inner_text("#tv-label-help")
    app.kill()
    log.close()

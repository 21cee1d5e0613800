"""label_images() in a real browser: headless Chromium (Debian's) driven by
Playwright, against the app running in a child R process that the test kills
with SIGKILL mid-session.

The child loads the package from this source tree with pkgload::load_all()
(what pytest tests is the tree, as for the engine); without pkgload it falls
back to the installed package.
"""
import base64
import csv
import http.client
import http.server
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
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


def get(port, path, host=None):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # Sent as is: no normalisation of ../; `host` as a rebinding page would send it.
        conn.request("GET", path, headers={"Host": host} if host else {})
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
    wait_shown(page, "hammer1.jpg")  # a key pressed before the image shows is refused
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
    wait_shown(page, "dog.jpg")
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


FOLDER = ROOT / "inst" / "extdata" / "images"
FIVE = [FOLDER / "animals" / "cat.jpg", FOLDER / "buildings" / "colosseum.jpg", FOLDER / "tools" / "hammer1.jpg",
        FOLDER / "animals" / "dog.jpg", FOLDER / "tools" / "wrench.jpg"]


@pytest.fixture
def app(tmp_path):
    log = open(tmp_path / "r.log", "w")
    running = App(FIVE, tmp_path / "labels.csv", log)
    running.output = tmp_path / "labels.csv"
    yield running
    if running.proc.poll() is None:
        running.kill()
    log.close()


def page_token(port):
    status, body = get(port, "/")
    assert status == 200
    return re.search(rb'name="tv-label-token" content="([0-9a-f]{32})"', body).group(1).decode()


class RawSocket:
    """A websocket made by hand: the Upgrade handshake and RFC 6455 frames,
    with whatever Host and Origin the test gives."""

    def __init__(self, port, host, origin):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        head = [f"GET /websocket/ HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
                f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if origin is not None:
            head.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        status, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(status.split()[1]) if status else None
        self.messages = []
        self.closed = False

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        try:
            self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        except OSError:
            self.closed = True

    def _frame(self):
        """One whole frame from the buffer, or None."""
        if len(self.buf) < 2:
            return None
        op, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        if len(self.buf) < at + n:
            return None
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return op, payload

    def read_until(self, done, timeout=20):
        """Frames until done(self) or the server closes; False at the deadline."""
        deadline = time.time() + timeout
        self.sock.settimeout(0.2)
        while time.time() < deadline:
            while (frame := self._frame()) is not None:
                op, payload = frame
                if op == 8:
                    self.closed = True
                elif op == 1:
                    self.messages.append(payload.decode("utf-8", "replace"))
            if self.closed or done(self):
                return True
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buf += chunk
        return False

    def text(self):
        return "\n".join(self.messages)


def shiny_init(sock):
    """The page's first message, with the outputs marked visible so they render."""
    sock.send({"method": "init", "data": {"output_image_hidden": False, "output_side_hidden": False,
                                           ".clientdata_output_image_hidden": False,
                                           ".clientdata_output_side_hidden": False}})


def test_requests_and_websockets_from_other_hosts_or_origins_are_refused(app):
    port, output = app.port, app.output
    own_host, own_origin = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    token = page_token(port)
    # A page fetched under another host name (DNS rebinding) is refused, and without the token.
    for host in [f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"192.168.0.10:{port}"]:
        status, body = get(port, "/", host=host)
        assert status == 403, host
        assert token.encode() not in body and b"cat.jpg" not in body, host

    # Control: the app's own page, by hand, gets its outputs and can label with the token.
    good = RawSocket(port, own_host, own_origin)
    assert good.status == 101
    shiny_init(good)
    assert good.read_until(lambda s: "cat.jpg" in s.text()) and not good.closed
    good.send({"method": "update", "data": {"key": {"key": "1", "n": 1, "image": 1, "token": "0" * 32}}})
    assert good.read_until(lambda s: False) and good.closed  # a wrong token closes the socket
    assert rows(output) == []
    good = RawSocket(port, own_host, own_origin)
    shiny_init(good)
    assert good.read_until(lambda s: "cat.jpg" in s.text())
    src = re.search(r'src=\\"([^"\\]*dataobj/image[^"\\]*)\\"', good.text()).group(1).replace("&amp;", "&")
    status, body = get(port, "/" + src)
    assert status == 200 and body == FIVE[0].read_bytes()
    for host in [f"evil.example:{port}", f"localhost.evil.example:{port}"]:
        assert get(port, "/" + src, host=host)[0] == 403
    assert get(port, "/" + re.sub(r"&t=[0-9a-f]+", "", src))[0] == 403
    assert get(port, "/" + re.sub(r"&t=[0-9a-f]+", "&t=" + "0" * 32, src))[0] == 403
    good.send({"method": "update", "data": {"key": {"key": "1", "n": 1, "image": 1, "token": token}}})
    assert wait_rows(output, 1)[0]["label"] == "animals"
    # Replayed, and out of order: refused (the later key below shows nothing landed).
    good.send({"method": "update", "data": {"key": {"key": "1", "n": 1, "image": 2, "token": token}}})
    good.send({"method": "update", "data": {"key": {"key": "1", "n": 3, "image": 2, "token": token}}})

    # Another Host or Origin: closed before any output or label, even with the token.
    for host, origin in [(f"evil.example:{port}", "http://evil.example"), (own_host, "http://evil.example"),
                         (own_host, f"http://evil.example:{port}"), (own_host, f"http://127.0.0.1:{port + 1}"),
                         (own_host, "null"), (own_host, None), (f"evil.example:{port}", own_origin)]:
        bad = RawSocket(port, host, origin)
        shiny_init(bad)
        bad.send({"method": "update", "data": {"key": {"key": "2", "n": 1, "image": 2, "token": token}}})
        assert bad.read_until(lambda s: False), (host, origin)
        assert bad.closed, (host, origin)
        assert "jpg" not in bad.text() and token not in bad.text(), (host, origin)
    # R handles messages one at a time, in the order they came: once a key sent
    # after all of those is on disk, any key they got in would be there too.
    good.send({"method": "update", "data": {"key": {"key": "s", "n": 2, "image": 2, "token": token}}})
    got = wait_rows(output, 2)
    assert [(r["path"], r["action"]) for r in got] == [(str(FIVE[0]), "label"), (str(FIVE[1]), "skip")]


class OtherOrigin:
    """A second local web server, on another port: another origin."""

    def __init__(self, html):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(html.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_a_page_on_another_origin_can_neither_read_nor_label(app, browser):
    token = page_token(app.port)  # even had it leaked
    evil = OtherOrigin("""<html><body><script>
      window.result = {messages: [], closed: false};
      const ws = new WebSocket("ws://127.0.0.1:%d/websocket/");
      ws.onmessage = (e) => window.result.messages.push(e.data);
      ws.onclose = () => { window.result.closed = true; };
      ws.onopen = () => {
        ws.send(JSON.stringify({method: "init", data: {".clientdata_output_image_hidden": false,
                                                       ".clientdata_output_side_hidden": false}}));
        ws.send(JSON.stringify({method: "update", data: {key: {key: "1", n: 1, image: 1, token: "%s"}}}));
      };
    </script></body></html>""" % (app.port, token))
    try:
        page = browser.new_page()
        page.goto(evil.url)
        page.wait_for_function("() => window.result.closed", timeout=20000)
        assert not any("jpg" in m for m in page.evaluate("() => window.result.messages"))
    finally:
        evil.close()
    # The app still works for its own page, and nothing was labelled by the other
    # one (its key came before this one, and R handles messages in order).
    own = browser.new_page()
    own.goto(app.url)
    wait_shown(own, "cat.jpg")
    own.keyboard.press("3")
    got = wait_rows(app.output, 1)
    wait_shown(own, "colosseum.jpg")
    assert [(r["path"], r["label"]) for r in rows(app.output)] == [(str(FIVE[0]), "tools")]


def test_a_rebinding_host_name_gets_nothing_in_a_real_browser(app):
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            page = b.new_page()
            response = page.goto(f"http://evil.example:{app.port}/")
            assert response.status == 403
            assert "cat.jpg" not in page.content()
        finally:
            b.close()
    assert rows(app.output) == []


def tab(browser, url, name):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(url)
    wait_shown(page, name)
    return page


def wait_acks(page, n):
    page.wait_for_function("(n) => window.tvLabel.acks.length >= n", arg=n, timeout=20000)
    return page.evaluate("() => window.tvLabel.acks")


def test_two_tabs_each_label_the_image_they_show(app, browser):
    a = tab(browser, app.url, "cat.jpg")
    b = tab(browser, app.url, "cat.jpg")
    a.keyboard.press("1")
    wait_shown(a, "colosseum.jpg")
    assert [(r["path"], r["label"]) for r in wait_rows(app.output, 1)] == [(str(FIVE[0]), "animals")]
    # Tab b still shows the cat: its key labels the cat, not the tab a's image.
    assert shown_file(b) == "cat.jpg"
    b.keyboard.press("3")
    wait_shown(b, "colosseum.jpg")
    got = wait_rows(app.output, 2)
    assert (got[1]["path"], got[1]["label"]) == (str(FIVE[0]), "tools")
    # Two keys pressed on the colosseum before the next image showed: the first
    # labels it; the second was pressed on an image tab a no longer shows, and is refused.
    a.evaluate("""() => { for (const k of ["2", "2"])
                            document.dispatchEvent(new KeyboardEvent("keydown", {key: k})); }""")
    acks = wait_acks(a, 3)
    assert [(k["key"], k["image"], k["ok"]) for k in acks] == [("1", 1, True), ("2", 2, True), ("2", 2, False)]
    wait_shown(a, "hammer1.jpg")
    assert "ignored" in a.inner_text(".tv-label-side")
    got = rows(app.output)
    assert [(r["path"], r["label"]) for r in got] == [(str(FIVE[0]), "animals"), (str(FIVE[0]), "tools"),
                                                      (str(FIVE[1]), "buildings")]


def test_a_burst_of_keys_then_kill_loses_no_acknowledged_key(tmp_path, browser):
    images = sorted(FOLDER.glob("*/*.jpg"))
    output = tmp_path / "labels.csv"
    log = open(tmp_path / "r.log", "w")
    app = App(images, output, log)
    page = tab(browser, app.url, images[0].name)
    keys = "1231s" * 8  # 40 keys at 20 keys/s, as a fast coder types
    page.keyboard.type(keys, delay=50)
    page.wait_for_function("() => window.tvLabel.acks.length >= 3", timeout=20000)
    app.kill()
    log.close()
    page.wait_for_function("() => document.getElementById('tv-label-pending').innerText.includes('not saved')"
                           " || window.tvLabel.pending() === 0", timeout=20000)
    acks = page.evaluate("() => window.tvLabel.acks")
    pending = page.evaluate("() => window.tvLabel.pending()")
    assert len(acks) + pending == len(keys)
    assert [k["n"] for k in acks] == list(range(1, len(acks) + 1))
    if pending:
        assert f"{pending} key" in page.inner_text("#tv-label-pending")
    # Every key the page was told is saved is in the file, in order, on the image it was pressed on.
    saved = [k for k in acks if k["ok"]]
    got = rows(output)
    assert len(saved) <= len(got) <= len(saved) + 1  # + the key in flight when R died
    for k, r in zip(saved, got):
        assert r["path"] == str(images[k["image"] - 1])
        assert (r["action"], r["label"]) == (("skip", "") if k["key"] == "s" else ("label", CLASSES[int(k["key"]) - 1]))
    print(f"{len(saved)} keys saved, {len(acks) - len(saved)} refused (pressed before the image showed), "
          f"{pending} pending at the kill")


def test_a_label_file_deleted_while_the_app_runs_stops_it_with_a_message(app, browser):
    page = tab(browser, app.url, "cat.jpg")
    page.keyboard.press("1")
    wait_shown(page, "colosseum.jpg")
    app.output.unlink()
    page.keyboard.press("2")
    app.proc.wait(timeout=60)
    log = (app.output.parent / "r.log").read_text()
    assert app.proc.returncode != 0
    assert "was deleted or replaced while the app ran" in log
    assert not app.output.exists()  # no file without its header


def test_done_waits_for_the_keys_before_it_and_stops_the_app(app, browser):
    page = tab(browser, app.url, "cat.jpg")
    page.keyboard.press("1")
    page.click("#done")
    app.proc.wait(timeout=60)
    assert app.proc.returncode == 0
    assert [r["label"] for r in rows(app.output)] == ["animals"]

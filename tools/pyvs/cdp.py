"""cdp.py - headless Chromium driven over the DevTools protocol, for tests.

Why it is shaped so:
- The tests take no third-party package: the DevTools WebSocket is spoken
  with ws.py (our stdlib client), the browser is Debian's `chromium`.
- --remote-debugging-port=0 lets Chromium pick a free port; it prints the
  browser's ws:// address on stderr, and /json/list gives the page target.
- Every wait is bounded (timeouts), so a page that never answers fails a
  test instead of hanging it.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

from . import ws


class Failed(Exception):
    pass


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium showing url; extra_args go on its command line."""

    def __init__(self, url, profile_dir, extra_args=(), timeout=30.0):
        exe = chromium_binary()
        if not exe:
            raise Failed("no chromium (Debian package chromium; make test-deps)")
        argv = [exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--remote-debugging-port=0", "--user-data-dir=" + profile_dir,
                "--window-size=1100,1000"] + list(extra_args) + [url]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.stderr_lines = []
        port = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and port is None:
            line = self.proc.stderr.readline().decode("utf-8", "replace")
            if not line:
                break
            self.stderr_lines.append(line)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            self.close()
            raise Failed("chromium did not start: %s" % "".join(self.stderr_lines[-20:]))
        self.port = port
        # the page target (opened with url)
        target = None
        while time.monotonic() < deadline and target is None:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port,
                                        timeout=5) as r:
                for t in json.load(r):
                    if t.get("type") == "page":
                        target = t
            if target is None:
                time.sleep(0.1)
        if target is None:
            self.close()
            raise Failed("chromium has no page target")
        path = re.sub(r"^ws://[^/]+", "", target["webSocketDebuggerUrl"])
        self.ws = ws.Client(port, path=path, timeout=timeout)
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, timeout=30.0):
        """One DevTools command; its result (raises Failed on a protocol error)."""
        self.next_id += 1
        mid = self.next_id
        self.ws.send({"id": mid, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        while True:
            msg = self.ws.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise Failed("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def eval(self, expr, timeout=30.0):
        """The value of a JS expression (promises awaited), with a user gesture."""
        res = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                             "awaitPromise": True, "userGesture": True},
                        timeout=timeout)
        if "exceptionDetails" in res:
            raise Failed("js %r threw: %s" % (expr, res["exceptionDetails"]))
        return res.get("result", {}).get("value")

    def wait_js(self, expr, what, timeout=30.0, step=0.2):
        """Polls a JS expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise Failed("timed out waiting for %s (%s)" % (what, expr))
            time.sleep(step)

    def screenshot(self, path):
        import base64
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)

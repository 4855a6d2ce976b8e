"""harness.py - black-box test helpers for the Voice Stack integration suite.

DESIGN
Owns: starting and stopping the REAL `voicestack serve` binary on loopback
with ephemeral ports, talking HTTP to it with the stdlib only, and the media
helpers the tests need (ffmpeg/ffprobe CLI, WER).  Used by run.py (which sets
BIN and reports failures with the stderr tails of the servers a test touched)
and by every test_*.py module.

Why it is shaped so:
- Ports are learnt from the server's own `event=listening service=X
  addr=H:P` stderr lines (port 0 = ephemeral), so tests can run in parallel
  with anything else on the machine and never race for a fixed port.
- stderr is drained by a background thread into a list: the server never
  blocks on a full pipe, and tests can assert on log lines.
- Every server started is registered; stop_all() runs from atexit and from
  the runner after each module, so no server or worker outlives the suite.
- Every wait has a timeout: a hung server fails a test, never the suite.
"""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import wave

BIN = os.environ.get("VOICESTACK_BIN", "build/voicestack")  # run.py overrides
SERVER_BIN = None  # run.py: a private copy of BIN that Server runs (None: BIN)
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
# > the default SHUTDOWN_GRACE_SECONDS (5) twice over: replies leaving, then workers
STOP_TIMEOUT = 20.0

# What ASan, LSan and UBSan print (tests/run_all.sh runs the suite once more
# against an ASan+UBSan build); "runtime error:" is UBSan's line.
SANITIZER_RX = re.compile(r"ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|"
                          r"\bruntime error: |SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer")
# (server name, pid, what) of every unclean stop or sanitizer report;
# run.py fails the test (or module teardown) during which they appeared.
findings = []


def _finding(server, what):
    findings.append((server.name, server.proc.pid if server.proc else None, what))


def take_findings():
    """Scans live servers' stderr too, then returns and clears findings."""
    for s in list(_live):
        s.check_sanitizer()
    out = list(findings)
    del findings[:]
    return out

DATA = "/usr/share/pocketsphinx/test/data"
LIBRIVOX = os.path.join(DATA, "librivox")
CARDS = os.path.join(DATA, "cards")


class Skip(Exception):
    """Raise Skip("reason") in a test to mark it skipped."""


class TestTimeout(Exception):
    """Raised (from SIGALRM) when a test runs past its time limit."""


# ---------------------------------------------------------------- threads

def in_thread(fn):
    """Run fn() in a daemon thread; returns (thread, box): box['r'] is the
    result or box['e'] the exception, box['t'] the monotonic time it ended."""
    box = {}

    def run():
        try:
            box["r"] = fn()
        except BaseException as e:  # noqa: B902 - handed back to the test
            box["e"] = e
        box["t"] = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def join(t, box, timeout=60.0):
    """Wait for an in_thread() call; re-raise its exception or return its result."""
    t.join(timeout)
    assert not t.is_alive(), "request still running after %.0f s" % timeout
    if "e" in box:
        raise box["e"]
    return box["r"]


# ---------------------------------------------------------------- temp files

_tmpdir = None


def tmpdir():
    """One scratch directory for the whole run, removed at exit."""
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="vs-itest-")
        atexit.register(shutil.rmtree, _tmpdir, True)
    return _tmpdir


def tmppath(name):
    return os.path.join(tmpdir(), "%s-%s" % (uuid.uuid4().hex[:8], name))


# ---------------------------------------------------------------- servers

_live = []           # every Server not yet stopped
touched = []         # servers used by the current test (run.py resets it)
_LISTEN_RE = re.compile(r"event=listening\b.*?\bservice=(\w+)\b.*?\baddr=(\S+):(\d+)")

# Variables the server reads as settings: never inherit them from the
# caller's environment, a test states every setting it depends on.
_SETTING_PREFIXES = ("ASR_", "TTS_", "VS_", "MEMORY_", "SWAP_", "MAX_", "IDLE_", "REQUEST_",
                     "LOG_", "HTTP_THREADS", "WORKER_")
_SETTING_NAMES = ("ENV", "HOST")


def _clean_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SETTING_PREFIXES) and k not in _SETTING_NAMES}
    for k, v in (extra or {}).items():
        env[k] = str(v)
    return env


def _proc_children(pid):
    """Direct children of pid (via /proc/*/stat, which needs no kernel option)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                st = f.read().decode("latin-1")
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            kids.append(int(d))
    return kids


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def proc_ppid_state(pid):
    """(ppid, state letter) of pid from /proc/PID/stat, or (0, "") when gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read().decode("latin-1")
    except OSError:
        return 0, ""
    rest = st[st.rfind(")") + 2:].split()
    return int(rest[1]), rest[0]


def proc_alive(pid):
    """True if pid exists and is not a zombie."""
    state = proc_ppid_state(pid)[1]
    return state != "" and state != "Z"


def proc_rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class Server:
    """A running `voicestack serve` on loopback with ephemeral ports."""

    def __init__(self, env=None, flags=None, service="all", name=None):
        self.env = dict(env or {})
        self.flags = list(flags or [])
        self.service = service
        self.name = name or "server"
        self.proc = None
        self.stderr_lines = []
        self.ports = {}
        self._cond = threading.Condition()
        self._reader = None
        self._workers_seen = set()
        self._checked = 0  # stderr lines already scanned by check_sanitizer

    # -- lifecycle
    def start(self, timeout=START_TIMEOUT):
        binary = os.path.abspath(SERVER_BIN or BIN)
        if not os.access(binary, os.X_OK):
            raise AssertionError("server binary %s not found / not executable" % binary)
        argv = [binary, "serve", "--service", self.service, "--host", HOST,
                "--asr-port", "0", "--tts-port", "0"] + self.flags
        # cwd is a scratch dir so a developer's ./.env cannot change the test.
        cwd = tempfile.mkdtemp(dir=tmpdir(), prefix="cwd-")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=_clean_env(self.env),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _live.append(self)
        touched.append(self)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        want = ["asr", "tts"] if self.service == "all" else [self.service]
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(s in self.ports for s in want):
                left = deadline - time.monotonic()
                if self.proc.poll() is not None:
                    # give the reader a moment to collect the last lines
                    self._cond.wait(0.3)
                    raise AssertionError("server exited with %s during start-up:\n%s"
                                         % (self.proc.returncode, self.stderr_tail()))
                if left <= 0:
                    raise AssertionError("server did not log event=listening for %s within "
                                         "%.0f s:\n%s" % (want, timeout, self.stderr_tail()))
                self._cond.wait(min(left, 0.2))
        return self

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.stderr_lines.append(line)
                m = _LISTEN_RE.search(line)
                if m:
                    self.ports[m.group(1)] = int(m.group(3))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL; also kills workers that outlived the front.
        A front that was alive must leave by itself with status 0 (clean
        shutdown, and LeakSanitizer's verdict in the sanitizer run); anything
        else, and any sanitizer report in its stderr, goes to findings."""
        if self.proc is None:
            return
        workers = set(self._workers_seen)
        if self.alive():
            workers.update(self.worker_pids())
            try:
                self.proc.send_signal(signal.SIGTERM)
                rc = self.proc.wait(timeout)
                if rc != 0:
                    _finding(self, "exited with status %s after SIGTERM" % rc)
            except subprocess.TimeoutExpired:
                _finding(self, "still running %.0f s after SIGTERM (killed)" % timeout)
                self.proc.kill()
                self.proc.wait(5)
        for w in workers:
            # only processes that still look like our workers
            if proc_alive(w) and any(a in ("worker", "spawner") for a in proc_cmdline(w)):
                try:
                    os.kill(w, signal.SIGKILL)
                except OSError:
                    pass
        if self._reader is not None:
            self._reader.join(2.0)
        self.check_sanitizer()
        if self in _live:
            _live.remove(self)

    def check_sanitizer(self):
        """Moves sanitizer reports (front or worker: both write to this
        stderr) not seen before into findings."""
        with self._cond:
            lines = self.stderr_lines[self._checked:]
            self._checked = len(self.stderr_lines)
        for i, line in enumerate(lines):
            if SANITIZER_RX.search(line):
                _finding(self, "sanitizer report:\n" + "\n".join(lines[i:i + 40]))
                break

    # -- introspection
    @property
    def pid(self):
        return self.proc.pid

    @property
    def asr_port(self):
        return self.ports["asr"]

    @property
    def tts_port(self):
        return self.ports["tts"]

    @property
    def asr_url(self):
        return "http://%s:%d" % (HOST, self.asr_port)

    @property
    def tts_url(self):
        return "http://%s:%d" % (HOST, self.tts_port)

    def port(self, service):
        return self.ports[service]

    def worker_pids(self, service=None):
        """Live worker children of the front (argv has `worker`), optionally of
        one service (`--service asr` / `--service=asr` in argv)."""
        pids = []
        for c in _proc_children(self.pid):
            args = proc_cmdline(c)
            if "worker" not in args or not proc_alive(c):
                continue
            if service is not None:
                ok = False
                for i, a in enumerate(args):
                    if a == "--service" and i + 1 < len(args) and args[i + 1] == service:
                        ok = True
                    if a == "--service=" + service:
                        ok = True
                if not ok:
                    continue
            pids.append(c)
        self._workers_seen.update(pids)
        return sorted(pids)

    def spawner_pids(self):
        """Live spawner children of the front (argv has `spawner`): the
        process that forks workers (src/worker/spawner.c), not a worker."""
        pids = [c for c in _proc_children(self.pid)
                if "spawner" in proc_cmdline(c) and proc_alive(c)]
        self._workers_seen.update(pids)
        return sorted(pids)

    def zombie_children(self):
        """Children of the front that ended and were not reaped."""
        return sorted(c for c in _proc_children(self.pid) if proc_ppid_state(c)[1] == "Z")

    def wait_worker(self, service, timeout=20.0, exclude=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = [p for p in self.worker_pids(service) if p not in exclude]
            if w:
                return w[0]
            time.sleep(0.05)
        raise AssertionError("no %s worker appeared within %.0f s" % (service, timeout))

    def busy_worker_pid(self, service, timeout=30.0):
        """pid of the worker serving the one in-flight request, from /health/detailed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.health_detailed(service)
            busy = [w for w in d["workers"] if w["state"] in ("busy", "loading")]
            if d["concurrency"]["active_requests"] == 1 and busy:
                return busy[0]["pid"]
            time.sleep(0.03)
        raise AssertionError("no busy %s worker in /health/detailed within %.0f s"
                             % (service, timeout))

    def stderr_tail(self, n=30):
        with self._cond:
            return "\n".join(self.stderr_lines[-n:])

    def log_contains(self, pattern, timeout=0.0):
        """True once a stderr line matches regex pattern (waits up to timeout)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(rx.search(l) for l in self.stderr_lines):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))

    # -- HTTP convenience
    def get(self, service, path, **kw):
        return request(self.port(service), "GET", path, **kw)

    def health_detailed(self, service):
        r = self.get(service, "/health/detailed")
        assert r.status == 200, "/health/detailed on %s: %s %r" % (service, r.status, r.body[:300])
        return r.json()

    def wait_slots_free(self, service, timeout=10.0):
        """Wait until concurrency.available_slots == max_concurrent; return the
        last /health/detailed document (asserts on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.health_detailed(service)
            c = d["concurrency"]
            if c["available_slots"] == c["max_concurrent"] and c["active_requests"] == 0:
                return d
            if time.monotonic() > deadline:
                raise AssertionError("%s slots not released after %.0f s: concurrency=%s"
                                     % (service, timeout, json.dumps(c)))
            time.sleep(0.1)


def stop_all():
    for s in list(_live):
        try:
            s.stop()
        except Exception:
            try:
                s.proc.kill()
            except Exception:
                pass
            if s in _live:
                _live.remove(s)


atexit.register(stop_all)


class SharedServer:
    """A module-level server started on first use and stopped by the runner
    (via teardown_module -> stop()) at the end of the module. If a test left it
    dead, the next get() starts a fresh one so one failure does not cascade."""

    def __init__(self, env=None, flags=None, service="all", name="shared"):
        self.kw = dict(env=env, flags=flags, service=service, name=name)
        self.server = None

    def get(self):
        if self.server is None or not self.server.alive():
            if self.server is not None:
                self.server.stop()
            self.server = Server(**self.kw).start()
        elif self.server not in touched:
            touched.append(self.server)
        return self.server

    __call__ = get

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None


# ---------------------------------------------------------------- HTTP

class Resp(tuple):
    """(status, headers, body) with conveniences. headers: lowercase keys."""

    def __new__(cls, status, headers, body, chunked=False, complete=True):
        t = tuple.__new__(cls, (status, headers, body))
        t.chunked = chunked
        t.complete = complete
        return t

    status = property(lambda s: s[0])
    headers = property(lambda s: s[1])
    body = property(lambda s: s[2])

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("response is not JSON (%s): %r" % (e, self.body[:300]))

    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.content_type(), self.body[:200])


def _headers(msg):
    h = {}
    for k, v in msg.items():
        k = k.lower()
        h[k] = h[k] + ", " + v if k in h else v
    return h


def request(port, method, path, body=None, headers=None, timeout=120.0):
    """One HTTP request on a fresh connection; returns Resp. A response cut
    short (connection closed mid-body) is returned with complete=False and the
    bytes received so far, rather than raised."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        chunked = bool(r.chunked)
        complete = True
        parts = []
        try:
            while True:
                b = r.read(65536)
                if not b:
                    break
                parts.append(b)
        except http.client.IncompleteRead as e:
            parts.append(e.partial)
            complete = False
        except (ConnectionError, http.client.HTTPException):
            complete = False
        return Resp(r.status, _headers(r.msg), b"".join(parts), chunked, complete)
    finally:
        conn.close()


def post_json(port, path, obj, timeout=120.0):
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return request(port, "POST", path, body, {"Content-Type": "application/json"}, timeout)


def encode_multipart(fields, boundary=None):
    """fields: list of (name, value) where value is str (a plain field) or a
    tuple (filename, bytes, content_type) (a file). Returns (body, ctype)."""
    boundary = boundary or "----vsitest" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(b"--" + boundary.encode() + b"\r\n")
        if isinstance(value, tuple):
            fname, data, ctype = value
            out.append(('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                        % (name, fname)).encode())
            out.append(("Content-Type: %s\r\n\r\n" % ctype).encode())
            out.append(data)
        else:
            out.append(('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode())
            out.append(str(value).encode("utf-8"))
        out.append(b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def transcribe(port, audio, filename="audio.wav", ctype="application/octet-stream",
               path="/v1/audio/transcriptions", fields=None, timeout=180.0):
    """POST a transcription. audio: bytes or a file path. fields: dict or list
    of extra form fields (model defaults to whisper-1 unless given)."""
    if isinstance(audio, str):
        with open(audio, "rb") as f:
            audio = f.read()
    extra = list(fields.items()) if isinstance(fields, dict) else list(fields or [])
    if not any(k == "model" for k, _ in extra):
        extra.insert(0, ("model", "whisper-1"))
    body, ct = encode_multipart([("file", (filename, audio, ctype))] + extra)
    return request(port, "POST", path, body, {"Content-Type": ct}, timeout)


def speak(port, text, voice="alloy", response_format=None, model="tts-1", timeout=180.0,
          **extra):
    obj = {"model": model, "input": text, "voice": voice}
    if response_format is not None:
        obj["response_format"] = response_format
    obj.update(extra)
    return post_json(port, "/v1/audio/speech", obj, timeout)


def assert_error_shape(resp, status):
    """resp has HTTP status `status` and the OpenAI error body."""
    assert resp.status == status, "expected HTTP %d, got %d: %r" % (status, resp.status,
                                                                     resp.body[:400])
    assert resp.content_type() == "application/json", \
        "error Content-Type %r, want application/json" % resp.headers.get("content-type")
    doc = resp.json()
    assert isinstance(doc, dict) and set(doc) == {"error"}, "error body: %r" % doc
    e = doc["error"]
    assert isinstance(e, dict), "error is not an object: %r" % e
    for k in ("message", "type", "param", "code"):
        assert k in e, "error.%s missing: %r" % (k, e)
    assert isinstance(e["message"], str) and e["message"].strip(), "empty message: %r" % e
    assert isinstance(e["type"], str) and e["type"], "empty type: %r" % e
    assert e["param"] is None or isinstance(e["param"], str), "param type: %r" % e
    assert e["code"] is None or isinstance(e["code"], (str, int)), "code type: %r" % e
    return e


# ---------------------------------------------------------------- raw sockets

def recv_response(sock, timeout=30.0):
    """Read one HTTP/1.1 response from a raw socket (Content-Length or chunked
    body). Returns (status, headers(lowercase), body)."""
    deadline = time.monotonic() + timeout
    buf = b""

    def more():
        left = deadline - time.monotonic()
        assert left > 0, "no complete response within %.0f s (got %r)" % (timeout, buf[:300])
        sock.settimeout(left)
        b = sock.recv(65536)
        assert b, "connection closed before the response was complete (got %r)" % buf[:300]
        return b
    while b"\r\n\r\n" not in buf:
        buf += more()
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(rest) < n:
            buf = more()
            rest += buf
        return status, hdrs, rest[:n]
    if "chunked" in hdrs.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, rest = rest.split(b"\r\n", 1)
            n = int(size_line.split(b";")[0], 16)
            while len(rest) < n + 2:
                rest += more()
            body += rest[:n]
            rest = rest[n + 2:]
            if n == 0:
                return status, hdrs, body
    return status, hdrs, rest


def closed_by_peer(sock, timeout=5.0):
    """True if the peer closes the connection (EOF or reset) within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class Prefixed:
    """A socket whose first recv() returns bytes already read."""

    def __init__(self, so, first):
        self.so, self.first = so, first

    def settimeout(self, t):
        self.so.settimeout(t)

    def recv(self, n):
        if self.first:
            b, self.first = self.first, b""
            return b
        return self.so.recv(n)


def upload_head(boundary, length=None):
    """Raw request head of a transcription upload: Content-Length `length`,
    or chunked when length is None."""
    size = ("Content-Length: %d" % length) if length is not None else \
        "Transfer-Encoding: chunked"
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\n%s\r\n\r\n"
            % ("/v1/audio/transcriptions", boundary, size)).encode()


def multipart_head(boundary, filename="big.wav"):
    return ("--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
            % (boundary, boundary, filename)).encode()



def read_until_close(sock, timeout=10.0):
    """Everything the peer sends until it closes (or timeout). Returns
    (bytes, closed): closed is False when the connection was still open at
    the timeout; a reset after some bytes counts as closed."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, False
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return buf, False
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not b:
            return buf, True
        buf += b


def status_lines(raw):
    """Every HTTP status line in raw, wherever it appears."""
    return re.findall(rb"HTTP/1\.[01] \d{3}[^\r\n]*", raw)


def parse_response(raw):
    """One response (head + Content-Length body) from bytes: Resp."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", len(rest)))
    return Resp(int(lines[0].split()[1]), hdrs, rest[:n])


# ---------------------------------------------------------------- media

def run(argv, timeout=120.0, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def ffprobe(path):
    """ffprobe's JSON for format and streams; asserts it parses the file."""
    p = run(["ffprobe", "-v", "error", "-show_entries",
             "format=format_name,duration:stream=codec_name,sample_rate,channels,duration",
             "-of", "json", path], timeout=60)
    assert p.returncode == 0, "ffprobe failed on %s: %s" % (path, p.stderr.decode()[-500:])
    doc = json.loads(p.stdout.decode())
    assert doc.get("streams"), "ffprobe found no stream in %s" % path
    return doc


def ffprobe_duration(path):
    """Container duration, else the first stream's; None if neither known."""
    doc = ffprobe(path)
    for v in (doc.get("format", {}).get("duration"), doc["streams"][0].get("duration")):
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    return None


def decode_pcm(path, rate=16000, extra_in=()):
    """Fully decode path with ffmpeg to s16le mono at rate. Asserts ffmpeg
    reports no error. Returns the PCM bytes."""
    p = run(["ffmpeg", "-nostdin", "-v", "error"] + list(extra_in) +
            ["-i", path, "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"], timeout=120)
    err = p.stderr.decode("utf-8", "replace").strip()
    assert p.returncode == 0 and not err, "ffmpeg could not decode %s cleanly: rc=%d %s" % (
        path, p.returncode, err[-600:])
    return p.stdout


def decoded_duration(path):
    return len(decode_pcm(path, 16000)) / 32000.0


def rms_s16(pcm):
    n = len(pcm) // 2
    if n == 0:
        return 0.0
    import array
    a = array.array("h")
    a.frombytes(pcm[:n * 2])
    step = max(1, n // 200000)
    s = 0
    m = 0
    for i in range(0, n, step):
        s += a[i] * a[i]
        m += 1
    return (s / m) ** 0.5


_FMT_ARGS = {
    "wav": ([], "wav"),
    "mp3": (["-c:a", "libmp3lame"], "mp3"),
    "ogg": (["-c:a", "libvorbis"], "ogg"),
    "opus": (["-c:a", "libopus"], "opus"),
    "flac": (["-c:a", "flac"], "flac"),
    "m4a": (["-c:a", "aac"], "m4a"),        # ffmpeg default: moov atom at the end
    "webm": (["-c:a", "libopus"], "webm"),
}


def make_audio(src, fmt, rate=None, channels=None, extra=()):
    """Encode src with the ffmpeg CLI into the run's temp dir; returns the path."""
    args, ext = _FMT_ARGS[fmt]
    out = tmppath("%s-%s-%s.%s" % (os.path.basename(src).split(".")[0], rate or "r",
                                   channels or "c", ext))
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src]
    if rate:
        argv += ["-ar", str(rate)]
    if channels:
        argv += ["-ac", str(channels)]
    argv += list(args) + list(extra) + [out]
    p = run(argv, timeout=120)
    assert p.returncode == 0, "ffmpeg failed: %s: %s" % (" ".join(argv), p.stderr.decode())
    return out


def concat_wavs(paths, out):
    """Concatenate same-format wavs with the wave module (exact, no codec)."""
    with wave.open(paths[0]) as w0:
        params = w0.getparams()
    with wave.open(out, "wb") as o:
        o.setparams(params)
        for p in paths:
            with wave.open(p) as w:
                o.writeframes(w.readframes(w.getnframes()))
    return out


def long_librivox_wav(times, name):
    """The five librivox sentences (~24.6 s) repeated `times` times, joined
    sample-exactly: a clip that keeps pocketsphinx busy for many seconds."""
    src = sorted(os.path.join(LIBRIVOX, f) for f in os.listdir(LIBRIVOX)
                 if f.endswith(".wav"))
    return concat_wavs(src * times, tmppath(name))


def wav_bytes(pcm, rate=16000, channels=1):
    path = tmppath("gen.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- text

def words(text):
    """Lowercase words, punctuation stripped (apostrophes inside words kept)."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_edits(ref, hyp):
    """(Levenshtein distance over words, number of reference words)."""
    r, h = words(ref), words(hyp)
    prev = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        cur = [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
        prev = cur
    return prev[len(h)], len(r)


def wer(ref, hyp):
    e, n = word_edits(ref, hyp)
    return e / max(n, 1)


def pocketsphinx_continuous(path, timeout=120.0):
    """The engine's own CLI on a 16 kHz mono 16-bit wav (it skips a 44-byte
    header, so feed it only canonical wavs). Returns the joined hypothesis."""
    p = run(["pocketsphinx_continuous", "-infile", path], timeout=timeout)
    assert p.returncode == 0, "pocketsphinx_continuous failed on %s" % path
    return " ".join(l.strip() for l in p.stdout.decode().splitlines() if l.strip())


def canonical_wav(src):
    """src decoded by the ffmpeg CLI to a canonical 44-byte-header 16 kHz mono
    s16 wav (no LIST chunk, which pocketsphinx_continuous would read as audio)."""
    pcm = decode_pcm(src, 16000)
    out = tmppath("canon.wav")
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out


def load_transcripts():
    """[(wav_path, reference)] for librivox and cards, from Debian's
    pocketsphinx-testdata; <s>, </s> and the (id) stripped."""
    items = []
    for d, tfile in ((LIBRIVOX, "transcription"), (CARDS, "cards.transcription")):
        with open(os.path.join(d, tfile)) as f:
            for line in f:
                m = re.match(r"\s*(.*?)\s*\(([^)]+)\)\s*$", line)
                if not m:
                    continue
                ref = re.sub(r"</?s>", " ", m.group(1))
                ref = " ".join(ref.split())
                items.append((os.path.join(d, m.group(2) + ".wav"), ref))
    return items


# ---------------------------------------------------------------- raw sockets

def open_request(port, method, path, body=b"", headers=None, rcvbuf=None, timeout=30.0):
    """Connect, send one request (Content-Length framing) and return the
    socket unread. rcvbuf: SO_RCVBUF set before connecting, so the window the
    server sees stays small (a slow reader)."""
    import socket
    so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    so.settimeout(timeout)
    so.connect((HOST, port))
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (method, path, HOST,
                                                                    len(body))
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    so.sendall(head.encode("latin-1") + b"\r\n" + body)
    return so


def read_head(so, timeout=30.0):
    """Read a response head from a raw socket: (status, headers with lowercase
    keys, bytes of the body already received)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0, "no response head within %.0f s (got %r)" % (timeout, buf[:300])
        so.settimeout(left)
        b = so.recv(1024)
        assert b, "connection closed before the response head (got %r)" % buf[:300]
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, rest


class SlowReader:
    """Reads a raw socket at about `rate` bytes per second in a thread until
    the peer closes it or stop() is called; `closed` is set on EOF/reset."""

    def __init__(self, so, rate=200):
        import socket
        self.so, self.rate, self.got = so, rate, 0
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._sockerr = socket.timeout

        def run():
            while not self._stop.is_set():
                try:
                    self.so.settimeout(1.0)
                    b = self.so.recv(max(1, self.rate // 5))
                except self._sockerr:
                    continue
                except OSError:
                    b = b""
                if not b:
                    self.closed.set()
                    return
                self.got += len(b)
                self._stop.wait(0.2)
        self._t = threading.Thread(target=run, daemon=True)
        self._t.start()

    def stop(self):
        self._stop.set()
        self._t.join(5)
        self.so.close()


def wait_for(pred, what, timeout=20.0, step=0.05):
    """Poll pred() until it returns a true value (returned); asserts on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "%s: not within %.0f s" % (what, timeout)
        time.sleep(step)

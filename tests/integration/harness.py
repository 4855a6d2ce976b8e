"""harness.py - black-box test helpers for the Voice Stack integration suite.

DESIGN
Owns: what only the tests need on top of the shared helpers in tools/pyvs
(which bench/ uses too): the registry of servers a test touched, clean-exit
and sanitizer findings, test threads, OpenAI error checks, the engine's own
CLI. Requests and WER come from pyvs.speech, re-exported here.  Used by run.py (which sets BIN and reports failures with
the stderr tails of the servers a test touched) and by every test_*.py.

Why it is shaped so:
- Starting/stopping the real server, /proc readers, HTTP and raw sockets and
  ffmpeg helpers live in tools/pyvs and are re-exported here under their
  old names (`h.request`, `h.make_audio`, ...), so tests import one module.
  This file is where tools/ goes on sys.path (once, for every test module).
- Every server started is registered; stop_all() runs from atexit and from
  the runner after each module, so no server or worker outlives the suite.
- A front that does not exit 0 after SIGTERM, or prints a sanitizer report,
  becomes a finding that fails the test during which it appeared.
- Every wait has a timeout: a hung server fails a test, never the suite.
"""

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools"))


from pyvs import procs, server, tmp, wyoming  # noqa: E402,F401
from pyvs.http import (HOST, SSE, Prefixed, Resp, closed_by_peer,  # noqa: E402,F401
                       encode_multipart, multipart_head, open_request, open_sse,
                       parse_metrics, parse_response,
                       post_json, read_head, read_rest, read_until_close, recv_response, request,
                       status_lines, upload_head)
from pyvs.media import (CARDS, DATA, LIBRIVOX, concat_wavs, decode_pcm,  # noqa: E402,F401
                        raw_pcm,
                        decoded_duration, ffprobe, ffprobe_duration, long_librivox_wav,
                        make_audio, rms_s16, run, wav_bytes)
from pyvs.server import FREE, START_TIMEOUT, STOP_TIMEOUT  # noqa: E402,F401
from pyvs.speech import (load_transcripts, reference_transcript, speak,  # noqa: E402,F401
                         transcribe, wer, word_edits, words)
from pyvs.tmp import tmpdir, tmppath  # noqa: E402,F401

tmp.PREFIX = "vs-itest-"
BIN = os.environ.get("VOICESTACK_BIN", "build/voicestack")  # run.py overrides
SERVER_BIN = None  # run.py: a private copy of BIN that Server runs (None: BIN)

# /proc readers under the names tests use
proc_alive = procs.alive
proc_ppid_state = procs.ppid_state
_proc_children = procs.children
proc_cmdline = procs.cmdline
proc_rss_mb = procs.rss_mb
_proc_children = procs.children

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


def burst(n, fn, timeout=120.0):
    """fn(i) for i in 0..n-1, each in its own thread, released at once (a
    barrier), so the n requests are in flight together; returns the results
    in order (re-raises the first exception)."""
    gate = threading.Barrier(n)

    def one(i):
        gate.wait(timeout)
        return fn(i)
    calls = [in_thread(lambda i=i: one(i)) for i in range(n)]
    return [join(t, box, timeout) for t, box in calls]


# ---------------------------------------------------------------- servers

_live = []           # every Server not yet stopped
touched = []         # servers used by the current test (run.py resets it)


class Server(server.Server):
    """A running `voicestack serve` on loopback with ephemeral ports,
    registered for stop_all() and findings."""

    def __init__(self, env=None, flags=None, service="all", name=None, binary=None):
        # binary: another `voicestack` than the build's (an installed one)
        super().__init__(binary or SERVER_BIN or BIN, env, flags, service, name or "server")
        self._checked = 0  # stderr lines already scanned by check_sanitizer

    def started(self):
        _live.append(self)
        touched.append(self)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL; also kills workers that outlived the front.
        A front that was alive must leave by itself with status 0 (clean
        shutdown, and LeakSanitizer's verdict in the sanitizer run); anything
        else, and any sanitizer report in its stderr, goes to findings."""
        if self.proc is None:
            return
        problem = super().stop(timeout)
        if problem:
            _finding(self, problem)
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


class ToolProcess:
    """A helper daemon a test runs in the foreground (nginx, haproxy):
    self.proc; stop() sends STOP_SIGNAL, waits, then SIGKILLs. A context
    manager that stops it."""
    STOP_SIGNAL = signal.SIGTERM
    proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.STOP_SIGNAL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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


# ---------------------------------------------------------------- voices

# OpenAI's speech API voice names (platform.openai.com/docs/api-reference/
# audio/createSpeech, 2026): every TTS engine must accept each one and give
# each its own voice. Written out here, not read from the server, so that a
# name missing from the server's table is a failure.
OPENAI_VOICES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar"]


_FLITE_DUMP = """
import ctypes, sys
fl = ctypes.CDLL("libflite.so.1", mode=ctypes.RTLD_GLOBAL)
lib = ctypes.CDLL("libflite_cmu_us_%s.so.1")
reg = lib.register_cmu_us_%s
reg.restype, reg.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
fl.flite_voice_dump.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
fl.flite_init()
sys.exit(0 if fl.flite_voice_dump(reg(None), sys.argv[1].encode()) == 1 else 1)
"""


def flite_voice_file(path, voice="slt"):
    """Writes a real .flitevox to path: flite's own dump of one of its
    built-in clustergen voices (slt, rms, awb), through ctypes in a child
    process (flite exits its process on internal errors). Returns path."""
    p = run([sys.executable, "-c", _FLITE_DUMP % (voice, voice), path])
    assert p.returncode == 0 and os.path.getsize(path) > 100000, \
        "flite could not dump %s to %s: %r" % (voice, path, p.stderr)
    return path


def fake_proc_root(total_kb, available_kb):
    """A directory for VS_TEST_PROC_ROOT (the memory guard's test seam) whose
    proc/meminfo says total_kb with available_kb available and no swap.
    Returns the directory; rewrite its proc/meminfo to change the reading."""
    root = tmppath("fake-proc")
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    with open(os.path.join(root, "proc", "meminfo"), "w") as f:
        f.write("MemTotal: %d kB\nMemFree: %d kB\nMemAvailable: %d kB\n"
                "SwapTotal: 0 kB\nSwapFree: 0 kB\n" % (total_kb, available_kb, available_kb))
    return root


# ---------------------------------------------------------------- requests

FAKE_CGROUP = "system.slice/voice-stack-asr.service"


def fake_cgroup_root(limit_bytes, used_bytes):
    """fake_proc_root() with 8 GB of RAM whose process sits in a cgroup v2
    (FAKE_CGROUP) limited to limit_bytes (what systemd's MemoryMax= writes to
    memory.max) with used_bytes in it. Returns the root; fake_cgroup_use()
    changes the reading."""
    root = fake_proc_root(8 * 1024 * 1024, 7 * 1024 * 1024)
    os.makedirs(os.path.join(root, "sys/fs/cgroup", FAKE_CGROUP))
    os.makedirs(os.path.join(root, "proc/self"))
    with open(os.path.join(root, "proc/self/cgroup"), "w") as f:
        f.write("0::/%s\n" % FAKE_CGROUP)
    fake_cgroup_use(root, limit_bytes, used_bytes)
    return root


def fake_cgroup_use(root, limit_bytes, used_bytes):
    d = os.path.join(root, "sys/fs/cgroup", FAKE_CGROUP)
    for name, v in (("memory.max", str(limit_bytes)), ("memory.current", str(used_bytes)),
                    ("memory.stat", "inactive_file 0")):
        with open(os.path.join(d, name) + ".tmp", "w") as f:
            f.write(v + "\n")
        os.rename(os.path.join(d, name) + ".tmp", os.path.join(d, name))


def access_line(server, rid, timeout=5.0):
    """The key=value fields of the event=access line of request id rid
    (waits up to timeout for it)."""
    assert server.log_contains(r"event=access .*request_id=%s\b" % re.escape(rid),
                               timeout=timeout), "no event=access line for request_id=%s" % rid
    line = [l for l in server.stderr_lines
            if "event=access" in l and re.search(r"request_id=%s\b" % re.escape(rid), l)][0]
    return dict(re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", line))


def access_order(server, prefix, expect=(), timeout=5.0):
    """request ids starting with prefix, in the order of their event=access
    lines (the order the requests ended). The line is written once the
    answer is out, so a client can have its answer first: with `expect`,
    waits (up to timeout) until each of those ids has its line."""
    rx = re.compile(r"event=access .*request_id=(%s\S*)" % re.escape(prefix))
    deadline = time.monotonic() + timeout
    while True:
        with server._cond:
            lines = list(server.stderr_lines)
        order = [m.group(1) for m in (rx.search(l) for l in lines) if m]
        missing = [x for x in expect if x not in order]
        if not missing:
            return order
        assert time.monotonic() < deadline, "no event=access line for %s" % missing
        time.sleep(0.02)


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


# ---------------------------------------------------------------- text

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


def dechunk(raw):
    """The body of a chunked transfer coding: (bytes, complete) where complete
    says the terminating zero-size chunk was there."""
    out, i = [], 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return b"".join(out), False
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out), True
        if j + 2 + size > len(raw):
            return b"".join(out), False
        out.append(raw[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def refused_while_slot_held(server, audio):
    """Holds the only ASR slot of `server` with an upload whose body never
    comes (the slot is taken on the headers), sends a transcription of
    `audio` meanwhile (the 429 it gets is returned), then lets the held one
    go and waits until the slots are free (metrics tests: a refusal)."""
    import socket
    so = socket.create_connection((HOST, server.asr_port), timeout=30)
    try:
        so.sendall(upload_head("xx", length=10_000_000))
        wait_for(lambda: server.health_detailed("asr")["concurrency"]["active_requests"] == 1,
                 "the held upload takes the slot")
        r = transcribe(server.asr_port, audio, timeout=30)
    finally:
        so.close()
    server.wait_slots_free("asr")
    return r


# ---------------------------------------------------------------- systemd

class NotifySocket:
    """systemd's side of sd_notify(3): an AF_UNIX datagram socket to pass as
    NOTIFY_SOCKET. Each datagram is kept as (monotonic time, {field: value});
    on_message(fields), if given, runs on the reader thread as each arrives
    (e.g. to connect to a port the moment READY=1 comes)."""

    def __init__(self, on_message=None):
        import socket as _s
        self.path = tmppath("notify.sock")
        self.sock = _s.socket(_s.AF_UNIX, _s.SOCK_DGRAM | _s.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.on_message = on_message
        self._cond = threading.Condition()
        self._stop = False
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n")
                          if "=" in line)
            if self.on_message:
                self.on_message(fields)
            with self._cond:
                self.msgs.append((time.monotonic(), fields))
                self._cond.notify_all()

    def values(self, key, since=0.0):
        with self._cond:
            return [f[key] for t, f in self.msgs if key in f and t >= since]

    def wait(self, key, value=None, timeout=20.0, since=0.0):
        """The first value of key sent at or after `since` (and equal to value,
        if given); asserts when none comes within timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, f in self.msgs:
                    if t >= since and key in f and (value is None or f[key] == value):
                        return f[key]
                left = deadline - time.monotonic()
                assert left > 0, "no %s%s on NOTIFY_SOCKET within %.0f s (got %r)" % (
                    key, "=" + value if value else "", timeout, self.msgs[-5:])
                self._cond.wait(left)

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


def threads_named(pid, prefix):
    """tids of process pid whose thread name (comm) starts with prefix."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip().startswith(prefix):
                    out.append(int(tid))
        except OSError:
            pass
    return out


class FrozenThreads:
    """Stops single threads of another process from outside, without a seam
    in its code: PTRACE_SEIZE + PTRACE_INTERRUPT put just that thread in a
    ptrace-stop (the others run on); thaw() detaches, and it runs again. All
    calls must come from the one thread that froze (ptrace is per tracer)."""
    SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17
    WALL = 0x40000000

    def __init__(self):
        import ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                      ctypes.c_void_p]
        self._libc.ptrace.restype = ctypes.c_long
        self.tids = []

    def _ptrace(self, req, tid):
        import ctypes
        if self._libc.ptrace(req, tid, None, None) < 0:
            e = ctypes.get_errno()
            raise OSError(e, "ptrace(%#x, %d): %s" % (req, tid, os.strerror(e)))

    def freeze(self, tids):
        assert tids, "no thread to freeze"
        for tid in tids:
            self._ptrace(self.SEIZE, tid)
            self.tids.append(tid)
            self._ptrace(self.INTERRUPT, tid)
            os.waitpid(tid, self.WALL)  # it is in the ptrace-stop now

    def thaw(self):
        for tid in self.tids:
            try:
                self._ptrace(self.DETACH, tid)
            except OSError:
                pass
        self.tids = []

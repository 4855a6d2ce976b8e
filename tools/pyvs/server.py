"""server.py - one real `voicestack serve` on loopback, started with settings.

Why it is shaped so:
- Ports are ephemeral (port 0) and learnt from the server's own
  `event=listening service=X addr=H:P` stderr lines, so runs never race for
  a fixed port.
- stderr is drained by a thread into a list: the server never blocks on a
  full pipe, and callers can read or wait for log lines.
- Settings come only from `env`: variables the server reads are dropped from
  the caller's environment, and cwd is a scratch dir so no ./.env applies.
- stop() is SIGTERM, wait, then SIGKILL, and kills any service process
  (worker, spawner) that outlived the front; it returns what went wrong so
  the caller decides whether that is a test failure or a bench note.
- Every wait has a time limit.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time

from . import Failed, http, procs, tmp

HOST = http.HOST
START_TIMEOUT = 20.0
# > the default SHUTDOWN_GRACE_SECONDS (5) twice over: replies leaving, then workers
STOP_TIMEOUT = 20.0
LISTEN_RE = re.compile(r"event=listening\b.*?\bservice=(\w+)\b.*?\baddr=(\S+):(\d+)")
WYOMING_RE = re.compile(r"event=wyoming_listening\b.*?\bservice=(\w+)\b.*?\baddr=(\S+):(\d+)")
# env value of WYOMING_ASR_PORT / WYOMING_TTS_PORT that asks start() for a
# free port (0 means off for the server, so the kernel cannot pick one)
FREE = "free"
# free ports are taken below the kernel's ephemeral range (32768-60999 by
# default), where no bind(0) or connect() of another process lands
FREE_PORT_RANGE = (20000, 32000)

# Variables the server reads as settings: never inherited from the caller.
SETTING_PREFIXES = ("ASR_", "TTS_", "VS_", "MEMORY_", "SWAP_", "MAX_", "IDLE_", "REQUEST_",
                    "LOG_", "HTTP_THREADS", "WORKER_", "API_KEY", "AUTH_", "ALLOW_ORIGINS",
                    "REALTIME_", "WYOMING_")
SETTING_NAMES = ("ENV", "HOST")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(SETTING_PREFIXES) and k not in SETTING_NAMES}
    for k, v in (extra or {}).items():
        env[k] = str(v)
    return env


def free_port():
    """A TCP port on HOST nothing listens on now, outside the ephemeral range."""
    import random
    for _ in range(200):
        port = random.randint(*FREE_PORT_RANGE)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Failed("no free port in %s" % (FREE_PORT_RANGE,))


def env_prefix(env):
    """Settings as a shell prefix (`A=1 B=2`)."""
    return " ".join("%s=%s" % (k, shlex.quote(str(v))) for k, v in env.items())


class Server:
    """A `voicestack serve` child; subclasses add bookkeeping (harness, bench)."""

    def __init__(self, binary, env=None, flags=None, service="all", name="server"):
        self.binary = binary
        self.env = dict(env or {})
        self.flags = list(flags or [])
        self.service = service
        self.name = name
        self.proc = None
        self.cwd = None
        self.ports = {}
        self.wyoming_ports = {}  # service -> port of its Wyoming listener
        self.stderr_lines = []
        self._cond = threading.Condition()
        self._reader = None
        self._seen = set()   # service pids seen, killed at stop if they outlive the front
        # sent with get() (health_detailed, metrics...): e.g. the API key of a
        # server started with API_KEYS_FILE and status routes closed
        self.headers = {}
        # stderr as systemd's journal stream looks to the server: JOURNAL_STREAM
        # names the stderr pipe's device:inode (test_sd_notify.py)
        self.journal_stream = False

    # -- lifecycle
    def argv(self):
        return [os.path.abspath(self.binary), "serve", "--service", self.service,
                "--host", HOST, "--asr-port", "0", "--tts-port", "0"] + self.flags

    def command(self):
        """The command line as a user would type it (settings as a prefix)."""
        return ((env_prefix(self.env) + " ") if self.env else "") + \
            "voicestack serve --service %s" % self.service + \
            "".join(" " + shlex.quote(f) for f in self.flags)

    def started(self):
        """Hook: called once the Popen exists (registration)."""

    def start(self, timeout=START_TIMEOUT):
        """Starts the server; WYOMING_*_PORT=FREE in env gets a free port (a
        start that lost the port to another process is retried)."""
        asked = {k: v for k, v in self.env.items()
                 if k in ("WYOMING_ASR_PORT", "WYOMING_TTS_PORT") and v == FREE}
        for attempt in range(3):
            for k in asked:
                self.env[k] = str(free_port())
            try:
                return self._start(timeout)
            except Failed:
                if not asked or attempt == 2 or "Address already in use" not in \
                        self.stderr_tail() and "port in use" not in self.stderr_tail():
                    raise
                self.proc.wait(5)
                self.stderr_lines = []

    def wyoming_port(self, service=None):
        return self.wyoming_ports[service or self.default_service()]

    def _start(self, timeout):
        argv = self.argv()
        if not os.access(argv[0], os.X_OK):
            raise Failed("server binary %s not found / not executable" % argv[0])
        self.cwd = tempfile.mkdtemp(dir=tmp.tmpdir(), prefix="cwd-")
        env, err = clean_env(self.env), subprocess.PIPE
        if self.journal_stream:
            rd, err = os.pipe()
            st = os.fstat(err)
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err)
        if self.journal_stream:
            os.close(err)
            self.proc.stderr = os.fdopen(rd, "rb")
        self.started()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        want = ["asr", "tts"] if self.service == "all" else [self.service]
        wy = [s for s in want if self.env.get("WYOMING_%s_PORT" % s.upper(), "0") != "0"]
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (all(s in self.ports for s in want) and
                       all(s in self.wyoming_ports for s in wy)):
                left = deadline - time.monotonic()
                if self.proc.poll() is not None:
                    self._cond.wait(0.3)  # the reader collects the last lines
                    raise Failed("%s exited with %s during start-up:\n%s"
                                 % (self.name, self.proc.returncode, self.stderr_tail()))
                if left <= 0:
                    raise Failed("%s did not log event=listening for %s within %.0f s:\n%s"
                                 % (self.name, want, timeout, self.stderr_tail()))
                self._cond.wait(min(left, 0.2))
        return self

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.stderr_lines.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    self.ports[m.group(1)] = int(m.group(3))
                m = WYOMING_RE.search(line)
                if m:
                    self.wyoming_ports[m.group(1)] = int(m.group(3))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, SIGKILL; kills service processes that outlived the
        front.  Returns None after a clean exit (status 0), else what happened."""
        if self.proc is None:
            return None
        problem = None
        if self.alive():
            self.service_pids()
            try:
                self.proc.send_signal(signal.SIGTERM)
                rc = self.proc.wait(timeout)
                if rc != 0:
                    problem = "exited with status %s after SIGTERM" % rc
            except subprocess.TimeoutExpired:
                problem = "still running %.0f s after SIGTERM (killed)" % timeout
                self.proc.kill()
                self.proc.wait(5)
        # only processes that still look like ours (pids are reused)
        procs.kill_if_alive([p for p in self._seen
                             if procs.is_worker(procs.cmdline(p)) or
                             os.path.basename((procs.cmdline(p) or [""])[0])
                             .startswith("voicestack")])
        if self._reader is not None:
            self._reader.join(2.0)
        return problem

    # -- processes
    @property
    def pid(self):
        return self.proc.pid

    def service_pids(self):
        """Front + every live descendant (workers, spawner): what the service costs."""
        pids = procs.service_pids(self.pid)
        self._seen.update(pids[1:])
        return pids

    def worker_pids(self, service=None):
        """Live workers below the front, optionally of one service."""
        out = []
        for p in self.service_pids()[1:]:
            args = procs.cmdline(p)
            if procs.is_worker(args) and (service is None or procs.serves(args, service)):
                out.append(p)
        return sorted(out)

    def spawner_pids(self):
        """Live spawners below the front (src/worker/spawner.c): the process
        that forks workers, not a worker."""
        return sorted(p for p in self.service_pids()[1:] if procs.is_spawner(procs.cmdline(p)))

    def zombie_children(self):
        """Children of the front that ended and were not reaped."""
        return sorted(c for c in procs.children(self.pid) if procs.ppid_state(c)[1] == "Z")

    def wait_worker(self, service, timeout=20.0, exclude=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = [p for p in self.worker_pids(service) if p not in exclude]
            if w:
                return w[0]
            time.sleep(0.05)
        raise Failed("no %s worker appeared within %.0f s" % (service, timeout))

    # -- logs
    def stderr_tail(self, n=30):
        with self._cond:
            return "\n".join(self.stderr_lines[-n:])

    def log(self):
        with self._cond:
            return "\n".join(self.stderr_lines)

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

    def load_ms(self, service):
        """Every load_ms the service's workers logged (event=model_loaded)."""
        return [int(m) for m in re.findall(r"proc=%s-worker\b.*?event=model_loaded\b.*?"
                                           r"load_ms=(\d+)" % service, self.log())]

    # -- HTTP
    def default_service(self):
        return self.service if self.service != "all" else "asr"

    def port(self, service=None):
        return self.ports[service or self.default_service()]

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

    def url(self, path, service=None):
        return "http://%s:%d%s" % (HOST, self.port(service), path)

    def get(self, service, path, **kw):
        kw["headers"] = dict(self.headers, **(kw.get("headers") or {}))
        return http.request(self.port(service), "GET", path, **kw)

    def health_detailed(self, service=None):
        r = self.get(service, "/health/detailed")
        if r.status != 200:
            raise Failed("/health/detailed on %s: %s %r" % (service, r.status, r.body[:300]))
        return r.json()

    def metrics(self, service=None):
        """/metrics as {"name{labels}": value} (comments skipped)."""
        r = self.get(service, "/metrics")
        if r.status != 200:
            raise Failed("/metrics on %s: %s" % (service, r.status))
        return http.parse_metrics(r.body.decode("utf-8", "replace"))

    def wait_slots_free(self, service, timeout=10.0):
        """Wait until every slot is free and nothing is active; return the last
        /health/detailed document."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.health_detailed(service)
            c = d["concurrency"]
            if c["available_slots"] == c["max_concurrent"] and c["active_requests"] == 0:
                return d
            if time.monotonic() > deadline:
                raise Failed("%s slots not released after %.0f s: concurrency=%s"
                             % (service, timeout, json.dumps(c)))
            time.sleep(0.1)

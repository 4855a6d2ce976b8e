#!/usr/bin/env python3
"""bench.py - the Voice Stack benchmark suite (`make bench` -> bench/run.sh -> here).

DESIGN
Owns: the seven measurements of issue 4 (HTTP front, admission cost, ASR
overhead, TTS, memory, cold start, scaling), the soak of section 8 (run
from bench/soak.py), the table they make, and
docs/PERFORMANCE.md, which is generated here and nowhere else.  bench/run.sh
checks the tools and calls `bench.py --build BUILD_DIR [SECTION...]`; a full
run rewrites docs/PERFORMANCE.md, a partial one (sections named) only prints.
- Noise: the machine may be shared, so pairs are measured at the same moment
  or alternated (voicestack/nginx rounds, HTTP/CLI rounds, 1-2-2-1 slot
  batches), latency probes run beside a probe of nginx (the machine's floor),
  and CPU time is reported next to wall time where other load could skew it.

Why it is shaped so:
- Every figure is a ratio or a side-by-side pair measured in the same run on
  the same machine (voicestack vs nginx, HTTP vs in-process CLI, WORKER_NICE
  10 vs 0, 1 slot vs 2...), so the table still means something on a noisy or
  slow machine.  Each row carries the command that produced it.
- A benchmark is not a test: a slow figure never fails the run.  Only a
  broken setup does (a tool missing, the server not starting, a request
  answered with an unexpected status): that raises Broken, the section is
  marked as failed, the other sections still run, and the exit status is 1.
- The real binary is started exactly as a user would (`voicestack serve`,
  settings as environment variables, a scratch cwd so no ./.env applies, all
  on 127.0.0.1).  Ports are ephemeral: port 0 and the server's own
  `event=listening ... addr=H:P` log line, or free ports picked here when the
  server refuses port 0.
- Everything started is tracked and stopped by pid (servers, their workers,
  nginx, curl clients) from a finally/atexit path; every wait and every
  subprocess has a time limit, so the suite cannot hang.
- Python stdlib only; load comes from wrk (HTTP floods and paced probes,
  bench/wrk.lua), curl (uploads, TTS timing) and the CLI timed with wait4()
  rusage (wall and CPU time of exactly that child).
"""

import argparse
import atexit
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import soak  # section 8, bench/soak.py

HOST = "127.0.0.1"
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
WRK_LUA = os.path.join(BENCH_DIR, "wrk.lua")
LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
START_TIMEOUT = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Settings the server reads: never inherited from the caller's environment,
# every server here states what it depends on (as tests/integration does).
_SETTING_PREFIXES = ("ASR_", "TTS_", "VS_", "MEMORY_", "SWAP_", "MAX_", "IDLE_", "REQUEST_",
                     "LOG_", "HTTP_THREADS", "WORKER_")

# Public-domain English prose (Jane Austen, Sense and Sensibility, ch. 1),
# repeated and cut at a word boundary to make the 4,000-character TTS input.
AUSTEN = (
    "The family of Dashwood had long been settled in Sussex. Their estate was large, "
    "and their residence was at Norland Park, in the centre of their property, where, "
    "for many generations, they had lived in so respectable a manner as to engage the "
    "general good opinion of their surrounding acquaintance. The late owner of this "
    "estate was a single man, who lived to a very advanced age, and who for many years "
    "of his life, had a constant companion and housekeeper in his sister. But her death, "
    "which happened ten years before his own, produced a great alteration in his home; "
    "for to supply her loss, he invited and received into his house the family of his "
    "nephew Mr. Henry Dashwood, the legal inheritor of the Norland estate, and the person "
    "to whom he intended to bequeath it. In the society of his nephew and niece, and "
    "their children, the old Gentleman's days were comfortably spent. ")


class Broken(Exception):
    """Something is broken (not merely slow): the section fails, exit status 1."""


# ------------------------------------------------------------------ helpers

def q(argv):
    """A command line as a user would type it."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ms(x_s):
    return "%.0f ms" % (x_s * 1000.0) if x_s < 10 else "%.2f s" % x_s


def fmt_us(us):
    return "%.3f ms" % (us / 1000.0)


def ratio(a, b, digits=2):
    if not b:
        return "n/a"
    return ("%." + str(digits) + "f") % (a / b)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SETTING_PREFIXES) and k not in ("ENV", "HOST")}
    for k, v in (extra or {}).items():
        env[k] = str(v)
    return env


def env_prefix(env):
    return " ".join("%s=%s" % (k, shlex.quote(str(v))) for k, v in env.items())


def proc_stat_rest(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read().decode("latin-1")
    except OSError:
        return None
    return st[st.rfind(")") + 2:].split()


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        rest = proc_stat_rest(int(d))
        if rest and len(rest) > 1 and int(rest[1]) == pid:
            kids.append(int(d))
    return kids


def descendants(pid):
    out, todo = [], [pid]
    for _ in range(1000):  # bounded walk
        if not todo:
            break
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    rest = proc_stat_rest(pid)
    return bool(rest) and rest[0] != "Z"


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids):
    total = 0
    for p in pids:
        rest = proc_stat_rest(p)
        if rest and len(rest) > 12:
            total += int(rest[11]) + int(rest[12])
    return total


def free_port():
    with socket.socket() as so:
        so.bind((HOST, 0))
        return so.getsockname()[1]


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(port, path, timeout=10.0):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def raw_response_size(port, path):
    """Bytes of one whole HTTP response (status line + headers + body)."""
    with socket.create_connection((HOST, port), timeout=5) as so:
        so.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                    % (path, HOST, port)).encode())
        data = b""
        for _ in range(1000):
            chunk = so.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return len(data), len(body)


def run(argv, timeout, env=None, cwd=None, check=True):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=env, cwd=cwd)
    except FileNotFoundError as e:
        raise Broken("tool missing: %s" % e)
    except subprocess.TimeoutExpired:
        raise Broken("timed out after %.0f s: %s" % (timeout, q(argv)))
    if check and p.returncode != 0:
        raise Broken("exit %d: %s\n%s" % (p.returncode, q(argv),
                                          p.stderr.decode("utf-8", "replace")[-800:]))
    return p


def audio_seconds(path):
    p = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             path], 30)
    return float(p.stdout.decode().strip() or 0)


# ------------------------------------------------------------------ context

class Ctx:
    def __init__(self, build, tmp):
        self.build = build
        self.bin = os.path.abspath(os.path.join(build, "voicestack"))
        self.tmp = tmp
        self.rows = []
        self.facts = {}
        self.notes = []
        self.failed = []
        self.procs = []       # Popen objects to stop at exit
        self.pids = set()     # server workers etc. seen, stopped by pid at exit
        self.port0 = None     # None: untried; True/False: server accepts port 0

    def row(self, sec, figure, value, comparison, rat, command):
        self.rows.append(dict(sec=sec, figure=figure, value=value, comparison=comparison,
                              ratio=rat, command=command))
        print("  [%s] %s: %s | %s | ratio %s" % (sec, figure, value, comparison, rat),
              flush=True)

    def note(self, text):
        self.notes.append(text)
        print("  note: " + text, flush=True)

    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        try:
            p = subprocess.Popen(argv, **kw)
        except FileNotFoundError as e:
            raise Broken("tool missing: %s" % e)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(3)
                except OSError:
                    pass
        for pid in list(self.pids):
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.procs = [p for p in self.procs if p.poll() is None]


class Server:
    """One `voicestack serve` on loopback with ephemeral ports."""

    _LISTEN = re.compile(r"event=listening\b.*?\bservice=(\w+)\b.*?\baddr=([0-9.]+):(\d+)")

    def __init__(self, ctx, env, service="asr", name="server"):
        self.ctx = ctx
        self.env = dict(env)
        self.service = service
        self.name = name
        self.proc = None
        self.ports = {}
        self.cwd = tempfile.mkdtemp(dir=ctx.tmp, prefix="cwd-")
        self.log_path = os.path.join(self.cwd, "server.log")
        self.exit_note = None

    def command(self):
        """The command line, as shown in the table."""
        return (env_prefix(self.env) + " " if self.env else "") + \
            "voicestack serve --service %s" % self.service

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self):
        want = ["asr", "tts"] if self.service == "all" else [self.service]
        last = ""
        for _attempt in range(4):
            if self.ctx.port0 is False:
                a = free_port()
                b = free_port()
                while b == a:
                    b = free_port()
                ports = [str(a), str(b)]
            else:
                ports = ["0", "0"]
            argv = [self.ctx.bin, "serve", "--service", self.service, "--host", HOST,
                    "--asr-port", ports[0], "--tts-port", ports[1]]
            with open(self.log_path, "wb") as logf:
                self.proc = self.ctx.spawn(argv, cwd=self.cwd, env=clean_env(self.env),
                                           stdout=subprocess.DEVNULL, stderr=logf)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                self.ports = {m.group(1): int(m.group(3))
                              for m in self._LISTEN.finditer(self.log())}
                if all(s in self.ports for s in want):
                    break
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if all(s in self.ports for s in want):
                if self.ctx.port0 is None:
                    self.ctx.port0 = ports[0] == "0"
                return self
            text = self.log()
            last = text[-1500:]
            if self.proc.poll() is None:
                self.stop()
                raise Broken("%s: no event=listening within %.0f s:\n%s"
                             % (self.name, START_TIMEOUT, last))
            if "_PORT=0" in text and self.ctx.port0 is None:
                self.ctx.port0 = False   # this build refuses port 0: pick ports here
                continue
            if "in use" in text.lower() and self.ctx.port0 is False:
                continue                 # lost the race for a picked port: retry
            break
        raise Broken("%s did not start (exit %s):\n%s"
                     % (self.name, self.proc.returncode if self.proc else "?", last))

    def port(self, svc=None):
        return self.ports[svc or (self.service if self.service != "all" else "asr")]

    def url(self, path, svc=None):
        return "http://%s:%d%s" % (HOST, self.port(svc), path)

    def detailed(self, svc=None):
        st, body = http_get(self.port(svc), "/health/detailed")
        if st not in (200, 503):
            raise Broken("/health/detailed answered %d" % st)
        return json.loads(body)

    def workers(self, svc=None):
        pids = [w["pid"] for w in self.detailed(svc).get("workers", []) if w.get("pid")]
        self.ctx.pids.update(pids)
        return pids

    def all_pids(self):
        d = descendants(self.proc.pid)
        self.ctx.pids.update(d)
        return [self.proc.pid] + d

    def stop(self):
        if not self.proc:
            return
        kids = descendants(self.proc.pid)
        self.ctx.pids.update(kids)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.exit_note = "did not exit within 10 s of SIGTERM (killed)"
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        if rc not in (0, None) and not self.exit_note:
            self.exit_note = "exited with status %s after SIGTERM" % rc
        for k in kids:
            if alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        if self.exit_note:
            self.ctx.note("%s (%s) %s" % (self.name, self.command(), self.exit_note))


def wrk(ctx, url, threads, conns, secs, extra_env=None, name="wrk"):
    """Runs wrk with bench/wrk.lua; returns (result dict, shown command)."""
    env = dict(os.environ)
    env.update(extra_env or {})
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs, "--latency",
            "-s", WRK_LUA, url]
    p = ctx.spawn(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, argv


def wrk_collect(p, argv, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise Broken("wrk did not finish: %s" % q(argv))
    m = re.search(r"^BENCH_RESULT (.*)$", out.decode("utf-8", "replace"), re.M)
    if p.returncode != 0 or not m:
        raise Broken("wrk failed (exit %s): %s\n%s" % (p.returncode, q(argv),
                                                       (out + err).decode()[-800:]))
    res = {}
    for kv in m.group(1).split():
        k, v = kv.split("=", 1)
        res[k] = float(v)
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res["duration_us"] else 0
    return res


def wrk_shown(argv, extra_env, port_name):
    """wrk's command line for the table: repo-relative script, symbolic port."""
    shown = [("bench/wrk.lua" if a == WRK_LUA else a) for a in argv]
    shown[-1] = re.sub(r":\d+/", ":$%s/" % port_name, shown[-1])
    envs = {k: v for k, v in (extra_env or {}).items()}
    if "BENCH_WRK_BODY" in envs:
        envs["BENCH_WRK_BODY"] = "$TMP/" + os.path.basename(envs["BENCH_WRK_BODY"])
    return (env_prefix(envs) + " " if envs else "") + q(shown)


def wrk_errors(res):
    errs = int(res["connect_err"] + res["read_err"] + res["write_err"] + res["timeout_err"])
    return errs


# ------------------------------------------------------------------ inputs

def make_inputs(ctx):
    """Audio and text inputs, made once per run in the scratch dir."""
    wavs = sorted(os.path.join(LIBRIVOX, f) for f in os.listdir(LIBRIVOX)
                  if f.endswith(".wav"))
    if not wavs:
        raise Broken("no librivox wavs in %s (package pocketsphinx-testdata)" % LIBRIVOX)

    def concat(out, files, limit=None):
        argv = ["ffmpeg", "-v", "error", "-y"]
        for f in files:
            argv += ["-i", f]
        argv += ["-filter_complex", "concat=n=%d:v=0:a=1" % len(files)]
        if limit:
            argv += ["-t", str(limit)]
        argv += ["-ar", "16000", "-ac", "1", out]
        run(argv, 60)
        return out

    t = ctx.tmp
    inp = {}
    inp["c40"] = concat(os.path.join(t, "c40.wav"), wavs * 2, 40)
    inp["long"] = concat(os.path.join(t, "long.wav"), wavs * 4)
    inp["c10"] = concat(os.path.join(t, "c10.wav"), wavs[:2])
    inp["small"] = concat(os.path.join(t, "small.wav"), wavs[1:2])
    inp["short"] = concat(os.path.join(t, "short.wav"), wavs[1:2], 1.2)
    inp["sil"] = os.path.join(t, "sil.wav")
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
         "-t", "0.5", inp["sil"]], 30)
    text = (AUSTEN * (4000 // len(AUSTEN) + 1))[:4000]
    inp["text"] = text
    inp["text_path"] = os.path.join(t, "text4000.txt")
    with open(inp["text_path"], "w") as f:
        f.write(text)
    # the tiny multipart body of the refused POST (answered 429 at the headers)
    inp["refuse_body"] = os.path.join(t, "refuse_body.bin")
    with open(inp["refuse_body"], "wb") as f:
        f.write(b"--XBENCHX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                b"whisper-1\r\n--XBENCHX--\r\n")
    inp["dur"] = {k: audio_seconds(inp[k]) for k in ("c40", "long", "c10", "small", "short")}
    inp["how"] = [
        "`$TMP/c40.wav`: the pocketsphinx-testdata librivox wavs (%s) twice, "
        "concatenated with `ffmpeg -filter_complex concat` and cut to %.1f s"
        % (", ".join(os.path.basename(w)[-8:-4] for w in wavs), inp["dur"]["c40"]),
        "`$TMP/long.wav`: the same wavs four times (%.1f s), what keeps ASR slots busy"
        % inp["dur"]["long"],
        "`$TMP/c10.wav`: the first two wavs (%.1f s); `$TMP/small.wav`: one wav (%.1f s); "
        "`$TMP/short.wav`: its first %.1f s; `$TMP/sil.wav`: 0.5 s of silence"
        % (inp["dur"]["c10"], inp["dur"]["small"], inp["dur"]["short"]),
        "`$TMP/text4000.txt`: %d characters of English prose (Austen, *Sense and "
        "Sensibility*, ch. 1, repeated)" % len(text),
    ]
    return inp


def curl_transcribe(port, path, timeout=300):
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
            "-F", "model=whisper-1", "-F", "file=@" + path,
            "http://%s:%d/v1/audio/transcriptions" % (HOST, port)]
    p = run(argv, timeout)
    code, t = p.stdout.decode().split()
    if code != "200":
        raise Broken("transcription answered %s: %s" % (code, q(argv)))
    return float(t)


def curl_speech(port, req_path, out, timeout=120):
    argv = ["curl", "-s", "-o", out, "-w", "%{http_code} %{time_starttransfer} %{time_total}",
            "-H", "Content-Type: application/json", "--data-binary", "@" + req_path,
            "http://%s:%d/v1/audio/speech" % (HOST, port)]
    p = run(argv, timeout)
    code, ttfb, total = p.stdout.decode().split()
    if code != "200":
        raise Broken("speech answered %s: %s" % (code, q(argv)))
    return float(ttfb), float(total)


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


# ------------------------------------------------------------------ 1. HTTP front

NGINX_CONF = """\
{user}
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/t_body;
    proxy_temp_path {dir}/t_proxy;
    fastcgi_temp_path {dir}/t_fastcgi;
    uwsgi_temp_path {dir}/t_uwsgi;
    scgi_temp_path {dir}/t_scgi;
    server {{
        listen {host}:{port};
        location = /health {{
            default_type application/json;
            root {dir}/www;
        }}
    }}
}}
"""


def start_nginx(ctx, body):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        raise Broken("nginx not found (Debian package nginx-light)")
    d = tempfile.mkdtemp(dir=ctx.tmp, prefix="nginx-")
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "www"))
    with open(os.path.join(d, "www", "health"), "wb") as f:
        f.write(body)
    last = ""
    for _attempt in range(3):
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "",
                                      dir=d, host=HOST, port=port))
        p = ctx.spawn([nginx, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait_port(port, 5) and p.poll() is None:
            return p, port, d
        if p.poll() is None:
            p.terminate()
        try:
            _, err = p.communicate(timeout=5)
            last = err.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            p.kill()
    raise Broken("nginx did not start:\n" + last[-800:])


def stop_nginx(ctx, p):
    ctx.pids.update(descendants(p.pid))
    if p.poll() is None:
        p.send_signal(signal.SIGQUIT)   # graceful: master waits for its workers
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def sec_http(ctx, inp, a):
    """voicestack and nginx both up; wrk alternates between them (a.http_rounds
    rounds each), so a burst of load from elsewhere hits both sides alike."""
    secs = a.http_secs
    sizes = {}
    vs_cmds = {}
    srv = Server(ctx, {"HTTP_THREADS": 2}, "asr", "voicestack HTTP_THREADS=2").start()
    ng = None
    rounds = {"vs": [], "nginx": []}
    try:
        st, body = http_get(srv.port(), "/health")
        if st != 200:
            raise Broken("/health answered %d" % st)
        sizes["vs"] = raw_response_size(srv.port(), "/health")
        ng, nport, _d = start_nginx(ctx, body)
        sizes["nginx"] = raw_response_size(nport, "/health")
        if sizes["nginx"][1] != sizes["vs"][1]:
            raise Broken("nginx body is %d bytes, voicestack's %d" % (sizes["nginx"][1],
                                                                     sizes["vs"][1]))
        for _ in range(a.http_rounds):
            p, argv = wrk(ctx, srv.url("/health"), 2, 50, secs)
            rounds["vs"].append(wrk_collect(p, argv, secs + 30))
            vs_cmds[2] = srv.command() + "; " + wrk_shown(argv, {}, "ASR_PORT")
            p, argv = wrk(ctx, "http://%s:%d/health" % (HOST, nport), 2, 50, secs)
            rounds["nginx"].append(wrk_collect(p, argv, secs + 30))
            ng_cmd = ("nginx -p $TMP/nginx -c nginx.conf (daemon off; worker_processes 2; "
                      "access_log off; open_file_cache; keepalive_requests 1000000; "
                      "static %d-byte file); %s" % (len(body), wrk_shown(argv, {}, "NGINX_PORT")))
        ctx.facts["front_rss_after_flood_kb"] = rss_kb(srv.proc.pid)
        ctx.facts["nginx_rss_kb"] = sum(rss_kb(x) for x in [ng.pid] + descendants(ng.pid))
    finally:
        srv.stop()
        if ng:
            stop_nginx(ctx, ng)
    results = {}
    for threads in (1, 4):
        srv = Server(ctx, {"HTTP_THREADS": threads}, "asr",
                     "voicestack HTTP_THREADS=%d" % threads).start()
        try:
            p, argv = wrk(ctx, srv.url("/health"), 2, 50, secs)
            results[threads] = wrk_collect(p, argv, secs + 30)
            vs_cmds[threads] = srv.command() + "; " + wrk_shown(argv, {}, "ASR_PORT")
        finally:
            srv.stop()

    def total(rs):
        """All rounds as one run: summed requests over summed time, worst p99."""
        req = sum(r["requests"] for r in rs)
        dur = sum(r["duration_us"] for r in rs) / 1e6
        return dict(rps=req / dur, p99_us=max(r["p99_us"] for r in rs),
                    each=[r["rps"] for r in rs])

    v, n = total(rounds["vs"]), total(rounds["nginx"])
    for k, rs in list(rounds.items()) + [(t, [r]) for t, r in results.items()]:
        for r in rs:
            e = wrk_errors(r)
            if e or r["non2xx"]:
                ctx.note("1. wrk against %s: %d socket errors, %d non-2xx answers"
                         % ("nginx" if k == "nginx" else "voicestack", e, r["non2xx"]))
    ctx.facts.update(http_ratio=v["rps"] / n["rps"], http_vs=v["rps"], http_nginx=n["rps"],
                     http_t1=results[1]["rps"], http_t4=results[4]["rps"],
                     http_rounds=(v["each"], n["each"]))
    each = lambda xs: ", ".join("%.0f" % x for x in xs)
    ctx.row("1", "HTTP front: GET /health req/s (HTTP_THREADS=2, default)",
            "%.0f req/s (rounds: %s; worst p99 %s)" % (v["rps"], each(v["each"]),
                                                       fmt_us(v["p99_us"])),
            "nginx, same %d-byte body (whole response %d B vs voicestack %d B): %.0f req/s "
            "(rounds: %s; worst p99 %s)" % (sizes["vs"][1], sizes["nginx"][0], sizes["vs"][0],
                                           n["rps"], each(n["each"]), fmt_us(n["p99_us"])),
            ratio(v["rps"], n["rps"]),
            "%d alternating rounds: " % a.http_rounds + vs_cmds[2] + " -- vs -- " + ng_cmd)
    for t in (1, 4):
        r = results[t]
        ctx.row("1", "HTTP front: GET /health req/s, HTTP_THREADS=%d" % t,
                "%.0f req/s (p99 %s)" % (r["rps"], fmt_us(r["p99_us"])),
                "HTTP_THREADS=2 (default), rows above: %.0f req/s" % v["rps"],
                ratio(r["rps"], v["rps"]), vs_cmds[t])


# ------------------------------------------------------------------ 2. admission

PROBE_DELAY_MS = 5


def probe_pair(ctx, srv, inp, secs, with_refuse=True, nginx_port=None):
    """Paced /health and 429-POST probes at the same time, plus the same paced
    /health probe against nginx as the machine's noise floor; returns results."""
    health_env = {"BENCH_WRK_DELAY_MS": str(PROBE_DELAY_MS), "BENCH_WRK_COUNT": "1"}
    refuse_env = {"BENCH_WRK_DELAY_MS": str(PROBE_DELAY_MS), "BENCH_WRK_COUNT": "1",
                  "BENCH_WRK_METHOD": "POST", "BENCH_WRK_BODY": inp["refuse_body"],
                  "BENCH_WRK_CTYPE": "multipart/form-data; boundary=XBENCHX"}
    ph, ah = wrk(ctx, srv.url("/health"), 1, 2, secs, health_env)
    pr = ar = pn = an = None
    if with_refuse:
        pr, ar = wrk(ctx, srv.url("/v1/audio/transcriptions"), 1, 2, secs, refuse_env)
    if nginx_port:
        pn, an = wrk(ctx, "http://%s:%d/health" % (HOST, nginx_port), 1, 2, secs, health_env)
    out = {"health": wrk_collect(ph, ah, secs + 30),
           "health_cmd": wrk_shown(ah, health_env, "ASR_PORT")}
    if pn:
        out["nginx"] = wrk_collect(pn, an, secs + 30)
        out["nginx_cmd"] = wrk_shown(an, health_env, "NGINX_PORT")
    if pr:
        out["refuse"] = wrk_collect(pr, ar, secs + 30)
        out["refuse_cmd"] = wrk_shown(ar, refuse_env, "ASR_PORT")
        r = out["refuse"]
        if r["s429"] == 0 or r["sother"] or r["s2xx"]:
            raise Broken("refused-POST probe expected only 429, got 2xx=%d 429=%d other=%d"
                         % (r["s2xx"], r["s429"], r["sother"]))
    h = out["health"]
    if h["s2xx"] == 0 or h["sother"] or h["s429"]:
        raise Broken("/health probe expected only 200, got 2xx=%d 429=%d other=%d"
                     % (h["s2xx"], h["s429"], h["sother"]))
    return out


def fill_slots(ctx, srv, inp, n):
    """n long transcriptions in flight, models loaded, decoding done."""
    clients = []
    for _ in range(n):
        clients.append(ctx.spawn(
            ["curl", "-s", "-o", "/dev/null", "-F", "model=whisper-1",
             "-F", "file=@" + inp["long"], srv.url("/v1/audio/transcriptions")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def busy():
        d = srv.detailed()
        ws = [w for w in d.get("workers", []) if w.get("model_loaded") and
              w.get("state") == "busy"]
        return d["concurrency"]["active_requests"] == n and len(ws) == n

    if not wait_for(busy, 40, 0.2):
        raise Broken("the %d long transcriptions did not start within 40 s: %s"
                     % (n, json.dumps(srv.detailed())[:600]))
    time.sleep(1.0)   # let FFmpeg finish decoding: from here on it is recognition
    return clients


def stop_clients(clients):
    for c in clients:
        if c.poll() is None:
            c.terminate()
    for c in clients:
        try:
            c.wait(5)
        except subprocess.TimeoutExpired:
            c.kill()


def hold_queue(ctx, srv, inp, n):
    """n requests admitted to the queue (headers and body sent, held open)."""
    with open(inp["refuse_body"], "rb") as f:
        body = f.read()
    req = ("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: %s:%d\r\n"
           "Content-Type: multipart/form-data; boundary=XBENCHX\r\nContent-Length: %d\r\n\r\n"
           % (HOST, srv.port(), len(body))).encode() + body
    socks = []
    for _ in range(n):
        s = socket.create_connection((HOST, srv.port()), timeout=5)
        s.sendall(req)
        socks.append(s)
    if not wait_for(lambda: srv.detailed()["queue"]["depth"] >= n, 15, 0.1):
        for s in socks:
            s.close()
        raise Broken("queue depth did not reach %d: %s" % (n, srv.detailed()["queue"]))
    return socks


def sec_admission(ctx, inp, a):
    secs = a.probe_secs
    res = {}
    ng, nport, _d = start_nginx(ctx, b'{"status":"ok"}')
    try:
        for nice in (10, 0):
            env = {"WORKER_NICE": nice, "ASR_MAX_CONCURRENT_REQUESTS": 2, "ASR_MAX_QUEUE": 0}
            srv = Server(ctx, env, "asr", "admission WORKER_NICE=%d" % nice).start()
            clients = []
            try:
                if nice == 10:
                    res["idle"] = probe_pair(ctx, srv, inp, max(3, secs // 2), False, nport)
                    res["idle"]["server"] = srv.command()
                clients = fill_slots(ctx, srv, inp, 2)
                wpids = srv.workers()
                t0, c0 = time.monotonic(), cpu_ticks(wpids)
                r = probe_pair(ctx, srv, inp, secs, True, nport)
                r["cpu"] = (cpu_ticks(wpids) - c0) / CLK_TCK / (time.monotonic() - t0)
                r["server"] = srv.command()
                still = sum(1 for c in clients if c.poll() is None)
                if still < 2:
                    ctx.note("2. WORKER_NICE=%d: only %d of 2 long transcriptions were still "
                             "running at the end of the probe" % (nice, still))
                res[nice] = r
            finally:
                stop_clients(clients)
                srv.stop()
        # issue 3's claim: the queue full (50 held) and both slots busy
        env = {"WORKER_NICE": 10, "ASR_MAX_CONCURRENT_REQUESTS": 2, "ASR_MAX_QUEUE": 50,
               "ASR_QUEUE_TIMEOUT_SECONDS": 600}
        srv = Server(ctx, env, "asr", "admission queue full").start()
        clients, socks = [], []
        try:
            clients = fill_slots(ctx, srv, inp, 2)
            socks = hold_queue(ctx, srv, inp, 50)
            wpids = srv.workers()
            t0, c0 = time.monotonic(), cpu_ticks(wpids)
            r = probe_pair(ctx, srv, inp, secs, True, nport)
            r["cpu"] = (cpu_ticks(wpids) - c0) / CLK_TCK / (time.monotonic() - t0)
            r["server"] = srv.command()
            r["depth"] = srv.detailed()["queue"]["depth"]
            res["qfull"] = r
        finally:
            for s in socks:
                s.close()
            stop_clients(clients)
            srv.stop()
    finally:
        stop_nginx(ctx, ng)

    def pp(x):
        return "p50 %s / p99 %s" % (fmt_us(x["p50_us"]), fmt_us(x["p99_us"]))

    def ngx(r):
        return "nginx probed alongside: p99 %s" % fmt_us(r["nginx"]["p99_us"])

    def cmd(r, which):
        return r["server"] + "; 2 x curl -F file=@$TMP/long.wav in flight; " + \
            r[which + "_cmd"] + "; alongside (noise floor): " + r["nginx_cmd"]

    n10, n0, idle, qf = res[10], res[0], res["idle"], res["qfull"]
    ctx.facts.update(adm=res)
    ctx.row("2", "/health latency, both ASR slots transcribing, WORKER_NICE=10 (default)",
            pp(n10["health"]) + " (%d req; workers used %.2f CPUs; %s)"
            % (n10["health"]["requests"], n10["cpu"], ngx(n10)),
            "WORKER_NICE=0: %s (workers used %.2f CPUs; %s)" % (pp(n0["health"]), n0["cpu"],
                                                               ngx(n0)),
            ratio(n10["health"]["p99_us"], n0["health"]["p99_us"]) + " (p99)",
            cmd(n10, "health") + " -- vs -- the same with WORKER_NICE=0")
    ctx.row("2", "429 refusal latency (tiny multipart POST), both slots busy, WORKER_NICE=10",
            pp(n10["refuse"]) + " (%d x 429)" % n10["refuse"]["s429"],
            "WORKER_NICE=0: %s" % pp(n0["refuse"]),
            ratio(n10["refuse"]["p99_us"], n0["refuse"]["p99_us"]) + " (p99)",
            cmd(n10, "refuse") + " -- vs -- the same with WORKER_NICE=0")
    ctx.row("2", "/health latency, both slots busy (WORKER_NICE=10) vs idle server",
            pp(n10["health"]), "idle server, no transcription: %s (%s)"
            % (pp(idle["health"]), ngx(idle)),
            ratio(n10["health"]["p99_us"], idle["health"]["p99_us"]) + " (p99)",
            idle["server"] + "; " + idle["health_cmd"] + " (idle) -- vs -- row above")
    for which, label in (("health", "/health"), ("refuse", "429 (queue_full)")):
        x = qf[which]
        ctx.row("2", "%s latency, ASR queue full (50 held + 2 transcribing); issue 3: "
                "\"well under a millisecond\"" % label,
                pp(x) + " (%s; queue depth %d; workers used %.2f CPUs)"
                % ("%d x 429" % x["s429"] if which == "refuse" else "%d req" % x["requests"],
                   qf["depth"], qf["cpu"]),
                "nginx /health probed at the same moment: %s" % pp(qf["nginx"]),
                "%s (p99 vs nginx); p50/1 ms = %s, p99/1 ms = %s"
                % (ratio(x["p99_us"], qf["nginx"]["p99_us"]), ratio(x["p50_us"], 1000.0),
                   ratio(x["p99_us"], 1000.0)),
                cmd(qf, which) + "; 50 raw sockets each holding one queued POST")


# ------------------------------------------------------------------ 3. ASR overhead

def run_rusage(argv, env, cwd, timeout):
    """Runs argv to completion; returns (wall seconds, rusage of that child).
    A timer kills it at the time limit, so the blocking wait4() cannot hang."""
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    except FileNotFoundError as e:
        raise Broken("tool missing: %s" % e)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
        _pid, status, ru = os.wait4(p.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise Broken("exit %d%s: %s" % (p.returncode, " (time limit %.0f s)" % timeout
                                        if wall >= timeout else "", q(argv)))
    return wall, ru


def sec_asr(ctx, inp, a):
    """HTTP (default server, WORKER_NICE=10) vs the CLI at the same niceness, so
    both get the same share of a CPU other processes may be using; runs
    alternate (H C, C H, ...) so drift in that other load hits both alike."""
    runs = a.asr_runs
    nice = 10
    cenv = clean_env()
    srv = Server(ctx, {}, "asr", "asr overhead").start()
    http_argv = ["curl", "-sf", "-o", "/dev/null", "-F", "model=whisper-1",
                 "-F", "file=@" + inp["c40"], srv.url("/v1/audio/transcriptions")]
    cli_argv = ["nice", "-n", str(nice), ctx.bin, "transcribe", inp["c40"]]
    load_argv = ["nice", "-n", str(nice), ctx.bin, "transcribe", inp["sil"]]
    t = {"http": [], "http_cpu": [], "cli": [], "cli_cpu": [], "load": [], "load_cpu": []}
    try:
        run(http_argv, 600)                 # warm-up: spawns the worker, loads the model
        pids = srv.all_pids()

        def do_http():
            c0 = cpu_ticks(pids)
            w, _ru = run_rusage(http_argv, cenv, srv.cwd, 600)
            t["http"].append(w)
            t["http_cpu"].append((cpu_ticks(pids) - c0) / CLK_TCK)

        def do_cli():
            w, ru = run_rusage(cli_argv, cenv, srv.cwd, 600)
            t["cli"].append(w)
            t["cli_cpu"].append(ru.ru_utime + ru.ru_stime)

        for i in range(runs):
            for step in ((do_http, do_cli) if i % 2 == 0 else (do_cli, do_http)):
                step()
            w, ru = run_rusage(load_argv, cenv, srv.cwd, 120)
            t["load"].append(w)
            t["load_cpu"].append(ru.ru_utime + ru.ru_stime)
        loads = [int(m) for m in re.findall(r"proc=asr-worker .*?event=model_loaded .*?"
                                            r"load_ms=(\d+)", srv.log())]
    finally:
        srv.stop()
    h, c, l = median(t["http"]), median(t["cli"]), median(t["load"])
    hc, cc, lc = median(t["http_cpu"]), median(t["cli_cpu"]), median(t["load_cpu"])
    pair = median([x / max(y - l, 1e-3) for x, y in zip(t["http"], t["cli"])])
    cpu_pairs = [x / max(y - lc, 1e-3) for x, y in zip(t["http_cpu"], t["cli_cpu"])]
    cli_spread = max(t["cli_cpu"]) / max(min(t["cli_cpu"]), 1e-3) - 1
    dur = inp["dur"]["c40"]
    ctx.facts.update(asr_http=h, asr_cli=c, asr_load=l, asr_dur=dur,
                     asr_ratio=h / max(c - l, 1e-3), asr_ratio_raw=h / c,
                     asr_http_cpu=hc, asr_cli_cpu=cc - lc,
                     asr_cpu_ratio=hc / max(cc - lc, 1e-3), asr_cpu_pairs=cpu_pairs,
                     asr_cli_spread=cli_spread,
                     asr_worker_load=loads[0] if loads else None)
    shown = ("voicestack serve --service asr (defaults: WORKER_NICE=10); one warm-up "
             "request; then %d rounds, order alternating, of: %s -- and -- %s -- and -- %s"
             % (runs, "curl -sf -o /dev/null -F model=whisper-1 -F file=@$TMP/c40.wav "
                "http://127.0.0.1:$ASR_PORT/v1/audio/transcriptions",
                "nice -n %d voicestack transcribe $TMP/c40.wav" % nice,
                "nice -n %d voicestack transcribe $TMP/sil.wav" % nice))
    ctx.row("3", "ASR %.0f s clip over HTTP, warm worker: wall time (median of %d)"
            % (dur, runs), "%.2f s (%.2fx real time)" % (h, h / dur),
            "in-process CLI at the same niceness, minus its start-up: %.2f s (CLI %.2f s - "
            "start-up+model load %.2f s); per-round ratios' median %.2f"
            % (c - l, c, l, pair), ratio(h, c - l), shown)
    ctx.row("3", "ASR %.0f s clip over HTTP: CPU time per request (front + worker)" % dur,
            "%.2f s" % hc,
            "CLI user+sys minus start-up+load: %.2f s (%.2f - %.2f s); per-round ratios %s"
            % (cc - lc, cc, lc, ", ".join("%.2f" % x for x in cpu_pairs)),
            ratio(hc, cc - lc), "same runs as the row above; server: utime+stime of front "
            "and worker "
            "(/proc/PID/stat) across each request; CLI: wait4() rusage")
    ctx.row("3", "ASR %.0f s clip over HTTP vs the whole CLI run (which loads the model)"
            % dur, "%.2f s" % h, "`nice -n %d voicestack transcribe` incl. model load: %.2f s"
            % (nice, c), ratio(h, c), "same runs as the rows above")
    ctx.row("3", "CLI start-up + model load (0.5 s of silence, median of %d)" % runs,
            "%.2f s" % l, "worker's own event=model_loaded load_ms: %s"
            % ("%d ms" % loads[0] if loads else "not logged"),
            ratio(l * 1000, loads[0]) if loads else "n/a",
            "same rounds as the rows above (sil.wav)")


# ------------------------------------------------------------------ 4. TTS

def sec_tts(ctx, inp, a):
    runs = a.tts_runs
    text = inp["text"]
    reqs = {}
    for fmt in ("wav", "mp3"):
        reqs[fmt] = os.path.join(ctx.tmp, "speech-%s.json" % fmt)
        with open(reqs[fmt], "w") as f:
            json.dump({"model": "tts-1", "input": text, "voice": "alloy",
                       "response_format": fmt}, f)
    ewav = os.path.join(ctx.tmp, "espeak.wav")
    emp3 = os.path.join(ctx.tmp, "espeak.mp3")
    espeak = ["espeak-ng", "-w", ewav, text]
    ffm = ["ffmpeg", "-v", "error", "-y", "-i", ewav, "-ar", "24000", emp3]
    t = {"wav": [], "mp3": [], "espeak": [], "espeak_ffmpeg": []}
    srv = Server(ctx, {}, "tts", "tts").start()
    try:
        port = srv.port()
        curl_speech(port, reqs["wav"], os.devnull)   # warm-up: spawns the worker
        for _ in range(runs):
            for fmt in ("wav", "mp3"):
                t[fmt].append(curl_speech(port, reqs[fmt], os.path.join(ctx.tmp, "o." + fmt)))
            t0 = time.perf_counter()
            run(espeak, 120)
            t1 = time.perf_counter()
            run(ffm, 120)
            t2 = time.perf_counter()
            t["espeak"].append(t1 - t0)
            t["espeak_ffmpeg"].append(t2 - t0)
    finally:
        srv.stop()
    durs = {k: audio_seconds(p) for k, p in (("wav", os.path.join(ctx.tmp, "o.wav")),
                                             ("mp3", os.path.join(ctx.tmp, "o.mp3")),
                                             ("espeak", ewav), ("espeak_mp3", emp3))}
    m = {f: (median([x[0] for x in t[f]]), median([x[1] for x in t[f]]))
         for f in ("wav", "mp3")}
    e, ef = median(t["espeak"]), median(t["espeak_ffmpeg"])
    ctx.facts.update(tts=m, tts_espeak=e, tts_espeak_ffmpeg=ef, tts_durs=durs)
    curl_shown = ("curl -s -o out.{f} -w '%{{time_starttransfer}} %{{time_total}}' "
                  "-H 'Content-Type: application/json' --data-binary "
                  "'{{\"model\":\"tts-1\",\"voice\":\"alloy\",\"response_format\":\"{f}\","
                  "\"input\":\"<text4000>\"}}' http://127.0.0.1:$TTS_PORT/v1/audio/speech")
    ecmd = "espeak-ng -w out.wav \"$(cat $TMP/text4000.txt)\""
    fcmd = ecmd + " && ffmpeg -i out.wav -ar 24000 out.mp3"
    pre = "voicestack serve --service tts (defaults), warm; median of %d; " % runs
    ctx.row("4", "TTS 4000 chars, wav: time to first byte over HTTP", ms(m["wav"][0]),
            "espeak-ng -w (first byte = file complete): %s" % ms(e),
            ratio(m["wav"][0], e, 3), pre + curl_shown.format(f="wav") + " -- vs -- " + ecmd)
    ctx.row("4", "TTS 4000 chars, wav: total time over HTTP",
            "%s (%.0f s of audio)" % (ms(m["wav"][1]), durs["wav"]),
            "espeak-ng -w: %s (%.0f s of audio)" % (ms(e), durs["espeak"]),
            ratio(m["wav"][1], e), pre + curl_shown.format(f="wav") + " -- vs -- " + ecmd)
    ctx.row("4", "TTS 4000 chars, mp3: time to first byte over HTTP", ms(m["mp3"][0]),
            "espeak-ng -w then ffmpeg to mp3 (first byte = done): %s" % ms(ef),
            ratio(m["mp3"][0], ef, 3), pre + curl_shown.format(f="mp3") + " -- vs -- " + fcmd)
    ctx.row("4", "TTS 4000 chars, mp3: total time over HTTP",
            "%s (%.0f s of audio)" % (ms(m["mp3"][1]), durs["mp3"]),
            "espeak-ng -w then ffmpeg: %s (%.0f s of audio)" % (ms(ef), durs["espeak_mp3"]),
            ratio(m["mp3"][1], ef), pre + curl_shown.format(f="mp3") + " -- vs -- " + fcmd)


# ------------------------------------------------------------------ 5+6. memory, cold start

def peak_rss_kb(argv, env, cwd, timeout=120):
    """Peak RSS (kB) of one run of argv, from the kernel's rusage of that child."""
    return run_rusage(argv, env, cwd, timeout)[1].ru_maxrss


def sec_memory_cold(ctx, inp, a):
    env = {"ASR_IDLE_TIMEOUT_MINUTES": 0.05, "TTS_IDLE_TIMEOUT_MINUTES": 0.05,
           "IDLE_CHECK_INTERVAL_SECONDS": 1}
    speech_req = os.path.join(ctx.tmp, "speech-short.json")
    with open(speech_req, "w") as f:
        json.dump({"model": "tts-1", "input": "The family of Dashwood had long been settled "
                   "in Sussex.", "voice": "alloy", "response_format": "wav"}, f)
    srv = Server(ctx, env, "all", "memory/cold start").start()
    cold, warm, tcold, twarm = [], [], [], []
    try:
        time.sleep(1.0)
        front = srv.proc.pid
        front_idle = rss_kb(front)
        if descendants(front):
            ctx.note("5. workers were already running before the first request")

        def unloaded():
            return not srv.detailed("asr")["workers"] and not srv.detailed("tts")["workers"] \
                and not descendants(front)

        asr_rss = tts_rss = None
        for i in range(a.cold_pairs):
            if i and not wait_for(unloaded, 30, 0.2):
                raise Broken("workers not unloaded 30 s after the last request "
                             "(ASR_IDLE_TIMEOUT_MINUTES=0.05)")
            cold.append(curl_transcribe(srv.port("asr"), inp["short"]))
            if asr_rss is None:
                w = srv.detailed("asr")["workers"]
                ctx.pids.update(x["pid"] for x in w)
                asr_rss = (w[0]["rss_mb"] * 1024, rss_kb(w[0]["pid"])) if w else None
            warm.append(curl_transcribe(srv.port("asr"), inp["short"]))
            tcold.append(curl_speech(srv.port("tts"), speech_req, os.devnull)[1])
            if tts_rss is None:
                w = srv.detailed("tts")["workers"]
                ctx.pids.update(x["pid"] for x in w)
                tts_rss = (w[0]["rss_mb"] * 1024, rss_kb(w[0]["pid"])) if w else None
            twarm.append(curl_speech(srv.port("tts"), speech_req, os.devnull)[1])
        if not wait_for(unloaded, 30, 0.2):
            raise Broken("workers not unloaded 30 s after the last request")
        time.sleep(0.5)
        after = sum(rss_kb(p) for p in srv.all_pids())
        front_after = rss_kb(front)
        log = srv.log()
        loads = {s: [int(x) for x in re.findall(r"proc=%s-worker .*?event=model_loaded .*?"
                                                 r"load_ms=(\d+)" % s, log)]
                 for s in ("asr", "tts")}
        unload_lines = len(re.findall(r"event=\w*unload\w*", log))
    finally:
        srv.stop()
    if not asr_rss or not tts_rss:
        raise Broken("/health/detailed listed no worker right after a request")
    cenv = clean_env()
    cli_asr = peak_rss_kb([ctx.bin, "transcribe", inp["short"]], cenv, srv.cwd)
    cli_tts = peak_rss_kb([ctx.bin, "speak", "The family of Dashwood had long been settled "
                           "in Sussex.", "-o", os.path.join(ctx.tmp, "cli.wav")], cenv, srv.cwd)
    ng = ctx.facts.get("nginx_rss_kb")
    ctx.facts.update(mem_front=front_idle, mem_after=after, mem_front_after=front_after,
                     mem_asr=asr_rss, mem_tts=tts_rss, cli_asr=cli_asr, cli_tts=cli_tts,
                     cold=median(cold), warm=median(warm), tcold=median(tcold),
                     warm_all=warm, cold_all=cold,
                     twarm=median(twarm), loads=loads, unload_lines=unload_lines)
    scmd = srv.command()
    ctx.row("5", "RSS of the front at idle (ASR+TTS services, no worker)",
            "%.1f MB" % (front_idle / 1024.0),
            ("nginx master + 2 workers after the wrk run of row 1: %.1f MB" % (ng / 1024.0))
            if ng else "nginx not measured", ratio(front_idle, ng) if ng else "n/a",
            scmd + "; VmRSS of /proc/FRONT_PID/status")
    ctx.row("5", "RSS of one ASR worker, pocketsphinx loaded",
            "%.1f MB (/health/detailed) / %.1f MB (/proc)" % (asr_rss[0] / 1024.0,
                                                             asr_rss[1] / 1024.0),
            "peak RSS of in-process `voicestack transcribe short.wav`: %.1f MB"
            % (cli_asr / 1024.0), ratio(asr_rss[1], cli_asr),
            scmd + "; curl -F file=@$TMP/short.wav .../v1/audio/transcriptions; "
            "GET /health/detailed workers[].rss_mb -- vs -- wait4() ru_maxrss of the CLI")
    ctx.row("5", "RSS of one TTS worker, espeak-ng loaded",
            "%.1f MB (/health/detailed) / %.1f MB (/proc)" % (tts_rss[0] / 1024.0,
                                                             tts_rss[1] / 1024.0),
            "peak RSS of in-process `voicestack speak`: %.1f MB" % (cli_tts / 1024.0),
            ratio(tts_rss[1], cli_tts),
            scmd + "; POST /v1/audio/speech (short text); GET /health/detailed "
            "workers[].rss_mb -- vs -- wait4() ru_maxrss of the CLI")
    ctx.row("5", "RSS of the whole service (front + workers) after idle unload",
            "%.1f MB (front alone %.1f MB, no worker left)" % (after / 1024.0,
                                                                front_after / 1024.0),
            "front at idle before any request: %.1f MB" % (front_idle / 1024.0),
            ratio(after, front_idle), scmd + "; %d ASR + %d TTS requests, then wait until "
            "/health/detailed lists no worker; sum of VmRSS of front + descendants"
            % (2 * a.cold_pairs, 2 * a.cold_pairs))
    la = loads["asr"]
    lt = loads["tts"]
    ctx.row("6", "ASR cold request (first after unload), %.1f s clip (median of %d)"
            % (inp["dur"]["short"], len(cold)), ms(median(cold)),
            "warm request, same file: %s; difference %s" % (ms(median(warm)),
                                                            ms(median(cold) - median(warm))),
            ratio(median(cold), median(warm)), scmd + "; curl -w '%{time_total}' -F "
            "file=@$TMP/short.wav (cold) then again (warm); repeated after each unload")
    if la:
        ctx.row("6", "ASR cold - warm difference vs the engine's own load time",
                ms(median(cold) - median(warm)),
                "pocketsphinx load_ms (worker log event=model_loaded): median %d ms "
                "(%s)" % (median(la), ", ".join(str(x) for x in la)),
                ratio((median(cold) - median(warm)) * 1000, median(la)),
                "same run; load_ms parsed from the worker's stderr")
    ctx.row("6", "TTS cold request (first after unload), short sentence (median of %d)"
            % len(tcold), ms(median(tcold)),
            "warm: %s; difference %s; espeak-ng load_ms median %s"
            % (ms(median(twarm)), ms(median(tcold) - median(twarm)),
               ("%d ms" % median(lt)) if lt else "not logged"),
            ratio(median(tcold), median(twarm)), scmd + "; POST /v1/audio/speech "
            "(wav) cold then warm; repeated after each unload")


# ------------------------------------------------------------------ 7. scaling

def sec_scaling(ctx, inp, a):
    """Two servers up at once (1 slot, 2 slots); batches of requests alternate
    A B B A so that drift in other load on the machine hits both alike."""
    n_clients = 2
    batch = max(2, a.scale_requests // 2)          # requests per batch, 2 batches each
    srvs, res = {}, {}
    try:
        for slots in (1, 2):
            env = {"ASR_MAX_CONCURRENT_REQUESTS": slots, "ASR_MAX_QUEUE": 10,
                   "ASR_QUEUE_TIMEOUT_SECONDS": 600}
            srv = srvs[slots] = Server(ctx, env, "asr", "scaling slots=%d" % slots).start()
            # warm every slot's worker at once so no model load is timed
            errs = []

            def warm(port=srv.port()):
                try:
                    curl_transcribe(port, inp["small"])
                except Broken as e:
                    errs.append(str(e))

            ths = [threading.Thread(target=warm) for _ in range(slots)]
            for t in ths:
                t.start()
            for t in ths:
                t.join(300)
            if errs or len(srv.workers()) != slots:
                raise Broken("warm-up of %d slots failed: %s %s" % (slots, errs,
                                                                   srv.workers()))
            res[slots] = dict(wall=0.0, n=0, lat=[], ticks=0, cmd=srv.command())

        def run_batch(slots):
            srv, r = srvs[slots], res[slots]
            wpids = srv.workers()
            c0 = cpu_ticks(wpids)
            todo = list(range(batch))
            lock = threading.Lock()
            errors = []

            def client():
                while True:
                    with lock:
                        if not todo:
                            return
                        todo.pop()
                    try:
                        r["lat"].append(curl_transcribe(srv.port(), inp["c10"], 600))
                    except Broken as e:
                        errors.append(str(e))
                        return

            ths = [threading.Thread(target=client) for _ in range(n_clients)]
            t0 = time.monotonic()
            for t in ths:
                t.start()
            for t in ths:
                t.join(900)
            r["wall"] += time.monotonic() - t0
            r["ticks"] += cpu_ticks(wpids) - c0
            r["n"] += batch
            if errors:
                raise Broken("scaling slots=%d: %s" % (slots, errors[0]))

        for slots in (1, 2, 2, 1):
            run_batch(slots)
    finally:
        for srv in srvs.values():
            srv.stop()
    for r in res.values():
        r["rps"] = r["n"] / r["wall"]
        r["cpus"] = r["ticks"] / CLK_TCK / r["wall"]
        r["cpu_per_req"] = r["ticks"] / CLK_TCK / r["n"]
        r["lat"] = median(r["lat"])
    r1, r2 = res[1], res[2]
    ctx.facts.update(scale=r2["rps"] / r1["rps"], scale1=r1, scale2=r2)
    shown = (r2["cmd"] + " -- and -- " + r1["cmd"] + ", both up; one warm-up request per "
             "slot; batches of %d requests, 1-2-2-1 slots, from 2 client threads each "
             "running `curl -F model=whisper-1 -F file=@$TMP/c10.wav "
             "http://127.0.0.1:$ASR_PORT/v1/audio/transcriptions` one after another"
             % batch)
    ctx.row("7", "ASR throughput, 2 slots: %d x %.0f s clip from 2 clients"
            % (r2["n"], inp["dur"]["c10"]),
            "%.3f req/s (%.1f s wall, median latency %.1f s; workers used %.2f CPUs)"
            % (r2["rps"], r2["wall"], r2["lat"], r2["cpus"]),
            "1 slot: %.3f req/s (%.1f s wall, median latency %.1f s; worker used %.2f CPUs)"
            % (r1["rps"], r1["wall"], r1["lat"], r1["cpus"]), ratio(r2["rps"], r1["rps"]),
            shown)
    ctx.row("7", "ASR worker CPU time per request, 2 slots (two recognisers at once)",
            "%.2f s" % r2["cpu_per_req"], "1 slot: %.2f s" % r1["cpu_per_req"],
            ratio(r2["cpu_per_req"], r1["cpu_per_req"]),
            "same runs as the row above; utime+stime of the workers (/proc/PID/stat)")


# ------------------------------------------------------------------ machine, report

def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    return dict(nproc=len(os.sched_getaffinity(0)), model=model, ram_gb=mem / 1024.0 / 1024.0,
                kernel=platform.release(), os=platform.platform(terse=True),
                date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                load=os.getloadavg())


def versions(ctx):
    out = {}
    for name, argv in (("voicestack", [ctx.bin, "--version"]), ("wrk", ["wrk", "-v"]),
                       ("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-v"]),
                       ("espeak-ng", ["espeak-ng", "--version"]),
                       ("curl", ["curl", "--version"])):
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=10)
            out[name] = p.stdout.decode("utf-8", "replace").strip().splitlines()[0][:80]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            out[name] = "?"
    return out


def verdicts(ctx):
    """The 'close to the limit or not' section, written from this run's numbers:
    each paragraph names the limit, where the figure stands, and the measured
    reason (the thresholds only choose the wording)."""
    f = ctx.facts
    ncpu = ctx.machine["nproc"]
    out = []

    def near(a, b):
        """a is within the noise of b (latencies in us)."""
        return a <= 1.5 * b or a - b < 300

    if "http_ratio" in f:
        r = f["http_ratio"]
        vs_each, ng_each = f["http_rounds"]
        spread = max(vs_each + ng_each) / max(1.0, min(vs_each + ng_each))
        best = max((f["http_vs"], 2), (f["http_t1"], 1), (f["http_t4"], 4))
        out.append(
            "- **HTTP front (row 1): %s.** voicestack %.0f req/s, nginx %.0f req/s, ratio "
            "%.2f. nginx serving a cached static file is the practical ceiling for an "
            "HTTP/1.1 keep-alive answer on this machine: both answer with one read and one "
            "write per request, and wrk's two threads share the same %d cores, so the "
            "ceiling is set by the kernel's loopback path and the CPUs, not by the server "
            "alone. %s Threads: HTTP_THREADS=1 %.0f, 2 %.0f, 4 %.0f req/s (single rounds; "
            "%s). Either way the front answers tens of thousands of requests a second, "
            "while a transcription costs seconds of CPU: the front is never the bottleneck "
            "of this server."
            % ("at the ceiling" if r >= 0.8 else "within 2x of the ceiling" if r >= 0.5
               else "well below the ceiling", f["http_vs"], f["http_nginx"], r, ncpu,
               "The slowest and fastest of all rounds differ by %.0f%% (other load on the "
               "machine comes and goes), which is why the two servers alternate round by "
               "round; a ratio within that spread of 1.0 is a tie." % ((spread - 1) * 100),
               f["http_t1"], f["http_vs"], f["http_t4"],
               "the default of 2 threads, one per core, is the best or within 10% of it"
               if best[1] == 2 or best[0] < f["http_vs"] * 1.1 else
               "HTTP_THREADS=%d did best here, %.0f%% above the default; with wrk on the same "
               "cores a single round is noisy, so this is a hint, not a reason to change the "
               "default" % (best[1], (best[0] / f["http_vs"] - 1) * 100)))
    if "adm" in f:
        a = f["adm"]
        n10, n0, qf, idle = a[10], a[0], a["qfull"], a["idle"]

        def p(x, k="p99_us"):
            return fmt_us(x[k])

        floor10 = near(n10["health"]["p99_us"], n10["nginx"]["p99_us"]) and \
            near(n10["refuse"]["p99_us"], n10["nginx"]["p99_us"])
        qfloor = near(qf["health"]["p99_us"], qf["nginx"]["p99_us"]) and \
            near(qf["refuse"]["p99_us"], qf["nginx"]["p99_us"])
        p50ok = max(qf["health"]["p50_us"], qf["refuse"]["p50_us"]) < 1000
        p99ok = max(qf["health"]["p99_us"], qf["refuse"]["p99_us"]) < 1000
        out.append(
            "- **Admission (row 2): %s.** The limit is the latency any server gets from "
            "this machine at that moment, so a paced probe of nginx ran alongside every "
            "probe. Both ASR slots transcribing, WORKER_NICE=10: /health p50 %s / p99 %s, "
            "429 p50 %s / p99 %s, nginx p99 %s at the same time; WORKER_NICE=0: /health "
            "p99 %s, 429 p99 %s, nginx p99 %s. Idle server: /health p99 %s (nginx %s). "
            "The medians are a tenth of a millisecond to a few tenths whatever the load: "
            "the front answers from the first access-handler call, before any body, and "
            "never waits on a worker. %s %s Issue 3's claim, queue full (%d held) and both "
            "slots busy: /health p50 %s / p99 %s, 429 p50 %s / p99 %s (nginx p99 %s): %s"
            % ({(True, True): "at the limit",
                (True, False): "at the limit with the slots busy, above it with the queue full",
                (False, True): "above the limit with the slots busy, at it with the queue full",
                (False, False): "not at the limit"}[(floor10, qfloor)],
               p(n10["health"], "p50_us"), p(n10["health"]), p(n10["refuse"], "p50_us"),
               p(n10["refuse"]), p(n10["nginx"]), p(n0["health"]), p(n0["refuse"]),
               p(n0["nginx"]), p(idle["health"]), p(idle["nginx"]),
               ("The tails follow nginx's, i.e. they are the machine's (scheduling delays "
                "from every process on it), not the front's."
                if floor10 else "At WORKER_NICE=10 a tail is above nginx's at the same moment "
                "(/health p99 %s, 429 p99 %s, nginx %s), so part of it may be the front's "
                "own; a p99 of a few thousand samples is itself noisy, so see whether it "
                "repeats (`./bench/run.sh build 2`) before profiling."
                % (p(n10["health"]), p(n10["refuse"]), p(n10["nginx"]))) +
               (" Niceness: /health p99 minus nginx's p99 at the same moment was %+.3f ms "
                "at WORKER_NICE=10 and %+.3f ms at 0%s"
                % ((n10["health"]["p99_us"] - n10["nginx"]["p99_us"]) / 1000.0,
                   (n0["health"]["p99_us"] - n0["nginx"]["p99_us"]) / 1000.0,
                   "; the nice value kept the front's tail at the machine's floor where equal "
                   "priority did not." if not near(n0["health"]["p99_us"],
                                                   n0["nginx"]["p99_us"]) and floor10 else
                   "; in this run both stay at the machine's floor: the front needs so "
                   "little CPU per request that it is served promptly when it wakes even at "
                   "equal priority, and the nice value is a margin for busier machines "
                   "(more workers than cores, or other software) rather than something this "
                   "run needed." if floor10 else ".")),
               ("Workers used %.2f CPUs at nice 10 and %.2f at nice 0 of the %d: %s"
                % (n10["cpu"], n0["cpu"], ncpu,
                   "with less than the whole machine for the recognisers, other processes "
                   "were running too, and with a nice value the workers yield to them; "
                   "that is the price of WORKER_NICE, and the point of it: the front "
                   "(and whatever else runs there) keeps its share."
                   if n10["cpu"] < 0.8 * ncpu else
                   "the recognisers had the cores, and the front still answered.")),
               qf["depth"], p(qf["health"], "p50_us"), p(qf["health"]),
               p(qf["refuse"], "p50_us"), p(qf["refuse"]), p(qf["nginx"]),
               "it holds at p50 and at p99." if p99ok else
               ("it holds for the median; the p99 is above 1 ms%s." %
                (" but so is nginx's at the same moment, so the tail is the machine's"
                 if qfloor else ", and above nginx's") if p50ok else
                "it does not hold in this run.")))
    if "asr_ratio" in f:
        r, rc = f["asr_ratio"], f["asr_cpu_ratio"]
        pairs = f["asr_cpu_pairs"]
        noise = max(0.05, f["asr_cli_spread"], max(pairs) - min(pairs))
        out.append(
            "- **ASR over HTTP (row 3): %s.** Limit 1.0: HTTP can only add to the engine's "
            "work (multipart spooling to a temp file, fd passing to the worker, JSON), and "
            "those are milliseconds against seconds of recognition. CPU time, less sensitive "
            "than wall time to other load (not immune: tenants sharing the host's caches "
            "change it too), gives %.2f (%.2f s per request over HTTP, "
            "front included, vs %.2f s in the CLI after its start-up and model load). Wall "
            "time gives %.2f (%.2f s vs %.2f s; the CLI ran at the worker's niceness so both "
            "got the same share of a shared CPU). %s"
            % ("at the limit" if rc <= 1.1 or abs(rc - 1) <= noise else "close to the limit"
               if rc <= 1.3 else "not at the limit", rc, f["asr_http_cpu"], f["asr_cli_cpu"], r,
               f["asr_http"], f["asr_cli"] - f["asr_load"],
               ("Per-round CPU ratios were %s, and the CLI's own CPU time for the same clip "
                "varied by %.0f%% between its runs (other tenants of the CPU caches): %s"
                % (", ".join("%.2f" % x for x in f["asr_cpu_pairs"]),
                   f["asr_cli_spread"] * 100,
                   "the gap to 1.0 is within the spread of the per-round ratios, so this "
                   "run cannot tell it from noise." if abs(rc - 1) <= noise else
                   "the gap to 1.0 is larger than that noise, so part of it is real "
                   "per-request work in the server path." if rc > 1 else
                   "HTTP came out cheaper than the CLI by more than that, which the same "
                   "engine behind more code cannot be: this run's noise was larger than its "
                   "spread shows; more rounds (--asr-runs) narrow it.")) +
               (" Wall and CPU ratios agree." if abs(r - rc) < 0.1 else
                " Wall time differs from CPU time: the runs did not get the same CPU share "
                "(other processes came and went), so trust the CPU ratio.")))
    if "tts" in f:
        m = f["tts"]
        rw, rm = m["wav"][1] / f["tts_espeak"], m["mp3"][1] / f["tts_espeak_ffmpeg"]
        out.append(
            "- **TTS (row 4): first byte far from any limit that matters, totals %s.** "
            "First audio arrives after %s (wav) and %s (mp3), while the command-line "
            "pipeline has nothing to play until it is done (%s with espeak-ng alone, %s "
            "with ffmpeg): streaming makes the wait that of the first sentence, not of the "
            "text. Totals: %.2fx espeak-ng for wav (limit 1.0: the same synthesis, plus "
            "resampling to 24 kHz and chunked HTTP) and %.2fx for mp3 (%s)."
            % ("at the limit" if max(rw, rm) <= 1.15 else "close to it" if max(rw, rm) <= 1.4
               else "above it", ms(m["wav"][0]), ms(m["mp3"][0]), ms(f["tts_espeak"]),
               ms(f["tts_espeak_ffmpeg"]), rw, rm,
               "below 1.0 because the server encodes while espeak-ng synthesises, where the "
               "CLI pipeline runs the two one after the other" if rm < 1.0 else
               "encoding in the worker costs what ffmpeg costs, but overlaps synthesis"))
    if "mem_front" in f:
        rr = f["mem_after"] / f["mem_front"]
        out.append(
            "- **Memory (row 5): %s.** Front at idle %.1f MB. An ASR worker holds %.1f MB "
            "and the in-process CLI peaks at %.1f MB doing the same work; a TTS worker "
            "%.1f MB, the CLI %.1f MB: a worker costs what the engine costs, nothing more. "
            "After idle unload the whole service is %.1f MB against %.1f MB before the "
            "first request (ratio %.2f, limit 1.0): workers exit, so the model's memory "
            "goes back to the system%s."
            % ("at the limit" if rr <= 1.15 else "above the limit", f["mem_front"] / 1024.0,
               f["mem_asr"][1] / 1024.0, f["cli_asr"] / 1024.0, f["mem_tts"][1] / 1024.0,
               f["cli_tts"] / 1024.0, f["mem_after"] / 1024.0, f["mem_front"] / 1024.0, rr,
               "; what the front gained is buffers and allocator arenas of the requests it "
               "served" if rr > 1.0 else ""))
    if "cold" in f:
        la, lt = f["loads"]["asr"], f["loads"]["tts"]
        diff = (f["cold"] - f["warm"]) * 1000
        # the TTS engine loads in milliseconds, so its cold-warm gap is (almost)
        # only the worker's start: the measured price of a fresh process
        spawn = (f["tcold"] - f["twarm"]) * 1000 - (median(lt) if lt else 0)
        rest = diff - median(la) if la else None
        wspread = (max(f["warm_all"]) - min(f["warm_all"])) * 1000
        out.append(
            "- **Cold start (row 6): %s.** The first ASR request after an unload takes "
            "%.0f ms more than a warm one (cold %s, warm %s); pocketsphinx's own load "
            "takes %s (worker log). The worker's start (posix_spawn, exec, dynamic "
            "linking of FFmpeg and both engines), measured on the TTS side where the "
            "engine loads in %s, costs %.0f ms. %s"
            % ("at the limit" if rest is not None and rest <= spawn + 150 else
               "above the limit", diff, ", ".join("%.2f s" % x for x in f["cold_all"]),
               ", ".join("%.2f s" % x for x in f["warm_all"]),
               ("%d ms" % median(la)) if la else "(not logged)",
               ("%d ms" % median(lt)) if lt else "(not logged)", spawn,
               "" if rest is None else
               ("So, within the noise of these runs, cold start = model load + worker "
                "start and nothing else: the model load is the floor, and keeping the "
                "worker (not just the model) is what a warm request saves."
                if rest <= spawn + 150 else
                ("That leaves %.0f ms unexplained by load and start, %s" % (
                    rest - spawn,
                    "less than the %.0f ms by which the warm requests alone differ: it is "
                    "variation between transcriptions on a shared machine, and more pairs "
                    "(--cold-pairs) would narrow it." % wspread
                    if rest - spawn <= wspread else
                    "more than the %.0f ms by which the warm requests differ: a fresh "
                    "worker's first transcription is slower than later ones (first-use page "
                    "faults and caches inside the engine), a cost the CLI pays on every run."
                    % wspread)))))
    if "scale" in f:
        s = f["scale"]
        r1, r2 = f["scale1"], f["scale2"]
        share = r2["cpus"] / max(r1["cpus"], 0.01)
        eff = r1["cpu_per_req"] / max(r2["cpu_per_req"], 0.001)
        out.append(
            "- **Scaling (row 7): %s.** 2 slots give %.2fx the throughput of 1 slot; the "
            "limit is %d.0 (pocketsphinx is single-threaded: one worker per core). "
            "Throughput is CPU obtained divided by CPU per request, so the ratio splits "
            "into two measured factors: the workers got %.2fx the CPU (%.2f vs %.2f "
            "CPUs: %s) and each request cost %.2fx the CPU time (%.2f s vs %.2f s: %s)."
            % ("at the limit" if s >= 0.95 * min(ncpu, 2) else "close to the limit"
               if s >= 0.85 * min(ncpu, 2) else "below the limit", s,
               min(ncpu, 2), share, r2["cpus"], r1["cpus"],
               "the cores were not all ours, and with WORKER_NICE=10 the workers yield "
               "to other processes" if r2["cpus"] < 0.85 * ncpu else
               "the two workers had the cores",
               1 / eff, r2["cpu_per_req"], r1["cpu_per_req"],
               "no measurable extra work for running two at once" if eff >= 0.95 else
               "two recognisers side by side slow each other down somewhat; they share the "
               "L3 cache and memory bandwidth, and on a VM two vCPUs may be hyperthreads "
               "of one physical core"))
    return out


def write_report(ctx, out_path, inp_how, versions_, elapsed, partial):
    m = ctx.machine

    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (bench/run.sh -> bench/bench.py). Do not edit: "
        "the next run overwrites it. -->",
        "",
        "Every figure is a ratio or a side-by-side pair measured in the same run on the "
        "same machine, so it holds on a noisy one; absolute numbers move with the "
        "machine. Each row names the command that produced it (`$TMP` is the run's "
        "scratch directory, `$ASR_PORT`/`$TTS_PORT`/`$NGINX_PORT` its ephemeral ports; "
        "`voicestack` is `%s/voicestack`)." % ctx.build,
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        "| date | %s |" % m["date"],
        "| CPU | %s, %d cores available (`nproc`) |" % (m["model"], m["nproc"]),
        "| RAM | %.1f GB |" % m["ram_gb"],
        "| kernel / OS | %s / %s |" % (m["kernel"], m["os"]),
        "| load average at start / end | %.2f / %.2f (1 min) |" % (m["load"][0],
                                                                  m["load_end"][0]),
        "| suite wall time | %.0f s |" % elapsed,
    ]
    for k, v in versions_.items():
        lines.append("| %s | %s |" % (k, cell(v)))
    lines += ["", "## Results", ""]
    if partial:
        lines += ["**Partial run** (sections %s only)." % partial, ""]
    lines += ["| # | figure | value | comparison (same run) | ratio | command |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in ctx.rows:
        r = dict(r, command=r["command"].replace("`", ""))
        lines.append("| %s | %s | %s | %s | %s | `%s` |" % tuple(
            cell(r[k]) for k in ("sec", "figure", "value", "comparison", "ratio", "command")))
    for s, err in ctx.failed:
        lines.append("| %s | **section failed** | %s | | | |" % (s, cell(err.splitlines()[0])
                                                                  if err else ""))
    lines += ["", "Ratios are value / comparison. Latencies in row 2 come from paced wrk "
              "probes (`BENCH_WRK_DELAY_MS=%d`: each of 2 connections sends a request, waits "
              "for the answer, then waits %d ms), so they are the latency of a lone request "
              "arriving while the workers are busy, not of a queue wrk builds itself."
              % (PROBE_DELAY_MS, PROBE_DELAY_MS), ""]
    lines += ["## Close to the limit, or not", ""]
    try:
        lines += verdicts(ctx) or ["(no figures)"]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        # a bug in the wording must not cost the table; it still fails the run
        ctx.failed.append(("report", "analysis: %s: %s" % (type(e).__name__, e)))
        lines += ["(the analysis could not be written: %s: %s)" % (type(e).__name__, e)]
    if ctx.notes:
        lines += ["", "## Notes from this run", ""]
        lines += ["- " + n for n in ctx.notes]
    lines += ["", "## Inputs", ""] + ["- " + h for h in inp_how]
    lines += ["", "## Running it", "",
              "`make bench` (installs wrk and nginx-light if missing, builds, then "
              "runs `./bench/run.sh build`); section 8, the soak, runs for `SOAK_SECONDS` "
              "(600 by default). `./bench/run.sh BUILD_DIR 1 3` runs only "
              "sections 1 and 3 and prints their table without touching this file. The "
              "suite takes about %.0f minutes on this machine; it exits 0 however slow the "
              "figures are, and 1 only when something is broken (a tool missing, the server "
              "not starting, an unexpected HTTP status)." % max(1, round(elapsed / 60.0)), ""]
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, out_path)


def print_table(ctx):
    print("\n== Voice Stack benchmark (%s, %d cores, %s) ==" % (
        ctx.machine["model"], ctx.machine["nproc"], ctx.machine["date"]))
    w = [3, 56, 44, 62, 14]
    hdr = ("#", "figure", "value", "comparison (same run)", "ratio")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    for r in ctx.rows:
        vals = (r["sec"], r["figure"], r["value"], r["comparison"], r["ratio"])
        print("  ".join(str(v).ljust(w[i]) for i, v in enumerate(vals)))
    for s, err in ctx.failed:
        print("%s  SECTION FAILED: %s" % (s.ljust(3), err.splitlines()[0] if err else ""))
    print("\ncommands:")
    for i, r in enumerate(ctx.rows, 1):
        print("  %2d. [%s] %s" % (i, r["sec"], r["command"]))


SECTIONS = [("1", "HTTP front vs nginx", sec_http),
            ("2", "admission cost", sec_admission),
            ("3", "ASR overhead", sec_asr),
            ("4", "TTS", sec_tts),
            ("5", "memory + cold start", sec_memory_cold),
            ("7", "scaling", sec_scaling),
            ("8", "soak", lambda ctx, inp, a: soak.sec_soak(ctx, inp, a, sys.modules[__name__]))]


def main():
    ap = argparse.ArgumentParser(description="Voice Stack benchmark suite")
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None,
                    help="report file (default docs/PERFORMANCE.md; a partial run writes "
                    "one only when this is given)")
    ap.add_argument("--http-secs", type=int, default=10)
    ap.add_argument("--http-rounds", type=int, default=3)
    ap.add_argument("--probe-secs", type=int, default=8)
    ap.add_argument("--asr-runs", type=int, default=int(os.environ.get("BENCH_ASR_RUNS", 3)))
    ap.add_argument("--tts-runs", type=int, default=5)
    ap.add_argument("--cold-pairs", type=int, default=3)
    ap.add_argument("--scale-requests", type=int, default=8)
    ap.add_argument("--soak-secs", type=float, default=600,
                    help="soak length (section 8); SOAK_SECONDS overrides it")
    ap.add_argument("sections", nargs="*", help="run only these sections (1..8; 6 = 5)")
    a = ap.parse_args()
    want = set(s.replace("6", "5") for s in a.sections)
    bad = want - set(s for s, _, _ in SECTIONS)
    if bad:
        ap.error("unknown section(s): %s" % ", ".join(sorted(bad)))
    tmp = tempfile.mkdtemp(prefix="vs-bench-")
    ctx = Ctx(a.build, tmp)

    def cleanup():
        ctx.stop_all()
        if not os.environ.get("BENCH_KEEP_TMP"):
            shutil.rmtree(tmp, True)

    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    if not os.access(ctx.bin, os.X_OK):
        print("bench: %s not found or not executable (run `ninja -C %s`)" % (ctx.bin, a.build),
              file=sys.stderr)
        return 1
    ctx.machine = machine()
    t_start = time.monotonic()
    print("bench: %s, %d cores, load %.2f; scratch %s" % (ctx.machine["model"],
                                                         ctx.machine["nproc"],
                                                         ctx.machine["load"][0], tmp),
          flush=True)
    if ctx.machine["load"][0] > 0.5:
        ctx.note("the 1-minute load average was %.2f when the run started: other processes "
                 "were using the CPUs, which is why every figure is paired with one from the "
                 "same moment" % ctx.machine["load"][0])
    try:
        inp = make_inputs(ctx)
    except Broken as e:
        print("bench: cannot make inputs: %s" % e, file=sys.stderr)
        return 1
    for sid, title, fn in SECTIONS:
        if want and sid not in want:
            continue
        t0 = time.monotonic()
        print("\n== %s. %s" % (sid, title), flush=True)
        try:
            fn(ctx, inp, a)
        except (Broken, OSError, KeyError, ValueError, json.JSONDecodeError,
                http.client.HTTPException) as e:
            msg = "%s: %s" % (type(e).__name__, e)
            print("  SECTION %s FAILED: %s" % (sid, msg), flush=True)
            ctx.failed.append((sid, msg))
        finally:
            ctx.stop_all()
        print("  (%.0f s)" % (time.monotonic() - t0), flush=True)
    elapsed = time.monotonic() - t_start
    ctx.machine["load_end"] = os.getloadavg()
    print_table(ctx)
    out = a.out or (None if want else os.path.join(ROOT, "docs", "PERFORMANCE.md"))
    if out:
        write_report(ctx, out, inp["how"], versions(ctx), elapsed,
                     ", ".join(sorted(want)) if want else None)
        print("\nwrote %s (%.0f s)" % (os.path.relpath(out), elapsed))
    else:
        print("\npartial run (%.0f s): docs/PERFORMANCE.md not written" % elapsed)
    return 1 if ctx.failed else 0


if __name__ == "__main__":
    sys.exit(main())

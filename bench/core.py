"""core.py - what every bench section shares: the run's context, the bench's
view of a server, the tools it drives (wrk, curl, nginx, timed children) and
the inputs, plus the goal/verdict helpers every row uses.

DESIGN
Owns: Ctx (rows, facts, notes, everything started), Server (pyvs.server with
bench bookkeeping), checked runs of tools, inputs made once per run, and
judge_*: the only place a verdict word is chosen from measured numbers.
Why: sections are one module each (bench/sec_*.py, soak.py) and must not
import each other; the server start/stop, /proc and ffmpeg code is shared
with the integration tests through tools/pyvs.
"""

import json
import os
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

import pyvs
from pyvs import media, procs, server
from pyvs.http import request
from pyvs.procs import descendants, rss_kb
from pyvs.server import env_prefix

HOST = "127.0.0.1"
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
WRK_LUA = os.path.join(BENCH_DIR, "wrk.lua")
PROBE_DELAY_MS = 5   # paced wrk probes (section 2) wait this long between requests


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


# Something is broken (not merely slow): the section fails, exit status 1.
# The same exception as the tests' (an AssertionError), raised by pyvs too.
Broken = pyvs.Failed


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
    r = request(port, "GET", path, timeout=timeout)
    return r.status, r.body


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
    return media.ffprobe_duration(path) or 0.0


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
        self.servers = []     # Servers not yet stopped
        self.pids = set()     # server workers etc. seen, stopped by pid at exit
        self.port0 = None     # None: untried; True/False: server accepts port 0

    def row(self, sec, figure, value, comparison, rat, command, goal="", verdict=""):
        """One table row; goal and verdict (from judge_*) when the issue sets a goal."""
        self.rows.append(dict(sec=sec, figure=figure, value=value, comparison=comparison,
                              ratio=rat, command=command, goal=goal, verdict=verdict))
        print("  [%s] %s: %s | %s | ratio %s%s" % (sec, figure, value, comparison, rat,
                                                  " | goal %s: %s" % (goal, verdict)
                                                  if goal else ""), flush=True)

    def note(self, text):
        if text in self.notes:  # a section that meets the same thing twice says it once
            return
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
        for srv in list(self.servers):
            srv.stop()
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
        procs.kill_if_alive(list(self.pids))
        self.procs = [p for p in self.procs if p.poll() is None]


class Server(server.Server):
    """One `voicestack serve` on loopback, ephemeral ports, stopped with the
    run (Ctx.stop_all); an unclean exit becomes a note of the run."""

    def __init__(self, ctx, env, service="asr", name="server"):
        super().__init__(ctx.bin, env, None, service, name)
        self.ctx = ctx

    def started(self):
        self.ctx.servers.append(self)

    def detailed(self, svc=None):
        """/health/detailed (200, or 503 while degraded)."""
        st, body = http_get(self.port(svc), "/health/detailed")
        if st not in (200, 503):
            raise Broken("/health/detailed answered %d" % st)
        return json.loads(body)

    def workers(self, svc=None):
        """Worker pids as /health/detailed lists them."""
        pids = [w["pid"] for w in self.detailed(svc).get("workers", []) if w.get("pid")]
        self.ctx.pids.update(pids)
        return pids

    def all_pids(self):
        """The service: front + every descendant (workers, spawner)."""
        pids = self.service_pids()
        self.ctx.pids.update(pids[1:])
        return pids

    def rss_kb(self):
        """RSS of the whole service (front + descendants), kB."""
        return sum(rss_kb(p) for p in self.all_pids())

    def stop(self, timeout=10.0):
        if self.proc is None or self not in self.ctx.servers:
            return
        problem = super().stop(timeout)
        if self in self.ctx.servers:
            self.ctx.servers.remove(self)
        if problem:
            self.ctx.note("%s (%s) %s" % (self.name, self.command(), problem))

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
    wavs = media.librivox_wavs()

    def concat(out, files, limit=None):
        return media.ffmpeg_concat(out, files, limit)

    t = ctx.tmp
    inp = {}
    inp["c40"] = concat(os.path.join(t, "c40.wav"), wavs * 2, 40)
    inp["long"] = concat(os.path.join(t, "long.wav"), wavs * 4)
    inp["c10"] = concat(os.path.join(t, "c10.wav"), wavs[:2])
    inp["small"] = concat(os.path.join(t, "small.wav"), wavs[1:2])
    inp["short"] = concat(os.path.join(t, "short.wav"), wavs[1:2], 1.2)
    inp["sil"] = os.path.join(t, "sil.wav")
    media.silence(inp["sil"], 0.5)
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


# Starts argv and prints its ru_maxrss and exit code (see peak_rss_kb).
_PEAK_RSS = ("import os, subprocess, sys\n"
             "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,\n"
             "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
             "_pid, st, ru = os.wait4(p.pid, 0)\n"
             "print(ru.ru_maxrss, os.waitstatus_to_exitcode(st))\n")


def peak_rss_kb(argv, env, cwd, timeout=120):
    """Peak RSS (kB) of one run of argv, from the kernel's rusage of that child.

    Measured from a small Python process that starts argv, not from this one:
    on Linux exec records the high-water mark of the address space it
    replaces in the child's ru_maxrss, so a child forked from the (large)
    bench process would report the bench's own size. The small process's own
    size (~14 MB) is still a floor: figures below it mean "at most that"."""
    try:
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS] + list(argv), env=env, cwd=cwd,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Broken("time limit %.0f s: %s" % (timeout, q(argv)))
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) != 2 or fields[1] != "0":
        raise Broken("exit %s: %s %s" % (fields[1:] or out.returncode, q(argv),
                                         out.stderr[-300:]))
    return int(fields[0])


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



# ------------------------------------------------------------------ goals and verdicts
# Every verdict word in the table and the report comes from here, from the
# measured numbers: a goal is met, at the limit (missed by less than this
# run's own noise, stated), or not met.

def spread(xs):
    """Relative half-range of samples around their median (0 if < 2 samples)."""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2 or not median(xs):
        return 0.0
    return (max(xs) - min(xs)) / 2.0 / abs(median(xs))


def tolerance(ratios, floor=0.05):
    """The noise of a ratio in this run: the spread of its per-round values,
    at least `floor` (a few percent is below what a shared machine repeats)."""
    return max(floor, spread(ratios))


def judge_ratio(r, limit, tol):
    """Verdict of `ratio r <= limit` given the run's tolerance."""
    if r <= limit:
        return "met (%.2f <= %.2f)" % (r, limit)
    if r <= limit * (1 + tol):
        return "at the limit (%.2f, within the run's noise of +-%.0f%%)" % (r, tol * 100)
    return "not met (%.2f > %.2f, noise +-%.0f%%)" % (r, limit, tol * 100)


def judge_max(value, limit, unit, noise=0.0):
    """Verdict of `value <= limit` for an absolute goal; noise (same unit) is
    the run's own spread, which turns a near miss into 'at the limit'."""
    if value <= limit:
        return "met (%s <= %s)" % (unit(value), unit(limit))
    if noise and value <= limit + noise:
        return "at the limit (%s, within the run's spread of %s)" % (unit(value), unit(noise))
    return "not met (%s > %s)" % (unit(value), unit(limit))


def verdict_word(v):
    """The first word of a judge_* verdict: met, at, not."""
    return v.split()[0]

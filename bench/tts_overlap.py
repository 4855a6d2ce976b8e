#!/usr/bin/python3
"""tts_overlap.py - TTS total time and first byte over HTTP vs the command-line
pipe, per output format (issue 8, helper T).

    /usr/bin/python3 bench/tts_overlap.py --bin build/voicestack [--rounds 5] [--text F]

For each format (mp3 opus aac flac wav pcm), in interleaved rounds on the same
machine and the same 4,000 characters of prose:
  http     POST /v1/audio/speech to a warm `voicestack serve --service tts`
           (WORKER_NICE=0 so the worker competes on equal terms with the
           un-niced CLI); first byte and total as the client sees them; CPU =
           user+sys of the worker and of the front during the request
           (/proc/PID/stat, 10 ms ticks).
  pipe     espeak-ng --stdout -f text | ffmpeg -f wav -i - -f <muxer> -
           with ffmpeg's defaults (what `ffmpeg` picks for that muxer: rate
           22050 Hz or 48 kHz for opus, its default bit rate);
  pipe24   the same pipe with the server's settings (24 kHz, same encoder,
           bit rate and options as src/media/format.c): the like-for-like one;
  espeak   espeak-ng -w (wav and pcm only: synthesis alone, no resampling).
Pipe times are wall time to the first byte and to EOF of ffmpeg's stdout,
read by this script; CPU = user+sys of every process of the pipe
(RUSAGE_CHILDREN). Medians are printed as a Markdown table. The machine may be
shared: wall times are noisy, CPU times much less; rounds are interleaved so
load changes hit every column alike.

measure() is importable (bench section 4 can call it).
"""

import argparse
import json
import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import AUSTEN  # noqa: E402  the prose of bench section 4's input

# ffmpeg muxer per response_format, and the server's encoder settings
# (src/media/format.c) as ffmpeg options.
MUXER = {"mp3": "mp3", "opus": "ogg", "aac": "adts", "flac": "flac", "wav": "wav",
         "pcm": "s16le"}
DEFAULT_CODEC = {"opus": ["-c:a", "libopus"]}  # -f ogg alone would pick vorbis
SERVER_OPTS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "opus": ["-c:a", "libopus", "-b:a", "32k", "-page_duration", "100000"],
    "aac": ["-c:a", "aac", "-b:a", "64k"],
    "flac": ["-c:a", "flac"],
    "wav": ["-c:a", "pcm_s16le"],
    "pcm": ["-c:a", "pcm_s16le"],
}


def text4000():
    return (AUSTEN * (4000 // len(AUSTEN) + 1))[:4000]


def proc_cpu(pid):
    """user+sys seconds of a live process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Server:
    def __init__(self, binary, env):
        self.binary = os.path.abspath(binary)
        self.env = env

    def start(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASR_", "TTS_", "VS_", "WORKER_", "LOG_", "MAX_"))}
        env.update({k: str(v) for k, v in self.env.items()})
        self.cwd = tempfile.mkdtemp(prefix="vs-tts-overlap-")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--service", "tts", "--host", HOST, "--tts-port", "0"],
            cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        rx = re.compile(r"event=listening\b.*\bservice=tts\b.*\baddr=\S+:(\d+)")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode("utf-8", "replace")
            m = rx.search(line)
            if m:
                self.port = int(m.group(1))
                # keep draining stderr so the server never blocks on it
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("server did not start")

    def worker_pid(self):
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if int(rest[1]) == self.proc.pid and b"worker" in args:
                return int(d)
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def speak_http(port, body):
    """(first byte s, total s, body bytes) of one POST, read as fast as possible."""
    req = ("POST /v1/audio/speech HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nConnection: close\r\n\r\n" % (HOST, len(body))).encode() + body
    s = socket.create_connection((HOST, port))
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    first = None
    n = 0
    while True:
        d = s.recv(262144)
        if not d:
            break
        if first is None:
            buf += d
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                continue
            head = buf[:i].decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise RuntimeError("speech answered: %s" % head.splitlines()[0])
            rest = buf[i + 4:]
            # chunked: the first chunk's size line ends before the first byte of audio
            j = rest.find(b"\r\n")
            if j < 0 or j + 2 >= len(rest):
                continue
            first = time.perf_counter() - t0
            n += len(rest)
            buf = b""
        else:
            n += len(d)
    total = time.perf_counter() - t0
    s.close()
    return first, total, n


def run_pipe(argv_sh):
    """(first byte s, total s, cpu s, bytes) of a shell pipeline writing to stdout."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(["sh", "-c", argv_sh], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    fd = p.stdout.fileno()
    first = None
    n = 0
    while True:
        select.select([fd], [], [])
        d = os.read(fd, 262144)
        if not d:
            break
        if first is None:
            first = time.perf_counter() - t0
        n += len(d)
    p.wait()
    total = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("pipe failed: %s" % argv_sh)
    return first, total, children_cpu() - c0, n


def pipe_cmd(fmt, textf, matched):
    opts = (["-ar", "24000"] + SERVER_OPTS[fmt]) if matched else DEFAULT_CODEC.get(fmt, [])
    return ("espeak-ng --stdout -f %s | ffmpeg -nostdin -v error -f wav -i - %s -f %s -"
            % (textf, " ".join(opts), MUXER[fmt]))


def measure(binary, rounds=5, formats=FORMATS, text=None, worker_nice=0, log=print):
    """Medians per format: {fmt: {col: {"first", "total", "cpu", "bytes"}}}."""
    text = text or text4000()
    tmp = tempfile.mkdtemp(prefix="vs-tts-overlap-")
    textf = os.path.join(tmp, "text4000.txt")
    with open(textf, "w") as f:
        f.write(text)
    bodies = {f: json.dumps({"model": "tts-1", "input": text, "voice": "alloy",
                             "response_format": f}).encode() for f in formats}
    srv = Server(binary, {"WORKER_NICE": worker_nice}).start()
    raw = {f: {} for f in formats}
    try:
        speak_http(srv.port, bodies[formats[0]])  # warm-up: spawns the worker
        wpid = srv.worker_pid()
        for r in range(rounds):
            for f in formats:
                cols = raw[f]
                w0, f0 = proc_cpu(wpid), proc_cpu(srv.proc.pid)
                first, total, n = speak_http(srv.port, bodies[f])
                w1, f1 = proc_cpu(wpid), proc_cpu(srv.proc.pid)
                cols.setdefault("http", []).append(
                    {"first": first, "total": total, "cpu": w1 - w0, "cpu_front": f1 - f0,
                     "bytes": n})
                for col, matched in (("pipe", False), ("pipe24", True)):
                    first, total, cpu, n = run_pipe(pipe_cmd(f, textf, matched))
                    cols.setdefault(col, []).append(
                        {"first": first, "total": total, "cpu": cpu, "bytes": n})
                if f in ("wav", "pcm"):
                    out = os.path.join(tmp, "espeak.wav")
                    c0 = children_cpu()
                    t0 = time.perf_counter()
                    subprocess.run(["espeak-ng", "-w", out, "-f", textf], check=True)
                    t1 = time.perf_counter()
                    cols.setdefault("espeak", []).append(
                        {"first": t1 - t0, "total": t1 - t0, "cpu": children_cpu() - c0,
                         "bytes": os.path.getsize(out)})
            log("round %d/%d done" % (r + 1, rounds))
    finally:
        srv.stop()
    med = {}
    for f, cols in raw.items():
        med[f] = {c: {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                  for c, runs in cols.items()}
    return med


def table(med):
    rows = ["| format | HTTP first byte | HTTP total | worker CPU (+front) | "
            "pipe total (ffmpeg defaults) / CPU | pipe24 total (server's settings) / CPU | "
            "espeak-ng -w / CPU | HTTP total / pipe24 | HTTP CPU / pipe24 CPU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f, c in med.items():
        h, p, p24 = c["http"], c["pipe"], c["pipe24"]
        e = c.get("espeak")
        rows.append("| %s | %.1f ms | %.3f s | %.2f s (+%.2f s) | %.3f s / %.2f s | "
                    "%.3f s / %.2f s | %s | %.2f | %.2f |" % (
                        f, h["first"] * 1000, h["total"], h["cpu"], h["cpu_front"],
                        p["total"], p["cpu"], p24["total"], p24["cpu"],
                        "%.3f s / %.2f s" % (e["total"], e["cpu"]) if e else "-",
                        h["total"] / p24["total"], (h["cpu"] + h["cpu_front"]) / p24["cpu"]))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/voicestack")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--worker-nice", type=int, default=0)
    ap.add_argument("--text", help="file with the input (default: 4,000 chars of Austen)")
    a = ap.parse_args()
    text = open(a.text).read() if a.text else None
    med = measure(a.bin, a.rounds, tuple(a.formats.split(",")), text, a.worker_nice,
                  log=lambda s: print(s, file=sys.stderr))
    print(table(med))
    return 0


if __name__ == "__main__":
    sys.exit(main())

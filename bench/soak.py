"""soak.py - section 8 of the benchmark suite: a soak of the real server.

DESIGN
Owns: SOAK_SECONDS (default 600) of mixed, mostly hostile traffic at four
times the slots against one `voicestack serve` with the real engines
(pocketsphinx, espeak-ng), and the before/after rows it adds to the bench
table (docs/PERFORMANCE.md): the front's RSS, its open fds (/proc/PID/fd)
and the slot state of both services (/health/detailed), measured after a
warm-up and again after an idle settle, side by side.

Why it is shaped so:
- What a long run catches that the tests do not is slow drift: memory or fds
  leaked per request, a slot lost on a rare exit path. So the "after" figures
  are taken once the server is idle again (slots back or SOAK_SETTLE_SECONDS
  passed), and a slot not given back, a dead front or a final good request
  failing marks the section as failed (core.Broken); a grown RSS is reported,
  not judged (allocators keep memory).
- The client mix is fixed and rotates over the client threads, so every kind
  runs throughout: good transcriptions and speech; a slow body (upload sent
  in small pieces) and a slow reader (speech read in small pieces); clients
  that leave mid-upload, mid-transcription and mid-stream; and malformed
  requests (garbage request line, bad JSON, multipart without a file, a
  declared body over the limit). Outcomes are counted per kind (HTTP status,
  or the client-side exception) and reported.
- Every loop is bounded: each client stops at the deadline, every socket has
  a timeout, every read loop has a cap. Loopback only.
- Shared pieces come from bench/core.py (Server, Broken, ...) and the
  front's RSS and fds from tools/pyvs/procs.py, as in every section.
"""

import collections
import http.client
import json
import os
import socket
import threading
import time
import uuid

import core
from pyvs import procs

IO_TIMEOUT = 60.0        # any single socket operation
SLOW_PIECE = 8192        # slow body / slow reader piece size
SLOW_PAUSE = 0.05        # between pieces
SLOW_MAX_PIECES = 400    # cap of a slow read loop
KINDS = ("asr_good", "tts_good", "asr_slow_body", "tts_slow_reader", "asr_leave_upload",
         "asr_leave_working", "tts_leave_stream", "malformed")


def _multipart(path):
    with open(path, "rb") as f:
        audio = f.read()
    b = "soak" + uuid.uuid4().hex
    body = (("--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
             "Content-Type: audio/wav\r\n\r\n") % (b, b)).encode() + audio + \
        ("\r\n--%s--\r\n" % b).encode()
    return body, "multipart/form-data; boundary=" + b


def _head(path, port, ctype, length, extra=""):
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
            "Content-Length: %d\r\n%sConnection: close\r\n\r\n"
            % (path, port, ctype, length, extra)).encode()


def _status(so):
    """Reads up to the end of the response head; returns the status code."""
    data = b""
    for _ in range(256):
        chunk = so.recv(4096)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            break
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else "no_status"


def _drain(so, pause=0.0):
    for _ in range(SLOW_MAX_PIECES if pause else 100000):
        if not so.recv(SLOW_PIECE if pause else 65536):
            return
        if pause:
            time.sleep(pause)


class Soak:
    def __init__(self, srv, inp, deadline):
        self.asr, self.tts = srv.port("asr"), srv.port("tts")
        self.deadline = deadline
        self.small_body, self.small_ct = _multipart(inp["small"])
        self.long_body, self.long_ct = _multipart(inp["long"])
        self.speech_short = json.dumps({"model": "tts-1", "voice": "alloy",
                                        "input": inp["text"][:300], "response_format": "mp3"})
        self.speech_long = json.dumps({"model": "tts-1", "voice": "alloy",
                                       "input": inp["text"][:2000], "response_format": "wav"})
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)

    def count(self, kind, outcome):
        with self.lock:
            self.counts[kind][str(outcome)] += 1

    # each returns the outcome to count: an HTTP status or a short label
    def asr_good(self):
        with socket.create_connection(("127.0.0.1", self.asr), timeout=IO_TIMEOUT) as so:
            so.sendall(_head("/v1/audio/transcriptions", self.asr, self.small_ct,
                             len(self.small_body)) + self.small_body)
            st = _status(so)
            _drain(so)
            return st

    def tts_good(self):
        c = http.client.HTTPConnection("127.0.0.1", self.tts, timeout=IO_TIMEOUT)
        try:
            c.request("POST", "/v1/audio/speech", self.speech_short,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def asr_slow_body(self):
        with socket.create_connection(("127.0.0.1", self.asr), timeout=IO_TIMEOUT) as so:
            so.sendall(_head("/v1/audio/transcriptions", self.asr, self.small_ct,
                             len(self.small_body)))
            for i in range(0, len(self.small_body), SLOW_PIECE):
                so.sendall(self.small_body[i:i + SLOW_PIECE])
                time.sleep(SLOW_PAUSE)
            st = _status(so)
            _drain(so)
            return st

    def tts_slow_reader(self):
        with socket.create_connection(("127.0.0.1", self.tts), timeout=IO_TIMEOUT) as so:
            body = self.speech_long.encode()
            so.sendall(_head("/v1/audio/speech", self.tts, "application/json", len(body)) + body)
            st = _status(so)
            _drain(so, SLOW_PAUSE)  # gives up after SLOW_MAX_PIECES: counts as leaving
            return st

    def asr_leave_upload(self):
        with socket.create_connection(("127.0.0.1", self.asr), timeout=IO_TIMEOUT) as so:
            so.sendall(_head("/v1/audio/transcriptions", self.asr, self.long_ct,
                             len(self.long_body)))
            so.sendall(self.long_body[:len(self.long_body) // 3])
        return "left_mid_upload"

    def asr_leave_working(self):
        with socket.create_connection(("127.0.0.1", self.asr), timeout=IO_TIMEOUT) as so:
            so.sendall(_head("/v1/audio/transcriptions", self.asr, self.long_ct,
                             len(self.long_body)) + self.long_body)
            time.sleep(1.0)  # the worker is on it (or it was refused)
        return "left_mid_transcription"

    def tts_leave_stream(self):
        with socket.create_connection(("127.0.0.1", self.tts), timeout=IO_TIMEOUT) as so:
            body = self.speech_long.encode()
            so.sendall(_head("/v1/audio/speech", self.tts, "application/json", len(body)) + body)
            st = _status(so)
            so.recv(4096)
        return "left_mid_stream_after_%s" % st

    def malformed(self, n=[0]):
        n[0] += 1
        variant = n[0] % 4
        port = self.tts if variant == 1 else self.asr
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as so:
            if variant == 0:
                so.sendall(b"GARBAGE \x00\xff nonsense\r\n\r\n")
            elif variant == 1:
                body = b'{"model": "tts-1", "input": '
                so.sendall(_head("/v1/audio/speech", port, "application/json", len(body)) + body)
            elif variant == 2:
                body = (b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                        b"whisper-1\r\n--x--\r\n")
                so.sendall(_head("/v1/audio/transcriptions", port,
                                 "multipart/form-data; boundary=x", len(body)) + body)
            else:
                so.sendall(_head("/v1/audio/transcriptions", port,
                                 "multipart/form-data; boundary=x", 10 ** 11))
            st = _status(so)
            return st

    def client(self, i):
        """Client thread i: kinds in rotation from offset i until the deadline."""
        r = i
        while time.monotonic() < self.deadline:
            kind = KINDS[r % len(KINDS)]
            r += 1
            try:
                self.count(kind, getattr(self, kind)())
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.count(kind, type(e).__name__)


def _state(srv):
    """Front RSS (kB), open fds, and per service (active, available, max,
    queue depth, workers) from /health/detailed."""
    pid = srv.proc.pid
    out = {"rss_kb": procs.rss_kb(pid), "fds": procs.fd_count(pid)}
    for svc in ("asr", "tts"):
        d = srv.detailed(svc)
        c = d["concurrency"]
        out[svc] = (c["active_requests"], c["available_slots"], c["max_concurrent"],
                    d["queue"]["depth"], len(d.get("workers", [])))
    return out


def _idle(st):
    return all(st[s][0] == 0 and st[s][1] == st[s][2] and st[s][3] == 0
               for s in ("asr", "tts"))


def sec_soak(ctx, inp, a):
    secs = float(os.environ.get("SOAK_SECONDS", a.soak_secs))
    settle = float(os.environ.get("SOAK_SETTLE_SECONDS", 60))
    slots = 2
    env = {"ASR_MAX_CONCURRENT_REQUESTS": slots, "TTS_MAX_CONCURRENT_REQUESTS": slots,
           "ASR_MAX_QUEUE": slots, "TTS_MAX_QUEUE": slots,
           "ASR_QUEUE_TIMEOUT_SECONDS": 10, "TTS_QUEUE_TIMEOUT_SECONDS": 10}
    n_clients = 4 * 2 * slots  # 4x the slots of both services
    srv = core.Server(ctx, env, "all", "soak").start()
    soak = Soak(srv, inp, 0)
    # warm-up: both engines loaded, so "before" is a server that has worked
    if soak.asr_good() != 200 or soak.tts_good() != 200:
        raise core.Broken("soak warm-up request failed")
    time.sleep(2)
    before = _state(srv)
    soak.deadline = time.monotonic() + secs
    threads = [threading.Thread(target=soak.client, args=(i,), daemon=True)
               for i in range(n_clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 4 * IO_TIMEOUT)  # each op is bounded by IO_TIMEOUT
    ran = time.monotonic() - t0
    if any(t.is_alive() for t in threads):
        raise core.Broken("soak clients still running %.0f s after the deadline" % (ran - secs))
    if srv.proc.poll() is not None:
        raise core.Broken("the front died during the soak (exit %s)" % srv.proc.returncode)
    st = core.wait_for(lambda: (lambda s: s if _idle(s) else None)(_state(srv)),
                        settle, 0.5)
    time.sleep(2)  # connections MHD is still closing
    after = _state(srv)
    if not st or not _idle(after):
        raise core.Broken("slots not back %.0f s after the soak: asr %s tts %s "
                           "(active, available, max, queue, workers)"
                           % (settle, after["asr"], after["tts"]))
    final = (soak.asr_good(), soak.tts_good())
    if final != (200, 200):
        raise core.Broken("a good request after the soak failed: %s" % (final,))

    cmd = ("%s voicestack serve; %d client threads for %.0f s (SOAK_SECONDS), kinds in "
           "rotation: %s; before = after warm-up, after = idle again + 2 s"
           % (core.env_prefix(env), n_clients, secs, ", ".join(KINDS)))
    total = sum(sum(c.values()) for c in soak.counts.values())
    ctx.row("8", "soak: front RSS, idle after vs before", "%.1f MB" % (after["rss_kb"] / 1024),
            "before: %.1f MB" % (before["rss_kb"] / 1024),
            core.ratio(after["rss_kb"], before["rss_kb"]), cmd)
    ctx.row("8", "soak: front open fds (/proc/PID/fd), idle after vs before",
            str(after["fds"]), "before: %d" % before["fds"],
            core.ratio(after["fds"], before["fds"]), "same run")
    for svc in ("asr", "tts"):
        fmt = "active %d, available %d of %d, queue %d, workers %d"
        ctx.row("8", "soak: %s slots (/health/detailed), idle after vs before" % svc,
                fmt % after[svc], "before: " + fmt % before[svc], "-", "same run")
    mix = "; ".join("%s: %s" % (k, ", ".join("%s x%d" % kv for kv in
                                              sorted(soak.counts[k].items())))
                    for k in KINDS if soak.counts[k])
    ctx.row("8", "soak: requests by kind and outcome", "%d in %.0f s" % (total, ran), mix,
            "-", "same run")
    if after["fds"] > before["fds"]:
        ctx.note("soak: the front had %d more open fds when idle after the soak than before"
                 % (after["fds"] - before["fds"]))
    srv.stop()

"""sec_lanes.py - section 10: what a high-priority request waits for while
normal traffic saturates every other ASR slot, with priority lanes on and
off, in one run (issue 10).

DESIGN
Owns: two servers started one after the other with the same 2 ASR slots
and queue, the real engine, and the same normal traffic; the first with
lanes on (ASR_RESERVED_SLOTS=1, ALLOW_CLIENT_PRIORITY=true), the second
with lanes off (the defaults). The normal traffic is voicestack-loadtest
keeping NORMAL_CLIENTS transcriptions of small.wav in flight (closed loop;
clients <= slots + queue, so none is refused). The probe is one short
transcription (short.wav) sent with `Expect: 100-continue`: as `high` where
lanes are on, plain (normal) where they are off.

Why it is shaped so:
- Admission latency is read on the wire: from the request head sent to the
  server's "100 Continue". libmicrohttpd sends it only when the access
  handler has admitted the request (slot taken); a queued request gets it
  when its slot comes. So the figure is what a client waits before it may
  send its audio, with no engine time in it. The total (to the last byte of
  the transcript) is reported beside it.
- A probe is sent only while /health/detailed shows the normal traffic
  saturating (every slot the normal lane may take busy and a normal request
  queued), one at a time, paced, after one unmeasured probe that loads the
  worker it will use; a probe sent otherwise would measure an idle server.
- The price of the reservation is shown too: normal transcriptions per
  minute with one slot for them (lanes on) and two (off), from the load
  tester's own count.
"""

import json
import os
import signal
import socket
import subprocess
import time

from core import HOST, Broken, Server, fmt_us, median, ms, q, ratio, wait_for
from pyvs.http import encode_multipart, read_head, recv_response

NORMAL_CLIENTS = 3
QUEUE = 8
PROBE_GAP_S = 0.5


def _loadtest(ctx):
    path = os.path.join(ctx.build, "tools", "loadtest", "voicestack-loadtest")
    if not os.access(path, os.X_OK):
        raise Broken("%s not built" % path)
    return path


def _saturated(srv, lanes_on):
    d = srv.detailed()
    if lanes_on:
        n = d["lanes"]["normal"]
        return n["active"] == 1 and n["queued"] >= 1
    return d["concurrency"]["active_requests"] == 2 and d["queue"]["depth"] >= 1


def _probe(port, body, ctype, lane):
    """One transcription with Expect: 100-continue; (admission s, total s)."""
    head = ("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
            "Content-Length: %d\r\nExpect: 100-continue\r\n%s\r\n"
            % (HOST, port, ctype, len(body),
               "X-Voicestack-Priority: %s\r\n" % lane if lane else "")).encode()
    so = socket.create_connection((HOST, port), timeout=10)
    try:
        so.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        so.sendall(head)
        status, _hdrs, rest = read_head(so, timeout=300)
        t_adm = time.perf_counter() - t0
        if status != 100 or rest:
            raise Broken("probe expected 100 Continue, got %d" % status)
        so.sendall(body)
        status, _hdrs, rbody = recv_response(so, timeout=300)
        t_total = time.perf_counter() - t0
    finally:
        so.close()
    if status != 200:
        raise Broken("probe answered %d: %r" % (status, rbody[:200]))
    return t_adm, t_total


def _one_config(ctx, inp, lanes_on, n_probes):
    env = {"ASR_MAX_CONCURRENT_REQUESTS": 2, "ASR_MAX_QUEUE": QUEUE,
           "ASR_QUEUE_TIMEOUT_SECONDS": 600}
    if lanes_on:
        env.update(ASR_RESERVED_SLOTS=1, ALLOW_CLIENT_PRIORITY="true")
    name = "lanes on" if lanes_on else "lanes off"
    srv = Server(ctx, env, "asr", name).start()
    load = None
    try:
        argv = [_loadtest(ctx), "--service", "asr", "--asr-url", srv.url("/"),
                "--file", inp["small"], "--duration", "3600", "--json"]
        argv += ["--lane", "normal=%d" % NORMAL_CLIENTS] if lanes_on else \
            ["--workers", str(NORMAL_CLIENTS)]
        load = ctx.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: _saturated(srv, lanes_on), 90, 0.2):
            raise Broken("%s: normal traffic did not saturate within 90 s: %s"
                         % (name, json.dumps(srv.detailed())[:600]))
        with open(inp["short"], "rb") as f:
            body, ctype = encode_multipart([("model", "whisper-1"),
                                            ("file", ("short.wav", f.read(), "audio/wav"))])
        lane = "high" if lanes_on else None
        _probe(srv.port(), body, ctype, lane)   # loads the worker it will use
        adm, total, skipped = [], [], 0
        t_start = time.monotonic()
        while len(adm) < n_probes:
            if not _saturated(srv, lanes_on):
                skipped += 1
                if skipped > 600:
                    raise Broken("%s: normal traffic stopped saturating" % name)
                time.sleep(0.05)
                continue
            a, t = _probe(srv.port(), body, ctype, lane)
            adm.append(a)
            total.append(t)
            time.sleep(PROBE_GAP_S)
        window = time.monotonic() - t_start
        load.send_signal(signal.SIGINT)   # start no more; the ones in flight finish
        out, _ = load.communicate(timeout=300)
        doc = json.loads(out)["services"]["asr"]
        return {"adm": adm, "total": total, "window_s": window,
                "normal_ok": doc["status"].get("200", 0), "normal_s": doc["elapsed_s"],
                "server": srv.command(),
                "load_cmd": q(["voicestack-loadtest"] + [
                    "$TMP/small.wav" if x == inp["small"] else
                    "http://127.0.0.1:$ASR_PORT" if x == srv.url("/") else x
                    for x in argv[1:]]) + " (stopped with SIGINT after the probes)"}
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait(10)
        srv.stop()


def sec_lanes(ctx, inp, a):
    n = a.lane_probes
    on = _one_config(ctx, inp, True, n)
    off = _one_config(ctx, inp, False, n)
    ctx.facts.update(lanes={"on": on, "off": off})

    def pm(xs, f):
        return "p50 %s / max %s" % (f(median(xs)), f(max(xs)))

    def us(x_s):
        return fmt_us(x_s * 1e6)

    probe_cmd = ("curl -H 'Expect: 100-continue' -H 'X-Voicestack-Priority: high' "
                 "-F model=whisper-1 -F file=@$TMP/short.wav (timed on the socket: head "
                 "sent -> 100 Continue)")
    ctx.row("10", "admission latency of a high request (head sent -> 100 Continue), %d normal "
            "transcriptions saturating every other ASR slot; 2 slots, ASR_RESERVED_SLOTS=1"
            % NORMAL_CLIENTS,
            pm(on["adm"], us) + " (%d probes)" % n,
            "lanes off (no reservation, the same request as normal): %s"
            % pm(off["adm"], ms),
            ratio(median(off["adm"]), median(on["adm"]), 0) + "x (off/on, p50)",
            on["server"] + "; " + on["load_cmd"] + "; " + probe_cmd +
            " -- vs -- the same without ASR_RESERVED_SLOTS, ALLOW_CLIENT_PRIORITY, --lane "
            "and the header")
    ctx.row("10", "the same high request, head sent -> last byte of its transcript (%.1f s "
            "clip)" % inp["dur"]["short"],
            pm(on["total"], ms), "lanes off: %s" % pm(off["total"], ms),
            ratio(median(off["total"]), median(on["total"])) + " (off/on, p50)",
            "as above")
    per_min = [60.0 * x["normal_ok"] / x["normal_s"] if x["normal_s"] else 0
               for x in (on, off)]
    ctx.row("10", "the price: normal transcriptions (small.wav, %.1f s) completed per minute "
            "meanwhile, 1 slot left to them (lanes on)" % inp["dur"]["small"],
            "%.1f/min (%d in %.0f s)" % (per_min[0], on["normal_ok"], on["normal_s"]),
            "lanes off, 2 slots: %.1f/min (%d in %.0f s)" % (per_min[1], off["normal_ok"],
                                                            off["normal_s"]),
            ratio(per_min[0], per_min[1]) + " (on/off)",
            "voicestack-loadtest --json, status 200 count / its elapsed_s")

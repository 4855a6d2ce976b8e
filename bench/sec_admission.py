"""sec_admission.py - section 2: what admission costs while the slots are busy.

DESIGN
Owns: paced /health and 429 latency probes with both ASR slots transcribing
(WORKER_NICE 10 vs 0), on an idle server, and with the queue full, each
beside the same probe of nginx (the machine's floor at that moment).
"""

import socket
import time

from core import (HOST, PROBE_DELAY_MS, Broken, Server, fill_slots, fmt_us, ratio,
                  start_nginx, stop_clients, stop_nginx, wait_for, wrk, wrk_collect,
                  wrk_shown)
from pyvs.procs import CLK_TCK, cpu_ticks


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

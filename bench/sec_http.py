"""sec_http.py - section 1: the HTTP front against nginx.

DESIGN
Owns: GET /health req/s of voicestack (HTTP_THREADS 1, 2, 4) and of nginx
serving the same bytes as a static file, and nginx's RSS after that flood.
Why: nginx is the practical ceiling for one keep-alive answer on this
machine; the two alternate round by round so other load hits both alike.
"""

from core import (HOST, Broken, Server, fmt_us, http_get, ratio, start_nginx,
                  stop_nginx, wrk, wrk_collect, wrk_errors, wrk_shown)
from pyvs.http import raw_response_size
from pyvs.procs import descendants, rss_kb


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

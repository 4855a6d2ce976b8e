"""sec_balancer.py - section 13: a burst of short transcriptions through nginx
(deploy/nginx-cluster.conf, as shipped) over 1, 2 and 3 instances.

DESIGN
Owns: the one figure the multi-instance deployment adds. Three instances
(pocketsphinx, two slots each, no queue: the test_balancers.py setup) run
for the whole section with every worker warm; nginx is started once per
instance count on the shipped file rendered for the first 1, 2 or 3 of
them (pyvs.balancer.render: only the listen address and server lines
change). A burst is BURST (6, the slots of three instances) requests of the 1.2 s
clip released together, not retried. Per burst: transcripts per second
(served / wall time until the last answer), the time to each transcript
and how many got 429; pooled over the rounds: transcripts / summed wall
time, the p99 of all transcripts' times, 429s per burst. Bursts alternate
1-2-3-3-2-1 (times ROUNDS/2) so drift in other load hits each alike, and the
same burst straight at one instance (no nginx) is timed in the same rounds:
that pair is the balancer's own cost.

What the curve means on this machine (2 cores): instances share the cores,
so more of them cannot add CPU. One instance with two slots already keeps
both cores busy; with 3 the same work is spread over 6 slots. What grows is
not throughput but admission: requests that one instance refuses (and the
client must retry) are served by another instance at once.
"""

import os
import threading
import time

from core import HOST, Broken, Server, free_port, stop_nginx, wait_port
from pyvs import balancer
from pyvs.speech import transcribe

BURST = 6
SLOTS = 2


def _burst(port, audio):
    """(wall seconds until the last answer, seconds to each transcript, 429s)."""
    gate = threading.Barrier(BURST)
    lat, refused, errors = [], [], []

    def client():
        gate.wait(60)
        t0 = time.monotonic()
        r = transcribe(port, audio, timeout=300)
        if r.status == 200:
            lat.append(time.monotonic() - t0)
        elif r.status == 429:
            refused.append(1)
        else:
            errors.append("%d %r" % (r.status, r.body[:200]))

    ths = [threading.Thread(target=client, daemon=True) for _ in range(BURST)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join(600)
    wall = time.monotonic() - t0
    if errors or len(lat) + len(refused) != BURST:
        raise Broken("burst: %d served, %d refused of %d; %s" % (len(lat), len(refused),
                                                                BURST, errors[:2]))
    return wall, lat, len(refused)


def _start_nginx(ctx, servers):
    nginx = "/usr/sbin/nginx"
    d = os.path.join(ctx.tmp, "nginx-cluster-%d" % len(servers))
    os.makedirs(d)
    os.chmod(d, 0o755)
    port = free_port()
    site = os.path.join(d, "site.conf")
    with open(site, "w") as f:
        f.write(balancer.render(balancer.NGINX_CLUSTER, port, [dict(s.ports) for s in servers]))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(balancer.nginx_main(d, site))
    p = ctx.spawn([nginx, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")])
    if not wait_port(port, 10) or p.poll() is not None:
        raise Broken("nginx on deploy/nginx-cluster.conf did not start")
    return p, port


def _p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def sec_balancer(ctx, inp, a):
    rounds = max(6, a.asr_runs * 2)
    env = {"ASR_MAX_CONCURRENT_REQUESTS": SLOTS, "ASR_MAX_QUEUE": 0}
    srv = [Server(ctx, env, "asr", "instance %d" % (i + 1)).start() for i in range(3)]
    with open(inp["short"], "rb") as f:
        audio = f.read()
    # warm every worker (spawn + model load) so no load is timed
    for s in srv:
        ths = [threading.Thread(target=transcribe, args=(s.asr_port, audio)) for _ in range(SLOTS)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(300)
        if len(s.workers()) != SLOTS:
            raise Broken("warm-up: %s has %s workers" % (s.name, s.workers()))
    ngx, res = {}, {k: dict(wall=0.0, lat=[], refused=0) for k in ("direct", 1, 2, 3)}
    try:
        for n in (1, 2, 3):
            ngx[n] = _start_nginx(ctx, srv[:n])
        order = [1, "direct", 2, 3, 3, 2, "direct", 1] * (rounds // 2)
        for k in order:
            port = srv[0].asr_port if k == "direct" else ngx[k][1]
            wall, lat, refused = _burst(port, audio)
            res[k]["wall"] += wall
            res[k]["lat"] += lat
            res[k]["refused"] += refused
    finally:
        for p, _ in ngx.values():
            stop_nginx(ctx, p)
    # pooled over the rounds: served / time, p99 of every transcript's time
    med = {k: dict(rps=len(v["lat"]) / v["wall"], p99=_p99(v["lat"]),
                   refused=v["refused"] / float(rounds)) for k, v in res.items()}
    ctx.facts["balancer"] = med
    load = os.getloadavg()[0]
    shown = ("3 x ASR_MAX_CONCURRENT_REQUESTS=2 ASR_MAX_QUEUE=0 voicestack serve --service asr; "
             "nginx -c (deploy/nginx-cluster.conf, listen and server lines for the first 1, 2, "
             "3 instances); bursts of %d POST /v1/audio/transcriptions of $TMP/short.wav at "
             "http://%s:$NGINX_PORT released together (bench/sec_balancer.py), %d rounds "
             "alternating 1-direct-2-3-3-2-direct-1" % (BURST, HOST, rounds))
    per = "; ".join("%s: %.2f req/s, p99 %.2f s, %.0f x 429 per burst" % (
        "1 instance direct" if k == "direct" else "%d via nginx" % k, med[k]["rps"],
        med[k]["p99"], med[k]["refused"]) for k in ("direct", 1, 2, 3))
    ctx.row("13", "burst of %d x %.1f s transcriptions through nginx, 3 instances x 2 slots: "
            "served per second (%d bursts each)" % (BURST, inp["dur"]["short"], rounds),
            "%.2f req/s" % med[3]["rps"], per + " (load average %.2f)" % load,
            "%.2f" % (med[3]["rps"] / med[1]["rps"]), shown)
    ctx.row("13", "same bursts: p99 time to a transcript, 3 instances vs 1",
            "%.2f s" % med[3]["p99"], "1 instance via nginx: %.2f s (%.0f of %d refused)" % (
                med[1]["p99"], med[1]["refused"], BURST),
            "%.2f" % (med[3]["p99"] / med[1]["p99"]), "same rounds as the row above")
    ctx.row("13", "nginx's own cost: 1 instance via nginx vs straight at it, served per second",
            "%.2f req/s" % med[1]["rps"], "direct: %.2f req/s" % med["direct"]["rps"],
            "%.2f" % (med[1]["rps"] / med["direct"]["rps"]), "same rounds as the row above")

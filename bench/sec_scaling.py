"""sec_scaling.py - section 7: ASR throughput with 1 and 2 slots.

DESIGN
Owns: two servers up at once (1 slot, 2 slots), batches alternating 1-2-2-1,
throughput split into CPU obtained and CPU per request.
"""

import threading
import time

from core import Broken, Server, curl_transcribe, median, ratio
from pyvs.procs import CLK_TCK, cpu_ticks


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

#!/usr/bin/env python3
"""bench.py - the Voice Stack benchmark suite (`make bench` -> bench/run.sh -> here).

DESIGN
Owns: the command line and the order of the sections; each section is a
module (sec_http 1, sec_admission 2, sec_asr 3, sec_tts 4, sec_memory 5+6,
sec_scaling 7, soak 8, sec_models 9, sec_lanes 10, sec_wyoming 11, sec_stream 12,
sec_balancer 13),
core.py holds what they share, report.py writes the table and docs/PERFORMANCE.md, models_md.py the
measured tables of docs/MODELS.md.  Server start/stop, /proc readers, HTTP and
ffmpeg helpers are shared with the integration tests in tools/pyvs, which
this entry point puts on sys.path.  bench/run.sh
checks the tools and calls `bench.py --build BUILD_DIR [SECTION...]`; a full
run rewrites docs/PERFORMANCE.md, a partial one (sections named) only prints;
docs/MODELS.md's measured block is rewritten whenever section 9 ran without
failing (only section 9 feeds it).
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
import signal
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH_DIR), "tools"))

from pyvs import tmp  # noqa: E402

import core  # noqa: E402
import models_md  # noqa: E402
import report  # noqa: E402
import soak  # noqa: E402
from core import Broken, Ctx, make_inputs  # noqa: E402
from sec_admission import sec_admission  # noqa: E402
from sec_asr import sec_asr  # noqa: E402
from sec_balancer import sec_balancer  # noqa: E402
from sec_http import sec_http  # noqa: E402
from sec_lanes import sec_lanes  # noqa: E402
from sec_memory import sec_memory_cold  # noqa: E402
from sec_models import sec_models  # noqa: E402
from sec_scaling import sec_scaling  # noqa: E402
from sec_stream import sec_stream  # noqa: E402
from sec_tts import sec_tts  # noqa: E402
from sec_wyoming import sec_wyoming  # noqa: E402


SECTIONS = [("1", "HTTP front vs nginx", sec_http),
            ("2", "admission cost", sec_admission),
            ("3", "ASR overhead", sec_asr),
            ("4", "TTS", sec_tts),
            ("5", "memory + cold start", sec_memory_cold),
            ("7", "scaling", sec_scaling),
            ("8", "soak", soak.sec_soak),
            ("9", "models and voices", sec_models),
            ("10", "priority lanes", sec_lanes),
            ("11", "Wyoming vs HTTP", sec_wyoming),
            ("12", "streaming (SSE)", sec_stream),
            ("13", "instances behind nginx", sec_balancer)]


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
    ap.add_argument("--models-out", default=None,
                    help="where section 9 writes its tables (default docs/MODELS.md)")
    ap.add_argument("--models-sentences", type=int, default=0,
                    help="section 9: only the first N sentences per voice (0: all)")
    ap.add_argument("--models-voices", default="",
                    help="section 9: only these voices, comma-separated (default: all)")
    ap.add_argument("--lane-probes", type=int, default=8,
                    help="high requests timed per configuration (section 10)")
    ap.add_argument("sections", nargs="*", help="run only these sections (1..13; 6 = 5)")
    a = ap.parse_args()
    want = set("5" if s == "6" else s for s in a.sections)
    bad = want - set(s for s, _, _ in SECTIONS)
    if bad:
        ap.error("unknown section(s): %s" % ", ".join(sorted(bad)))
    tmp.PREFIX = "vs-bench-"
    scratch = tmp.tmpdir()   # removed at exit unless BENCH_KEEP_TMP
    ctx = Ctx(a.build, scratch)
    atexit.register(ctx.stop_all)   # registered after tmpdir's rmtree: runs first
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    if not os.access(ctx.bin, os.X_OK):
        print("bench: %s not found or not executable (run `ninja -C %s`)" % (ctx.bin, a.build),
              file=sys.stderr)
        return 1
    ctx.machine = report.machine()
    t_start = time.monotonic()
    print("bench: %s, %d cores, load %.2f; scratch %s" % (ctx.machine["model"],
                                                         ctx.machine["nproc"],
                                                         ctx.machine["load"][0], scratch),
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
        except (Broken, AssertionError, OSError, KeyError, ValueError, json.JSONDecodeError,
                http.client.HTTPException) as e:
            msg = "%s: %s" % (type(e).__name__, e)
            print("  SECTION %s FAILED: %s" % (sid, msg), flush=True)
            ctx.failed.append((sid, msg))
        finally:
            ctx.stop_all()
        print("  (%.0f s)" % (time.monotonic() - t0), flush=True)
    elapsed = time.monotonic() - t_start
    ctx.machine["load_end"] = os.getloadavg()
    report.print_table(ctx)
    out = a.out or (None if want else os.path.join(core.ROOT, "docs", "PERFORMANCE.md"))
    if out:
        report.write_report(ctx, out, inp["how"], report.versions(ctx), elapsed,
                     ", ".join(sorted(want)) if want else None)
        print("\nwrote %s (%.0f s)" % (os.path.relpath(out), elapsed))
    else:
        print("\npartial run (%.0f s): docs/PERFORMANCE.md not written" % elapsed)
    if "models" in ctx.facts and not any(s == "9" for s, _ in ctx.failed):
        mout = a.models_out or os.path.join(core.ROOT, "docs", "MODELS.md")
        models_md.write(ctx.facts["models"], ctx.machine, shown_command(a), mout)
        print("wrote %s (section 9's tables)" % os.path.relpath(mout))
    return 1 if ctx.failed else 0


def shown_command(a):
    """How this run was started, as a user types it (`make bench` for a full run)."""
    if not a.sections:
        return "make bench"
    args, skip = [], False
    for x in sys.argv[1:]:
        if skip or x == "--build" or x.startswith("--build="):
            skip = x == "--build"
            continue
        args.append(x)
    return "./bench/run.sh " + core.q([a.build] + args)


if __name__ == "__main__":
    sys.exit(main())


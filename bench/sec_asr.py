"""sec_asr.py - section 3: ASR over HTTP against the in-process CLI.

DESIGN
Owns: wall and CPU time of one 40 s transcription over HTTP (warm worker)
and of `voicestack transcribe` at the same niceness, minus the CLI's own
start-up and model load, in alternating rounds.
"""

import re

from core import Server, median, ratio, run, run_rusage
from pyvs.procs import CLK_TCK, cpu_ticks
from pyvs.server import clean_env


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

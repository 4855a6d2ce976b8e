"""report.py - the table (stdout) and docs/PERFORMANCE.md, from one run's rows.

DESIGN
Owns: the machine description, tool versions, the results table (with each
row's goal and verdict) and the "Close to the limit, or not" section.
Why it is shaped so: every sentence of that section is chosen from the
measured values (facts the sections left in ctx.facts): the verdict words
come from the rows' judge_* results or from comparisons made here, with the
tolerance stated in the sentence; a figure that was not measured produces no
sentence.  docs/PERFORMANCE.md is written here and nowhere else.
"""

import os
import platform
import shutil
import subprocess
import time

from core import PROBE_DELAY_MS, fmt_us, median, ms, verdict_word

def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    return dict(nproc=len(os.sched_getaffinity(0)), model=model, ram_gb=mem / 1024.0 / 1024.0,
                kernel=platform.release(), os=platform.platform(terse=True),
                date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                load=os.getloadavg())


def versions(ctx):
    out = {}
    for name, argv in (("voicestack", [ctx.bin, "--version"]), ("wrk", ["wrk", "-v"]),
                       ("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-v"]),
                       ("espeak-ng", ["espeak-ng", "--version"]),
                       ("curl", ["curl", "--version"])):
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=10)
            out[name] = p.stdout.decode("utf-8", "replace").strip().splitlines()[0][:80]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            out[name] = "?"
    return out


def verdicts(ctx):
    """The 'close to the limit or not' section, written from this run's numbers:
    each paragraph names the limit, where the figure stands, and the measured
    reason (the thresholds only choose the wording)."""
    f = ctx.facts
    ncpu = ctx.machine["nproc"]
    out = []

    def near(a, b):
        """a is within the noise of b (latencies in us)."""
        return a <= 1.5 * b or a - b < 300

    if "http_ratio" in f:
        r = f["http_ratio"]
        vs_each, ng_each = f["http_rounds"]
        # the noise is how much one server's rounds differ among themselves;
        # the gap between the two servers is what the ratio measures
        spread = max(max(e) / max(1.0, min(e)) for e in (vs_each, ng_each))
        best = max((f["http_vs"], 2), (f["http_t1"], 1), (f["http_t4"], 4))
        out.append(
            "- **HTTP front (row 1): %s.** voicestack %.0f req/s, nginx %.0f req/s, ratio "
            "%.2f. nginx serving a cached static file is the practical ceiling for an "
            "HTTP/1.1 keep-alive answer on this machine: both answer with one read and one "
            "write per request, and wrk's two threads share the same %d cores, so the "
            "ceiling is set by the kernel's loopback path and the CPUs, not by the server "
            "alone. %s Threads: HTTP_THREADS=1 %.0f, 2 %.0f, 4 %.0f req/s (single rounds; "
            "%s).%s"
            % ("at the ceiling (within the rounds' spread of 1.0)" if r >= 1.0 / spread
               else "within 2x of the ceiling" if r >= 0.5 else "well below the ceiling", f["http_vs"], f["http_nginx"], r, ncpu,
               "One server's slowest and fastest rounds differ by up to %.0f%% (other load "
               "on the machine comes and goes), which is why the two servers alternate round "
               "by round; a ratio within that spread of 1.0 is a tie." % ((spread - 1) * 100),
               f["http_t1"], f["http_vs"], f["http_t4"],
               "the default of 2 threads, one per core, is the best or within 10% of it"
               if best[1] == 2 or best[0] < f["http_vs"] * 1.1 else
               "HTTP_THREADS=%d did best here, %.0f%% above the default; with wrk on the same "
               "cores a single round is noisy, so this is a hint, not a reason to change the "
               "default" % (best[1], (best[0] / f["http_vs"] - 1) * 100),
               (" At %.0f req/s the front answers a request in %.3f ms of wall time, %s"
                % (f["http_vs"], 1000.0 / f["http_vs"],
                   "a thousandth or less of the %.1f s a transcription took in row 3."
                   % f["asr_http"] if f.get("asr_http") and
                   f["asr_http"] * f["http_vs"] >= 1000 else
                   "(row 3 not run: no transcription time to compare with)."
                   if not f.get("asr_http") else
                   "not negligible next to the %.1f s of a transcription in row 3."
                   % f["asr_http"]))))
    if "adm" in f:
        a = f["adm"]
        n10, n0, qf, idle = a[10], a[0], a["qfull"], a["idle"]

        def p(x, k="p99_us"):
            return fmt_us(x[k])

        floor10 = near(n10["health"]["p99_us"], n10["nginx"]["p99_us"]) and \
            near(n10["refuse"]["p99_us"], n10["nginx"]["p99_us"])
        qfloor = near(qf["health"]["p99_us"], qf["nginx"]["p99_us"]) and \
            near(qf["refuse"]["p99_us"], qf["nginx"]["p99_us"])
        p50ok = max(qf["health"]["p50_us"], qf["refuse"]["p50_us"]) < 1000
        p99ok = max(qf["health"]["p99_us"], qf["refuse"]["p99_us"]) < 1000
        out.append(
            "- **Admission (row 2): %s.** The limit is the latency any server gets from "
            "this machine at that moment, so a paced probe of nginx ran alongside every "
            "probe. Both ASR slots transcribing, WORKER_NICE=10: /health p50 %s / p99 %s, "
            "429 p50 %s / p99 %s, nginx p99 %s at the same time; WORKER_NICE=0: /health "
            "p99 %s, 429 p99 %s, nginx p99 %s. Idle server: /health p99 %s (nginx %s). "
            "The medians are a tenth of a millisecond to a few tenths whatever the load: "
            "the front answers from the first access-handler call, before any body, and "
            "never waits on a worker. %s %s Issue 3's claim, queue full (%d held) and both "
            "slots busy: /health p50 %s / p99 %s, 429 p50 %s / p99 %s (nginx p99 %s): %s"
            % ({(True, True): "at the limit",
                (True, False): "at the limit with the slots busy, above it with the queue full",
                (False, True): "above the limit with the slots busy, at it with the queue full",
                (False, False): "not at the limit"}[(floor10, qfloor)],
               p(n10["health"], "p50_us"), p(n10["health"]), p(n10["refuse"], "p50_us"),
               p(n10["refuse"]), p(n10["nginx"]), p(n0["health"]), p(n0["refuse"]),
               p(n0["nginx"]), p(idle["health"]), p(idle["nginx"]),
               ("The tails follow nginx's, i.e. they are the machine's (scheduling delays "
                "from every process on it), not the front's."
                if floor10 else "At WORKER_NICE=10 a tail is above nginx's at the same moment "
                "(/health p99 %s, 429 p99 %s, nginx %s), so part of it may be the front's "
                "own; a p99 of a few thousand samples is itself noisy, so see whether it "
                "repeats (`./bench/run.sh build 2`) before profiling."
                % (p(n10["health"]), p(n10["refuse"]), p(n10["nginx"]))) +
               (" Niceness: /health p99 minus nginx's p99 at the same moment was %+.3f ms "
                "at WORKER_NICE=10 and %+.3f ms at 0%s"
                % ((n10["health"]["p99_us"] - n10["nginx"]["p99_us"]) / 1000.0,
                   (n0["health"]["p99_us"] - n0["nginx"]["p99_us"]) / 1000.0,
                   "; the nice value kept the front's tail at the machine's floor where equal "
                   "priority did not." if not near(n0["health"]["p99_us"],
                                                   n0["nginx"]["p99_us"]) and floor10 else
                   "; in this run both stay at the machine's floor: the front needs so "
                   "little CPU per request that it is served promptly when it wakes even at "
                   "equal priority, and the nice value is a margin for busier machines "
                   "(more workers than cores, or other software) rather than something this "
                   "run needed." if floor10 else ".")),
               ("Workers used %.2f CPUs at nice 10 and %.2f at nice 0 of the %d: %s"
                % (n10["cpu"], n0["cpu"], ncpu,
                   "with less than the whole machine for the recognisers, other processes "
                   "were running too, and with a nice value the workers yield to them; "
                   "that is the price of WORKER_NICE, and the point of it: the front "
                   "(and whatever else runs there) keeps its share."
                   if n10["cpu"] < 0.8 * ncpu else
                   "the recognisers had the cores, and the front still answered.")),
               qf["depth"], p(qf["health"], "p50_us"), p(qf["health"]),
               p(qf["refuse"], "p50_us"), p(qf["refuse"]), p(qf["nginx"]),
               "it holds at p50 and at p99." if p99ok else
               ("it holds for the median; the p99 is above 1 ms%s." %
                (" but so is nginx's at the same moment, so the tail is the machine's"
                 if qfloor else ", and above nginx's") if p50ok else
                "it does not hold in this run.")))
    if "asr_ratio" in f:
        r, rc = f["asr_ratio"], f["asr_cpu_ratio"]
        pairs = f["asr_cpu_pairs"]
        noise = max(0.05, f["asr_cli_spread"], max(pairs) - min(pairs))
        out.append(
            "- **ASR over HTTP (row 3): %s.** Limit 1.0: HTTP can only add to the engine's "
            "work (multipart spooling to a temp file, fd passing to the worker, JSON), and "
            "those are milliseconds against seconds of recognition. CPU time, less sensitive "
            "than wall time to other load (not immune: tenants sharing the host's caches "
            "change it too), gives %.2f (%.2f s per request over HTTP, "
            "front included, vs %.2f s in the CLI after its start-up and model load). Wall "
            "time gives %.2f (%.2f s vs %.2f s; the CLI ran at the worker's niceness so both "
            "got the same share of a shared CPU). %s"
            % ("at the limit" if rc <= 1.1 or abs(rc - 1) <= noise else "close to the limit"
               if rc <= 1.3 else "not at the limit", rc, f["asr_http_cpu"], f["asr_cli_cpu"], r,
               f["asr_http"], f["asr_cli"] - f["asr_load"],
               ("Per-round CPU ratios were %s, and the CLI's own CPU time for the same clip "
                "varied by %.0f%% between its runs (other tenants of the CPU caches): %s"
                % (", ".join("%.2f" % x for x in f["asr_cpu_pairs"]),
                   f["asr_cli_spread"] * 100,
                   "the gap to 1.0 is within the spread of the per-round ratios, so this "
                   "run cannot tell it from noise." if abs(rc - 1) <= noise else
                   "the gap to 1.0 is larger than that noise, so part of it is real "
                   "per-request work in the server path." if rc > 1 else
                   "HTTP came out cheaper than the CLI by more than that, which the same "
                   "engine behind more code cannot be: this run's noise was larger than its "
                   "spread shows; more rounds (--asr-runs) narrow it.")) +
               (" Wall and CPU ratios agree." if abs(r - rc) < 0.1 else
                " Wall time differs from CPU time: the runs did not get the same CPU share "
                "(other processes came and went), so trust the CPU ratio.")))
    if "tts" in f:
        out.append(tts_paragraph(f["tts"]))
    if "mem" in f:
        out.append(memory_paragraph(f["mem"]))
    if "cold" in f:
        out.append(cold_paragraph(f["cold"]))
    if "scale" in f:
        s = f["scale"]
        r1, r2 = f["scale1"], f["scale2"]
        share = r2["cpus"] / max(r1["cpus"], 0.01)
        eff = r1["cpu_per_req"] / max(r2["cpu_per_req"], 0.001)
        out.append(
            "- **Scaling (row 7): %s.** 2 slots give %.2fx the throughput of 1 slot; the "
            "limit is %d.0 (pocketsphinx is single-threaded: one worker per core). "
            "Throughput is CPU obtained divided by CPU per request, so the ratio splits "
            "into two measured factors: the workers got %.2fx the CPU (%.2f vs %.2f "
            "CPUs: %s) and each request cost %.2fx the CPU time (%.2f s vs %.2f s: %s)."
            % ("at the limit" if s >= 0.95 * min(ncpu, 2) else "close to the limit"
               if s >= 0.85 * min(ncpu, 2) else "below the limit", s,
               min(ncpu, 2), share, r2["cpus"], r1["cpus"],
               "the cores were not all ours, and with WORKER_NICE=10 the workers yield "
               "to other processes" if r2["cpus"] < 0.85 * ncpu else
               "the two workers had the cores",
               1 / eff, r2["cpu_per_req"], r1["cpu_per_req"],
               "no measurable extra work for running two at once" if eff >= 0.95 else
               "two recognisers side by side slow each other down somewhat; they share the "
               "L3 cache and memory bandwidth, and on a VM two vCPUs may be hyperthreads "
               "of one physical core"))
    if "lanes" in f:
        out.append(lanes_paragraph(f["lanes"]))
    return out


def lanes_paragraph(la):
    """Row 10: what the reserved slot buys a high request, and what it costs."""
    on, off = la["on"], la["off"]
    a_on, a_off = median(on["adm"]), median(off["adm"])
    return (
        "- **Priority lanes (row 10).** With normal transcriptions saturating every slot "
        "they may take, a high request was admitted in %s (p50; max %s) on the reserved "
        "slot, against %s (p50; max %s) for the same request with lanes off, where it "
        "queued behind the normal ones: the admission itself is the first access-handler "
        "call's work, so it stays at the front's floor however busy the engines are. Its "
        "answer took %s instead of %s. The price is the reserved slot: normal traffic "
        "had one slot instead of two (%.1f vs %.1f transcriptions a minute)."
        % (fmt_us(a_on * 1e6), fmt_us(max(on["adm"]) * 1e6), ms(a_off), ms(max(off["adm"])),
           ms(median(on["total"])), ms(median(off["total"])),
           60.0 * on["normal_ok"] / max(on["normal_s"], 1e-9),
           60.0 * off["normal_ok"] / max(off["normal_s"], 1e-9)))


def write_report(ctx, out_path, inp_how, versions_, elapsed, partial):
    m = ctx.machine

    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (bench/run.sh -> bench/bench.py). Do not edit: "
        "the next run overwrites it. -->",
        "",
        "Every figure is a ratio or a side-by-side pair measured in the same run on the "
        "same machine, so it holds on a noisy one; absolute numbers move with the "
        "machine. Each row names the command that produced it (`$TMP` is the run's "
        "scratch directory, `$ASR_PORT`/`$TTS_PORT`/`$NGINX_PORT` its ephemeral ports; "
        "`voicestack` is `%s/voicestack`)." % ctx.build,
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        "| date | %s |" % m["date"],
        "| CPU | %s, %d cores available (`nproc`) |" % (m["model"], m["nproc"]),
        "| RAM | %.1f GB |" % m["ram_gb"],
        "| kernel / OS | %s / %s |" % (m["kernel"], m["os"]),
        "| load average at start / end | %.2f / %.2f (1 min) |" % (m["load"][0],
                                                                  m["load_end"][0]),
        "| suite wall time | %.0f s |" % elapsed,
    ]
    for k, v in versions_.items():
        lines.append("| %s | %s |" % (k, cell(v)))
    lines += ["", "## Results", ""]
    if partial:
        lines += ["**Partial run** (sections %s only)." % partial, ""]
    lines += ["| # | figure | value | comparison (same run) | ratio | goal | verdict | command |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ctx.rows:
        r = dict(r, command=r["command"].replace("`", ""))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | `%s` |" % tuple(
            cell(r[k]) for k in ("sec", "figure", "value", "comparison", "ratio", "goal",
                                 "verdict", "command")))
    for s, err in ctx.failed:
        lines.append("| %s | **section failed** | %s | | | | | |"
                     % (s, cell(err.splitlines()[0]) if err else ""))
    lines += ["", "Ratios are value / comparison. A verdict is chosen by bench/core.py from "
              "the row's numbers: *met*, *at the limit* (missed by less than the run's own "
              "spread, which the verdict states) or *not met*. Latencies in row 2 come from paced wrk "
              "probes (`BENCH_WRK_DELAY_MS=%d`: each of 2 connections sends a request, waits "
              "for the answer, then waits %d ms), so they are the latency of a lone request "
              "arriving while the workers are busy, not of a queue wrk builds itself."
              % (PROBE_DELAY_MS, PROBE_DELAY_MS), ""]
    lines += ["## Close to the limit, or not", ""]
    try:
        lines += verdicts(ctx) or ["(no figures)"]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        # a bug in the wording must not cost the table; it still fails the run
        ctx.failed.append(("report", "analysis: %s: %s" % (type(e).__name__, e)))
        lines += ["(the analysis could not be written: %s: %s)" % (type(e).__name__, e)]
    if ctx.notes:
        lines += ["", "## Notes from this run", ""]
        lines += ["- " + n for n in ctx.notes]
    lines += ["", "## Inputs", ""] + ["- " + h for h in inp_how]
    lines += ["", "## Running it", "",
              "`make bench` (installs what it drives if missing: wrk, nginx-light, "
              "espeak-ng, ffmpeg, curl, pocketsphinx-testdata; builds; then runs "
              "`./bench/run.sh build`); section 8, the soak, runs for `SOAK_SECONDS` "
              "(600 by default). `./bench/run.sh BUILD_DIR 1 3` runs only "
              "sections 1 and 3 and prints their table without touching this file. Section 9 "
              "(models and voices) also writes the measured tables of docs/MODELS.md, "
              "alone too (`./bench/run.sh BUILD_DIR 9`). The "
              "suite takes about %.0f minutes on this machine; it exits 0 however slow the "
              "figures are, and 1 only when something is broken (a tool missing, the server "
              "not starting, an unexpected HTTP status)." % max(1, round(elapsed / 60.0)), ""]
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, out_path)


def print_table(ctx):
    print("\n== Voice Stack benchmark (%s, %d cores, %s) ==" % (
        ctx.machine["model"], ctx.machine["nproc"], ctx.machine["date"]))
    w = [3, 56, 44, 62, 14, 0]
    hdr = ("#", "figure", "value", "comparison (same run)", "ratio", "goal: verdict")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    for r in ctx.rows:
        vals = (r["sec"], r["figure"], r["value"], r["comparison"], r["ratio"],
                "%s: %s" % (r["goal"], r["verdict"]) if r.get("goal") else "")
        print("  ".join(str(v).ljust(w[i]) for i, v in enumerate(vals)))
    for s, err in ctx.failed:
        print("%s  SECTION FAILED: %s" % (s.ljust(3), err.splitlines()[0] if err else ""))
    print("\ncommands:")
    for i, r in enumerate(ctx.rows, 1):
        print("  %2d. [%s] %s" % (i, r["sec"], r["command"]))




def tts_paragraph(res):
    """Row 4: formats grouped by verdict, each sentence from the values."""
    fmts = list(res)
    groups = {}
    for fm in fmts:
        groups.setdefault(verdict_word(res[fm]["v_total"]), []).append(fm)
    firsts_ok = [fm for fm in fmts if verdict_word(res[fm]["v_first"]) == "met"]
    worst = max(fmts, key=lambda fm: res[fm]["ratio"])
    best = min(fmts, key=lambda fm: res[fm]["ratio"])
    head = ("met for every format" if len(groups.get("met", [])) == len(fmts) else
            ", ".join("%s for %s" % (word, "/".join(groups[k]))
                      for k, word in (("met", "met"), ("at", "at the limit"),
                                      ("not", "not met")) if groups.get(k)))
    s = ["- **TTS (row 4): total <= CLI pipe %s; first byte < 10 ms %s.**" % (
        head, "met for every format" if len(firsts_ok) == len(fmts) else
        "met for %d of %d formats (%s missed)" % (
            len(firsts_ok), len(fmts), ", ".join(f for f in fmts if f not in firsts_ok)))]
    s.append("Total over HTTP / `espeak-ng --stdout | ffmpeg`: %s." % "; ".join(
        "%s %.2f (%s vs %s)" % (fm, res[fm]["ratio"], ms(res[fm]["total"]),
                                ms(res[fm]["ptotal"])) for fm in fmts))
    s.append("The tolerance of each ratio is the spread of its per-round values (at least "
             "5%%); it ranged from %.0f%% to %.0f%% in this run, so a ratio above 1.0 by "
             "less than that is reported as at the limit, not met." % (
                 100 * min(res[f]["tol"] for f in fmts), 100 * max(res[f]["tol"] for f in fmts)))
    s.append("Best %s (%.2f), worst %s (%.2f)%s." % (
        best, res[best]["ratio"], worst, res[worst]["ratio"],
        "" if res[worst]["ratio"] <= 1.0 else
        ": the server path takes %s more than the pipe there"
        % ms(res[worst]["total"] - res[worst]["ptotal"])))
    cpu = [fm for fm in fmts if res[fm]["cpu"] > res[fm]["pcpu"] * 1.1]
    s.append("CPU time: %s." % (
        "within 10% of the pipe's or below for every format" if not cpu else
        "more than 10%% above the pipe's for %s" % "; ".join(
            "%s %s vs %s" % (fm, ms(res[fm]["cpu"]), ms(res[fm]["pcpu"])) for fm in cpu)))
    s.append("First byte: %s over HTTP, against %s for the pipe's first output byte." % (
        ", ".join("%s %.1f ms" % (fm, res[fm]["first"] * 1000) for fm in fmts),
        ", ".join("%s %.0f ms" % (fm, res[fm]["pfirst"] * 1000) for fm in fmts)))
    return " ".join(s)


def memory_paragraph(m):
    """Row 5: the unload goal and the nginx baseline, from the values."""
    d = m["after"] - m["start"]
    s = ["- **Memory (row 5): after idle unload, goal %s.**" % m["v_unload"]]
    s.append("The service (front%s) is %.1f MB at idle before any request and %.1f MB "
             "after the workers unloaded (%+.2f MB; goal: within 1 MB)." % (
                 " + %d more" % (m["start_n"] - 1) if m["start_n"] > 1 else " alone",
                 m["start"] / 1024.0, m["after"] / 1024.0, d / 1024.0))
    if m["after_n"] > m["start_n"]:
        s.append("%d more process(es) were below the front after the unload than at the "
                 "start." % (m["after_n"] - m["start_n"]))
    s.append("nginx (master + workers) at idle at the same moment: %.1f MB, so the idle "
             "service is %.2fx nginx%s." % (
                 m["nginx"] / 1024.0, m["start"] / max(m["nginx"], 1),
                 "" if m["start"] > m["nginx"] else ", no larger than the reference proxy"))
    for svc, cli in (("asr", "cli_asr"), ("tts", "cli_tts")):
        r = m[svc][1] / max(m[cli], 1)
        s.append("A%s %s worker holds %.1f MB, the in-process CLI peaks at %.1f MB (%.2fx)%s."
                 % ("n" if svc == "asr" else "", svc.upper(), m[svc][1] / 1024.0,
                    m[cli] / 1024.0, r, ": the worker costs what the engine costs"
                    if r <= 1.05 else ": the worker holds %.1f MB more than the CLI needs"
                    % ((m[svc][1] - m[cli]) / 1024.0)))
    return " ".join(s)


def cold_paragraph(c):
    """Row 6: TTS cold - warm against espeak-ng's load (goal), ASR for context."""
    tc, tw, lt, diffs = c["tts"]
    ac, aw, la, _cold, _warm = c["asr"]
    s = ["- **Cold start (row 6): TTS cold - warm <= load + 10 ms, goal %s.**" % c["v_cold"]]
    if lt:
        extra = (tc - tw) * 1000 - median(lt)
        s.append("A cold TTS request took %.0f ms more than a warm one (pairs: %s ms); "
                 "espeak-ng's own load took %d ms: the gap is %.0f ms %s the model load." % (
                     (tc - tw) * 1000, ", ".join("%.0f" % (x * 1000) for x in diffs),
                     median(lt), abs(extra),
                     "more than" if extra > 0 else "less than"))
    if la:
        s.append("ASR for comparison: cold - warm %.0f ms against pocketsphinx's load of %d ms "
                 "(%s)." % ((ac - aw) * 1000, median(la),
                            "cold was not slower than warm: this run's noise exceeded the "
                            "load" if ac <= aw else "the load is most of it"
                            if median(la) >= 0.5 * (ac - aw) * 1000
                            else "the load is less than half of it"))
    return " ".join(s)

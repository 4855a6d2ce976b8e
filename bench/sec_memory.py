"""sec_memory.py - sections 5 and 6: memory of the service and cold start.

DESIGN
Owns: RSS of the whole service (the front plus every process below it:
workers, a spawner if the build has one; found by ppid in /proc/*/stat) at
idle, with workers, and after idle unload; nginx master + workers at idle,
started here so the baseline comes from the same moment; peak RSS of the
in-process CLI; cold and warm requests after each unload, against the
engines' own load_ms from the worker log.
Goals (issue 8), judged from the numbers by core.judge_*:
- the whole service after idle unload within 1 MB of the service at start;
- TTS cold - warm <= espeak-ng's load_ms + 10 ms.
"""

import json
import os
import time

from core import (Broken, Server, curl_speech, curl_transcribe, judge_max, median, ms,
                  peak_rss_kb, ratio, start_nginx, stop_nginx, wait_for)
from pyvs.procs import descendants, rss_kb
from pyvs.server import clean_env

UNLOAD_GOAL_KB = 1024          # after idle unload: within 1 MB of the start
COLD_GOAL_EXTRA_S = 0.010      # TTS cold - warm <= engine load + 10 ms
SHORT_TEXT = "The family of Dashwood had long been settled in Sussex."


def mb(kb):
    return "%.1f MB" % (kb / 1024.0)


def sec_memory_cold(ctx, inp, a):
    env = {"ASR_IDLE_TIMEOUT_MINUTES": 0.05, "TTS_IDLE_TIMEOUT_MINUTES": 0.05,
           "IDLE_CHECK_INTERVAL_SECONDS": 1}
    speech_req = os.path.join(ctx.tmp, "speech-short.json")
    with open(speech_req, "w") as f:
        json.dump({"model": "tts-1", "input": SHORT_TEXT, "voice": "alloy",
                   "response_format": "wav"}, f)
    ng, _port, _d = start_nginx(ctx, b'{"status":"ok"}')
    try:
        time.sleep(1.0)
        nginx_kb = sum(rss_kb(x) for x in [ng.pid] + descendants(ng.pid))
        nginx_n = 1 + len(descendants(ng.pid))
    finally:
        stop_nginx(ctx, ng)
    srv = Server(ctx, env, "all", "memory/cold start").start()
    cold, warm, tcold, twarm = [], [], [], []
    try:
        time.sleep(1.0)
        start_pids = srv.all_pids()
        start_kb = srv.rss_kb()
        front_kb = rss_kb(srv.pid)

        def unloaded():
            return not srv.detailed("asr")["workers"] and not srv.detailed("tts")["workers"] \
                and not srv.worker_pids()

        asr_rss = tts_rss = None
        for i in range(a.cold_pairs):
            if i and not wait_for(unloaded, 30, 0.2):
                raise Broken("workers not unloaded 30 s after the last request "
                             "(ASR_IDLE_TIMEOUT_MINUTES=0.05)")
            cold.append(curl_transcribe(srv.port("asr"), inp["short"]))
            if asr_rss is None:
                w = srv.detailed("asr")["workers"]
                asr_rss = (w[0]["rss_mb"] * 1024, rss_kb(w[0]["pid"])) if w else None
            warm.append(curl_transcribe(srv.port("asr"), inp["short"]))
            tcold.append(curl_speech(srv.port("tts"), speech_req, os.devnull)[1])
            if tts_rss is None:
                w = srv.detailed("tts")["workers"]
                tts_rss = (w[0]["rss_mb"] * 1024, rss_kb(w[0]["pid"])) if w else None
            twarm.append(curl_speech(srv.port("tts"), speech_req, os.devnull)[1])
            srv.all_pids()
        if not wait_for(unloaded, 30, 0.2):
            raise Broken("workers not unloaded 30 s after the last request")
        time.sleep(0.5)
        after_pids = srv.all_pids()
        after_kb = srv.rss_kb()
        loads = {s: srv.load_ms(s) for s in ("asr", "tts")}
    finally:
        srv.stop()
    if not asr_rss or not tts_rss:
        raise Broken("/health/detailed listed no worker right after a request")
    cenv = clean_env()
    cli_asr = peak_rss_kb([ctx.bin, "transcribe", inp["short"]], cenv, srv.cwd)
    cli_tts = peak_rss_kb([ctx.bin, "speak", SHORT_TEXT, "-o",
                           os.path.join(ctx.tmp, "cli.wav")], cenv, srv.cwd)
    scmd = srv.command()
    procs_txt = lambda pids: "front" + (" + %d more process(es)" % (len(pids) - 1)
                                        if len(pids) > 1 else " alone")
    # 5: front at idle vs nginx (a baseline, no goal set)
    ctx.row("5", "RSS of the service at idle (ASR+TTS, no worker yet): %s" % procs_txt(start_pids),
            "%s (front %s)" % (mb(start_kb), mb(front_kb)),
            "nginx master + %d workers at idle, same moment: %s" % (nginx_n - 1, mb(nginx_kb)),
            ratio(start_kb, nginx_kb), scmd + "; sum of VmRSS of front + descendants -- vs "
            "-- nginx -p $TMP/nginx (worker_processes 2), sum of VmRSS of master + workers",
            goal="baseline: nginx", verdict="%.2fx nginx" % (start_kb / max(nginx_kb, 1)))
    ctx.row("5", "RSS of one ASR worker, pocketsphinx loaded",
            "%s (/health/detailed) / %s (/proc)" % (mb(asr_rss[0]), mb(asr_rss[1])),
            "peak RSS of in-process `voicestack transcribe short.wav`: %s" % mb(cli_asr),
            ratio(asr_rss[1], cli_asr),
            scmd + "; curl -F file=@$TMP/short.wav .../v1/audio/transcriptions; "
            "GET /health/detailed workers[].rss_mb -- vs -- wait4() ru_maxrss of the CLI")
    ctx.row("5", "RSS of one TTS worker, espeak-ng loaded",
            "%s (/health/detailed) / %s (/proc)" % (mb(tts_rss[0]), mb(tts_rss[1])),
            "peak RSS of in-process `voicestack speak`: %s" % mb(cli_tts),
            ratio(tts_rss[1], cli_tts),
            scmd + "; POST /v1/audio/speech (short text); GET /health/detailed "
            "workers[].rss_mb -- vs -- wait4() ru_maxrss of the CLI")
    v_unload = judge_max(after_kb - start_kb, UNLOAD_GOAL_KB, lambda kb: "%+.2f MB" % (kb / 1024.0))
    ctx.row("5", "RSS of the whole service after idle unload: %s" % procs_txt(after_pids),
            mb(after_kb), "the service at idle before any request: %s (difference %+.2f MB)"
            % (mb(start_kb), (after_kb - start_kb) / 1024.0), ratio(after_kb, start_kb),
            scmd + "; %d ASR + %d TTS requests, then wait until /health/detailed lists no "
            "worker; sum of VmRSS of front + descendants" % (2 * a.cold_pairs, 2 * a.cold_pairs),
            goal="after - start <= 1 MB", verdict=v_unload)
    la, lt = loads["asr"], loads["tts"]
    c, w, tc, tw = median(cold), median(warm), median(tcold), median(twarm)
    ctx.row("6", "ASR cold request (first after unload), %.1f s clip (median of %d)"
            % (inp["dur"]["short"], len(cold)), ms(c),
            "warm request, same file: %s; difference %s; pocketsphinx load_ms median %s"
            % (ms(w), ms(c - w), ("%d ms" % median(la)) if la else "not logged"),
            ratio(c, w), scmd + "; curl -w '%{time_total}' -F file=@$TMP/short.wav (cold) "
            "then again (warm); repeated after each unload; load_ms from the worker log")
    diffs = [x - y for x, y in zip(tcold, twarm)]
    v_cold = "n/a (no load_ms logged)"
    if lt:
        limit = median(lt) / 1000.0 + COLD_GOAL_EXTRA_S
        noise = (max(diffs) - min(diffs)) / 2.0 if len(diffs) > 1 else 0.0
        v_cold = judge_max(tc - tw, limit, lambda s: "%.1f ms" % (s * 1000.0), noise)
    ctx.row("6", "TTS cold - warm, short sentence (median of %d) vs espeak-ng's load"
            % len(tcold), "%s (cold %s, warm %s; per pair %s)"
            % (ms(tc - tw), ms(tc), ms(tw), ", ".join("%.0f" % (d * 1000) for d in diffs)),
            "espeak-ng load_ms (worker log event=model_loaded): median %s"
            % (("%d ms (%s)" % (median(lt), ", ".join(map(str, lt)))) if lt else "not logged"),
            ratio((tc - tw) * 1000, median(lt)) if lt else "n/a",
            scmd + "; POST /v1/audio/speech (wav) cold then warm; repeated after each unload",
            goal="cold - warm <= load + 10 ms", verdict=v_cold)
    ctx.facts.update(mem=dict(start=start_kb, front=front_kb, after=after_kb, nginx=nginx_kb,
                              start_n=len(start_pids), after_n=len(after_pids),
                              asr=asr_rss, tts=tts_rss, cli_asr=cli_asr, cli_tts=cli_tts,
                              v_unload=v_unload),
                     cold=dict(asr=(c, w, la, cold, warm), tts=(tc, tw, lt, diffs),
                               v_cold=v_cold))

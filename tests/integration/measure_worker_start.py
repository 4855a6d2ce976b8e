#!/usr/bin/python3
"""measure_worker_start.py - what a cold TTS request costs over a warm one.

Not a test (no timing assertions in the suite): prints the figures quoted in
docs/ARCHITECTURE.md "Worker start". A real server, real espeak-ng, pcm
"Hello there.", one TTS slot:

  cold (spawner running)  the TTS worker was idle-unloaded while an ASR worker
                          keeps the spawner alive: the new worker is a fork
  cold (full idle)        both services unloaded, so the spawner is gone too:
                          the cold request starts it (the price of the memory policy)
  warm                    the next request, same worker

and the medians of cold - warm and of espeak-ng's load_ms (from the worker's
event=model_loaded line). Usage, from the repo root:

    /usr/bin/python3 tests/integration/measure_worker_start.py --bin build/voicestack [-n 10]
"""

import argparse
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TEXT = "Hello there."


def timed_speak(s):
    t0 = time.monotonic()
    r = h.speak(s.tts_port, TEXT, response_format="pcm")
    ms = (time.monotonic() - t0) * 1000
    assert r.status == 200, r
    return ms


def last_load_ms(s, seen):
    h.wait_for(lambda: len(re.findall(r"engine=espeak-ng .*load_ms=", "\n".join(s.stderr_lines)))
               > seen, "espeak-ng model_loaded line", 10)
    return int(re.findall(r"engine=espeak-ng .*load_ms=(\d+)", "\n".join(s.stderr_lines))[-1])


def unloaded(s, n):
    return len([l for l in s.stderr_lines if "event=model_unloaded service=tts" in l]) >= n


def run(n, full_idle):
    env = {"TTS_IDLE_TIMEOUT_MINUTES": "0.01", "IDLE_CHECK_INTERVAL_SECONDS": "0.2",
           "TTS_MAX_CONCURRENT_REQUESTS": "1",
           "ASR_IDLE_TIMEOUT_MINUTES": "0.01" if full_idle else "0"}
    s = h.Server(env=env, name="worker-start").start()
    cold, warm, load, via = [], [], [], []
    try:
        timed_speak(s)  # page cache, voices
        for i in range(n):
            if not full_idle:
                # an ASR worker keeps the spawner alive while TTS unloads
                r = h.transcribe(s.asr_port, os.path.join(h.CARDS, "001.wav"), timeout=90)
                assert r.status == 200, r
            h.wait_for(lambda: unloaded(s, i + 1), "tts idle unload", 20)
            if full_idle:
                h.wait_for(lambda: not h._proc_children(s.pid), "front alone", 20)
            time.sleep(0.3)
            cold.append(timed_speak(s))
            load.append(last_load_ms(s, i + 1))
            via.append(re.findall(r"event=worker_started service=tts .* via=(\w+)",
                                  "\n".join(s.stderr_lines))[-1])
            warm.append(timed_speak(s))
    finally:
        s.stop()
    d = [c - w for c, w in zip(cold, warm)]
    return {"cold_ms": statistics.median(cold), "warm_ms": statistics.median(warm),
            "cold_minus_warm_ms": statistics.median(d), "load_ms": statistics.median(load),
            "via": sorted(set(via))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/voicestack")
    ap.add_argument("-n", type=int, default=10)
    a = ap.parse_args()
    h.SERVER_BIN = a.bin
    for name, full in (("spawner running", False), ("full idle", True)):
        m = run(a.n, full)
        print("cold (%s): median of %d: cold %.1f ms, warm %.1f ms, cold - warm %.1f ms, "
              "espeak-ng load_ms %.0f, via %s" % (name, a.n, m["cold_ms"], m["warm_ms"],
                                                   m["cold_minus_warm_ms"], m["load_ms"],
                                                   ",".join(m["via"])))


if __name__ == "__main__":
    main()

"""test_memory_admission.py - admission that knows memory and load (issue 10).

- /health/ready answers 503 while no new request could be admitted: every
  slot busy and the queue full or absent (docs/API.md promised it; it
  answered 200), so a load balancer sends the next request elsewhere.
- A request that would start a worker whose model does not fit under
  MEMORY_THRESHOLD_PERCENT (by the resident size the model's last load
  measured) gets 503 insufficient_memory_for_model with Retry-After, before
  any worker starts. The guard's input is a meminfo file we write
  (VS_TEST_PROC_ROOT, a test seam like VS_TEST_ENGINE_SLEEP_MS).
"""

import os
import threading

import harness as h

TEST_TIMEOUT = 300
CARD = os.path.join(h.CARDS, "001.wav")


def _silence(seconds):
    return h.wav_bytes(b"\0\0" * int(16000 * seconds))


def test_ready_is_503_while_every_slot_is_busy_and_the_queue_full():
    for queue in ("0", "1"):
        s = h.Server(env={"ASR_ENGINE": "test-asr", "ASR_MAX_CONCURRENT_REQUESTS": "1",
                          "ASR_MAX_QUEUE": queue, "VS_TEST_ENGINE_SLEEP_MS": "3000"},
                     service="asr", name="ready-busy-q" + queue).start()
        try:
            assert s.get("asr", "/health/ready").status == 200
            threads = [threading.Thread(target=h.transcribe, args=(s.asr_port, _silence(1)))
                       for _ in range(1 + int(queue))]
            for t in threads:
                t.start()
                h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"]
                           == 1, "the slot busy", 10)
            if queue == "1":
                h.wait_for(lambda: s.health_detailed("asr")["queue"]["depth"] == 1,
                           "one queued", 10)
            r = s.get("asr", "/health/ready")
            assert r.status == 503, "/health/ready %d with the slot busy and queue %s full" % (
                r.status, queue)
            body = r.json()
            assert body["status"] == "not_ready" and body["reason"] == "busy", body
            for t in threads:
                t.join(30)
            s.wait_slots_free("asr")
            assert s.get("asr", "/health/ready").status == 200
        finally:
            s.stop()


def test_cold_load_that_would_not_fit_gets_503_before_any_worker_starts():
    """512 MiB machine, 50% in use, threshold 60%: pocketsphinx (about
    100 MB measured at its first load) fits while its worker is loaded, and
    once unloaded its next load is refused."""
    root = h.fake_proc_root(512 * 1024, 256 * 1024)
    s = h.Server(env={"VS_TEST_PROC_ROOT": root, "MEMORY_THRESHOLD_PERCENT": "60",
                      "ASR_IDLE_TIMEOUT_MINUTES": "0.02", "IDLE_CHECK_INTERVAL_SECONDS": "0.3"},
                 service="asr", name="model-memory").start()
    try:
        r = h.transcribe(s.asr_port, CARD)
        assert r.status == 200, r
        m = [x for x in s.health_detailed("asr")["models"] if x["default"]][0]
        assert m["load_rss_mb"] > 51.2, "inconclusive: measured %s MB" % m["load_rss_mb"]
        h.wait_for(lambda: not s.health_detailed("asr")["model"]["loaded"], "unloaded", 20)
        r = h.transcribe(s.asr_port, CARD)
        e = h.assert_error_shape(r, 503)
        assert e["code"] == "insufficient_memory_for_model", e
        assert r.headers.get("retry-after") == "60", r.headers
        d = s.health_detailed("asr")
        assert d["workers"] == [] and d["concurrency"]["active_requests"] == 0, d
        assert s.log_contains(r"event=reject reason=model_memory service=asr model=pocketsphinx",
                              timeout=2), "no event=reject reason=model_memory line"
        # counted when the request completes, which may be just after the
        # client has read the reply
        key = 'voicestack_rejections_total{service="asr",reason="model_memory"}'
        h.wait_for(lambda: s.metrics("asr").get(key) == 1, key + " == 1", 5)
        # memory freed (the file says so): the same request loads again
        with open(os.path.join(root, "proc", "meminfo"), "w") as f:
            f.write("MemTotal: 524288 kB\nMemFree: 500000 kB\nMemAvailable: 500000 kB\n"
                    "SwapTotal: 0 kB\nSwapFree: 0 kB\n")
        h.wait_for(lambda: h.transcribe(s.asr_port, CARD).status == 200,
                   "a transcription once memory is free", 10, step=0.5)
    finally:
        s.stop()


def test_auto_slots_follow_the_memory_limit():
    """ASR_MAX_CONCURRENT_REQUESTS=auto: on this machine (GBs free) the cores
    cap it; on a 512 MiB machine half used under a 60% threshold no 110 MB
    model fits and it is one slot. /health/detailed shows the derivation."""
    cores = len(os.sched_getaffinity(0))
    tight = h.fake_proc_root(512 * 1024, 256 * 1024)
    got = {}
    for name, env in (("roomy", {}), ("tight", {"VS_TEST_PROC_ROOT": tight,
                                                 "MEMORY_THRESHOLD_PERCENT": "60"})):
        env = dict(env, ASR_MAX_CONCURRENT_REQUESTS="auto")
        s = h.Server(env=env, service="asr", name="auto-" + name).start()
        try:
            d = s.health_detailed("asr")
            a = d["admission"]["auto"]
            print("  %s: %s" % (name, a))
            assert a and a["slots"] == d["concurrency"]["max_concurrent"], d
            assert a["cores"] == cores and a["model_mb"] > 0, a
            got[name] = a["slots"]
            r = h.transcribe(s.asr_port, CARD)
            assert r.status == 200, r
        finally:
            s.stop()
    assert got["tight"] == 1, got
    assert got["roomy"] == min(cores, 64), got
    if cores > 1:
        assert got["roomy"] != got["tight"], got


def _psi(root, avg10):
    os.makedirs(os.path.join(root, "proc", "pressure"), exist_ok=True)
    with open(os.path.join(root, "proc", "pressure", "memory"), "w") as f:
        f.write("some avg10=%.2f avg60=0.00 avg300=0.00 total=0\n"
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" % avg10)


def test_memory_pressure_refuses_new_work():
    root = h.fake_proc_root(8 * 1024 * 1024, 6 * 1024 * 1024)
    _psi(root, 40)
    s = h.Server(env={"VS_TEST_PROC_ROOT": root, "MEMORY_PRESSURE_REFUSE_PERCENT": "25"},
                 name="pressure-refuse").start()
    try:
        for svc, call in (("asr", lambda: h.transcribe(s.asr_port, CARD)),
                          ("tts", lambda: h.speak(s.tts_port, "Hello."))):
            r = call()
            e = h.assert_error_shape(r, 503)
            assert "pressure" in e["message"].lower() and "40.0" in e["message"], e
            assert r.headers.get("retry-after") == "30", r.headers
            ready = s.get(svc, "/health/ready")
            assert ready.status == 503 and ready.json()["reason"] == "pressure", ready
            d = s.health_detailed(svc)
            assert d["admission"]["pressure"]["some_avg10"] == 40.0, d["admission"]
        _psi(root, 1)
        h.wait_for(lambda: h.transcribe(s.asr_port, CARD).status == 200,
                   "admitted once pressure is down", 10, step=0.3)
    finally:
        s.stop()


def test_memory_pressure_shrinks_the_slots_and_gives_them_back():
    """Two slots; pressure over MEMORY_PRESSURE_SHRINK_PERCENT: one slot, so
    the second concurrent request (sleeping engine) gets 429; calm for
    MEMORY_PRESSURE_CALM_SECONDS: both slots again. Each change logged once."""
    root = h.fake_proc_root(8 * 1024 * 1024, 6 * 1024 * 1024)
    _psi(root, 0)
    s = h.Server(env={"VS_TEST_PROC_ROOT": root, "MEMORY_PRESSURE_SHRINK_PERCENT": "20",
                      "MEMORY_PRESSURE_CALM_SECONDS": "1", "ASR_ENGINE": "test-asr",
                      "ASR_MAX_CONCURRENT_REQUESTS": "2", "VS_TEST_ENGINE_SLEEP_MS": "2000"},
                 service="asr", name="pressure-shrink").start()
    try:
        _psi(root, 35)
        h.wait_for(lambda: s.health_detailed("asr")["admission"]["slots_limit"] == 1,
                   "limit 1 under pressure", 10)
        assert s.log_contains(r"event=slots_shrunk service=asr limit=1 max=2")
        assert s.health_detailed("asr")["admission"]["pressure"]["shrunk"] is True
        t = threading.Thread(target=h.transcribe, args=(s.asr_port, _silence(1)))
        t.start()
        h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"] == 1,
                   "one busy", 10)
        r = h.transcribe(s.asr_port, _silence(1))
        h.assert_error_shape(r, 429)
        t.join(30)
        _psi(root, 2)
        h.wait_for(lambda: s.health_detailed("asr")["admission"]["slots_limit"] == 2,
                   "limit back to 2 after 1 s calm", 10)
        assert s.log_contains(r"event=slots_restored service=asr limit=2 max=2")
        lines = [l for l in s.stderr_lines if "event=slots_" in l]
        assert len(lines) == 2, lines
        threads = [threading.Thread(target=h.transcribe, args=(s.asr_port, _silence(1)))
                   for _ in range(2)]
        for x in threads:
            x.start()
        h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"] == 2,
                   "two busy again", 10)
        for x in threads:
            x.join(30)
    finally:
        s.stop()

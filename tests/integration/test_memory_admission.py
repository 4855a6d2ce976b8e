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


def _fake_meminfo(total_kb, available_kb):
    root = h.tmppath("fake-proc-%d" % available_kb)
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    with open(os.path.join(root, "proc", "meminfo"), "w") as f:
        f.write("MemTotal: %d kB\nMemFree: %d kB\nMemAvailable: %d kB\n"
                "SwapTotal: 0 kB\nSwapFree: 0 kB\n" % (total_kb, available_kb, available_kb))
    return root


def test_cold_load_that_would_not_fit_gets_503_before_any_worker_starts():
    """512 MiB machine, 50% in use, threshold 60%: pocketsphinx (about
    100 MB measured at its first load) fits while its worker is loaded, and
    once unloaded its next load is refused."""
    root = _fake_meminfo(512 * 1024, 256 * 1024)
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
        assert r.headers.get("retry-after") == "60"
        d = s.health_detailed("asr")
        assert d["workers"] == [] and d["concurrency"]["active_requests"] == 0, d
        assert s.log_contains(r"event=reject reason=model_memory service=asr model=pocketsphinx")
        m = s.metrics("asr")
        assert m.get('voicestack_rejections_total{service="asr",reason="model_memory"}') == 1
        # memory freed (the file says so): the same request loads again
        with open(os.path.join(root, "proc", "meminfo"), "w") as f:
            f.write("MemTotal: 524288 kB\nMemFree: 500000 kB\nMemAvailable: 500000 kB\n"
                    "SwapTotal: 0 kB\nSwapFree: 0 kB\n")
        h.wait_for(lambda: h.transcribe(s.asr_port, CARD).status == 200,
                   "a transcription once memory is free", 10, step=0.5)
    finally:
        s.stop()

"""test_timeout.py - REQUEST_TIMEOUT_SECONDS: 504, worker killed, slot back.

A request whose worker runs past the timeout gets 504 with the error JSON,
the worker process is gone (its pid from /health/detailed workers[] before,
not alive after), the slot comes back, and the next request starts a fresh
worker. Shown with the test engine (sleeping 5 s against a 1 s timeout) and
with real pocketsphinx on a long clip, where the next, short request then
succeeds on the same server. No assertion is on elapsed time."""

import os
import time

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")






def _busy_worker_pid(s, service, timeout=30.0):
    return s.busy_worker_pid(service, timeout)


def _wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while h.proc_alive(pid):
        assert time.monotonic() < deadline, "worker %d still alive %.0f s after the 504" % (
            pid, timeout)
        time.sleep(0.05)


def _timed_out(s, service, start_request, wait=60.0):
    """Start a request, note its worker's pid, expect a 504; returns the pid."""
    t, box = h.in_thread(start_request)
    pid = _busy_worker_pid(s, service)
    assert h.proc_alive(pid), "worker %d not alive while busy" % pid
    r = h.join(t, box, wait)
    e = h.assert_error_shape(r, 504)
    assert e["code"] == "request_timeout", e
    assert "REQUEST_TIMEOUT_SECONDS" in e["message"], e
    _wait_gone(pid)
    d = s.wait_slots_free(service, timeout=10)
    assert pid not in [w["pid"] for w in d["workers"]], d["workers"]
    assert s.log_contains(r"event=request_timeout .*pid=%d" % pid, timeout=2), \
        "no request_timeout log line for pid %d" % pid
    return pid


def test_504_test_engine_worker_killed_slot_back():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "REQUEST_TIMEOUT_SECONDS": "1", "VS_TEST_ENGINE_SLEEP_MS": "5000",
                      "ASR_MAX_CONCURRENT_REQUESTS": "1", "TTS_MAX_CONCURRENT_REQUESTS": "1"},
                 name="timeout-test-engine").start()
    try:
        p1 = _timed_out(s, "asr", lambda: h.transcribe(s.asr_port, CARD, timeout=60))
        # the slot is usable again: the next request is admitted (no 429) and
        # runs on a freshly spawned worker (it sleeps 5 s too, so it times out)
        p2 = _timed_out(s, "asr", lambda: h.transcribe(s.asr_port, CARD, timeout=60))
        assert p2 != p1, "no fresh worker after the timeout (pid %d reused)" % p1
        p3 = _timed_out(s, "tts", lambda: h.speak(s.tts_port, "Hello.", timeout=60))
        assert s.alive() and s.get("asr", "/health").status == 200
        m = s.get("asr", "/metrics").body.decode()
        assert 'voicestack_request_timeouts_total{service="asr",model="test-asr"} 2' in m, \
            [l for l in m.splitlines() if "timeouts" in l]
        assert p3 not in (p1, p2)
    finally:
        s.stop()
    # with a request that fits in the timeout the same settings serve it
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "REQUEST_TIMEOUT_SECONDS": "1", "VS_TEST_ENGINE_SLEEP_MS": "0",
                      "ASR_MAX_CONCURRENT_REQUESTS": "1"}, name="timeout-fast").start()
    try:
        r = h.transcribe(s.asr_port, CARD, timeout=60)
        assert r.status == 200, "request within REQUEST_TIMEOUT_SECONDS: %d %r" % (r.status,
                                                                                  r.body)
    finally:
        s.stop()


def test_504_real_pocketsphinx_then_next_request_succeeds():
    # ~74 s of speech (librivox x3): far longer than the timeout on any machine;
    # one short card (~1 s of speech, model load included) fits in it
    long_wav = h.long_librivox_wav(3, "long74.wav")
    s = h.Server(env={"REQUEST_TIMEOUT_SECONDS": "8", "ASR_MAX_CONCURRENT_REQUESTS": "1"},
                 name="timeout-pocketsphinx").start()
    try:
        pid = _timed_out(s, "asr", lambda: h.transcribe(s.asr_port, long_wav, timeout=120))
        r = h.transcribe(s.asr_port, CARD, timeout=60)
        assert r.status == 200, "short request after a 504: %d %r" % (r.status, r.body[:300])
        assert h.words(r.json()["text"]), r.json()
        fresh = s.worker_pids("asr")
        assert fresh and pid not in fresh, (pid, fresh)
        s.wait_slots_free("asr", timeout=10)
    finally:
        s.stop()

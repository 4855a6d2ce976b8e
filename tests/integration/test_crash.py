"""test_crash.py - a worker that dies mid-request costs only that request.

SIGKILL the worker while a request is in flight (test engine, real
pocketsphinx, real espeak-ng mid-stream) and an engine that abort()s
(VS_TEST_ENGINE_CRASH=1): the request gets a 500 with the error JSON (or, for
TTS already streaming, a response cut short so the client cannot mistake it
for complete audio), the server stays up, the slot comes back, and the next
request succeeds on a fresh worker. Each test starts its own server."""

import http.client
import json
import os
import signal
import time

import harness as h

SPEECH = "/v1/audio/speech"




def _wait_active(s, service, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.health_detailed(service)["concurrency"]["active_requests"] >= 1:
            return
        time.sleep(0.05)
    raise AssertionError("%s request never became active" % service)


def _kill_during(s, service, start_request, delay, timeout=120.0):
    """Start a request, wait for its worker and `delay` s, SIGKILL the worker
    while the request is still running; returns (response, killed_pid)."""
    t, box = h.in_thread(start_request)
    _wait_active(s, service)
    pid = s.wait_worker(service, timeout=20)
    time.sleep(delay)
    assert t.is_alive(), ("inconclusive: the request finished (%r) before the worker was "
                          "killed; make the work longer" % (box.get("r"),))
    os.kill(pid, signal.SIGKILL)
    t.join(timeout)
    assert not t.is_alive(), "request still hanging %.0f s after its worker was killed" % timeout
    if "e" in box:
        raise box["e"]
    return box["r"], pid


def _after_crash(s, service, killed_pid, next_request):
    assert s.alive(), "server exited after its worker died"
    assert s.get(service, "/health").status == 200
    s.wait_slots_free(service, timeout=10)
    r = next_request()
    assert r.status == 200, "request after the crash: %r" % (r,)
    fresh = s.worker_pids(service)
    assert killed_pid not in fresh and fresh, "no fresh worker: %s (killed %d)" % (fresh,
                                                                                  killed_pid)
    s.wait_slots_free(service, timeout=10)
    return r


def test_kill_test_engine_worker_mid_request():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "VS_TEST_ENGINE_SLEEP_MS": "3000"}, name="crash-test-asr").start()
    try:
        wav = os.path.join(h.CARDS, "001.wav")
        r, pid = _kill_during(s, "asr", lambda: h.transcribe(s.asr_port, wav, timeout=60), 0.8)
        h.assert_error_shape(r, 500)
        r = _after_crash(s, "asr", pid, lambda: h.transcribe(s.asr_port, wav, timeout=60))
        assert "test transcript of" in r.json()["text"], r
    finally:
        s.stop()


def test_kill_pocketsphinx_worker_mid_request():
    # ~100 s of speech: 5 librivox sentences x 4, joined sample-exactly
    long_wav = h.long_librivox_wav(4, "long.wav")
    s = h.Server(name="crash-pocketsphinx").start()
    try:
        t0 = time.monotonic()
        r, pid = _kill_during(s, "asr", lambda: h.transcribe(s.asr_port, long_wav, timeout=120),
                              2.0)
        print("  killed worker %d after %.1f s" % (pid, time.monotonic() - t0))
        h.assert_error_shape(r, 500)
        short = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0880.wav")
        r = _after_crash(s, "asr", pid, lambda: h.transcribe(s.asr_port, short, timeout=60))
        assert len(h.words(r.json()["text"])) >= 3, r
    finally:
        s.stop()


def _speech_stream(port, text, kill=None):
    """POST a speech request and read it as a stream. If kill is given, it is
    called right after the first body bytes arrive. Returns (status, headers,
    body, complete)."""
    conn = http.client.HTTPConnection(h.HOST, port, timeout=60)
    try:
        conn.request("POST", SPEECH, json.dumps({"model": "tts-1", "input": text,
                                                 "voice": "alloy", "response_format": "mp3"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        hdrs = {k.lower(): v for k, v in r.msg.items()}
        if r.status != 200:
            return r.status, hdrs, r.read(), True
        first = r.read1(4096)
        if kill is not None:
            kill()
        body, complete = h.read_rest(r, [first])
        return r.status, hdrs, body, complete
    finally:
        conn.close()


def test_kill_espeak_worker_mid_stream():
    s = h.Server(name="crash-espeak").start()
    text = ("Go forward ten meters, then turn left at the big red door and wait for me "
            "there. ") * 50
    text = text[:4000]
    try:
        # undisturbed run: the full length, and a warm worker to kill
        st, _, full, complete = _speech_stream(s.tts_port, text)
        assert st == 200 and complete, "undisturbed long speech failed: %s" % st
        pid = s.wait_worker("tts", timeout=5)
        killed = []

        def kill():
            os.kill(pid, signal.SIGKILL)
            killed.append(time.monotonic())
        st, hdrs, body, complete = _speech_stream(s.tts_port, text, kill=kill)
        print("  undisturbed %d bytes; killed run: status %d, %d bytes, complete=%s" % (
            len(full), st, len(body), complete))
        if st == 200:
            assert killed, "worker never killed"
            assert len(body) < len(full) or not complete, \
                "inconclusive: the whole response (%d bytes) was produced before the kill" % (
                    len(body))
            # a cut stream must not look complete: a clean chunked end would
            # hand the client truncated audio as if it were whole
            assert not complete, "stream ended cleanly after %d of %d bytes despite the " \
                "worker being killed" % (len(body), len(full))
        else:
            h.assert_error_shape(h.Resp(st, hdrs, body), 500)
        _after_crash(s, "tts", pid, lambda: h.speak(s.tts_port, "Hello again.",
                                                   response_format="wav", timeout=60))
    finally:
        s.stop()


def test_engine_abort_gives_500():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "VS_TEST_ENGINE_SLEEP_MS": "200", "VS_TEST_ENGINE_CRASH": "1"},
                 name="crash-abort").start()
    try:
        wav = os.path.join(h.CARDS, "002.wav")
        for i in range(2):  # twice: the crash must not poison the slot or the pool
            r = h.transcribe(s.asr_port, wav, timeout=60)
            h.assert_error_shape(r, 500)
            assert s.alive() and s.get("asr", "/health").status == 200
            s.wait_slots_free("asr", timeout=10)
            r = h.speak(s.tts_port, "Hello.", response_format="wav", timeout=60)
            if r.status == 200:
                assert not r.complete, "TTS crash produced a clean 200 (%d bytes)" % len(r.body)
            else:
                h.assert_error_shape(r, 500)
            assert s.alive() and s.get("tts", "/health").status == 200
            s.wait_slots_free("tts", timeout=10)
    finally:
        s.stop()

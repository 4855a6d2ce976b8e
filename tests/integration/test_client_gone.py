"""test_client_gone.py - a client that hangs up while its request waits
(for its worker, in the queue, or for the first audio) frees its slot at
once (issue 7, item 4a).

While a request waits, libmicrohttpd does not watch its connection; the
front does (src/http/watcher.c). A hang-up kills the worker (event=job_abandoned
with its pid, which is gone afterwards), frees the slot or the place in the
queue, and logs event=client_gone. Shown with real pocketsphinx on a long clip
(the work would last far longer than the waits here), a queued client, and
the test TTS engine before its first frame. The proof is /health/detailed and
the log, never elapsed time."""

import os

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")
TRANSCRIBE = "/v1/audio/transcriptions"


def _upload(s, wav):
    with open(wav, "rb") as f:
        audio = f.read()
    body, ct = h.encode_multipart([("model", "whisper-1"),
                                   ("file", ("long.wav", audio, "audio/wav"))])
    return h.open_request(s.asr_port, "POST", TRANSCRIBE, body, {"Content-Type": ct})


def _busy_pid(s, service):
    def busy():
        d = s.health_detailed(service)
        w = [w for w in d["workers"] if w["state"] in ("busy", "loading")]
        return w[0]["pid"] if w and d["concurrency"]["active_requests"] == 1 else None
    return h.wait_for(busy, "a busy %s worker" % service, timeout=30)


def _gone(s, service, phase):
    assert s.log_contains(r"event=client_gone service=%s .*phase=%s" % (service, phase),
                          timeout=20), "no event=client_gone phase=%s line" % phase


def test_asr_client_gone_mid_transcription_real_pocketsphinx():
    long_wav = h.long_librivox_wav(4, "long-gone.wav")
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, service="asr",
                 name="gone-asr").start()
    try:
        so = _upload(s, long_wav)
        pid = _busy_pid(s, "asr")
        so.close()
        _gone(s, "asr", "working")
        d = s.health_detailed("asr")
        assert d["concurrency"]["available_slots"] == 1, d["concurrency"]
        h.wait_for(lambda: not h.proc_alive(pid), "worker %d killed" % pid, timeout=10)
        assert s.log_contains(r"event=job_abandoned service=asr .*pid=%d" % pid, timeout=2)
        assert s.log_contains(r"event=client_gone service=asr .*cancelled=worker_killed")
        r = h.transcribe(s.asr_port, CARD, timeout=90)
        assert r.status == 200, "request after the hang-up: %r" % (r,)
        m = s.get("asr", "/metrics").body.decode()
        assert 'voicestack_client_gone_total{service="asr",phase="working"} 1' in m, \
            [l for l in m.splitlines() if "client_gone" in l]
    finally:
        s.stop()


def test_asr_queued_client_gone_leaves_queue_at_once():
    long_wav = h.long_librivox_wav(4, "long-gone-q.wav")
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1", "ASR_MAX_QUEUE": "2",
                      "ASR_QUEUE_TIMEOUT_SECONDS": "600"}, service="asr",
                 name="gone-queued").start()
    first = None
    try:
        first = _upload(s, long_wav)
        _busy_pid(s, "asr")
        # a short clip: its whole body (and then the FIN) reaches our socket
        # buffer while it waits; a FIN behind an unread multi-MB body would not
        queued = _upload(s, CARD)
        h.wait_for(lambda: s.health_detailed("asr")["queue"]["depth"] == 1, "queued")
        queued.close()
        _gone(s, "asr", "queued")
        d = s.health_detailed("asr")
        assert d["queue"]["depth"] == 0, d["queue"]
        assert d["concurrency"]["active_requests"] == 1, d["concurrency"]
        assert s.log_contains(r"event=client_gone service=asr .*cancelled=queue_place")
        first.close()
        _gone(s, "asr", "working")
        assert s.health_detailed("asr")["concurrency"]["available_slots"] == 1
    finally:
        if first:
            first.close()
        s.stop()


def test_tts_client_gone_before_first_audio_test_engine():
    s = h.Server(env={"TTS_ENGINE": "test-tts", "VS_TEST_ENGINE_SLEEP_MS": "60000",
                      "TTS_MAX_CONCURRENT_REQUESTS": "1"}, service="tts",
                 name="gone-tts").start()
    try:
        so = h.open_request(s.tts_port, "POST", "/v1/audio/speech",
                            b'{"model":"tts-1","input":"Hello.","voice":"alloy"}',
                            {"Content-Type": "application/json"})
        pid = _busy_pid(s, "tts")
        so.close()
        _gone(s, "tts", "working")
        assert s.health_detailed("tts")["concurrency"]["available_slots"] == 1
        h.wait_for(lambda: not h.proc_alive(pid), "worker %d killed" % pid, timeout=10)
    finally:
        s.stop()

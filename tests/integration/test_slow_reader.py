"""test_slow_reader.py - a TTS client that reads slowly never holds a slot
for longer than its worker works for it (issue 7, item 2).

Two clients with a 4 KB receive buffer read a long pcm answer at ~200 B/s
from real espeak-ng. (a) REQUEST_TIMEOUT_SECONDS kills the worker that waits
for them: the slot comes back at once, and another client gets a 200 (not a
429) while the slow clients are still connected. (b) An answer that is over (here: its
worker timed out) but that the client drains too slowly is cut after
TTS_DRAIN_TIMEOUT_SECONDS, with an event=stream_drain_timeout log line. No assertion is on elapsed time."""

import json

import harness as h

SPEECH = "/v1/audio/speech"
LONG = (("The quick brown fox jumps over the lazy dog near the river bank, and then it "
         "runs back home. ") * 60)[:4000]


def _slow_speech(s, text):
    body = json.dumps({"model": "tts-1", "input": text, "voice": "alloy",
                       "response_format": "pcm"}).encode()
    so = h.open_request(s.tts_port, "POST", SPEECH, body,
                        {"Content-Type": "application/json"}, rcvbuf=4096)
    status, hdrs, _ = h.read_head(so, timeout=60)
    assert status == 200, "slow speech did not start: %d %s" % (status, hdrs)
    return h.SlowReader(so, rate=200)


def test_tts_timeout_frees_slot_while_slow_readers_stay_connected():
    s = h.Server(env={"REQUEST_TIMEOUT_SECONDS": "3", "TTS_MAX_CONCURRENT_REQUESTS": "2",
                      "TTS_DRAIN_TIMEOUT_SECONDS": "3600"}, service="tts",
                 name="slow-reader-timeout").start()
    readers = []
    try:
        readers = [_slow_speech(s, LONG) for _ in range(2)]
        assert s.log_contains(r"event=request_timeout service=tts", timeout=60), \
            "the slow readers' workers were not timed out"
        h.wait_for(lambda: len([l for l in s.stderr_lines if "event=request_timeout" in l]) >= 2,
                   "both workers timed out", timeout=60)
        d = s.wait_slots_free("tts", timeout=10)
        print("  after the timeouts: concurrency=%s, readers got %s bytes" % (
            d["concurrency"], [r.got for r in readers]))
        assert not any(r.closed.is_set() for r in readers), \
            "inconclusive: a slow reader's connection ended before the check"
        r = h.speak(s.tts_port, "Hello again.", response_format="wav", timeout=60)
        assert r.status == 200 and r.complete, "speech while slow readers hold on: %r" % (r,)
        assert not any(r.closed.is_set() for r in readers), \
            "the slow readers were disconnected (drain bound is 3600 s)"
    finally:
        for rd in readers:
            rd.stop()
        s.stop()


def test_tts_drain_bound_closes_slow_reader_after_timeout():
    s = h.Server(env={"REQUEST_TIMEOUT_SECONDS": "3", "TTS_MAX_CONCURRENT_REQUESTS": "1",
                      "TTS_DRAIN_TIMEOUT_SECONDS": "4"}, service="tts",
                 name="slow-reader-drain").start()
    rd = None
    try:
        rd = _slow_speech(s, LONG)
        assert s.log_contains(r"event=request_timeout service=tts", timeout=60), \
            "the slow reader's worker was not timed out"
        # the answer is over (its worker is gone) but most of it still waits
        # for the client: the drain bound cuts it
        assert rd.closed.wait(60), "the drain bound did not close the slow reader"
        assert s.log_contains(r"event=stream_drain_timeout service=tts .*drain_timeout_s=4",
                              timeout=5), "no event=stream_drain_timeout log line"
        print("  slow reader cut after %d bytes" % rd.got)
        s.wait_slots_free("tts", timeout=10)
        r = h.speak(s.tts_port, "Hello again.", response_format="wav", timeout=60)
        assert r.status == 200 and r.complete, "speech after the drain bound: %r" % (r,)
    finally:
        if rd:
            rd.stop()
        s.stop()

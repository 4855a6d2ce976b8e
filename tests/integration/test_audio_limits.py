"""test_audio_limits.py - cheap uploads that claim long audio.

A 7 KB wav whose header says 1 Hz is 3500 s of audio once resampled to
16 kHz: it used to hold an ASR slot until REQUEST_TIMEOUT_SECONDS (504). Such
a sample rate is refused with 400 (param "file", the message names the rate
and the accepted range) before anything is decoded. A clip whose container
declares its duration is measured before decoding: with
ASR_MAX_AUDIO_SECONDS=10 a 49 s wav gets 413 whose message names the
declared duration (a limit found while decoding cannot know it).
The server here has REQUEST_TIMEOUT_SECONDS=30 so the old behaviour fails
the test (504) instead of hanging it.
"""

import os
import random
import re

import harness as h


def test_implausible_sample_rate_is_refused():
    s = h.Server(env={"REQUEST_TIMEOUT_SECONDS": "30"}, name="rate-1hz").start()
    try:
        rnd = random.Random(7)
        pcm = bytes(rnd.getrandbits(8) for _ in range(7000))
        for rate in (1, 100, 3999):
            r = h.transcribe(s.asr_port, h.wav_bytes(pcm, rate=rate), timeout=60)
            e = h.assert_error_shape(r, 400)
            print("  %d Hz: %s" % (rate, e["message"]))
            assert e["param"] == "file", e
            assert re.search(r"\b%d Hz\b" % rate, e["message"]), e
            assert re.search(r"\b\d+ to \d+ Hz\b", e["message"]), \
                "message does not name the accepted range: %r" % e["message"]
        s.wait_slots_free("asr")
        # the lower edge of the range is accepted (8 kHz telephone audio)
        src = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0870.wav")
        r = h.transcribe(s.asr_port, h.make_audio(src, "wav", rate=8000), timeout=90)
        assert r.status == 200, r
    finally:
        s.stop()


def test_declared_duration_is_checked_before_decoding():
    s = h.Server(env={"ASR_MAX_AUDIO_SECONDS": "10", "REQUEST_TIMEOUT_SECONDS": "30"},
                 name="declared-duration").start()
    try:
        clip = h.long_librivox_wav(2, "long49.wav")
        dur = h.ffprobe_duration(clip)
        r = h.transcribe(s.asr_port, clip, timeout=60)
        e = h.assert_error_shape(r, 413)
        print("  %.1f s clip: %s" % (dur, e["message"]))
        assert e["param"] == "file", e
        assert "ASR_MAX_AUDIO_SECONDS" in e["message"], e
        assert "%.1f" % dur in e["message"], \
            "413 message does not name the declared duration %.1f s: %r" % (dur, e["message"])
        s.wait_slots_free("asr")
    finally:
        s.stop()

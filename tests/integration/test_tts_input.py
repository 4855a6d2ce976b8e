"""test_tts_input.py - what a TTS input may contain, and how big it may be.

Control characters: espeak-ng reads U+0001 followed by a number and a letter
as an embedded command ("\\u0001750S" speaks at 750 wpm, "\\u0001300A" sets
the volume). The server replaces C0 control characters other than tab,
newline and carriage return with a space, so a text with the sequence must
give exactly the audio of the same text with a space in its place (before
the fix it was a fraction as long: 750 wpm instead of 175).

Large inputs: a request body larger than the front->worker socket buffer
(about 200 KB) once got 503 worker_unavailable, because the non-blocking
send's EAGAIN was taken for a dead worker. With MAX_JSON_BODY_KB and
TTS_MAX_INPUT_CHARS raised, a ~300 KB input must be synthesized by the real
espeak-ng (200 and audio). The input is one sentence padded with spaces so
the audio stays short while the frame is large.
"""

import harness as h

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def _samples(resp):
    """Samples of a response_format=pcm answer (s16 mono)."""
    assert resp.status == 200, "speech: %d %r" % (resp.status, resp.body[:300])
    assert resp.complete, "response cut short"
    return len(resp.body) // 2


def test_control_sequence_does_not_change_speech():
    s = h.Server(name="tts-control").start()
    try:
        plain = _samples(h.speak(s.tts_port, " 750S " + SENTENCE, response_format="pcm"))
        rate = _samples(h.speak(s.tts_port, "\u0001750S " + SENTENCE,
                                   response_format="pcm"))
        vol = _samples(h.speak(s.tts_port, "\u0001" + "300A " + SENTENCE,
                                  response_format="pcm"))
        plain_vol = _samples(h.speak(s.tts_port, " 300A " + SENTENCE,
                                        response_format="pcm"))
        print("  samples: plain %d, with \\u0001750S %d; plain %d, with \\u0001300A %d"
              % (plain, rate, plain_vol, vol))
        assert plain > 0 and plain_vol > 0
        # espeak-ng's length varies by a few samples from run to run; the
        # command changed it by 18% (volume: the command is not spoken) to 80% (rate)
        assert abs(rate - plain) <= 0.03 * plain, \
            "\\u0001750S changed the speech: %d samples vs %d" % (rate, plain)
        assert abs(vol - plain_vol) <= 0.03 * plain_vol, \
            "\\u0001300A changed the speech: %d vs %d" % (vol, plain_vol)
    finally:
        s.stop()


def test_large_input_is_synthesized():
    size = 300 * 1024
    s = h.Server(env={"MAX_JSON_BODY_KB": "10240", "TTS_MAX_INPUT_CHARS": "1000000"},
                 name="tts-large").start()
    try:
        text = SENTENCE + " " * (size - 2 * len(SENTENCE)) + SENTENCE
        r = h.speak(s.tts_port, text, response_format="pcm", timeout=120)
        if r.status != 200:
            h.assert_error_shape(r, r.status)
        frames = _samples(r)
        print("  %d-byte input -> %d bytes of pcm (%d samples)" % (len(text), len(r.body), frames))
        assert frames > 0 and r.complete, "no audio for the large input"
        # the worker is still usable: a short request on the same slot works
        assert _samples(h.speak(s.tts_port, SENTENCE, response_format="pcm")) > 0
    finally:
        s.stop()

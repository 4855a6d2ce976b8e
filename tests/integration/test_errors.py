"""test_errors.py - every bad input gets its status and the OpenAI error JSON,
never a 500, and leaves the server healthy with every slot free.
Real engines (bad audio must be rejected by the real decoder path)."""

import os
import random
import re

import harness as h

srv = h.SharedServer(name="errors")


def teardown_module():
    srv.stop()


WAV = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0880.wav")
SPEECH = "/v1/audio/speech"
TRANS = "/v1/audio/transcriptions"


def _asr():
    return srv().asr_port


def _tts():
    return srv().tts_port


def _param_is(e, name):
    # OpenAI names the offending field in `param`; null is tolerated, a wrong
    # name is not.
    assert e["param"] in (None, name), "param %r, want %r: %r" % (e["param"], name, e)


def _speech_body(**kw):
    obj = {"model": "tts-1", "input": "Hello there.", "voice": "alloy"}
    obj.update(kw)
    return obj


def _multipart(fields, boundary=None):
    return h.encode_multipart(fields, boundary)


def _post_mp(port, path, body, ctype):
    return h.request(port, "POST", path, body, {"Content-Type": ctype})


def _wav():
    with open(WAV, "rb") as f:
        return f.read()


def test_unknown_route_404():
    for port in (_asr(), _tts()):
        for method, path in (("GET", "/nope"), ("POST", "/v1/audio/nope"),
                             ("GET", "/v1/audio/speech/extra"), ("GET", "/v2/models")):
            r = h.request(port, method, path, b"" if method == "POST" else None)
            h.assert_error_shape(r, 404)


def test_wrong_method_405():
    cases = [(_tts(), "GET", SPEECH, "POST"), (_asr(), "GET", TRANS, "POST"),
             (_asr(), "PUT", TRANS, "POST"), (_tts(), "DELETE", SPEECH, "POST"),
             (_asr(), "GET", "/v1/audio/translations", "POST"),
             (_tts(), "POST", "/v1/models", "GET"), (_asr(), "POST", "/health", "GET")]
    for port, method, path, allowed in cases:
        r = h.request(port, method, path, b"{}" if method in ("POST", "PUT") else None,
                      {"Content-Type": "application/json"})
        h.assert_error_shape(r, 405)
        # RFC 9110 15.5.6: a 405 MUST carry Allow
        assert allowed in r.headers.get("allow", ""), "%s %s: Allow header %r" % (
            method, path, r.headers.get("allow"))


def test_wrong_content_type_415():
    r = h.request(_tts(), "POST", SPEECH, b'{"input":"hi"}', {"Content-Type": "text/plain"})
    h.assert_error_shape(r, 415)
    r = h.request(_asr(), "POST", TRANS, b"hello", {"Content-Type": "text/plain"})
    h.assert_error_shape(r, 415)
    r = h.request(_asr(), "POST", TRANS, b'{"model":"whisper-1"}',
                  {"Content-Type": "application/json"})
    h.assert_error_shape(r, 415)
    r = h.request(_tts(), "POST", SPEECH, b"input=hi",
                  {"Content-Type": "application/x-www-form-urlencoded"})
    h.assert_error_shape(r, 415)


def test_malformed_json_400():
    for body in (b'{"model": "tts-1", "input": "hi",', b'{"model": tts-1}', b"{",
                 b'{"input": "a" "b"}'):
        r = h.post_json(_tts(), SPEECH, body)
        e = h.assert_error_shape(r, 400)
        assert re.search(r"(line|column|position|offset|char)\D{0,12}\d+", e["message"], re.I), \
            "message does not give the position: %r" % e["message"]


def test_non_object_json_400():
    for body in (b"[1, 2]", b'"text"', b"42", b"null", b"true"):
        h.assert_error_shape(h.post_json(_tts(), SPEECH, body), 400)


def test_wrong_field_types_400():
    for obj, param in ((_speech_body(input=5), "input"), (_speech_body(input=None), "input"),
                       (_speech_body(model=1), "model"), (_speech_body(voice=["a"]), "voice"),
                       (_speech_body(speed="fast"), "speed")):
        _param_is(h.assert_error_shape(h.post_json(_tts(), SPEECH, obj), 400), param)


def test_missing_or_empty_input_400():
    obj = _speech_body()
    del obj["input"]
    _param_is(h.assert_error_shape(h.post_json(_tts(), SPEECH, obj), 400), "input")
    _param_is(h.assert_error_shape(h.post_json(_tts(), SPEECH, _speech_body(input="")), 400),
              "input")


def test_malformed_multipart_400():
    good, ct = _multipart([("file", ("a.wav", _wav(), "audio/wav")), ("model", "whisper-1")])
    # 1. the declared boundary never occurs in the body
    r = _post_mp(_asr(), TRANS, good, "multipart/form-data; boundary=nosuchboundary123")
    h.assert_error_shape(r, 400)
    # 2. truncated: cut inside the file data, closing boundary missing
    r = _post_mp(_asr(), TRANS, good[:len(good) // 2], ct)
    h.assert_error_shape(r, 400)
    # 3. multipart without a boundary parameter
    r = _post_mp(_asr(), TRANS, good, "multipart/form-data")
    h.assert_error_shape(r, 400)
    # 4. garbage body under a valid header
    r = _post_mp(_asr(), TRANS, b"this is not multipart at all\r\n", ct)
    h.assert_error_shape(r, 400)


def test_missing_file_400():
    body, ct = _multipart([("model", "whisper-1"), ("language", "en")])
    _param_is(h.assert_error_shape(_post_mp(_asr(), TRANS, body, ct), 400), "file")


def test_undecodable_audio_400():
    rnd = random.Random(1234)
    junk = bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
    for data, name in ((junk, "noise.wav"), (junk, "noise.mp3"),
                       (b"Hello, this is a plain text file, not audio.\n" * 50, "notes.txt")):
        r = h.transcribe(_asr(), data, name, "application/octet-stream")
        h.assert_error_shape(r, 400)


def test_empty_file_400():
    h.assert_error_shape(h.transcribe(_asr(), b"", "empty.wav", "audio/wav"), 400)


def test_zero_length_audio_400():
    data = h.wav_bytes(b"", 16000, 1)
    assert len(data) == 44, "test setup: header-only wav is %d bytes" % len(data)
    h.assert_error_shape(h.transcribe(_asr(), data, "zero.wav", "audio/wav"), 400)


def test_unknown_model_400():
    r = h.transcribe(_asr(), _wav(), "a.wav", "audio/wav", fields={"model": "whisper-9000"})
    e = h.assert_error_shape(r, 400)
    _param_is(e, "model")
    assert "whisper-1" in e["message"], "message does not name the models: %r" % e["message"]
    r = h.post_json(_tts(), SPEECH, _speech_body(model="tts-9000"))
    e = h.assert_error_shape(r, 400)
    _param_is(e, "model")
    assert "tts-1" in e["message"], "message does not name the models: %r" % e["message"]


def test_unsupported_language_400():
    for lang in ("fr", "xx", "english-please"):
        r = h.transcribe(_asr(), _wav(), "a.wav", "audio/wav", fields={"language": lang})
        _param_is(h.assert_error_shape(r, 400), "language")


def test_unknown_voice_400():
    # every format, including those whose container header the encoder writes
    # before the engine has looked at the voice (wav, opus)
    for fmt in ("mp3", "opus", "aac", "flac", "wav", "pcm"):
        r = h.post_json(_tts(), SPEECH, _speech_body(voice="no-such-voice-xyz",
                                                      response_format=fmt))
        _param_is(h.assert_error_shape(r, 400), "voice")


def test_input_length_limit():
    r = h.post_json(_tts(), SPEECH, _speech_body(input="a" * 4097))
    _param_is(h.assert_error_shape(r, 400), "input")
    # the limit is in characters, not bytes: 4096 two-byte characters pass
    text = ("\u00e9t\u00e9 " * 1024)[:4096]
    assert len(text) == 4096 and len(text.encode()) > 4096
    r = h.post_json(_tts(), SPEECH, _speech_body(input=text, response_format="pcm"))
    assert r.status == 200 and len(r.body) > 48000, "4096 chars rejected: %r" % r


def test_speed_out_of_range_400():
    for sp in (5, 0.1, 0, -1, 4.01):
        r = h.post_json(_tts(), SPEECH, _speech_body(speed=sp))
        _param_is(h.assert_error_shape(r, 400), "speed")


def test_bad_response_format_400():
    r = h.post_json(_tts(), SPEECH, _speech_body(response_format="mp4"))
    _param_is(h.assert_error_shape(r, 400), "response_format")
    r = h.transcribe(_asr(), _wav(), "a.wav", "audio/wav", fields={"response_format": "xml"})
    _param_is(h.assert_error_shape(r, 400), "response_format")


def test_translations_400():
    r = h.transcribe(_asr(), _wav(), "a.wav", "audio/wav", path="/v1/audio/translations")
    e = h.assert_error_shape(r, 400)
    assert "translat" in e["message"].lower(), e


def test_server_healthy_after_errors():
    # runs last: the bad requests above left nothing behind
    s = srv()
    assert s.alive(), "server died"
    for svc in ("asr", "tts"):
        r = s.get(svc, "/health")
        assert r.status == 200, "%s /health: %r" % (svc, r)
        s.wait_slots_free(svc, timeout=10)
    r = h.transcribe(s.asr_port, _wav(), "a.wav", "audio/wav", fields={"language": "en"})
    assert r.status == 200 and h.words(r.json()["text"]), r
    r = h.post_json(s.tts_port, SPEECH, _speech_body(response_format="wav"))
    assert r.status == 200 and len(r.body) > 1000, r
    for svc in ("asr", "tts"):
        s.wait_slots_free(svc, timeout=10)

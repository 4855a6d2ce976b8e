"""test_access_log.py - one access-log line per request and an X-Request-Id
on every reply (200, refusal, stream); a sane incoming id is kept, anything
else replaced by a generated one."""

import json
import re

import harness as h

SHARED = h.SharedServer(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                             "VS_TEST_ENGINE_SLEEP_MS": "0"}, name="access-log")
RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def teardown_module():
    SHARED.stop()


def _access_line(s, rid):
    fields = h.access_line(s, rid)
    line = " ".join("%s=%s" % kv for kv in fields.items())
    for k in ("service", "method", "route", "status", "bytes", "duration_ms", "queue_ms",
              "model", "client", "request_id"):
        assert k in fields, "access line lacks %s: %s" % (k, line)
    return fields


def test_request_id_on_200_refusal_and_stream():
    s = SHARED()
    r = h.request(s.asr_port, "GET", "/health", headers={"X-Request-Id": "abc-123.x_Y"})
    assert r.status == 200 and r.headers.get("x-request-id") == "abc-123.x_Y", r.headers
    f = _access_line(s, "abc-123.x_Y")
    assert f["status"] == "200" and f["route"] == "/health" and f["method"] == "GET", f
    assert f["client"] == "127.0.0.1", f

    r = h.request(s.tts_port, "POST", "/v1/audio/speech", b"{}",
                  {"Content-Type": "text/plain", "X-Request-Id": "bad id\x7f" + "x" * 80})
    assert r.status == 415, r
    rid = r.headers.get("x-request-id", "")
    assert RID.match(rid) and "bad" not in rid, "refusal X-Request-Id %r" % rid
    f = _access_line(s, rid)
    assert f["status"] == "415" and f["method"] == "POST", f

    r = h.speak(s.tts_port, "Hello.", response_format="pcm", timeout=60)
    assert r.status == 200 and r.chunked, r
    rid = r.headers.get("x-request-id", "")
    assert RID.match(rid), "stream X-Request-Id %r" % rid
    f = _access_line(s, rid)
    assert f["status"] == "200" and f["route"] == "/v1/audio/speech", f
    assert f["model"] == "tts-1" and int(f["bytes"]) == len(r.body), (f, len(r.body))

    r = h.transcribe(s.asr_port, h.os.path.join(h.CARDS, "001.wav"), timeout=60)
    assert r.status == 200, r
    f = _access_line(s, r.headers["x-request-id"])
    assert f["model"] == "whisper-1" and int(f["bytes"]) == len(r.body), f
    assert json.loads(r.body)["text"]

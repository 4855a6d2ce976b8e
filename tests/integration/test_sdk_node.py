"""test_sdk_node.py - the official OpenAI Node SDK against the real server.

Issue 7, item 9: the SDK uploads with fs.createReadStream (its documented
way); when the server refused (429, 413) it answered and closed without
reading, and the SDK saw EPIPE (APIConnectionError) in 7 of 15 tries
instead of the 429, so it never retried. These tests run the SDK itself
(tests/sdk/openai_sdk.mjs, `openai` pinned in tests/sdk/package.json and
installed by `make test`; 6.49.0 is the newest release that runs on the
machine's Node.js 20, the 7.x line needs Node.js 22) and judge what it reports: every refusal must
reach it as an APIError with the server's status, never a connection error.
A round trip (speech, then its transcription) shows the SDK's ordinary
calls working with the real engines.
"""

import json
import os
import shutil
import subprocess

import harness as h

SDK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk")
SCRIPT = os.path.join(SDK_DIR, "openai_sdk.mjs")
CARD = os.path.join(h.CARDS, "001.wav")
TRIES = 15


def _sdk(*args, timeout=300, api_key=None):
    if not shutil.which("node"):
        raise h.Skip("node is not installed")
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")):
        raise AssertionError("tests/sdk/node_modules/openai missing: `make test` installs it "
                             "(npm ci --prefix tests/sdk)")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    if api_key is not None:
        env["OPENAI_API_KEY"] = api_key
    p = subprocess.run(["node", SCRIPT] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert p.returncode == 0, "node exited %d: %s" % (p.returncode, p.stderr[-2000:])
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def _big_wav(mb):
    """A valid wav of about `mb` MB (silence): big enough that the server
    refuses while the SDK is still sending it."""
    n = mb * 1024 * 1024 // 2
    path = h.tmppath("sdk-big.wav")
    with open(path, "wb") as f:
        f.write(h.wav_bytes(b"\0\0" * n))
    return path


def _all_refused_with(results, status):
    assert len(results) == TRIES, "want %d results, got %r" % (TRIES, results)
    bad = [r for r in results if r.get("status") != status]
    assert not bad, "%d of %d SDK calls did not see the %d: %s" % (
        len(bad), TRIES, status, bad[:3])


def test_sdk_reads_every_429_of_a_streamed_upload():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "ASR_MAX_CONCURRENT_REQUESTS": "1",
                      "VS_TEST_ENGINE_SLEEP_MS": "120000"},
                 service="asr", name="sdk-429").start()
    try:
        hold = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=200))
        h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"] == 1,
                   "a request holds the only slot")
        results = _sdk("refusals", s.asr_url + "/v1", _big_wav(4), TRIES)
        _all_refused_with(results, 429)
        assert all(r["name"] == "RateLimitError" for r in results), results[:2]
        assert hold[0].is_alive(), "inconclusive: the slot holder finished"
    finally:
        s.stop()


def test_sdk_reads_every_413_of_a_streamed_upload_real_engine():
    s = h.Server(env={"MAX_UPLOAD_SIZE_MB": "1"}, service="asr", name="sdk-413").start()
    try:
        results = _sdk("refusals", s.asr_url + "/v1", _big_wav(4), TRIES)
        _all_refused_with(results, 413)
        s.wait_slots_free("asr")
    finally:
        s.stop()


def test_sdk_speech_then_transcription_real_engines():
    s = h.Server(name="sdk-roundtrip").start()
    try:
        text = "Please call me back as soon as you can, I will be at home all day long."
        out = h.tmppath("sdk-speech.wav")
        (r,) = _sdk("roundtrip", s.asr_url + "/v1", s.tts_url + "/v1", text, out)
        assert r.get("ok"), r
        assert r["bytes"] > 44 and h.decoded_duration(out) > 1.0, r
        shared = set(h.words(text)) & set(h.words(r["text"]))
        assert len(shared) >= 2, "transcript %r shares only %s with the input" % (r["text"], shared)
    finally:
        s.stop()


def test_sdk_with_api_key_gets_through_and_wrong_key_gets_authentication_error():
    """API_KEY set (issue 10): the SDK's apiKey goes out as Authorization:
    Bearer; the right one gets the round trip through the real engines, a
    wrong one an AuthenticationError (401, invalid_api_key) on each call."""
    key = "vsk-" + os.urandom(16).hex()
    s = h.Server(env={"API_KEY": key}, name="sdk-auth").start()
    try:
        text = "Please call me back as soon as you can."
        out = h.tmppath("sdk-auth.wav")
        (r,) = _sdk("roundtrip", s.asr_url + "/v1", s.tts_url + "/v1", text, out, api_key=key)
        assert r.get("ok"), r
        assert set(h.words(text)) & set(h.words(r["text"])), r
        (r,) = _sdk("roundtrip", s.asr_url + "/v1", s.tts_url + "/v1", text, out,
                    api_key=key + "x")
        assert r.get("status") == 401 and r["name"] == "AuthenticationError", r
        assert r["code"] == "invalid_api_key", r
        results = _sdk("refusals", s.asr_url + "/v1", CARD, 3, api_key="wrong-" + key)
        assert [x.get("name") for x in results] == ["AuthenticationError"] * 3, results
        assert key not in s.log(), "the key is in the server's stderr"
    finally:
        s.stop()


def test_sdk_reads_transcription_stream_and_speech_sse_real_engines():
    """Issue 11: the SDK's own stream parser reads our events: a
    transcription with stream: true yields the deltas, then the done event
    whose text is the deltas joined; speech with stream_format 'sse' (read
    with the SDK's Stream.fromSSEResponse) yields base64 deltas that decode
    to a wav, then speech.audio.done with usage."""
    s = h.Server(name="sdk-stream").start()
    try:
        clip = h.long_librivox_wav(1, "sdk-stream.wav")
        evs = _sdk("stream", s.asr_url + "/v1", clip)
        assert evs and all(e.get("ok") for e in evs), evs[-1:]
        types = [e["event"]["type"] for e in evs]
        assert types[-1] == "transcript.text.done" and types.count("transcript.text.done") == 1
        deltas = [e["event"]["delta"] for e in evs[:-1]]
        assert len(deltas) >= 3 and set(types[:-1]) == {"transcript.text.delta"}, types
        done = evs[-1]["event"]
        assert "".join(deltas) == done["text"] and done["usage"]["type"] == "duration", done
        assert len(set(h.words(done["text"]))) >= 10, done
        out = h.tmppath("sdk-sse.wav")
        evs = _sdk("speech_sse", s.tts_url + "/v1",
                   "Please call me back as soon as you can, I will be at home all day long.",
                   "wav", out)
        assert evs and all(e.get("ok") for e in evs), evs[-1:]
        assert [e["type"] for e in evs][-1] == "speech.audio.done", evs
        assert set(evs[-1]["usage"]) >= {"input_tokens", "output_tokens", "total_tokens"}
        assert h.ffprobe(out)["streams"][0]["codec_name"] == "pcm_s16le"
        assert h.decoded_duration(out) > 2.0
    finally:
        s.stop()

"""test_stream.py - OpenAI's streaming options (issue 11): transcriptions with
`stream=true` and speech with `stream_format="sse"` answer
`text/event-stream` of `data:` lines only, through the same admission,
slots, timeouts, client-gone handling and metrics as every other request.

Transcription: real pocketsphinx on a 40 s clip (the librivox sentences
twice, cut at 40 s). pocketsphinx segments the audio into utterances with
its VAD; each utterance must reach the client as a `transcript.text.delta`
as soon as it is decoded. The proof is not a time: when the first delta
arrives the request must still hold its slot (the worker is still
decoding), several deltas must arrive in separate reads, and the deltas
joined must be the `transcript.text.done` text, which equals the plain
request's transcript. Speech: real flite, the base64 deltas joined decode
to the requested format and are transcribed back. Refusals: a 429 before
the stream starts is an ordinary JSON error; a worker that dies after the
stream started ends it with a `data: {"error":...}` line; a client that
leaves mid-stream gets its worker killed and its slot freed.
"""

import base64
import json
import os
import signal

import harness as h
from pyvs import media

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CARD = os.path.join(h.CARDS, "001.wav")
SPOKEN = ("The family of Dashwood had long been settled in Sussex. Their estate was large, "
          "and their residence was at Norland Park, in the centre of their property. ")

srv = h.SharedServer(name="stream")


def teardown_module():
    srv.stop()


def _clip40():
    return media.ffmpeg_concat(h.tmppath("c40.wav"), media.librivox_wavs() * 2, 40)


def _stream_upload(port, wav, fields=(("stream", "true"),), model="whisper-1", rcvbuf=None):
    with open(wav, "rb") as f:
        audio = f.read()
    body, ct = h.encode_multipart([("model", model)] + list(fields) +
                                  [("file", (os.path.basename(wav), audio, "audio/wav"))])
    return h.open_sse(port, TRANSCRIBE, body, {"Content-Type": ct}, rcvbuf=rcvbuf)


def _speech_sse(port, obj):
    return h.open_sse(port, SPEECH, json.dumps(obj).encode(),
                      {"Content-Type": "application/json"})


def _sse_headers_ok(st):
    assert st.status == 200, (st.status, st.headers)
    assert st.headers.get("content-type", "").startswith("text/event-stream"), st.headers
    assert st.headers.get("cache-control") == "no-cache", st.headers
    assert st.headers.get("x-request-id"), st.headers


# test-tts's tone (1 s in 10 blocks) as events
TONE_SSE = {"model": "tts-1", "input": "x", "voice": "alloy", "response_format": "pcm",
            "stream_format": "sse"}


def _test_tts(name, sleep_ms, **env):
    """A TTS service with one slot of the test engine (sleep_ms before its
    first block, sleep_ms / 10 between blocks)."""
    env.update({"TTS_ENGINE": "test-tts", "TTS_MAX_CONCURRENT_REQUESTS": "1",
                "VS_TEST_ENGINE_SLEEP_MS": str(sleep_ms)})
    return h.Server(env=env, service="tts", name=name).start()


def _read_all(st, kill=None):
    """Every event of st (its head checked); with kill=(server, service),
    the service's busy worker is SIGKILLed once the first event is in. The
    stream must end with its terminating chunk, never be cut."""
    try:
        _sse_headers_ok(st)
        events = []
        for _, ev in st.events():
            events.append(ev)
            if len(events) == 1 and kill:
                os.kill(kill[0].busy_worker_pid(kill[1]), signal.SIGKILL)
        assert st.complete, "the stream was cut instead of ending with its last event"
    finally:
        st.close()
    return events


def _429_while_held(s, service, hold, open_stream):
    """open_stream() while hold() keeps the service's only slot: a plain
    JSON 429 before any stream; returns its error object."""
    t, _box = h.in_thread(hold)
    h.wait_for(lambda: s.health_detailed(service)["concurrency"]["active_requests"] == 1,
               "the slot is held")
    st = open_stream()
    try:
        r = st.resp()
    finally:
        st.close()
    e = h.assert_error_shape(r, 429)
    assert r.headers.get("retry-after"), r.headers
    assert t.is_alive(), "inconclusive: the slot holder finished"
    return e


def _leave_after_first_event(s, service, st, delta_type, route):
    """Reads st's first event (a delta), hangs up: the worker still working
    is killed and the slot freed, from one event=client_gone line."""
    _sse_headers_ok(st)
    ev = next(st.events())[1]
    assert ev["type"] == delta_type, ev
    pid = s.busy_worker_pid(service)
    st.close()
    assert s.log_contains(r"event=client_gone service=%s route=%s .*cancelled=worker_killed"
                          % (service, route), timeout=20)
    h.wait_for(lambda: not h.proc_alive(pid), "worker %d killed" % pid, timeout=10)
    s.wait_slots_free(service)


def _deltas_and_done(events, delta_type, done_type):
    types = [e["type"] for _, e in events]
    assert types and types[-1] == done_type, "events end with %r: %s" % (types[-1:], types)
    assert types.count(done_type) == 1 and set(types) == {delta_type, done_type}, types
    return [(t, e) for t, e in events if e["type"] == delta_type], events[-1][1]


# ---------------------------------------------------------------- transcription


def test_transcription_stream_deltas_arrive_as_utterances_are_decoded_real_pocketsphinx():
    s = srv.get()
    clip = _clip40()
    plain = h.transcribe(s.asr_port, clip, timeout=180)
    assert plain.status == 200, plain
    st = _stream_upload(s.asr_port, clip)
    try:
        _sse_headers_ok(st)
        events, busy_at_first = [], None
        for t, ev in st.events():
            events.append((t, ev))
            if len(events) == 1:
                # the first delta is out: the worker must still be decoding
                c = s.health_detailed("asr")["concurrency"]
                busy_at_first = c["active_requests"]
        assert st.complete, "the stream did not end with its terminating chunk"
        assert not st.other_lines, "lines that are not data: %r" % st.other_lines[:5]
    finally:
        st.close()
    deltas, done = _deltas_and_done(events, "transcript.text.delta", "transcript.text.done")
    print("  %d deltas in %d reads; first %r" % (len(deltas), len({t for t, _ in deltas}),
                                                  deltas[0][1]["delta"][:40]))
    assert len(deltas) >= 3, "a 40 s clip of 10 sentences gave %d deltas" % len(deltas)
    assert busy_at_first == 1, \
        "the first delta arrived after the worker had finished (active=%s)" % busy_at_first
    assert len({t for t, _ in deltas}) >= 3, "the deltas came in fewer than 3 reads"
    assert deltas[0][0] < events[-1][0], "the first delta came with the done event"
    assert "".join(e["delta"] for _, e in deltas) == done["text"], (deltas, done)
    assert done["text"] == plain.json()["text"], (done["text"], plain.json()["text"])
    assert done["usage"]["type"] == "duration", done
    assert abs(done["usage"]["seconds"] - 40.0) < 0.1, done
    s.wait_slots_free("asr")


def test_transcription_stream_false_and_text_format():
    s = srv.get()
    r = h.transcribe(s.asr_port, CARD, fields={"stream": "false"}, timeout=120)
    assert r.status == 200 and r.content_type() == "application/json", r
    want = r.json()["text"]
    st = _stream_upload(s.asr_port, CARD, fields=[("stream", "true"),
                                                  ("response_format", "text")])
    try:
        _sse_headers_ok(st)
        events = list(st.events())
    finally:
        st.close()
    deltas, done = _deltas_and_done(events, "transcript.text.delta", "transcript.text.done")
    assert done["text"] == want and "".join(e["delta"] for _, e in deltas) == want


def test_transcription_stream_refusals_are_json_errors():
    s = srv.get()
    for fields, param in ((("stream", "yes"),), "stream"), \
                         ((("stream", "true"), ("response_format", "srt")), "response_format"), \
                         ((("stream", "true"), ("response_format", "verbose_json")),
                          "response_format"):
        r = h.transcribe(s.asr_port, CARD, fields=list(fields), timeout=60)
        e = h.assert_error_shape(r, 400)
        assert e["param"] == param, (fields, e)
    # bad audio: refused before any event, as a plain 400
    r = h.transcribe(s.asr_port, b"not audio at all" * 100, fields={"stream": "true"},
                     timeout=60)
    assert h.assert_error_shape(r, 400)["param"] == "file"
    s.wait_slots_free("asr")


def test_transcription_stream_429_before_the_stream_is_a_json_error_real_pocketsphinx():
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, service="asr",
                 name="stream-429").start()
    try:
        held = h.long_librivox_wav(12, "hold-429.wav")
        e = _429_while_held(s, "asr", lambda: h.transcribe(s.asr_port, held, timeout=200),
                            lambda: _stream_upload(s.asr_port, CARD))
        print("  429: %s" % e["message"][:80])
    finally:
        s.stop()


def test_transcription_stream_worker_killed_mid_stream_ends_with_error_line():
    """Real pocketsphinx, a long clip: the worker is killed once the first
    delta is out; the stream goes on with one data: error line (500,
    worker_crashed) and ends cleanly, without a done event."""
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, service="asr",
                 name="stream-kill").start()
    try:
        st = _stream_upload(s.asr_port, h.long_librivox_wav(4, "kill-stream.wav"))
        events = _read_all(st, kill=(s, "asr"))
        assert events[0]["type"] == "transcript.text.delta", events[:2]
        assert set(events[-1]) == {"error"}, events[-1]
        err = events[-1]["error"]
        assert err["code"] == "worker_crashed" and err["type"] == "server_error", err
        assert all(e.get("type") == "transcript.text.delta" for e in events[:-1]), events
        s.wait_slots_free("asr")
        assert s.log_contains(r"event=stream_failed service=asr "
                              r"route=/v1/audio/transcriptions:sse status=500 code=worker_crashed",
                              timeout=5), s.stderr_tail()
        r = h.transcribe(s.asr_port, CARD, fields={"stream": "true"}, timeout=120)
        assert r.status == 200, r
    finally:
        s.stop()


def test_transcription_stream_client_gone_mid_stream_frees_the_slot():
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, service="asr",
                 name="stream-gone").start()
    try:
        st = _stream_upload(s.asr_port, h.long_librivox_wav(12, "gone-stream.wav"))
        _leave_after_first_event(s, "asr", st, "transcript.text.delta",
                                 "/v1/audio/transcriptions:sse")
        r = h.transcribe(s.asr_port, CARD, timeout=120)
        assert r.status == 200, r
    finally:
        s.stop()


def test_transcription_stream_counts_under_its_own_route_label():
    s = srv.get()
    st = _stream_upload(s.asr_port, CARD)
    try:
        list(st.events())
    finally:
        st.close()
    s.wait_slots_free("asr")
    m = h.parse_metrics(s.get("asr", "/metrics").body.decode())
    sse = [k for k in m if k.startswith("voicestack_requests_total{") and
           'route="/v1/audio/transcriptions:sse"' in k and 'status="200"' in k]
    assert sse and sum(m[k] for k in sse) >= 1, [k for k in m if "requests_total" in k]
    assert s.log_contains(r"event=access service=asr method=POST "
                          r"route=/v1/audio/transcriptions:sse status=200")


# ---------------------------------------------------------------- speech


def _audio_of(deltas):
    return b"".join(base64.b64decode(e["audio"], validate=True) for _, e in deltas)


def test_speech_sse_base64_audio_in_the_requested_format_real_flite():
    s = srv.get()
    text = SPOKEN * 4
    wav = None
    for fmt, codec in (("wav", "pcm_s16le"), ("mp3", "mp3")):
        st = _speech_sse(s.tts_port, {"model": "flite", "input": text, "voice": "alloy",
                                      "response_format": fmt, "stream_format": "sse",
                                      "instructions": "Speak calmly."})
        try:
            _sse_headers_ok(st)
            events = list(st.events())
            assert st.complete and not st.other_lines, (st.complete, st.other_lines[:3])
        finally:
            st.close()
        deltas, done = _deltas_and_done(events, "speech.audio.delta", "speech.audio.done")
        u = done["usage"]
        assert all(isinstance(u[k], int) for k in ("input_tokens", "output_tokens",
                                                   "total_tokens")), done
        out = h.tmppath("sse-speech." + fmt)
        with open(out, "wb") as f:
            f.write(_audio_of(deltas))
        probe = h.ffprobe(out)
        assert probe["streams"][0]["codec_name"] == codec, probe
        dur = h.decoded_duration(out)
        plain = h.speak(s.tts_port, text, model="flite", response_format=fmt, timeout=120)
        assert plain.status == 200 and plain.complete, plain
        ref = h.tmppath("plain-speech." + fmt)
        with open(ref, "wb") as f:
            f.write(plain.body)
        print("  %s: %d deltas, %.2f s (plain %.2f s)" % (fmt, len(deltas), dur,
                                                         h.decoded_duration(ref)))
        assert len(deltas) >= 2, "%d deltas for %.0f s of audio" % (len(deltas), dur)
        assert abs(dur - h.decoded_duration(ref)) < 0.5, dur
        wav = wav or out
    back = h.transcribe(s.asr_port, wav, timeout=180).json()["text"]
    shared = set(h.words(SPOKEN)) & set(h.words(back))
    assert len(shared) >= 4, "transcript %r shares only %s" % (back[:200], shared)
    s.wait_slots_free("tts")


def test_speech_stream_format_and_instructions_fields():
    s = srv.get()
    base = {"model": "tts-1", "input": "Hello there.", "voice": "alloy",
            "response_format": "wav"}
    r = h.speak(s.tts_port, base["input"], response_format="wav", stream_format="audio",
                instructions="Whisper.")
    assert r.status == 200 and r.content_type() == "audio/wav", r
    for extra, param, code in (({"stream_format": "events"}, "stream_format", "invalid_value"),
                               ({"stream_format": 1}, "stream_format", "invalid_type"),
                               ({"instructions": 5}, "instructions", "invalid_type")):
        r = h.post_json(s.tts_port, SPEECH, dict(base, **extra))
        e = h.assert_error_shape(r, 400)
        assert (e["param"], e["code"]) == (param, code), (extra, e)


def test_speech_sse_worker_killed_mid_stream_ends_with_error_line_real_espeak():
    s = h.Server(env={"TTS_MAX_CONCURRENT_REQUESTS": "1"}, service="tts",
                 name="sse-kill").start()
    try:
        text = (SPOKEN * 30)[:4000]
        st = _speech_sse(s.tts_port, {"model": "tts-1", "input": text, "voice": "alloy",
                                      "response_format": "pcm", "stream_format": "sse"})
        events = _read_all(st, kill=(s, "tts"))
        assert events[0]["type"] == "speech.audio.delta", events[0].keys()
        assert set(events[-1]) == {"error"}, events[-1]
        assert events[-1]["error"]["code"] == "worker_crashed", events[-1]
        assert not [e for e in events if e.get("type") == "speech.audio.done"]
        s.wait_slots_free("tts")
    finally:
        s.stop()


def test_speech_sse_429_before_the_stream_is_a_json_error():
    s = _test_tts("sse-429", 60000)
    try:
        _429_while_held(s, "tts", lambda: h.speak(s.tts_port, "hold", timeout=120),
                        lambda: _speech_sse(s.tts_port, TONE_SSE))
    finally:
        s.stop()


def test_speech_sse_request_timeout_mid_stream_is_an_error_event():
    """test-tts: 4 s before its first block, then a block every 0.4 s (the
    last at 7.6 s); the request timeout (6 s) falls between the blocks: the
    504 is the last event and the worker is gone."""
    s = _test_tts("sse-timeout", 4000, REQUEST_TIMEOUT_SECONDS="6")
    try:
        events = _read_all(_speech_sse(s.tts_port, TONE_SSE))
        assert events[0]["type"] == "speech.audio.delta", events[:1]
        err = events[-1].get("error")
        assert err and err["code"] == "request_timeout" and err["type"] == "timeout_error", \
            events[-1]
        assert len(events) < 11, "all 10 blocks came: the timeout did not fall mid-stream"
        s.wait_slots_free("tts")
        assert s.log_contains(r"event=request_timeout service=tts")
    finally:
        s.stop()


def test_speech_sse_client_gone_mid_stream_frees_the_slot():
    s = _test_tts("sse-gone", 8000)
    try:
        _leave_after_first_event(s, "tts", _speech_sse(s.tts_port, TONE_SSE),
                                 "speech.audio.delta", "/v1/audio/speech:sse")
    finally:
        s.stop()

"""test_wyoming.py - the Wyoming protocol (Home Assistant's voice protocol) on
WYOMING_ASR_PORT / WYOMING_TTS_PORT, driven by a client written from the
protocol's description (tools/pyvs/wyoming.py), against the real server with
the real engines (pocketsphinx, espeak-ng, flite); the sleeping test engines
only where a slot must stay busy for a known time.

What it proves:
- describe -> info lists exactly the models /v1/models lists and, per TTS
  model, exactly the voices GET /v1/audio/voices lists;
- real speech sent as audio-chunks in other rates, widths and channel counts
  (22050 Hz stereo 16-bit, 8-bit, 24-bit, 32-bit) is transcribed about as
  well as the same file over HTTP (FFmpeg converts it in the worker);
- a synthesis (flite: pocketsphinx cannot read espeak-ng) is the same audio
  HTTP gives, and is transcribed back; streamed text (synthesize-start,
  chunks, the compatibility synthesize, synthesize-stop) is spoken once;
- refusals (slots, queue, guard, bad input, timeouts) are `error` events whose
  text and code are what the HTTP API says; malformed and oversized events
  get an error and the connection closes; a client that vanishes (mid-audio,
  queued, while its worker works) frees its slot at once;
- every Wyoming job counts in /metrics under route="wyoming:...".
"""

import json
import os
import re

import harness as h

wy = h.wyoming
TEST_TIMEOUT = 300
FREE = {"WYOMING_ASR_PORT": h.FREE, "WYOMING_TTS_PORT": h.FREE}
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}
CARD = os.path.join(h.CARDS, "001.wav")

srv = h.SharedServer(env=dict(FREE), name="wyoming")


def teardown_module():
    srv.stop()


def _refs():
    return {path: ref for path, ref in h.load_transcripts()}


def _active(s, service):
    return s.health_detailed(service)["concurrency"]["active_requests"]


def _http_error(r, status):
    e = h.assert_error_shape(r, status)
    return e["message"], e["code"]


def _assert_error(ev, code, text=None):
    assert ev is not None and ev.type == "error", "expected an error event, got %r" % ev
    assert ev.data.get("code") == code, "error code %r, expected %r: %r" % (
        ev.data.get("code"), code, ev.data)
    assert isinstance(ev.data.get("text"), str) and ev.data["text"], ev
    if text is not None:
        assert ev.data["text"] == text, "error text %r, HTTP says %r" % (ev.data["text"], text)


# ---------------------------------------------------------------- describe

def test_wyoming_describe_lists_the_models_and_voices_the_server_has():
    s = srv()
    # the TTS voices are asked of the workers by describe itself: nothing
    # has listed them yet on this server
    info = wy.describe(s.wyoming_port("tts"))
    assert not info.get("asr"), "the TTS port describes ASR too: %r" % info.get("asr")
    assert len(info["tts"]) == 1, info["tts"]
    prog = info["tts"][0]
    assert prog["installed"] is True and prog["name"], prog
    assert prog["supports_synthesize_streaming"] is True
    assert {"name", "url"} <= set(prog["attribution"]), prog["attribution"]
    tts_ids = [m["id"] for m in s.get("tts", "/v1/models").json()["data"] if "alias_of" not in m]
    listed = {}
    for v in prog["voices"]:
        assert v["installed"] is True and v["languages"], v
        assert {"name", "url"} <= set(v["attribution"]), v
        model, _, voice = v["name"].partition(":")
        listed.setdefault(model, {})[voice] = v
    assert sorted(listed) == sorted(tts_ids), "voices of models %s, /v1/models %s" % (
        sorted(listed), tts_ids)
    for mid in tts_ids:
        r = s.get("tts", "/v1/audio/voices?model=%s" % mid)
        assert r.status == 200, r
        voices = {v["name"]: v for v in r.json()["voices"]}
        assert set(listed[mid]) == set(voices), "model %s: describe %s, HTTP %s" % (
            mid, sorted(listed[mid]), sorted(voices))
        for name, v in voices.items():
            assert listed[mid][name]["languages"] == [v["language"]], (listed[mid][name], v)
    print("  tts: %d voices of %s" % (len(prog["voices"]), tts_ids))

    info = wy.describe(s.wyoming_port("asr"))
    assert not info.get("tts"), "the ASR port describes TTS too"
    assert len(info["asr"]) == 1, info["asr"]
    prog = info["asr"][0]
    assert prog["installed"] is True and prog["supports_transcript_streaming"] is False
    asr_ids = [m["id"] for m in s.get("asr", "/v1/models").json()["data"] if "alias_of" not in m]
    assert sorted(m["name"] for m in prog["models"]) == sorted(asr_ids), prog["models"]
    for m in prog["models"]:
        assert m["installed"] is True and m["languages"] and m["attribution"]["name"], m
    print("  asr models: %s" % [(m["name"], m["languages"]) for m in prog["models"]])


# ---------------------------------------------------------------- speech to text

def test_wyoming_transcribes_real_speech_sent_in_other_pcm_formats():
    """Each file once over HTTP (the reference: the same engine on the file
    itself) and once over Wyoming as raw PCM in another format; the two
    transcripts must score alike against the human transcript."""
    s = srv()
    refs = _refs()
    libri = sorted(p for p in refs if "/librivox/" in p)
    cases = [(libri[0], 22050, 2, 2, "s16le"), (libri[3], 16000, 1, 1, "u8"),
             (libri[1], 44100, 2, 3, "s24le"), (libri[2], 48000, 1, 4, "s32le"),
             (CARD, 11025, 2, 1, "u8")]
    edits = words = 0
    with wy.Client(s.wyoming_port("asr"), timeout=180) as c:
        for path, rate, channels, width, fmt in cases:
            r = h.transcribe(s.asr_port, path, "a.wav", "audio/wav")
            assert r.status == 200, r
            http_text = r.json()["text"]
            pcm = h.raw_pcm(path, rate, channels, fmt)
            # one connection for every case: a session serves one request after another
            c.send("transcribe", {"language": "en"})
            wy.send_audio(c, pcm, rate, width, channels)
            ev = c.recv_until(("transcript",))[-1]
            assert ev.type == "transcript", "%s: %r" % (path, ev)
            ref = refs[path]
            w_http, w_wy = h.wer(ref, http_text), h.wer(ref, ev.data["text"])
            print("  %-14s %5d Hz %d ch %d-bit: HTTP %3.0f%% %r\n%42s Wyoming %3.0f%% %r" % (
                os.path.basename(path), rate, channels, 8 * width, 100 * w_http, http_text, "",
                100 * w_wy, ev.data["text"]))
            assert w_wy <= w_http + 0.15, "%s as %s: Wyoming WER %.0f%%, HTTP %.0f%%" % (
                path, fmt, 100 * w_wy, 100 * w_http)
            e, n = h.word_edits(ref, ev.data["text"])
            edits, words = edits + e, words + n
    # test_wer.py's bound for the whole set: a garbled conversion is far above
    print("  Wyoming WER over the %d files: %.0f%%" % (len(cases), 100.0 * edits / words))
    assert edits / float(words) < 0.45
    m = s.metrics("asr")
    n = sum(v for k, v in m.items() if k.startswith("voicestack_requests_total{") and
            'route="wyoming:transcribe"' in k and 'status="200"' in k)
    assert n >= len(cases), "wyoming transcriptions counted in /metrics: %s" % n


# ---------------------------------------------------------------- text to speech

SENTENCE = "Please call me back as soon as you can."


def _similar(a, b, what):
    """Same length within 1% and loudness within 20%: the same voice saying
    the same text."""
    ra, rb = h.rms_s16(a), h.rms_s16(b)
    print("  %s: %d vs %d bytes, rms %.0f vs %.0f" % (what, len(a), len(b), ra, rb))
    assert abs(len(a) - len(b)) <= 0.01 * len(b), what
    assert 0.8 <= ra / rb <= 1.25, what


def test_wyoming_synthesis_is_the_http_audio_and_is_transcribed_back():
    s = srv()
    evs, start, pcm = wy.synthesize(s.wyoming_port("tts"), SENTENCE,
                                    voice={"name": "flite:slt"})
    assert [e.type for e in evs][0] == "audio-start" and evs[-1].type == "audio-stop", \
        [e.type for e in evs][:5]
    assert (start["rate"], start["width"], start["channels"]) == (24000, 2, 1), start
    # the same model and voice over HTTP, as raw 24 kHz s16: as long, as loud
    # (two syntheses are not bit-identical, even over HTTP)
    r = h.speak(s.tts_port, SENTENCE, voice="slt", model="flite", response_format="pcm")
    assert r.status == 200, r
    _similar(pcm, r.body, "Wyoming flite:slt vs HTTP")
    # the voice by model name and speaker is the same voice; another is not
    _, _, pcm2 = wy.synthesize(s.wyoming_port("tts"), SENTENCE,
                               voice={"name": "flite", "speaker": "slt"})
    _similar(pcm2, pcm, "flite + speaker slt vs flite:slt")
    _, _, pcm3 = wy.synthesize(s.wyoming_port("tts"), SENTENCE, voice={"name": "flite:rms"})
    assert abs(len(pcm3) - len(pcm)) > 0.01 * len(pcm) or \
        abs(h.rms_s16(pcm3) - h.rms_s16(pcm)) > 0.05 * h.rms_s16(pcm), "rms sounds like slt"
    ev = wy.transcribe(s.wyoming_port("asr"), pcm, start["rate"], start["width"],
                       start["channels"])
    assert ev.type == "transcript", ev
    e, n = h.word_edits(SENTENCE, ev.data["text"])
    print("  flite slt -> pocketsphinx: %r (%d/%d word errors)" % (ev.data["text"], e, n))
    assert e / float(n) <= 0.4, ev.data["text"]
    # espeak-ng, the default model: audio, whatever the recognizer makes of it
    evs, start, pcm = wy.synthesize(s.wyoming_port("tts"), "Hello there.")
    assert evs[-1].type == "audio-stop" and h.rms_s16(pcm) > 100, evs[-1]
    m = s.metrics("tts")
    assert any('route="wyoming:synthesize"' in k and 'status="200"' in k and
               'model="flite"' in k for k in m), "no wyoming:synthesize in /metrics"


def test_wyoming_streaming_synthesis_speaks_each_sentence_once():
    s = srv()
    text = "Turn left at the next corner. Then walk to the station and wait for me there."
    chunks = ["Turn left at the ne", "xt corner. Then walk", " to the station and wait",
              " for me there."]
    evs, pcm = wy.synthesize_stream(s.wyoming_port("tts"), chunks,
                                    voice={"name": "flite:slt"})
    types = [e.type for e in evs]
    assert types[-1] == "synthesize-stopped" and "error" not in types, types
    # each audio-start is closed by an audio-stop before the next one
    depth = 0
    for t in types:
        if t == "audio-start":
            assert depth == 0, types
            depth = 1
        elif t == "audio-stop":
            assert depth == 1, types
            depth = 0
        elif t == "audio-chunk":
            assert depth == 1, types
    assert depth == 0 and types.count("audio-start") >= 1, types
    one = h.speak(s.tts_port, text, voice="slt", model="flite", response_format="pcm")
    assert one.status == 200
    ratio = len(pcm) / float(len(one.body))
    print("  streamed %d bytes in %d audio streams; one-shot %d bytes (x%.2f)" % (
        len(pcm), types.count("audio-start"), len(one.body), ratio))
    assert 0.7 <= ratio <= 1.3, "streamed audio x%.2f of the one-shot: spoken twice?" % ratio
    ev = wy.transcribe(s.wyoming_port("asr"), pcm, 24000, 2, 1)
    e, n = h.word_edits(text, ev.data["text"])
    print("  heard %r (%d/%d word errors)" % (ev.data["text"], e, n))
    assert e / float(n) <= 0.4


# ---------------------------------------------------------------- protocol

def test_wyoming_ping_pong_and_unknown_events_and_keys_are_ignored():
    s = srv()
    with wy.Client(s.wyoming_port("asr")) as c:
        c.send("ping", {"text": "hello"})
        ev = c.recv()
        assert ev.type == "pong" and ev.data.get("text") == "hello", ev
        # an event type from a later protocol version, with data and payload,
        # and keys nobody knows: skipped whole
        c.send("some-future-event", {"x": [1, 2, 3]}, b"\x00\x01\x02",
               extra={"future_key": {"a": 1}})
        c.send("describe", data_inline=True, extra={"version": "99.0.0", "another": True})
        ev = c.recv()
        assert ev.type == "info", ev
        # data in the header and in the data part: merged
        c.send_raw(wy.encode("ping", {"text": "part"}, extra={"data": {"text": "header",
                                                                       "z": 1}}))
        ev = c.recv()
        assert ev.type == "pong" and ev.data.get("text") == "part", ev
        # an event the other service handles: refused, not ignored (no hang)
        c.send("synthesize", {"text": "Hello."})
        _assert_error(c.recv(), "unsupported_event")
        c.send("ping")
        assert c.recv().type == "pong"


def test_wyoming_malformed_header_gets_an_error_and_the_connection_closes():
    s = srv()
    bad = [b"not json at all\n", b'{"type": 5}\n', b'{"data": {}}\n', b"[1, 2]\n",
           b'{"type": "ping", "data_length": -1}\n', b'{"type": "ping", "data": "x"}\n',
           b'{"type": "ping", "data_length": 2}\n[]', b'{"type": "ping", "payload_length": "3"}\n',
           b'{"type": "ping\xff\xfe"}\n', b'{"type": "ping", "data_length": 1.5}\n']
    for raw in bad:
        with wy.Client(s.wyoming_port("asr"), timeout=10) as c:
            c.send_raw(raw)
            ev = c.recv()
            _assert_error(ev, "invalid_event")
            print("  %-45r -> %s" % (raw[:45], ev.data["text"]))
            assert c.closed(), "connection still open after %r" % raw
    assert s.log_contains(r"event=wyoming_bad_event")
    assert wy.describe(s.wyoming_port("asr"))["asr"]


def test_wyoming_oversized_lengths_are_refused():
    s = h.Server(env=dict(FREE, **TEST_ENGINES, WYOMING_MAX_DATA_KB="1",
                          WYOMING_MAX_PAYLOAD_KB="4"), name="wy-limits").start()
    try:
        port = s.wyoming_port("asr")
        cases = [b'{"type": "ping", "data_length": 1025}\n',
                 b'{"type": "audio-chunk", "payload_length": 4097}\n',
                 b'{"type": "ping", "data_length": 99999999999999999999}\n',
                 b'{"type": "ping", "pad": "' + b"x" * 2000 + b'"}\n',
                 b'{"type": "ping", "pad": "' + b"x" * 2000]  # no newline yet
        for raw in cases:
            with wy.Client(port, timeout=10) as c:
                c.send_raw(raw)
                ev = c.recv()
                _assert_error(ev, "event_too_large")
                print("  %-50r -> %s" % (raw[:50], ev.data["text"]))
                assert c.closed(), raw[:60]
        # at the limits exactly: served
        with wy.Client(port) as c:
            d = json.dumps({"text": "x" * (1024 - 12)}).encode()
            assert len(d) == 1024
            c.send_raw(b'{"type": "ping", "data_length": 1024}\n' + d)
            assert c.recv().type == "pong"
            c.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
            c.send("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0" * 4096)
            c.send("audio-stop")
            ev = c.recv_until(("transcript",))[-1]
            assert ev.type == "transcript" and "2048 samples" in ev.data["text"], ev
    finally:
        s.stop()


def test_wyoming_idle_and_stalled_connections_are_closed():
    s = h.Server(env=dict(FREE, **TEST_ENGINES, WYOMING_IDLE_TIMEOUT_SECONDS="1",
                          UPLOAD_STALL_TIMEOUT_SECONDS="1", ASR_MAX_CONCURRENT_REQUESTS="1"),
                 name="wy-idle").start()
    try:
        with wy.Client(s.wyoming_port("asr")) as c:
            assert c.closed(timeout=10), "idle connection not closed"
        with wy.Client(s.wyoming_port("asr")) as c:
            c.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
            c.send("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0" * 3200)
            h.wait_for(lambda: _active(s, "asr") == 1, "the slot taken at audio-start")
            ev = c.recv(timeout=10)
            _assert_error(ev, "upload_stall_timeout")
            assert c.closed()
        h.wait_for(lambda: _active(s, "asr") == 0, "the slot back after the stall")
    finally:
        s.stop()


# ---------------------------------------------------------------- refusals

def test_wyoming_refused_at_full_slots_says_what_http_says():
    """Real engines: one ASR slot, held by a Wyoming client that is still
    sending its audio (the slot is taken at audio-start, as an HTTP upload
    holds it while its body arrives)."""
    s = h.Server(env=dict(FREE, ASR_MAX_CONCURRENT_REQUESTS="1"), service="asr",
                 name="wy-full").start()
    try:
        port = s.wyoming_port("asr")
        pcm = h.raw_pcm(CARD, 16000, 1, "s16le")
        a = wy.Client(port, timeout=120)
        a.send("transcribe", {})
        wy.send_audio(a, pcm[:32000], 16000, 2, 1, stop=False)
        h.wait_for(lambda: _active(s, "asr") == 1, "A holds the slot")
        text, code = _http_error(h.transcribe(s.asr_port, CARD), 429)
        with wy.Client(port) as b:
            b.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
            ev = b.recv()
            _assert_error(ev, code, text)
            assert ev.data.get("status") == 429, ev.data
            # the rest of B's audio is dropped, its audio-stop answers nothing
            b.send("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0" * 3200)
            b.send("audio-stop")
            b.send("ping")
            assert b.recv().type == "pong"
        for off in range(32000, len(pcm), 2048):
            a.send("audio-chunk", {"rate": 16000, "width": 2, "channels": 1},
                   pcm[off:off + 2048])
        a.send("audio-stop")
        ev = a.recv_until(("transcript",))[-1]
        assert ev.type == "transcript" and ev.data["text"], ev
        a.close()
        m = s.metrics("asr")
        assert m.get('voicestack_requests_total{service="asr",route="wyoming:transcribe",'
                     'status="429",model=""}') == 1, {k: v for k, v in m.items() if "wyoming" in k}
        assert s.log_contains(r"event=reject reason=slot service=asr")
    finally:
        s.stop()


def test_wyoming_tts_refused_queued_and_timed_out_like_http():
    s = h.Server(env=dict(FREE, **TEST_ENGINES, TTS_MAX_CONCURRENT_REQUESTS="1",
                          VS_TEST_ENGINE_SLEEP_MS="2000"), service="tts", name="wy-tts").start()
    try:
        port = s.wyoming_port("tts")
        t, box = h.in_thread(lambda: h.speak(s.tts_port, "Hold the slot.", response_format="pcm"))
        h.wait_for(lambda: _active(s, "tts") == 1, "HTTP holds the slot")
        text, code = _http_error(h.speak(s.tts_port, "Refused.", response_format="pcm"), 429)
        evs, _, _ = wy.synthesize(port, "Refused too.")
        _assert_error(evs[-1], code, text)
        assert h.join(t, box).status == 200
        # bad input: what HTTP says for the same fields
        text, code = _http_error(h.speak(s.tts_port, "", response_format="pcm"), 400)
        evs, _, _ = wy.synthesize(port, "")
        _assert_error(evs[-1], code, text)
        text, code = _http_error(h.speak(s.tts_port, "Hi.", voice="nobody",
                                         response_format="pcm"), 400)
        evs, _, _ = wy.synthesize(port, "Hi.", voice={"name": "nobody"})
        _assert_error(evs[-1], code, text)
        evs, start, pcm = wy.synthesize(port, "Served.", voice={"name": "test-tts:test"})
        assert evs[-1].type == "audio-stop" and len(pcm) > 0, evs[-1]
    finally:
        s.stop()


def test_wyoming_queue_and_request_timeout():
    s = h.Server(env=dict(FREE, **TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1", ASR_MAX_QUEUE="1",
                          VS_TEST_ENGINE_SLEEP_MS="1500", REQUEST_TIMEOUT_SECONDS="5"),
                 service="asr", name="wy-queue").start()
    try:
        port = s.wyoming_port("asr")
        t, box = h.in_thread(lambda: h.transcribe(s.asr_port, h.wav_bytes(b"\0" * 32000)))
        h.wait_for(lambda: _active(s, "asr") == 1, "HTTP holds the slot")
        # queued at audio-start; its audio (1 s at 22050 Hz stereo) waits meanwhile
        pcm = b"\x10\x00" * 22050 * 2
        ev = wy.transcribe(port, pcm, 22050, 2, 2)
        assert ev.type == "transcript", ev
        # test-asr reports the samples it got: 1 s at 16 kHz after conversion
        got = int(re.search(r"of (\d+) samples", ev.data["text"]).group(1))
        assert abs(got - 16000) <= 64, ev.data
        assert h.join(t, box).status == 200
        m = s.metrics("asr")
        assert any(k.startswith("voicestack_queue_wait_seconds_count") for k in m)
    finally:
        s.stop()
    s = h.Server(env=dict(FREE, **TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="5000",
                          REQUEST_TIMEOUT_SECONDS="1"), service="asr", name="wy-timeout").start()
    try:
        r = h.transcribe(s.asr_port, h.wav_bytes(b"\0" * 3200))
        text, code = _http_error(r, 504)
        ev = wy.transcribe(s.wyoming_port("asr"), b"\0" * 3200)
        _assert_error(ev, code, text)
        h.wait_for(lambda: _active(s, "asr") == 0, "the slot back after the timeout")
    finally:
        s.stop()


def test_wyoming_bad_requests_say_what_http_says():
    s = srv()
    port = s.wyoming_port("asr")
    r = h.transcribe(s.asr_port, CARD, fields={"model": "no-such-model"})
    text, code = _http_error(r, 400)
    with wy.Client(port) as c:
        c.send("transcribe", {"name": "no-such-model"})
        _assert_error(c.recv(), code, text)
        r = h.transcribe(s.asr_port, CARD, fields={"language": "english!"})
        text, code = _http_error(r, 400)
        c.send("transcribe", {"language": "english!"})
        _assert_error(c.recv(), code, text)
        for fmt in ({"rate": 16000, "width": 5, "channels": 1},
                    {"rate": 100, "width": 2, "channels": 1},
                    {"rate": 16000, "width": 2, "channels": 0},
                    {"rate": 16000, "width": 2, "channels": 99},
                    {"rate": "16000", "width": 2, "channels": 1}, {}):
            c.send("audio-start", fmt)
            ev = c.recv()
            _assert_error(ev, "invalid_audio_format")
            print("  %r -> %s" % (fmt, ev.data["text"]))
        # the refused audio's chunks and its audio-stop are dropped silently
        c.send("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0" * 320)
        c.send("audio-stop")
        c.send("ping")
        assert c.recv().type == "pong"
        c.send("audio-stop")
        _assert_error(c.recv(), "invalid_audio")
        # the connection still serves
        c.send("transcribe", {"name": "pocketsphinx"})
        wy.send_audio(c, h.raw_pcm(CARD, 16000, 1, "s16le"), 16000, 2, 1)
        assert c.recv_until(("transcript",))[-1].type == "transcript"


def test_wyoming_audio_over_the_limit_is_refused():
    s = h.Server(env=dict(FREE, **TEST_ENGINES, ASR_MAX_AUDIO_SECONDS="2"), service="asr",
                 name="wy-long").start()
    try:
        with wy.Client(s.wyoming_port("asr")) as c:
            wy.send_audio(c, b"\0" * 2 * 16000 * 3, 16000, 2, 1, stop=False)
            ev = c.recv()
            _assert_error(ev, "audio_too_long")
            assert ev.data.get("status") == 413 and "ASR_MAX_AUDIO_SECONDS" in ev.data["text"]
            c.send("audio-stop")
            c.send("ping")
            assert c.recv().type == "pong"
        h.wait_for(lambda: _active(s, "asr") == 0, "the slot back")
    finally:
        s.stop()


def test_wyoming_guard_refusal_says_what_http_says():
    root = h.tmpdir()
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    with open(os.path.join(root, "proc", "meminfo"), "w") as f:
        f.write("MemTotal: 1000000 kB\nMemFree: 10000 kB\nMemAvailable: 10000 kB\n"
                "SwapTotal: 0 kB\nSwapFree: 0 kB\n")
    s = h.Server(env=dict(FREE, **TEST_ENGINES, VS_TEST_PROC_ROOT=root), name="wy-guard").start()
    try:
        text, code = _http_error(h.transcribe(s.asr_port, CARD), 503)
        with wy.Client(s.wyoming_port("asr")) as c:
            c.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
            ev = c.recv()
            _assert_error(ev, code, text)
            assert ev.data.get("status") == 503
        text, code = _http_error(h.speak(s.tts_port, "Hi.", response_format="pcm"), 503)
        evs, _, _ = wy.synthesize(s.wyoming_port("tts"), "Hi.")
        _assert_error(evs[-1], code, text)
    finally:
        s.stop()


# ---------------------------------------------------------------- clients that vanish

def test_wyoming_client_gone_mid_audio_frees_the_slot_at_once():
    """Real engines: the slot is back as soon as the client's socket closes
    (mid-audio); then with the sleeping engine, while queued and while its
    worker works (the worker is killed)."""
    s = h.Server(env=dict(FREE, ASR_MAX_CONCURRENT_REQUESTS="1"), service="asr",
                 name="wy-gone").start()
    try:
        port = s.wyoming_port("asr")
        pcm = h.raw_pcm(CARD, 16000, 1, "s16le")
        for how in ("close", "abort"):
            c = wy.Client(port)
            wy.send_audio(c, pcm[:16000], 16000, 2, 1, stop=False)
            h.wait_for(lambda: _active(s, "asr") == 1, "the slot taken")
            c.abort() if how == "abort" else c.close()
            h.wait_for(lambda: _active(s, "asr") == 0, "the slot back after %s" % how,
                       timeout=5)
            ev = wy.transcribe(port, pcm)
            assert ev.type == "transcript" and ev.data["text"], ev
        assert s.log_contains(r"event=client_gone service=asr route=wyoming:transcribe")
    finally:
        s.stop()
    s = h.Server(env=dict(FREE, **TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1", ASR_MAX_QUEUE="1",
                          VS_TEST_ENGINE_SLEEP_MS="60000"), service="asr",
                 name="wy-gone-busy").start()
    try:
        port = s.wyoming_port("asr")
        a = wy.Client(port)
        wy.send_audio(a, b"\0" * 3200, 16000, 2, 1)
        worker = s.busy_worker_pid("asr")
        b = wy.Client(port)
        b.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
        h.wait_for(lambda: s.health_detailed("asr")["queue"]["depth"] == 1, "B queued")
        b.abort()
        h.wait_for(lambda: s.health_detailed("asr")["queue"]["depth"] == 0, "B left the queue",
                   timeout=5)
        a.abort()
        h.wait_for(lambda: _active(s, "asr") == 0, "A's slot back", timeout=5)
        h.wait_for(lambda: not h.proc_alive(worker), "A's worker killed", timeout=10)
        assert s.log_contains(r"event=job_abandoned service=asr")
    finally:
        s.stop()


def test_wyoming_is_off_by_default():
    s = h.Server(env=dict(TEST_ENGINES), name="wy-off").start()
    try:
        assert s.log_contains(r"event=ready", timeout=10)
        assert not s.log_contains(r"wyoming"), [l for l in s.log().splitlines() if "wyoming" in l]
    finally:
        s.stop()


def test_wyoming_shutdown_answers_every_request_and_exits_cleanly():
    """SIGTERM with a Wyoming client mid-audio (holding the slot), one queued
    and one whose worker works: each gets an error event (503
    shutting_down), and the front exits 0 (Server.stop checks it)."""
    s = h.Server(env=dict(FREE, **TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="2",
                          ASR_MAX_QUEUE="1", VS_TEST_ENGINE_SLEEP_MS="60000"),
                 service="asr", name="wy-shutdown").start()
    port = s.wyoming_port("asr")
    working, holding, queued = wy.Client(port), wy.Client(port), wy.Client(port)
    try:
        wy.send_audio(working, b"\0" * 3200, 16000, 2, 1)
        s.busy_worker_pid("asr")
        wy.send_audio(holding, b"\0" * 3200, 16000, 2, 1, stop=False)
        h.wait_for(lambda: _active(s, "asr") == 2, "two slots taken")
        queued.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
        h.wait_for(lambda: s.health_detailed("asr")["queue"]["depth"] == 1, "one queued")
        t, box = h.in_thread(s.stop)
        for name, c in (("working", working), ("holding", holding), ("queued", queued)):
            ev = c.recv(timeout=30)
            assert ev is not None and ev.type == "error", "%s: %r" % (name, ev)
            print("  %s: %s %s" % (name, ev.data.get("code"), ev.data.get("text")))
            assert ev.data.get("status") in (503, 429), (name, ev.data)
        assert h.join(t, box) is None, "the front did not exit cleanly"
    finally:
        for c in (working, holding, queued):
            c.close()
        s.stop()

"""test_clients.py - the exact requests Open WebUI and LibreChat send to an
OpenAI-compatible speech server (issue 11), against the real engines.

Read from their sources (open-webui backend/open_webui/routers/audio.py,
LibreChat api/server/services/Files/Audio/STTService.js and TTSService.js):

Open WebUI (Python `requests`/`aiohttp` on its server):
- GET {TTS base}/audio/models, no auth header: `data.get("models", [])`,
  each model's `id` shown in the admin settings;
- GET {TTS base}/audio/voices, no auth header:
  `{v["id"]: v["name"] for v in data["voices"]}` (a voice without `id`
  or `name` makes it fall back to OpenAI's six names);
- POST {TTS base}/audio/speech, JSON `{input, voice, model}` with
  `Authorization: Bearer KEY`; the bytes are stored as an .mp3;
- POST {STT base}/audio/transcriptions, multipart: the form fields first
  (`model`, then `language` when set), then `file` as `(filename, fh)`
  (no part Content-Type); it converts anything not flac/mp3/wav-named
  codecs to mp3 first, so a browser recording arrives as `<uuid>.mp3`;
  reads `r.json()["text"]`.
LibreChat (Node `axios` with `form-data`):
- STT: `{file: Readable(path "audio.webm"), model}` posted with
  `Content-Type: multipart/form-data`: a form-data boundary, the file part
  first with `Content-Type: audio/webm`, a stream of unknown length so the
  body is chunked; reads `response.data.text`;
- TTS: JSON `{input, model, voice}` with `Authorization: undefined` when no
  key is configured (a template string of undefined); pipes the body as
  audio/mpeg.
"""

import json
import os
import uuid

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")
SENTENCE = "Please call me back as soon as you can, I will be at home all day long."
REQUESTS_HEADERS = {"User-Agent": "python-requests/2.32.3", "Accept-Encoding": "gzip, deflate",
                    "Accept": "*/*", "Connection": "keep-alive"}

srv = h.SharedServer(name="clients")


def teardown_module():
    srv.stop()


def test_open_webui_lists_models():
    s = srv.get()
    r = h.request(s.tts_port, "GET", "/v1/audio/models", headers=REQUESTS_HEADERS)
    assert r.status == 200 and r.content_type() == "application/json", r
    ids = [m["id"] for m in r.json().get("models", [])]
    assert "tts-1" in ids and "flite" in ids and "espeak-ng" in ids, ids
    # the ASR port lists its models too
    r = h.request(s.asr_port, "GET", "/v1/audio/models", headers=REQUESTS_HEADERS)
    ids = [m["id"] for m in r.json()["models"]]
    assert "whisper-1" in ids and "pocketsphinx" in ids, ids


def test_open_webui_lists_voices():
    s = srv.get()
    r = h.request(s.tts_port, "GET", "/v1/audio/voices", headers=REQUESTS_HEADERS)
    assert r.status == 200, r
    voices = {v["id"]: v["name"] for v in r.json()["voices"]}
    missing = [n for n in h.OPENAI_VOICES if n not in voices]
    assert not missing, "voices lack %s: %s" % (missing, sorted(voices))
    # a model's own list, as the route takes ?model=
    r = h.request(s.tts_port, "GET", "/v1/audio/voices?model=flite", headers=REQUESTS_HEADERS)
    assert r.status == 200 and all("id" in v and "name" in v for v in r.json()["voices"]), r


def test_open_webui_speech_then_transcription():
    s = srv.get()
    body = json.dumps({"input": SENTENCE, "voice": "alloy", "model": "tts-1"}).encode()
    r = h.request(s.tts_port, "POST", "/v1/audio/speech", body,
                  {"Content-Type": "application/json", "Authorization": "Bearer sk-unused",
                   "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
                   "User-Agent": "Python/3.11 aiohttp/3.11.18"})
    assert r.status == 200 and r.complete, r
    mp3 = h.tmppath("%s.mp3" % uuid.uuid4())
    with open(mp3, "wb") as f:
        f.write(r.body)
    assert h.ffprobe(mp3)["streams"][0]["codec_name"] == "mp3"
    with open(mp3, "rb") as f:
        audio = f.read()
    boundary = uuid.uuid4().hex
    parts = [("model", "whisper-1"), ("language", "en")]
    out = b""
    for k, v in parts:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (boundary, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n\r\n"
            % (boundary, os.path.basename(mp3))).encode() + audio + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    r = h.request(s.asr_port, "POST", "/v1/audio/transcriptions", out,
                  dict(REQUESTS_HEADERS, **{"Authorization": "Bearer sk-unused",
                                            "Content-Type": "multipart/form-data; boundary=" +
                                            boundary}))
    assert r.status == 200, r
    text = r.json()["text"]
    shared = set(h.words(SENTENCE)) & set(h.words(text))
    assert len(shared) >= 3, "transcript %r shares only %s" % (text, shared)


def test_librechat_chunked_webm_transcription_and_speech():
    s = srv.get()
    webm = h.make_audio(CARD, "webm")
    with open(webm, "rb") as f:
        audio = f.read()
    boundary = "-" * 26 + "%024d" % int(uuid.uuid4().int % 10 ** 24)
    body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.webm\"\r\n"
            "Content-Type: audio/webm\r\n\r\n" % boundary).encode() + audio + \
        ("\r\n--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
         "--%s--\r\n" % (boundary, boundary)).encode()
    head = ("POST /v1/audio/transcriptions HTTP/1.1\r\nAccept: application/json, text/plain, "
            "*/*\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
            "User-Agent: axios/1.8.2\r\nAccept-Encoding: gzip, compress, deflate, br\r\n"
            "Host: 127.0.0.1:%d\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            % (boundary, s.asr_port)).encode()
    chunks = b""
    for i in range(0, len(body), 16384):
        piece = body[i:i + 16384]
        chunks += b"%x\r\n" % len(piece) + piece + b"\r\n"
    with h.open_request(s.asr_port, "GET", "/health") as so:  # a connection to reuse
        h.recv_response(so)
        so.sendall(head + chunks + b"0\r\n\r\n")
        status, _hdrs, rbody = h.recv_response(so, timeout=120)
    assert status == 200, (status, rbody[:300])
    want = h.transcribe(s.asr_port, CARD).json()["text"]
    assert json.loads(rbody)["text"].strip() == want.strip() and want.strip(), (rbody, want)
    body = json.dumps({"input": SENTENCE, "model": "tts-1", "voice": "alloy"}).encode()
    r = h.request(s.tts_port, "POST", "/v1/audio/speech", body,
                  {"Content-Type": "application/json", "Authorization": "undefined",
                   "Accept": "application/json, text/plain, */*", "User-Agent": "axios/1.8.2"})
    assert r.status == 200 and r.complete and r.content_type() == "audio/mpeg", r
    out = h.tmppath("librechat.mp3")
    with open(out, "wb") as f:
        f.write(r.body)
    assert h.decoded_duration(out) > 2.0

"""test_models.py - every model name the server accepts also serves.

The catalogue is the one list of names: validation, /v1/models and loading
read it. Every name /v1/models lists, on either service, must serve a
request, answered by the model it names (X-Voicestack-Model is the id, or
the id the alias belongs to). ASR_MODEL / TTS_MODEL written for the original
specification (whisper-1, base, large-v3...) or naming a catalogue model
choose the default model and never break the service; a name the catalogue
does not have is ignored with one warning.
"""

import os

import harness as h

TEST_TIMEOUT = 600
CARD = os.path.join(h.CARDS, "001.wav")


def _entries(server, service):
    r = server.get(service, "/v1/models")
    assert r.status == 200, r
    data = r.json()["data"]
    assert data, "no models listed"
    return [(m["id"], m.get("alias_of", m["id"])) for m in data]


def test_every_listed_name_serves_on_the_real_engines():
    s = h.Server(name="every-name").start()
    try:
        asr, tts = _entries(s, "asr"), _entries(s, "tts")
        print("  asr: %s\n  tts: %s" % (asr, tts))
        for want in ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "base",
                     "pocketsphinx", "pocketsphinx-accurate"):
            assert want in [n for n, _ in asr], "%s not listed" % want
        for want in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "espeak-ng", "flite"):
            assert want in [n for n, _ in tts], "%s not listed" % want
        for name, model in asr:
            r = h.transcribe(s.asr_port, CARD, fields={"model": name}, timeout=90)
            assert r.status == 200 and r.json()["text"].strip(), (name, r.status, r.body[:300])
            assert r.headers.get("x-voicestack-model") == model, (name, r.headers)
        for name, model in tts:
            r = h.speak(s.tts_port, "Hello there.", model=name, response_format="pcm")
            assert r.status == 200 and len(r.body) > 1000 and r.complete, (name, r.status)
            assert r.headers.get("x-voicestack-model") == model, (name, r.headers)
    finally:
        s.stop()


def test_model_settings_choose_the_default_and_never_break():
    cases = (({"ASR_MODEL": "whisper-1"}, "asr", "pocketsphinx"),
             ({"ASR_MODEL": "large-v3"}, "asr", "pocketsphinx"),
             ({"ASR_MODEL": "pocketsphinx-accurate"}, "asr", "pocketsphinx-accurate"),
             ({"ASR_MODEL": "my-finetune"}, "asr", "pocketsphinx"),
             ({"ASR_ENGINE": "test-asr"}, "asr", "test-asr"),
             ({"TTS_MODEL": "tts-1-hd"}, "tts", "flite"),
             ({"TTS_ENGINE": "flite"}, "tts", "flite"))
    for env, svc, default in cases:
        s = h.Server(env=env, service=svc, name="default-" + "-".join(env.values())).start()
        try:
            d = s.health_detailed(svc)
            assert d["model"]["model_name"] == default, (env, d["model"])
            assert [m["id"] for m in d["models"] if m["default"]] == [default], d["models"]
            if svc == "asr":
                r = h.transcribe(s.asr_port, CARD, timeout=90)  # model whisper-1
            else:
                r = h.speak(s.tts_port, "Hello there.", response_format="pcm")  # tts-1
            assert r.status == 200, (env, r.status, r.body[:300])
            assert r.headers.get("x-voicestack-model") == default, (env, r.headers)
            if env.get("ASR_MODEL") == "my-finetune":
                assert s.log_contains(r"ASR_MODEL=my-finetune names no ASR model"), \
                    "no warning for an unknown ASR_MODEL"
        finally:
            s.stop()

"""test_models.py - every model name the server accepts also loads.

ASR_MODEL=whisper-1 used to pass validation (it is in the engine's list of
accepted names) and then fail every transcription with 503
model_load_failed (the engine's load had a list of its own). Now one list
serves validation, /v1/models and loading. For every ASR engine, every name
/v1/models lists is set as ASR_MODEL on a fresh server and a transcription
with that name as "model" must succeed; for every TTS engine every listed
name must synthesize speech. Names written for the original specification
(whisper-1, base, large-v3, tts-1, tts-1-hd...) are aliases of the engine's
model, so a .env written for the original keeps working.
"""

import os

import harness as h

TEST_TIMEOUT = 600
CARD = os.path.join(h.CARDS, "001.wav")
ASR_ENGINES = ("pocketsphinx", "test-asr")
TTS_ENGINES = ("espeak-ng", "test-tts")


def _model_ids(server, service):
    r = server.get(service, "/v1/models")
    assert r.status == 200, r
    ids = [m["id"] for m in r.json()["data"]]
    assert ids, "no models listed"
    return ids


def test_every_accepted_asr_model_name_loads():
    for engine in ASR_ENGINES:
        s = h.Server(env={"ASR_ENGINE": engine}, service="asr", name="models-" + engine).start()
        try:
            names = _model_ids(s, "asr")
        finally:
            s.stop()
        print("  %s: %s" % (engine, ", ".join(names)))
        for name in names:
            s = h.Server(env={"ASR_ENGINE": engine, "ASR_MODEL": name}, service="asr",
                         name="model-" + name).start()
            try:
                r = h.transcribe(s.asr_port, CARD, fields={"model": name}, timeout=90)
                assert r.status == 200, "ASR_ENGINE=%s ASR_MODEL=%s: %d %r" % (
                    engine, name, r.status, r.body[:300])
                assert r.json()["text"].strip(), "empty transcript with ASR_MODEL=%s" % name
                d = s.health_detailed("asr")
                assert d["model"]["loaded"] is True, d["model"]
            finally:
                s.stop()


def test_every_accepted_tts_model_name_synthesizes():
    for engine in TTS_ENGINES:
        s = h.Server(env={"TTS_ENGINE": engine}, service="tts", name="models-" + engine).start()
        try:
            names = _model_ids(s, "tts")
            print("  %s: %s" % (engine, ", ".join(names)))
            for name in names:
                r = h.speak(s.tts_port, "Hello there.", model=name, response_format="pcm")
                assert r.status == 200, "TTS_ENGINE=%s model=%s: %d %r" % (
                    engine, name, r.status, r.body[:300])
                assert len(r.body) > 1000 and r.complete, (name, len(r.body))
        finally:
            s.stop()

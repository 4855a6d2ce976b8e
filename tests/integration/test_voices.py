"""test_voices.py - OpenAI's voice names on every real TTS engine.

Each engine (espeak-ng, the default, and flite with TTS_ENGINE=flite) must
accept every voice name of OpenAI's speech API (harness.OPENAI_VOICES, which
includes the newer `marin` and `cedar`), list them in GET /v1/audio/voices,
and map each to a voice of its own: the same sentence spoken with every name
gives pairwise different audio (SHA-256 of the PCM).
"""

import hashlib
import itertools

import harness as h

SENTENCE = "Good morning, how are you today?"
ENGINES = {
    "espeak-ng": h.SharedServer(service="tts", name="voices-espeak"),
    "flite": h.SharedServer(env={"TTS_ENGINE": "flite"}, service="tts", name="voices-flite"),
}


def teardown_module():
    for s in ENGINES.values():
        s.stop()


def _pcm_digest(engine, voice):
    r = h.speak(ENGINES[engine]().tts_port, SENTENCE, voice=voice, response_format="pcm")
    assert r.status == 200, "%s voice %s: %r" % (engine, voice, r)
    assert r.complete and len(r.body) > 4800, "%s voice %s: no audio" % (engine, voice)
    return hashlib.sha256(r.body).hexdigest()


def _check_engine_accepts_and_lists(engine):
    r = ENGINES[engine]().get("tts", "/v1/audio/voices")
    assert r.status == 200, r
    v = r.json()
    assert v["engine"] == engine, v["engine"]
    missing = [n for n in h.OPENAI_VOICES if n not in v["openai_voices"]]
    assert not missing, "%s: openai_voices lacks %s" % (engine, missing)
    listed = {x["name"] for x in v["voices"]}
    assert not [n for n in h.OPENAI_VOICES if n not in listed], (engine, sorted(listed))


def _check_distinct(engine):
    digest = {v: _pcm_digest(engine, v) for v in h.OPENAI_VOICES}
    same = [(a, b) for a, b in itertools.combinations(h.OPENAI_VOICES, 2)
            if digest[a] == digest[b]]
    assert not same, "%s: OpenAI voices with identical audio: %s" % (engine, same)


def test_espeak_ng_accepts_and_lists_every_openai_voice_name():
    _check_engine_accepts_and_lists("espeak-ng")


def test_flite_accepts_and_lists_every_openai_voice_name():
    _check_engine_accepts_and_lists("flite")


def test_espeak_ng_gives_every_openai_voice_name_its_own_audio():
    _check_distinct("espeak-ng")


def test_flite_gives_every_openai_voice_name_its_own_audio():
    _check_distinct("flite")

"""test_voices.py - OpenAI's voice names on every real TTS engine.

Each engine (espeak-ng, the default, and flite with TTS_ENGINE=flite) must
accept every voice name of OpenAI's speech API (harness.OPENAI_VOICES, which
includes the newer `marin` and `cedar`), list them in GET /v1/audio/voices,
and map each to a voice of its own: the same sentence spoken with every name
gives pairwise different audio (SHA-256 of the PCM).

Comparing hashes means something only if the same request gives the same
audio every time, which is checked first:
- flite through the server: its statistical voices mix noise from rand()
  into their excitation, so the engine seeds it per request.
- espeak-ng 1.51 carries state from one utterance to the next inside a
  process (measured: the same text differs from its 350th sample on, and
  by a few samples in length; re-seeding rand() does not help, and it
  cannot be re-initialised in a process), so through a long-lived worker
  every request differs and a hash comparison could never fail. Its names
  are compared through `voicestack speak`, which runs the same engine and
  pipeline in a fresh process per call: that is repeatable.
"""

import hashlib
import itertools
import os
import subprocess

import harness as h

SENTENCE = "Good morning, how are you today?"
FLITE = h.SharedServer(env={"TTS_ENGINE": "flite"}, service="tts", name="voices-flite")
ESPEAK = h.SharedServer(service="tts", name="voices-espeak")
SERVERS = {"espeak-ng": ESPEAK, "flite": FLITE}


def teardown_module():
    FLITE.stop()
    ESPEAK.stop()


def _server_digest(engine, voice):
    r = h.speak(SERVERS[engine]().tts_port, SENTENCE, voice=voice, response_format="pcm")
    assert r.status == 200, "%s voice %s: %r" % (engine, voice, r)
    assert r.complete and len(r.body) > 4800, "%s voice %s: no audio" % (engine, voice)
    return hashlib.sha256(r.body).hexdigest()


def _cli_digest(voice):
    p = subprocess.run([h.BIN, "speak", SENTENCE, "-o", "-", "--format", "pcm", "--voice",
                        voice], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60,
                       env=dict(os.environ, TTS_ENGINE="espeak-ng"))
    assert p.returncode == 0 and len(p.stdout) > 4800, (voice, p.stderr.decode())
    return hashlib.sha256(p.stdout).hexdigest()


def _check_accepts_and_lists(engine):
    r = SERVERS[engine]().get("tts", "/v1/audio/voices")
    assert r.status == 200, r
    v = r.json()
    assert v["engine"] == engine, v["engine"]
    missing = [n for n in h.OPENAI_VOICES if n not in v["openai_voices"]]
    assert not missing, "%s: openai_voices lacks %s" % (engine, missing)
    listed = {x["name"] for x in v["voices"]}
    assert not [n for n in h.OPENAI_VOICES if n not in listed], (engine, sorted(listed))
    for name in h.OPENAI_VOICES:
        _server_digest(engine, name)  # 200 with audio


def _check_repeatable(digest):
    first = {v: digest(v) for v in ("alloy", "nova", "onyx")}
    again = {v: digest(v) for v in ("onyx", "nova", "alloy")}
    changed = [v for v in first if first[v] != again[v]]
    assert not changed, "the same request gave other audio for %s" % changed


def _check_distinct(digest):
    d = {v: digest(v) for v in h.OPENAI_VOICES}
    same = [(a, b) for a, b in itertools.combinations(h.OPENAI_VOICES, 2) if d[a] == d[b]]
    assert not same, "OpenAI voices with identical audio: %s" % same


def test_espeak_ng_accepts_and_lists_every_openai_voice_name():
    _check_accepts_and_lists("espeak-ng")


def test_flite_accepts_and_lists_every_openai_voice_name():
    _check_accepts_and_lists("flite")


def test_flite_gives_the_same_audio_for_the_same_request():
    _check_repeatable(lambda v: _server_digest("flite", v))


def test_flite_gives_every_openai_voice_name_its_own_audio():
    _check_distinct(lambda v: _server_digest("flite", v))


def test_espeak_ng_gives_every_openai_voice_name_its_own_audio():
    _check_repeatable(_cli_digest)
    _check_distinct(_cli_digest)

"""test_catalogue.py - several models per service (issue 9): the catalogue,
per-model workers and slots, degradation and its opt-out.

Each service hosts the models of its catalogue (built in, or MODELS_FILE),
each with its own worker pool, slots (within the service's) and idle
timeout, chosen per request by "model". Shown with the real engines
(pocketsphinx and pocketsphinx-accurate, espeak-ng and flite), and with the
sleeping test engines where only timing would otherwise decide the outcome.
"""

import os
import subprocess
import threading
import time

import harness as h
from pyvs.server import clean_env

TEST_TIMEOUT = 600
CARD = os.path.join(h.CARDS, "001.wav")


def _models_file(text, name):
    path = h.tmppath(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _transcribe(port, audio, model, headers=None, timeout=180.0):
    if isinstance(audio, str):
        with open(audio, "rb") as f:
            audio = f.read()
    body, ct = h.encode_multipart([("file", ("a.wav", audio, "audio/wav")),
                                   ("model", model)])
    hdrs = {"Content-Type": ct}
    hdrs.update(headers or {})
    return h.request(port, "POST", "/v1/audio/transcriptions", body, hdrs, timeout)


def _served_by(r):
    return r.headers.get("x-voicestack-model")


def _model(d, mid):
    for m in d["models"]:
        if m["id"] == mid:
            return m
    raise AssertionError("model %s not in /health/detailed models[]: %s" % (
        mid, [m["id"] for m in d["models"]]))


def _in_background(fn):
    out = {}

    def run():
        out["r"] = fn()
    t = threading.Thread(target=run)
    t.start()
    return t, out


def _long_speech_wav():
    """About 50 s of human speech: long enough that a transcription is still
    running seconds after its upload."""
    return h.long_librivox_wav(2, "long-catalogue.wav")


def _silence_wav(seconds):
    return h.wav_bytes(b"\0\0" * int(16000 * seconds))


def test_voicestack_models_prints_a_valid_models_file():
    p = subprocess.run([h.BIN, "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(), timeout=30)
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    print(text)
    ids = [l.split()[0] for l in text.splitlines() if l and not l.startswith("#")]
    assert ids == ["pocketsphinx", "pocketsphinx-accurate", "espeak-ng", "flite"], ids
    path = _models_file(text, "printed-models.txt")
    s = h.Server(env={"MODELS_FILE": path}, name="models-file-printed").start()
    try:
        p2 = subprocess.run([h.BIN, "models"], stdout=subprocess.PIPE,
                            env=clean_env({"MODELS_FILE": path}), timeout=30)
        assert p2.stdout.decode() == text, "the printed catalogue does not read back the same"
        for svc, want in (("asr", ids[:2]), ("tts", ids[2:])):
            listed = [m["id"] for m in s.get(svc, "/v1/models").json()["data"]
                      if "alias_of" not in m]
            assert listed == want, (svc, listed)
    finally:
        s.stop()


def test_bad_models_file_stops_start_up_naming_the_line():
    path = _models_file("ok asr pocketsphinx\n\nbad tts espeak-ng slots=many\n", "bad.txt")
    p = subprocess.run([h.BIN, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env({"MODELS_FILE": path, "ASR_PORT": "0", "TTS_PORT": "0"}),
                       timeout=30)
    err = p.stderr.decode()
    assert p.returncode != 0, "started with a bad MODELS_FILE"
    assert "bad.txt:3" in err and "slots=many" in err, err[-800:]


def test_two_real_models_loaded_at_once_with_their_own_workers():
    s = h.Server(name="two-asr-models").start()
    try:
        for model in ("pocketsphinx", "pocketsphinx-accurate", "whisper-1"):
            r = _transcribe(s.asr_port, CARD, model)
            assert r.status == 200 and r.json()["text"].strip(), (model, r)
        assert _served_by(r) == "pocketsphinx", "whisper-1 served by %s" % _served_by(r)
        d = s.health_detailed("asr")
        fast, acc = _model(d, "pocketsphinx"), _model(d, "pocketsphinx-accurate")
        assert fast["loaded"] and acc["loaded"], d["models"]
        assert fast["default"] and not acc["default"]
        pids = {w["pid"] for w in fast["workers"]}, {w["pid"] for w in acc["workers"]}
        assert pids[0] and pids[1] and not (pids[0] & pids[1]), pids
        assert fast["load_rss_mb"] > 20 and acc["load_rss_mb"] > 20, (fast, acc)
        assert fast["last_load_ms"] > 0, fast
        m = s.metrics("asr")
        for model in ("pocketsphinx", "pocketsphinx-accurate"):
            key = 'voicestack_model_loaded{service="asr",model="%s"}' % model
            assert m.get(key) == 1, (key, {k: v for k, v in m.items() if "loaded" in k})
            key = ('voicestack_requests_total{service="asr",route="/v1/audio/transcriptions",'
                   'status="200",model="%s"}' % model)
            assert m.get(key, 0) >= 1, key

        # TTS: espeak-ng and flite, each its own worker
        for model, want in (("tts-1", "espeak-ng"), ("tts-1-hd", "flite"),
                            ("gpt-4o-mini-tts", "flite"), ("flite", "flite")):
            r = h.speak(s.tts_port, "Turn on the kitchen light.", model=model,
                        response_format="wav")
            assert r.status == 200 and len(r.body) > 10000, (model, r)
            assert _served_by(r) == want, (model, _served_by(r))
        d = s.health_detailed("tts")
        assert _model(d, "espeak-ng")["loaded"] and _model(d, "flite")["loaded"]
    finally:
        s.stop()


def test_idle_unload_of_one_model_while_the_other_serves():
    path = _models_file("short asr pocketsphinx idle_minutes=0.05\n"
                        "long asr pocketsphinx idle_minutes=0\n"
                        "t tts espeak-ng\n", "idle-models.txt")
    s = h.Server(env={"MODELS_FILE": path, "IDLE_CHECK_INTERVAL_SECONDS": "0.5"},
                 name="idle-one-model").start()
    try:
        assert _transcribe(s.asr_port, CARD, "short").status == 200
        short_pid = _model(s.health_detailed("asr"), "short")["workers"][0]["pid"]
        assert _transcribe(s.asr_port, CARD, "long").status == 200
        h.wait_for(lambda: not _model(s.health_detailed("asr"), "short")["loaded"],
                   "model short unloaded after 3 s idle", 20)
        assert not h.proc_alive(short_pid) or h.wait_for(
            lambda: not h.proc_alive(short_pid), "short's worker gone", 5)
        assert s.log_contains(r"event=model_unloaded service=asr.*model=short"), \
            "no unload line naming model short"
        d = s.health_detailed("asr")
        assert _model(d, "long")["loaded"], "model long unloaded too: %s" % d["models"]
        r = _transcribe(s.asr_port, CARD, "long")
        assert r.status == 200 and _served_by(r) == "long", r
        assert not _model(s.health_detailed("asr"), "short")["loaded"]
    finally:
        s.stop()


def test_per_model_slots_and_queue_with_the_sleeping_engine():
    path = _models_file("a asr test-asr slots=1\nb asr test-asr slots=1\nt tts test-tts\n",
                        "slots-models.txt")
    s = h.Server(env={"MODELS_FILE": path, "ASR_MAX_CONCURRENT_REQUESTS": "3",
                      "ASR_MAX_QUEUE": "1", "VS_TEST_ENGINE_SLEEP_MS": "3000"},
                 name="per-model-slots").start()
    try:
        wav = _silence_wav(1.0)
        t1, o1 = _in_background(lambda: _transcribe(s.asr_port, wav, "a"))
        h.wait_for(lambda: _model(s.health_detailed("asr"), "a")["concurrency"]
                   ["active_requests"] == 1, "a busy", 10)
        # a's one slot is busy: the next request for a waits in a's queue
        # (the service has slots left), b is served at once beside it
        t2, o2 = _in_background(lambda: _transcribe(s.asr_port, wav, "a"))
        h.wait_for(lambda: _model(s.health_detailed("asr"), "a")["queue"]["depth"] == 1,
                   "second request for a queued", 10)
        # a's slot and queue are full: 429 naming the model, no degradation
        r3 = _transcribe(s.asr_port, wav, "a")
        e = h.assert_error_shape(r3, 429)
        assert "a model" in e["message"], e
        assert _served_by(r3) == "a"
        rb = _transcribe(s.asr_port, wav, "b")
        assert rb.status == 200 and _served_by(rb) == "b", rb
        t1.join(30)
        t2.join(30)
        assert o1["r"].status == 200 and o2["r"].status == 200, (o1, o2)
        s.wait_slots_free("asr")
        d = s.health_detailed("asr")
        assert d["concurrency"]["active_requests"] == 0
        assert all(m["concurrency"]["active_requests"] == 0 for m in d["models"]), d["models"]
    finally:
        s.stop()


def _degrade_server(env_extra, name):
    path = _models_file("big asr test-asr slots=1 fallback=small\n"
                        "small asr test-asr slots=1\nt tts test-tts\n", name + ".txt")
    env = {"MODELS_FILE": path, "ASR_MAX_CONCURRENT_REQUESTS": "2",
           "VS_TEST_ENGINE_SLEEP_MS": "2000"}
    env.update(env_extra)
    return h.Server(env=env, name=name).start()


def test_degradation_serves_the_fallback_and_says_so():
    s = _degrade_server({"ASR_DEGRADE_UNDER_LOAD": "true"}, "degrade-on")
    try:
        wav = _silence_wav(1.0)
        t1, o1 = _in_background(lambda: _transcribe(s.asr_port, wav, "big"))
        h.wait_for(lambda: _model(s.health_detailed("asr"), "big")["concurrency"]
                   ["active_requests"] == 1, "big busy", 10)
        r = _transcribe(s.asr_port, wav, "big")
        assert r.status == 200, r
        assert _served_by(r) == "small", "served by %s" % _served_by(r)
        t1.join(30)
        assert _served_by(o1["r"]) == "big"
        assert s.log_contains(r"event=degraded service=asr from=big to=small reason=slots_busy")
        m = s.metrics("asr")
        key = 'voicestack_degraded_requests_total{service="asr",from="big",to="small"}'
        assert m.get(key) == 1, (key, m.get(key))
        assert s.health_detailed("asr")["degrade_under_load"] is True
        # a bad opt-out value is refused, not ignored
        r = _transcribe(s.asr_port, wav, "big", headers={"X-Voicestack-Degrade": "maybe"})
        h.assert_error_shape(r, 400)
    finally:
        s.stop()


def test_opting_out_and_degradation_off_give_429():
    for env, headers, name in (({"ASR_DEGRADE_UNDER_LOAD": "true"},
                                {"X-Voicestack-Degrade": "never"}, "degrade-opt-out"),
                               ({}, {}, "degrade-off")):
        s = _degrade_server(env, name)
        try:
            wav = _silence_wav(1.0)
            t1, o1 = _in_background(lambda: _transcribe(s.asr_port, wav, "big"))
            h.wait_for(lambda: _model(s.health_detailed("asr"), "big")["concurrency"]
                       ["active_requests"] == 1, "big busy", 10)
            r = _transcribe(s.asr_port, wav, "big", headers=headers)
            h.assert_error_shape(r, 429)
            assert _served_by(r) == "big", r.headers
            t1.join(30)
            assert o1["r"].status == 200
            assert not s.log_contains(r"event=degraded")
        finally:
            s.stop()


def test_degradation_with_the_real_engines():
    """pocketsphinx-accurate has one slot and falls back to pocketsphinx: a
    second transcription while the first (50 s of speech, several seconds of
    decoding) still runs is served by pocketsphinx, and says so."""
    path = _models_file("pocketsphinx asr pocketsphinx\n"
                        "pocketsphinx-accurate asr pocketsphinx slots=1 fallback=pocketsphinx "
                        "aliases=accurate\n"
                        "espeak-ng tts espeak-ng\n", "real-degrade.txt")
    s = h.Server(env={"MODELS_FILE": path, "ASR_DEGRADE_UNDER_LOAD": "true"},
                 name="degrade-real").start()
    try:
        long_wav = _long_speech_wav()
        # load both first so that the window below is decoding time only
        assert _transcribe(s.asr_port, CARD, "accurate").status == 200
        assert _transcribe(s.asr_port, CARD, "pocketsphinx").status == 200
        t1, o1 = _in_background(lambda: _transcribe(s.asr_port, long_wav, "accurate"))
        h.wait_for(lambda: _model(s.health_detailed("asr"), "pocketsphinx-accurate")
                   ["concurrency"]["active_requests"] == 1, "accurate busy", 20)
        r = _transcribe(s.asr_port, CARD, "accurate")
        busy = _model(s.health_detailed("asr"), "pocketsphinx-accurate")
        t1.join(120)
        assert o1["r"].status == 200 and _served_by(o1["r"]) == "pocketsphinx-accurate"
        assert r.status == 200 and r.json()["text"].strip(), r
        assert _served_by(r) == "pocketsphinx", (
            "served by %s while accurate was busy (%s)" % (_served_by(r), busy["concurrency"]))
        assert s.log_contains(r"event=degraded service=asr from=pocketsphinx-accurate "
                              r"to=pocketsphinx")
    finally:
        s.stop()


def test_degradation_when_loading_the_model_would_pass_the_memory_threshold():
    """The guard reads a meminfo of 512 MiB with 50% in use, threshold 60%: a
    cold load of pocketsphinx-accurate (its last load measured about 100 MB,
    i.e. about 20 points) would pass it, so with degradation on the
    request goes to the loaded pocketsphinx; opted out, it gets 503
    insufficient_memory_for_model (issue 10) instead of loading."""
    path = _models_file("pocketsphinx asr pocketsphinx idle_minutes=0\n"
                        "accurate asr pocketsphinx idle_minutes=0.02 fallback=pocketsphinx\n"
                        "espeak-ng tts espeak-ng\n", "mem-degrade.txt")
    root = h.fake_proc_root(512 * 1024, 256 * 1024)
    s = h.Server(env={"MODELS_FILE": path, "ASR_DEGRADE_UNDER_LOAD": "true",
                      "MEMORY_THRESHOLD_PERCENT": "60", "IDLE_CHECK_INTERVAL_SECONDS": "0.3",
                      "VS_TEST_PROC_ROOT": root}, name="degrade-memory").start()
    try:
        assert s.health_detailed("asr")["memory"]["total_mb"] == 512.0
        r = _transcribe(s.asr_port, CARD, "accurate")  # nothing measured yet: loads
        assert r.status == 200 and _served_by(r) == "accurate", r
        assert _transcribe(s.asr_port, CARD, "pocketsphinx").status == 200
        acc = _model(s.health_detailed("asr"), "accurate")
        assert acc["load_rss_mb"] > 51.2, "inconclusive: accurate measured %s MB" % acc
        h.wait_for(lambda: not _model(s.health_detailed("asr"), "accurate")["loaded"],
                   "accurate unloaded when idle", 20)
        r = _transcribe(s.asr_port, CARD, "accurate")
        assert r.status == 200 and _served_by(r) == "pocketsphinx", (r, r.headers)
        assert s.log_contains(r"event=degraded service=asr from=accurate to=pocketsphinx "
                              r"reason=memory")
        assert not _model(s.health_detailed("asr"), "accurate")["loaded"]
        # opted out: refused before any worker starts, the slot back at once
        r = _transcribe(s.asr_port, CARD, "accurate", headers={"X-Voicestack-Degrade": "never"})
        e = h.assert_error_shape(r, 503)
        assert e["code"] == "insufficient_memory_for_model", e
        assert r.headers.get("retry-after") == "60", r.headers
        assert "accurate" in e["message"] and "MB" in e["message"], e
        assert _served_by(r) == "accurate"
        d = s.health_detailed("asr")
        assert not _model(d, "accurate")["loaded"] and not _model(d, "accurate")["workers"]
        assert _model(d, "accurate")["concurrency"]["active_requests"] == 0
        assert d["concurrency"]["active_requests"] == 0
    finally:
        s.stop()


def test_flite_models_with_a_voice_and_a_voice_file():
    """Engine options through MODELS_FILE: a flite model whose voice is awb,
    one whose voice is a .flitevox file (flite's own dump of rms), and one
    with a damaged file, which fails to load with the reason (503) while
    the others serve."""
    vox = h.flite_voice_file(h.tmppath("anna.flitevox"), "rms")
    anna = os.path.basename(vox)[:-len(".flitevox")]  # the voice's name
    bad = h.tmppath("broken.flitevox")
    with open(vox, "rb") as f, open(bad, "wb") as g:
        g.write(f.read()[:3000])
    path = _models_file("espeak-ng tts espeak-ng\n"
                        "flite-awb tts flite voice=awb\n"
                        "anna tts flite voice_file=%s\n"
                        "broken tts flite voice_file=%s\n"
                        "pocketsphinx asr pocketsphinx\n" % (vox, bad), "flite-voices.txt")
    s = h.Server(env={"MODELS_FILE": path}, name="flite-voice-models").start()
    try:
        out = {}
        for model, voice in (("flite-awb", "alloy"), ("anna", anna), ("anna", "alloy")):
            r = h.speak(s.tts_port, "Turn off the hallway light.", model=model, voice=voice,
                        response_format="pcm")
            assert r.status == 200 and len(r.body) > 10000, (model, voice, r)
            assert _served_by(r) == model
            out[(model, voice)] = r.body
        # the file's voice is the model's voice: alloy is the file's voice
        assert out[("anna", anna)] == out[("anna", "alloy")]
        assert out[("anna", "alloy")] != out[("flite-awb", "alloy")]
        v = s.get("tts", "/v1/audio/voices?model=anna").json()
        assert v["model"] == "anna" and anna in [x["name"] for x in v["voices"]], v
        r = h.speak(s.tts_port, "Hello.", model="broken", response_format="pcm")
        e = h.assert_error_shape(r, 503)
        assert "broken.flitevox" in e["message"], e
        assert _served_by(r) == "broken"
        r = h.speak(s.tts_port, "Hello.", model="flite-awb", response_format="pcm")
        assert r.status == 200
    finally:
        s.stop()

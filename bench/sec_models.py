"""sec_models.py - section 9: every model and voice of issue 9, measured.

DESIGN
Owns: per TTS voice of every TTS model, intelligibility (the word error
rate of the server's default recognizer on that voice's speech of
bench/models_sentences.txt), real-time factor (synthesis wall time / audio
seconds) and first-audio-byte latency of a streamed POST /v1/audio/speech
(pcm); per model, worker RSS after load and load time; per ASR model, WER
and real-time factor on held-out human recordings; the home-automation
grammar against the free language model on each TTS engine's speech
(tools/pyvs/speech.py, shared with tests/integration/test_grammar.py).
Results go to the table (rows "9") and to ctx.facts["models"], from which
bench/models_md.py writes the measured part of docs/MODELS.md.

Why it is shaped so:
- One function measures one voice (measure(port, model, voice)) and one
  transcribes (transcribe()): the model is named in the request, so when
  the catalogue serves every model from one server only MODEL_ENV changes
  (every entry {} then, and one server starts).
- Timing and recognition are separate phases: voices are synthesised one
  request at a time while nothing else of ours runs (one TTS slot), and
  only then is the audio transcribed, two requests at a time (two ASR
  slots), so the recognizer's CPU never skews a synthesis figure.  The ASR
  real-time factor comes from a sequential pass over human recordings.
- Intelligibility is one recognizer's view, and a jumpy one: pocketsphinx
  moves by several words on one clip when the audio shifts by a few
  samples, so a voice is judged on 20 sentences, not one.
- No goal: these figures choose defaults (tts-1-hd) and describe models;
  a voice the recognizer cannot understand at all (WER >= UNINTELLIGIBLE)
  becomes a note of the run, never a failure.
- About 3-4 minutes on 2 cores: most of it is the recognizer on ~30
  voices x 20 sentences; --models-sentences N and --models-voices cut it.
"""

import concurrent.futures
import http.client
import json
import os
import re
import time

from core import BENCH_DIR, HOST, ROOT, Broken, Server, audio_seconds, median
from pyvs import speech
from pyvs.media import wav_bytes
from pyvs.procs import CLK_TCK, cpu_ticks, rss_kb

import tune_asr

SENTENCES_FILE = os.path.join(BENCH_DIR, "models_sentences.txt")
GRAMMAR_DIR = os.path.join(ROOT, "data", "grammars")
PCM_RATE = 24000                      # response_format=pcm: 24 kHz s16le mono
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
BUILTIN_VOICES = {"espeak-ng": (), "flite": ("slt", "rms", "awb", "kal16", "kal")}
TTS_MODELS = ("espeak-ng", "flite")
# The recognizer that judges every voice: the server's default
JUDGE_ASR = "pocketsphinx"
# ASR models measured on human speech, and the recordings: the held-out split
# of bench/tune_asr.py (never used to choose pocketsphinx-accurate's
# settings) as (path, reference) pairs; a .raw path is 16 kHz s16le mono, a
# missing file (the JFK clip, fetched by `make tune-asr`) is skipped with a
# note.
ASR_MODELS = ("pocketsphinx", "pocketsphinx-accurate")
ASR_HELD_OUT = [(p, ref) for _id, p, part, ref in tune_asr.RECORDINGS if part == "held-out"]
# Settings per model's server: none, the catalogue serves every model from one
# server (SERVER_ENV's one TTS slot leaves each TTS model one slot)
MODEL_ENV = {}
# one TTS slot: syntheses are timed one at a time, and one worker ends up
# holding every voice (its RSS "after every voice"); two ASR slots for the
# transcription phase
SERVER_ENV = {"ASR_MAX_CONCURRENT_REQUESTS": 2, "TTS_MAX_CONCURRENT_REQUESTS": 1,
              "ASR_GRAMMAR_DIR": GRAMMAR_DIR}
UNINTELLIGIBLE = 0.5                  # WER at or above: "cannot understand it"
HOME_VOICE = "alloy"


def load_sentences(path=SENTENCES_FILE):
    """[(text to speak, reference words)] from bench/models_sentences.txt."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            text, _, ref = line.partition(" | ")
            out.append((text.strip(), (ref or text).strip()))
    return out


def held_out(ctx):
    """[(name, wav bytes, reference, seconds)] the ASR models are measured on."""
    out = []
    for path, ref in (speech.load_transcripts() if ASR_HELD_OUT is None else ASR_HELD_OUT):
        if not os.path.exists(path):
            ctx.note("9. held-out recording %s missing: not measured" % path)
            continue
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".raw"):
            secs = len(data) / 32000.0
            data = wav_bytes(data)
        else:
            secs = audio_seconds(path)
        out.append((os.path.basename(path), data, ref, secs))
    if not out:
        raise Broken("no held-out recording to measure the ASR models on")
    return out


# ------------------------------------------------------------------ requests

def synth(port, model, voice, text, timeout=120.0):
    """One streamed POST /v1/audio/speech (pcm): (seconds to the first audio
    byte, seconds to the last, the pcm)."""
    body = json.dumps({"model": model, "input": text, "voice": voice,
                       "response_format": "pcm"}).encode()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise Broken("speech %s/%s answered %d: %r" % (model, voice, r.status, r.read(300)))
        first, parts = None, []
        while True:
            b = r.read1(65536)
            if not b:
                break
            if first is None:
                first = time.perf_counter() - t0
            parts.append(b)
        total = time.perf_counter() - t0
    finally:
        conn.close()
    pcm = b"".join(parts)
    if not pcm:
        raise Broken("speech %s/%s of %r: no audio" % (model, voice, text))
    return first, total, pcm


def measure(port, model, voice, sentences, outdir):
    """Every sentence spoken by (model, voice), one request at a time after a
    warm-up (flite registers a voice on its first use). Returns the voice's
    timings and the wav files to transcribe."""
    synth(port, model, voice, "Hello.")
    res = dict(model=model, voice=voice, first=[], total=[], audio=[], wavs=[])
    for i, (text, _ref) in enumerate(sentences):
        first, total, pcm = synth(port, model, voice, text)
        path = os.path.join(outdir, "%s-%s-%02d.wav" % (model, voice, i))
        with open(path, "wb") as f:
            f.write(wav_bytes(pcm, PCM_RATE))
        res["first"].append(first)
        res["total"].append(total)
        res["audio"].append(len(pcm) / 2.0 / PCM_RATE)
        res["wavs"].append(path)
    return res


def transcribe(port, model, audio, name=None, fields=None):
    """(text, wall seconds) of one transcription by `model`; audio: a wav
    file's path or its bytes."""
    name = name or os.path.basename(audio)
    t0 = time.perf_counter()
    r = speech.transcribe(port, audio, name, "audio/wav",
                          fields=dict(fields or {}, model=model), timeout=300.0)
    took = time.perf_counter() - t0
    if r.status != 200:
        raise Broken("transcription by %s of %s answered %d: %r"
                     % (model, name, r.status, r.body[:300]))
    return r.json()["text"], took


def transcribe_all(port, model, paths, threads=2):
    """Texts of paths, `threads` requests at a time (the server's ASR slots)."""
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return [t for t, _s in ex.map(lambda p: transcribe(port, model, p), paths)]


# ------------------------------------------------------------------ models

def model_figures(srv, svc, model):
    """(RSS kB from /proc, RSS MB from /health/detailed, load ms) of the
    model's worker(s): the largest worker, the median load logged."""
    d = srv.detailed(svc)
    entry = next((m for m in d.get("models", []) if m.get("id") == model), None)
    workers = [w for w in (entry or d).get("workers", [])
               if w.get("model_loaded") and w.get("model", model) == model]
    if not workers:
        raise Broken("/health/detailed lists no loaded %s worker: %s"
                     % (model, json.dumps(d)[:400]))
    srv.ctx.pids.update(w["pid"] for w in workers)
    w = max(workers, key=lambda w: w.get("rss_mb", 0))
    loads = load_ms_logged(srv.log(), svc, model)
    return rss_kb(w["pid"]), w.get("rss_mb"), median(loads) if loads else None


def load_ms_logged(log, svc, model):
    """load_ms of every event=model_loaded the service's workers logged for
    `model` (the log's model= field, or its engine= when the engine names
    the model)."""
    rx = re.compile(r"proc=%s-worker\b.*?event=model_loaded\b.*?engine=(\S+) model=(\S+) "
                    r"load_ms=(\d+)" % svc)
    hits = [(e, m, int(ms)) for e, m, ms in rx.findall(log)]
    by_model = [ms for _e, m, ms in hits if m == model]
    return by_model or [ms for e, _m, ms in hits if e == model]


def servers(ctx, models):
    """{model: Server}: one server per distinct MODEL_ENV (service all)."""
    by_env, out = {}, {}
    for m in models:
        env = dict(SERVER_ENV, **MODEL_ENV.get(m, {}))
        key = json.dumps(env, sort_keys=True)
        if key not in by_env:
            by_env[key] = Server(ctx, env, "all", "models %s" % m).start()
        out[m] = by_env[key]
    return out


def voices_of(srv, model):
    """The OpenAI names the server lists, then the engine's built-in voices."""
    r = srv.get("tts", "/v1/audio/voices?model=" + model)
    if r.status != 200:
        raise Broken("/v1/audio/voices answered %d" % r.status)
    listed = set(v["name"] for v in r.json()["voices"])
    missing = [v for v in OPENAI_VOICES if v not in listed]
    return [v for v in OPENAI_VOICES if v in listed] + list(BUILTIN_VOICES[model]), missing


# ------------------------------------------------------------------ section

def asr_on_humans(srv, model, items, silence):
    """Sequential transcriptions of held-out human recordings, after a
    request for 0.5 s of silence that loads the model (RSS read then)."""
    transcribe(srv.port("asr"), model, silence)
    rss, rss_mb, load = model_figures(srv, "asr", model)
    edits = words = 0
    took = secs = 0.0
    for name, data, ref, dur in items:
        text, t = transcribe(srv.port("asr"), model, data, name)
        e, n = speech.word_edits(ref, text)
        edits += e
        words += n
        took += t
        secs += dur
    return dict(model=model, files=len(items), edits=edits, words=words, wall=took, audio=secs,
                wer=edits / max(words, 1), rtf=took / max(secs, 1e-9), rss_kb=rss,
                rss_mb=rss_mb, load_ms=load)


def speak_all(ctx, srvs, sentences, only, outdir):
    """Every voice of every TTS model, one request at a time; each model's
    worker RSS after load and after every voice, and its load time."""
    tts, voices = {}, []
    for model in TTS_MODELS:
        srv = srvs[model]
        names, missing = voices_of(srv, model)   # the request loads the worker
        if missing:
            ctx.note("9. %s: OpenAI voice(s) %s not listed by /v1/audio/voices, not measured"
                     % (model, ", ".join(missing)))
        rss0, rss0_mb, load = model_figures(srv, "tts", model)
        for v in names:
            if not only or v in only:
                voices.append(measure(srv.port("tts"), model, v, sentences, outdir))
        rss1, rss1_mb, _ = model_figures(srv, "tts", model)
        tts[model] = dict(model=model, voices=len(names), rss_kb=rss0, rss_mb=rss0_mb,
                          load_ms=load, rss_all_kb=rss1, rss_all_mb=rss1_mb)
    return tts, voices


def score(judge, voices, sentences):
    """Each voice's WER as the judge hears it, and its real-time factor."""
    texts = iter(transcribe_all(judge.port("asr"), JUDGE_ASR,
                                [p for v in voices for p in v["wavs"]]))
    for v in voices:
        v["edits"] = v["words"] = 0
        v["texts"] = []
        for _text, ref in sentences:
            v["texts"].append(next(texts))
            e, n = speech.word_edits(ref, v["texts"][-1])
            v["edits"] += e
            v["words"] += n
        v["wer"] = v["edits"] / max(v["words"], 1)
        v["rtf"] = sum(v["total"]) / max(sum(v["audio"]), 1e-9)


def sec_models(ctx, inp, a):
    sentences = load_sentences()[:a.models_sentences or None]
    only = set(v for v in (a.models_voices or "").split(",") if v)
    srvs = servers(ctx, list(ASR_MODELS) + [JUDGE_ASR] + list(TTS_MODELS))
    judge = srvs[JUDGE_ASR]
    outdir = os.path.join(ctx.tmp, "models")
    os.makedirs(outdir, exist_ok=True)
    t = [time.monotonic()]
    asr = [asr_on_humans(srvs[m], m, held_out(ctx), inp["sil"]) for m in ASR_MODELS]
    t.append(time.monotonic())
    tts, voices = speak_all(ctx, srvs, sentences, only, outdir)
    t.append(time.monotonic())
    score(judge, voices, sentences)
    t.append(time.monotonic())
    home = {m: speech.home_commands(srvs[m].port("tts"), judge.port("asr"),
                                    {"grammar_name": "home"}, tts_model=m, voice=HOME_VOICE,
                                    asr_model=JUDGE_ASR) for m in TTS_MODELS}
    t.append(time.monotonic())
    phases = [y - x for x, y in zip(t, t[1:])]
    cpu = sum(cpu_ticks(s.all_pids()) for s in set(srvs.values())) / CLK_TCK
    print("  phases: human recordings %.0f s, synthesis %.0f s, recognition of %.0f s of "
          "speech %.0f s, grammar %.0f s; server CPU %.0f s"
          % (phases[0], phases[1], sum(sum(v["audio"]) for v in voices), phases[2],
             phases[3], cpu), flush=True)
    ctx.facts["models"] = dict(asr=asr, tts=tts, voices=voices, home=home,
                               sentences=len(sentences),
                               words=sum(len(speech.words(r)) for _t, r in sentences),
                               judge=JUDGE_ASR, home_voice=HOME_VOICE,
                               held_out=ASR_HELD_OUT, threshold=UNINTELLIGIBLE,
                               phases=phases, cpu=cpu)
    rows(ctx, ctx.facts["models"])


def rows(ctx, f):
    n = f["sentences"]
    for r in f["asr"]:
        ctx.row("9", "ASR %s on %d human recordings (%s): WER / real-time factor"
                % (r["model"], r["files"], "bench/tune_asr.py's held-out split"
                   if f["held_out"] else "testdata librivox + cards"),
                "WER %.1f%% (%d/%d words), RTF %.2f" % (100 * r["wer"], r["edits"], r["words"],
                                                        r["rtf"]),
                "worker RSS %.1f MB, load %s" % (r["rss_kb"] / 1024.0, fmt_load(r["load_ms"])),
                "n/a", "curl -F model=%s -F file=@<recording> .../v1/audio/transcriptions, one "
                "at a time, warm worker" % r["model"])
    for model, t in f["tts"].items():
        vs = [v for v in f["voices"] if v["model"] == model]
        ctx.row("9", "TTS %s worker: RSS after load / after every voice; load time" % model,
                "%.1f MB / %.1f MB" % (t["rss_kb"] / 1024.0, t["rss_all_kb"] / 1024.0),
                "load %s" % fmt_load(t["load_ms"]), "n/a",
                "GET /v1/audio/voices (loads the worker), then every voice; /proc VmRSS of "
                "the worker, load_ms from its event=model_loaded log line")
        if not vs:
            continue
        best = min(vs, key=lambda v: v["wer"])
        worst = max(vs, key=lambda v: v["wer"])
        ctx.row("9", "TTS %s, %d voices x %d sentences: intelligibility (WER of %s on its "
                "speech)" % (model, len(vs), n, f["judge"]),
                "median %.1f%%; best %s %.1f%%, worst %s %.1f%%"
                % (100 * median([v["wer"] for v in vs]), best["voice"], 100 * best["wer"],
                   worst["voice"], 100 * worst["wer"]),
                "RTF median %.3f, first audio byte median %.1f ms"
                % (median([v["rtf"] for v in vs]),
                   1000 * median([x for v in vs for x in v["first"]])),
                "n/a", "POST /v1/audio/speech {model:%s, voice, response_format:pcm} per "
                "sentence of bench/models_sentences.txt, then POST the wav to "
                "/v1/audio/transcriptions model=%s; docs/MODELS.md has every voice"
                % (model, f["judge"]))
    for model, h in f["home"].items():
        m, w = h["commands"], max(h["words"], 1)
        ctx.row("9", "home.gram vs free LM, %d commands spoken by %s %s" % (m, model,
                                                                          f["home_voice"]),
                "grammar WER %.1f%%, meaning changed %d/%d" % (100.0 * h["gram"] / w,
                                                               h["gram_flips"], m),
                "free LM WER %.1f%%, meaning changed %d/%d" % (100.0 * h["free"] / w,
                                                               h["free_flips"], m),
                "%.2f" % (h["gram"] / h["free"]) if h["free"] else "n/a",
                "pyvs.speech.home_commands: POST /v1/audio/speech (wav), then "
                "/v1/audio/transcriptions with and without grammar_name=home "
                "(ASR_GRAMMAR_DIR=data/grammars)")
    bad = [v for v in f["voices"] if v["wer"] >= f["threshold"]]
    if bad:
        ctx.note("9. the recognizer cannot understand %d voice(s) (WER >= %.0f%%): %s"
                 % (len(bad), 100 * f["threshold"], ", ".join(
                     "%s %s %.0f%%" % (v["model"], v["voice"], 100 * v["wer"]) for v in bad)))


def fmt_load(ms):
    return "n/a (not logged)" if ms is None else "%d ms" % ms

"""speech.py - speech requests and word error rates, shared by the tests and bench/.

DESIGN
Owns: the two OpenAI audio requests as the tests and the bench send them
(transcribe, speak), word error counting (words, word_edits), the reference
transcripts of pocketsphinx-testdata, and the home-automation command set
with its meaning check (home_commands), which tests/integration/test_grammar.py
asserts on and bench/sec_models.py reports.
Why here: a figure the bench reports and a test asserts must come from the
same code, or the two drift (same reason as the rest of tools/pyvs).
"""

import os
import re

from . import Failed
from .http import encode_multipart, post_json, request
from .media import CARDS, LIBRIVOX


# ---------------------------------------------------------------- requests

def transcribe(port, audio, filename="audio.wav", ctype="application/octet-stream",
               path="/v1/audio/transcriptions", fields=None, timeout=180.0, headers=None):
    """POST a transcription. audio: bytes or a file path. fields: dict or list
    of extra form fields (model defaults to whisper-1 unless given); headers:
    more request headers (an API key...)."""
    if isinstance(audio, str):
        with open(audio, "rb") as f:
            audio = f.read()
    extra = list(fields.items()) if isinstance(fields, dict) else list(fields or [])
    if not any(k == "model" for k, _ in extra):
        extra.insert(0, ("model", "whisper-1"))
    body, ct = encode_multipart([("file", (filename, audio, ctype))] + extra)
    return request(port, "POST", path, body, dict({"Content-Type": ct}, **(headers or {})),
                   timeout)


def speak(port, text, voice="alloy", response_format=None, model="tts-1", timeout=180.0,
          headers=None, **extra):
    obj = {"model": model, "input": text, "voice": voice}
    if response_format is not None:
        obj["response_format"] = response_format
    obj.update(extra)
    return post_json(port, "/v1/audio/speech", obj, timeout, headers)


# ---------------------------------------------------------------- word errors

def words(text):
    """Lowercase words, punctuation stripped (apostrophes inside words kept)."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_edits(ref, hyp):
    """(Levenshtein distance over words, number of reference words)."""
    r, h = words(ref), words(hyp)
    prev = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        cur = [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
        prev = cur
    return prev[len(h)], len(r)


def wer(ref, hyp):
    e, n = word_edits(ref, hyp)
    return e / max(n, 1)


def load_transcripts():
    """[(wav_path, reference)] for librivox and cards, from Debian's
    pocketsphinx-testdata; <s>, </s> and the (id) stripped."""
    items = []
    for d, tfile in ((LIBRIVOX, "transcription"), (CARDS, "cards.transcription")):
        with open(os.path.join(d, tfile)) as f:
            for line in f:
                m = re.match(r"\s*(.*?)\s*\(([^)]+)\)\s*$", line)
                if not m:
                    continue
                ref = re.sub(r"</?s>", " ", m.group(1))
                ref = " ".join(ref.split())
                items.append((os.path.join(d, m.group(2) + ".wav"), ref))
    return items


def reference_transcript(path):
    """The reference transcript of one testdata wav (load_transcripts)."""
    for p, ref in load_transcripts():
        if p == path:
            return ref
    raise AssertionError("no reference transcript for %s" % path)


# ---------------------------------------------------------------- home automation

# Spoken by a TTS engine and recognised with data/grammars/home.gram against
# the free language model. Pairs differ in one operative word on purpose.
HOME_COMMANDS = [
    "turn on the kitchen light", "turn off the kitchen light",
    "turn on the bedroom fan", "turn off the bedroom fan",
    "lock the front door", "unlock the front door",
    "lock the back door", "unlock the back door",
    "open the garage door", "close the garage door",
    "turn on the living room lights", "turn off the hallway light",
    "set the thermostat to twenty degrees", "set the thermostat to eighteen degrees",
    "turn on the radio", "turn off the television",
    "open the window", "close the blinds",
]
OPPOSITES = [{"on", "off"}, {"lock", "unlock"}, {"open", "close"}]


def meaning(text):
    """The command's operative word(s): on/off, lock/unlock, open/close."""
    ws = set(words(text))
    return tuple(sorted(w for pair in OPPOSITES for w in pair if w in ws))


def home_commands(tts_port, asr_port, grammar_fields, tts_model="tts-1", voice="alloy",
                  asr_model="whisper-1"):
    """Every HOME_COMMANDS line spoken by (tts_model, voice), transcribed with
    the free language model and with grammar_fields (e.g. {"grammar_name":
    "home"}). Returns a dict: commands, words (reference words), free/gram
    (word errors), free_flips/gram_flips (commands whose on/off, lock/unlock,
    open/close changed), free_right/gram_right (exact), lines (per command
    (cmd, free text, grammar text))."""
    out = dict(commands=len(HOME_COMMANDS), words=0, free=0, gram=0, free_flips=0,
               gram_flips=0, free_right=0, gram_right=0, lines=[])

    def text(audio, fields):
        r = transcribe(asr_port, audio, "command.wav", "audio/wav",
                       fields=dict(fields or {}, model=asr_model))
        if r.status != 200:
            raise Failed("transcription failed: %r" % (r,))
        return r.json()["text"]

    for cmd in HOME_COMMANDS:
        r = speak(tts_port, cmd, voice=voice, response_format="wav", model=tts_model)
        if r.status != 200 or not r.complete:
            raise Failed("speech %s/%s of %r: %r" % (tts_model, voice, cmd, r))
        want = meaning(cmd)
        got = {}
        for key, fields in (("free", None), ("gram", grammar_fields)):
            got[key] = text(r.body, fields)
            e, k = word_edits(cmd, got[key])
            out[key] += e
            out[key + "_right"] += e == 0
            out[key + "_flips"] += meaning(got[key]) != want
        out["words"] += k
        out["lines"].append((cmd, got["free"], got["gram"]))
    return out


def home_summary(label, res):
    """One line: both WERs, exact commands and meaning changes."""
    m, n = res["commands"], max(res["words"], 1)
    return ("%s, %d commands, %d words: free LM WER %.1f%% (%d/%d exact), meaning changed "
            "%d/%d; home.gram WER %.1f%% (%d/%d exact), meaning changed %d/%d"
            % (label, m, res["words"], 100.0 * res["free"] / n, res["free_right"], m,
               res["free_flips"], m, 100.0 * res["gram"] / n, res["gram_right"], m,
               res["gram_flips"], m))

"""sec_wyoming.py - section 11: a short voice command over Wyoming against the
same over HTTP, side by side in one run.

DESIGN
Owns: the round trip of what Home Assistant does per voice command, on one
server with both protocols on: speech to text of a short spoken command
(pocketsphinx-testdata cards/002.wav, ~2 s) and text to speech of a short
answer (espeak-ng, the default model). Wyoming: connect, transcribe,
audio-start, the clip's 16 kHz PCM as 1024-sample audio-chunks sent at once,
audio-stop, until `transcript`; for speech, `synthesize` until audio-stop
(and the first audio-chunk). HTTP: the same clip as a multipart upload, the
same text as POST /v1/audio/speech with response_format pcm (the bytes
Wyoming sends), on a new connection each time as Home Assistant opens one
per request. Both clients are Python's standard library (tools/pyvs), in
alternating order (W H, H W, ...) after a warm-up of each, so a drift of
the machine's other load hits both alike; medians are reported with the
ratio Wyoming / HTTP. What the figure says: the cost of the protocol and
its front (event parsing, the raw-PCM spool and the format the worker is
told) next to HTTP's (multipart parsing, a WAV the worker probes), both
going through the same admission and the same warm worker.
"""

import os
import time

from core import Broken, Server, median, ratio
from pyvs import wyoming as wy
from pyvs.http import request
from pyvs.media import CARDS, raw_pcm
from pyvs.server import FREE
from pyvs.speech import speak, transcribe

CLIP = os.path.join(CARDS, "002.wav")
ANSWER = "Turned on the kitchen light."


def _wy_asr(port, pcm):
    t0 = time.monotonic()
    ev = wy.transcribe(port, pcm, 16000, 2, 1)
    t = time.monotonic() - t0
    if ev.type != "transcript":
        raise Broken("Wyoming transcription answered %r" % ev)
    return t, ev.data["text"]


def _http_asr(port):
    t0 = time.monotonic()
    r = transcribe(port, CLIP, "002.wav", "audio/wav")
    t = time.monotonic() - t0
    if r.status != 200:
        raise Broken("HTTP transcription answered %d" % r.status)
    return t, r.json()["text"]


def _wy_tts(port):
    """(seconds to audio-stop, seconds to the first audio-chunk, PCM bytes)"""
    t0 = time.monotonic()
    first = None
    n = 0
    with wy.Client(port, 60) as c:
        c.send("synthesize", {"text": ANSWER})
        while True:
            e = c.recv()
            if e is None or e.type == "error":
                raise Broken("Wyoming synthesis answered %r" % e)
            if e.type == "audio-chunk":
                first = first or time.monotonic() - t0
                n += len(e.payload)
            if e.type == "audio-stop":
                return time.monotonic() - t0, first, n


def _http_tts(port):
    t0 = time.monotonic()
    r = speak(port, ANSWER, response_format="pcm")
    t = time.monotonic() - t0
    if r.status != 200:
        raise Broken("HTTP speech answered %d" % r.status)
    return t, len(r.body)


def sec_wyoming(ctx, inp, a):
    runs = max(5, a.tts_runs * 2)
    env = {"WYOMING_ASR_PORT": FREE, "WYOMING_TTS_PORT": FREE}
    srv = Server(ctx, env, "all", "wyoming vs http").start()
    pcm = raw_pcm(CLIP, 16000, 1, "s16le")
    dur = len(pcm) / 32000.0
    t = {"wa": [], "ha": [], "wt": [], "wf": [], "ht": []}
    texts = set()
    try:
        wa, ta = srv.wyoming_port("asr"), srv.wyoming_port("tts")
        _wy_asr(wa, pcm), _http_asr(srv.asr_port)  # warm-up: workers spawned, models loaded
        _wy_tts(ta), _http_tts(srv.tts_port)
        wbytes = hbytes = 0
        for i in range(runs):
            for proto in (("w", "h") if i % 2 == 0 else ("h", "w")):
                if proto == "w":
                    s, text = _wy_asr(wa, pcm)
                    t["wa"].append(s)
                    s, f, wbytes = _wy_tts(ta)
                    t["wt"].append(s)
                    t["wf"].append(f)
                else:
                    s, text = _http_asr(srv.asr_port)
                    t["ha"].append(s)
                    s, hbytes = _http_tts(srv.tts_port)
                    t["ht"].append(s)
                texts.add((proto, text))
        st = request(srv.asr_port, "GET", "/metrics").body.decode()
        counted = sum(1 for line in st.splitlines()
                      if line.startswith("voicestack_requests_total{") and "wyoming:" in line)
    finally:
        srv.stop()
    if len({tx for _, tx in texts}) > 1:
        ctx.note("section 11: the clip's transcripts differ between the protocols: %s"
                 % sorted(texts))
    if not counted:
        raise Broken("no route=\"wyoming:...\" series in /metrics")
    wa_, ha_, wt_, ht_, wf_ = (median(t[k]) for k in ("wa", "ha", "wt", "ht", "wf"))
    shown = ("WYOMING_ASR_PORT=$W_ASR WYOMING_TTS_PORT=$W_TTS voicestack serve; one warm-up "
             "of each; %d rounds, order alternating, of: Wyoming transcribe + audio-start + "
             "%d audio-chunks (cards/002.wav, 16 kHz s16) + audio-stop -> transcript, "
             "Wyoming synthesize {text: %r} -> audio-stop -- and -- POST "
             "/v1/audio/transcriptions (the wav, multipart), POST /v1/audio/speech "
             "{input: %r, response_format: pcm} (tools/pyvs clients, a connection per "
             "request)" % (runs, (len(pcm) + 2047) // 2048, ANSWER, ANSWER))
    ctx.row("11", "Wyoming speech-to-text round trip, %.1f s spoken command, warm worker "
            "(median of %d)" % (dur, runs), "%.0f ms" % (wa_ * 1000),
            "HTTP POST /v1/audio/transcriptions, same clip: %.0f ms" % (ha_ * 1000),
            ratio(wa_, ha_), shown)
    ctx.row("11", "Wyoming text-to-speech round trip, %r to audio-stop (median of %d)"
            % (ANSWER, runs), "%.0f ms (first audio-chunk %.0f ms; %d bytes)"
            % (wt_ * 1000, wf_ * 1000, wbytes),
            "HTTP POST /v1/audio/speech, pcm, to the last byte: %.0f ms (%d bytes)"
            % (ht_ * 1000, hbytes), ratio(wt_, ht_), "same runs as the row above")
    ctx.facts.update(wyoming_asr_ms=wa_ * 1000, http_asr_ms=ha_ * 1000,
                     wyoming_tts_ms=wt_ * 1000, http_tts_ms=ht_ * 1000)

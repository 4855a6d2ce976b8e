"""sec_stream.py - section 12: streamed transcription (SSE) against the whole answer.

DESIGN
Owns: how soon a client of `stream=true` reads the first words of a 40 s
clip, against when it has the whole transcript: time to the first
`transcript.text.delta` and to `transcript.text.done` of one streamed
request, and the wall time of the same clip without streaming, in
alternating rounds on one warm worker (so the machine's other load hits
both alike). Events are timed as they arrive on the socket (pyvs.http.SSE
undoes the chunked coding by hand), not when the body ends.
"""

import time

from core import HOST, Broken, Server, curl_transcribe, median, ratio
from pyvs.http import encode_multipart, open_sse


def _streamed(port, audio):
    """(seconds to the first delta, seconds to done, deltas) of one request."""
    body, ct = encode_multipart([("model", "whisper-1"), ("stream", "true"),
                                 ("file", ("c40.wav", audio, "audio/wav"))])
    t0 = time.monotonic()
    st = open_sse(port, "/v1/audio/transcriptions", body, {"Content-Type": ct}, timeout=300)
    first, done, deltas = None, None, 0
    try:
        if st.status != 200:
            raise Broken("streamed transcription answered %d" % st.status)
        for t, ev in st.events():
            if ev.get("type") == "transcript.text.delta":
                deltas += 1
                first = first if first is not None else t - t0
            elif ev.get("type") == "transcript.text.done":
                done = t - t0
            else:
                raise Broken("unexpected event %r" % (ev,))
    finally:
        st.close()
    if not deltas or done is None:
        raise Broken("no transcript.text.delta, or no done event (complete=%s)" % st.complete)
    return first, done, deltas


def sec_stream(ctx, inp, a):
    runs = a.asr_runs
    srv = Server(ctx, {}, "asr", "asr stream").start()
    with open(inp["c40"], "rb") as f:
        audio = f.read()
    t = {"first": [], "done": [], "plain": [], "deltas": []}
    try:
        curl_transcribe(srv.asr_port, inp["c40"])   # warm-up: spawns the worker, loads the model
        for i in range(runs):
            def sse():
                first, done, n = _streamed(srv.asr_port, audio)
                t["first"].append(first)
                t["done"].append(done)
                t["deltas"].append(n)

            def plain():
                t["plain"].append(curl_transcribe(srv.asr_port, inp["c40"]))
            for step in ((sse, plain) if i % 2 == 0 else (plain, sse)):
                step()
    finally:
        srv.stop()
    f, d, p = median(t["first"]), median(t["done"]), median(t["plain"])
    dur = inp["dur"]["c40"]
    ctx.facts.update(sse_first=f, sse_done=d, sse_plain=p)
    shown = ("voicestack serve --service asr (defaults); one warm-up request; then %d rounds, "
             "order alternating, of: curl -sN -F model=whisper-1 -F stream=true "
             "-F file=@$TMP/c40.wav http://%s:$ASR_PORT/v1/audio/transcriptions (events timed "
             "as they arrive by bench/sec_stream.py) -- and -- the same without stream=true"
             % (runs, HOST))
    ctx.row("12", "ASR %.0f s clip, stream=true: time to the first transcript.text.delta "
            "(median of %d)" % (dur, runs), "%.2f s" % f,
            "time to transcript.text.done (the whole transcript) %.2f s; %s deltas per request"
            % (d, "/".join(str(n) for n in t["deltas"])), ratio(f, d), shown)
    ctx.row("12", "ASR %.0f s clip: whole transcript streamed vs not streamed (median of %d)"
            % (dur, runs), "%.2f s" % d, "the same clip without stream=true: %.2f s" % p,
            ratio(d, p), "same rounds as the row above")

"""test_tts_stream.py - a TTS answer streams while the worker works, and a
client that stops reading stops the worker (issue 8, synthesis and encoding
overlap: src/worker/tts_pipeline.c).

Real espeak-ng, 4,000 characters (about 3.5 minutes of audio, 10 MB of pcm or
wav: far more than the front's buffer and the sockets hold). The client reads
the head and the first audio bytes, then stops reading: the worker must still
be on the request (the slot is busy, no END came) once its CPU time has
stopped moving - it waits for the client instead of buffering the rest. Then
the client reads to the end: the paused answer is complete and as long as the
same request read at full speed (within 50 ms: espeak-ng's output depends a
few samples on what it said before). No assertion on time.
"""

import json

import harness as h

SPEECH = "/v1/audio/speech"
LONG = (("The family of Dashwood had long been settled in Sussex. Their estate was "
         "large, and their residence was at Norland Park. ") * 40)[:4000]

srv = h.SharedServer(name="tts-stream", service="tts")


def teardown_module():
    srv.stop()


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def _paused_then_read(s, fmt):
    body = json.dumps({"model": "tts-1", "input": LONG, "voice": "alloy",
                       "response_format": fmt}).encode()
    so = h.open_request(s.tts_port, "POST", SPEECH, body,
                        {"Content-Type": "application/json"}, rcvbuf=4096, timeout=60)
    try:
        status, hdrs, rest = h.read_head(so, timeout=60)
        assert status == 200, "speech did not start: %d %s" % (status, hdrs)
        assert hdrs.get("transfer-encoding") == "chunked", hdrs
        while b"\r\n" not in rest:  # the first chunk's size line: audio follows
            rest += so.recv(4096)
        wpid = s.busy_worker_pid("tts", timeout=30)
        # the worker blocks once everything between it and the client is full
        last = [-1, 0]

        def settled():
            t = _cpu_ticks(wpid)
            last[1] = last[1] + 1 if t == last[0] else 0
            last[0] = t
            return last[1] >= 10  # unchanged over 10 polls of 0.1 s
        h.wait_for(settled, "the worker's CPU time stopped moving", timeout=120, step=0.1)
        d = s.health_detailed("tts")
        assert d["concurrency"]["active_requests"] == 1, \
            "the request ended while its client was not reading: %s" % d["concurrency"]
        assert h.proc_alive(wpid)
        raw, closed = h.read_until_close(so, timeout=120)
    finally:
        so.close()
    data, complete = h.dechunk(rest + raw)
    assert complete, "the answer was cut after %d bytes" % len(data)
    return data


def test_tts_stream_pauses_with_the_reader_and_completes():
    s = srv.get()
    for fmt in ("pcm", "wav"):
        paused = _paused_then_read(s, fmt)
        r = h.speak(s.tts_port, LONG, response_format=fmt, timeout=120)
        assert r.status == 200 and r.complete, r
        print("  %s: %d bytes paused, %d bytes read at once" % (fmt, len(paused), len(r.body)))
        # espeak-ng's output depends a little on the text before (a few
        # samples): lengths, not bytes, are compared; 50 ms is far less than
        # one lost piece of the worker's queue (4096 samples)
        assert len(paused) > 1000000
        assert abs(len(paused) - len(r.body)) <= 2400, \
            "paused %s answer: %d bytes, unpaused %d" % (fmt, len(paused), len(r.body))
        assert paused[:4] == r.body[:4]

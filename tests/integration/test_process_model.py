"""test_process_model.py - what runs where (docs/ARCHITECTURE.md).

The front (HTTP, admission) maps neither FFmpeg nor an engine library: those
live only in the worker processes, so the front's memory stays small and a
decoder bug cannot reach it. Workers start with a clean signal mask even
though the front blocks SIGINT/SIGTERM for its sigwait(): a worker that
inherited that mask could not be stopped by them. Real engines throughout.
"""

import os

import harness as h

SPEECH = "/v1/audio/speech"
CARD = os.path.join(h.CARDS, "005.wav")
# libraries only a worker may map: FFmpeg, the engines and what they pull in
WORKER_ONLY = ("libavcodec", "libavformat", "libavutil", "libswresample", "libpocketsphinx",
               "libsphinxbase", "libespeak-ng", "libx265", "librsvg")

server = h.SharedServer(name="process-model")


def teardown_module():
    server.stop()


def _mapped_libs(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[-1]) for line in f
                if len(line.split()) >= 6 and ".so" in line.split()[-1]}


def _sig_blocked(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError("no SigBlk in /proc/%d/status" % pid)


def test_front_maps_no_media_or_engine_library_while_workers_do():
    s = server()
    with open(CARD, "rb") as f:
        r = h.transcribe(s.asr_port, f.read(), filename="005.wav")
    assert r.status == 200, r
    r = h.speak(s.tts_port, "Nothing but the front.", response_format="wav")
    assert r.status == 200, r
    front = _mapped_libs(s.pid)
    bad = sorted(lib for lib in front if lib.startswith(WORKER_ONLY))
    assert not bad, "the front maps worker-only libraries: %s" % bad
    assert any(lib.startswith("libmicrohttpd") for lib in front), sorted(front)
    for service, lib in (("asr", "libpocketsphinx"), ("tts", "libespeak-ng")):
        libs = _mapped_libs(s.wait_worker(service))
        assert any(x.startswith(lib) for x in libs), (service, sorted(libs))
        assert any(x.startswith("libavcodec") for x in libs), (service, sorted(libs))


def test_workers_start_with_a_clean_signal_mask():
    s = server()
    r = h.speak(s.tts_port, "Signals.", response_format="pcm")
    assert r.status == 200, r
    pid = s.wait_worker("tts")
    assert _sig_blocked(pid) == 0, "tts worker %d blocks signals %#x" % (pid, _sig_blocked(pid))

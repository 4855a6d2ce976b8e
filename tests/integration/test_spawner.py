"""test_spawner.py - workers forked by the spawner (docs/ARCHITECTURE.md
"Worker start").

The front starts one `voicestack-worker spawner` with the first worker; it has
the libraries linked and forks each further worker on request, so a cold
request does not pay the dynamic linking again. The workers it forks are
children of the front (the front is their subreaper; the spawner double
forks), so the front reaps them as before: no zombies after a crash or an
idle unload. The spawner leaves with the last worker, so an idle service is
the front alone. Killing the spawner never breaks a request: the front falls
back to posix_spawn of the worker binary and starts a new spawner later.
Real espeak-ng and pocketsphinx throughout.
"""

import os
import re
import signal
import time

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")
IDLE = {"TTS_IDLE_TIMEOUT_MINUTES": "0.02", "ASR_IDLE_TIMEOUT_MINUTES": "0.02",
        "IDLE_CHECK_INTERVAL_SECONDS": "1"}


def _started(s, service):
    """(pid, via) of every event=worker_started line of service, in order."""
    out = []
    for l in list(s.stderr_lines):
        m = re.search(r"event=worker_started service=%s .*?pid=(\d+).*? via=(\w+)" % service, l)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


def _assert_child_of_front(s, pid):
    ppid, state = h.proc_ppid_state(pid)
    assert ppid == s.pid, "worker %d has parent %d, not the front %d" % (pid, ppid, s.pid)
    assert state != "Z", "worker %d is a zombie" % pid


def _worker_and_spawner(s, text):
    """After a first TTS request: its worker and the one spawner."""
    r = h.speak(s.tts_port, text, response_format="pcm")
    assert r.status == 200, r
    sp = s.spawner_pids()
    assert len(sp) == 1, sp
    return s.wait_worker("tts"), sp[0]


def _kill_worker(s, pid):
    os.kill(pid, signal.SIGKILL)
    h.wait_for(lambda: s.log_contains(r"event=worker_exited service=tts .*pid=%d" % pid),
               "the end of worker %d noticed" % pid, 10)


def _open_fds(pid):
    return sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))


def test_forked_workers_are_children_of_the_front_and_hold_only_their_socket():
    s = h.Server(name="spawner-children").start()
    try:
        r = h.speak(s.tts_port, "First worker.", response_format="pcm")
        assert r.status == 200, r
        with open(CARD, "rb") as f:
            r = h.transcribe(s.asr_port, f.read(), filename="001.wav", timeout=90)
        assert r.status == 200, r
        started = _started(s, "tts") + _started(s, "asr")
        assert len(started) == 2, [l for l in s.stderr_lines if "worker_started" in l]
        assert all(via == "spawner" for _, via in started), started
        sp = s.spawner_pids()
        assert len(sp) == 1, "expected one spawner child of the front, got %s" % sp
        for pid, _ in started:
            _assert_child_of_front(s, pid)
            # stdin/out/err and the socket to the front (fd 3), nothing of the
            # spawner's (wait: the worker closes an upload's fd just after its answer)
            h.wait_for(lambda: _open_fds(pid) == [0, 1, 2, 3],
                       "worker %d with fds 0-3 only (has %s)" % (pid, _open_fds(pid)), 5)
            with open("/proc/%d/status" % pid) as f:
                blk = [l for l in f if l.startswith("SigBlk:")][0]
            assert int(blk.split()[1], 16) == 0, blk
        # harness discovery: the forked workers look like workers, the spawner does not
        assert s.worker_pids("tts") == [started[0][0]], (s.worker_pids("tts"), started)
        assert s.worker_pids("asr") == [started[1][0]], (s.worker_pids("asr"), started)
    finally:
        s.stop()


def test_idle_unload_leaves_the_front_alone_and_no_zombie():
    s = h.Server(env=IDLE, name="spawner-idle").start()
    try:
        r = h.speak(s.tts_port, "Soon idle.", response_format="pcm")
        assert r.status == 200, r
        pid = s.wait_worker("tts")
        assert _started(s, "tts")[-1] == (pid, "spawner"), _started(s, "tts")
        assert len(s.spawner_pids()) == 1
        h.wait_for(lambda: s.log_contains(r"event=model_unloaded service=tts"),
                   "tts idle unload", 20)
        # the worker, then the spawner (no worker left) are gone and reaped
        h.wait_for(lambda: not h._proc_children(s.pid), "the front without children", 10)
        assert s.log_contains(r"event=spawner_stopped .*reason=no_workers"), \
            [l for l in s.stderr_lines if "spawner" in l]

        # a cold request after the full idle: the spawner starts again and forks
        r = h.speak(s.tts_port, "Cold again.", response_format="wav")
        assert r.status == 200 and r.body[:4] == b"RIFF", r
        pid2, via = _started(s, "tts")[-1]
        assert pid2 != pid and via == "spawner", _started(s, "tts")
        _assert_child_of_front(s, pid2)
        assert s.log_contains(r"event=model_loaded engine=espeak-ng .*load_ms=\d+")
    finally:
        s.stop()


def test_crashed_forked_worker_is_reaped_and_replaced():
    s = h.Server(name="spawner-crash").start()
    try:
        pid, _ = _worker_and_spawner(s, "Before the crash.")
        _kill_worker(s, pid)
        h.wait_for(lambda: not s.zombie_children(), "no zombie child", 5)
        r = h.speak(s.tts_port, "After the crash.", response_format="pcm")
        assert r.status == 200, r
        pid2, via = _started(s, "tts")[-1]
        assert pid2 != pid and via == "spawner", _started(s, "tts")
        _assert_child_of_front(s, pid2)
    finally:
        s.stop()


def test_killing_the_spawner_never_breaks_a_request():
    s = h.Server(env={"TTS_MAX_CONCURRENT_REQUESTS": "2"}, name="spawner-killed").start()
    try:
        first, sp = _worker_and_spawner(s, "The spawner is here.")
        os.kill(sp, signal.SIGKILL)
        # the front reaps its dead spawner; the worker it forked lives on
        h.wait_for(lambda: not s.zombie_children() and not s.spawner_pids(),
                   "the killed spawner reaped", 10)
        assert h.proc_alive(first), "the worker died with the spawner"
        # kill the worker too, so the next request needs a new worker
        _kill_worker(s, first)
        for i in range(3):
            r = h.speak(s.tts_port, "Still speaking %d." % i, response_format="pcm")
            assert r.status == 200, (i, r)
        pid2 = _started(s, "tts")[-1][0]
        _assert_child_of_front(s, pid2)
        assert not s.zombie_children(), s.zombie_children()
    finally:
        s.stop()


def test_a_stuck_spawner_falls_back_to_exec_then_is_replaced():
    s = h.Server(name="spawner-stuck").start()
    try:
        # an ASR worker keeps the spawner wanted while TTS workers come and go
        r = h.transcribe(s.asr_port, CARD, timeout=90)
        assert r.status == 200, r
        first, sp = _worker_and_spawner(s, "Spawner, then stuck.")
        os.kill(sp, signal.SIGSTOP)
        _kill_worker(s, first)
        # the stopped spawner does not answer: this worker is exec'd instead
        r = h.speak(s.tts_port, "Exec'd this time.", response_format="pcm")
        assert r.status == 200, r
        pid2, via = _started(s, "tts")[-1]
        assert via == "exec", _started(s, "tts")
        unavailable = [l for l in s.stderr_lines if "event=spawner_unavailable" in l]
        assert len(unavailable) == 1, unavailable
        _assert_child_of_front(s, pid2)
        # the stuck spawner was killed and reaped
        h.wait_for(lambda: not h.proc_alive(sp) and not s.zombie_children(),
                   "the stuck spawner gone", 10)
        # later workers come from a new spawner again
        _kill_worker(s, pid2)
        # not before RETRY_MS (5 s): until then workers are exec'd
        for _ in range(30):
            r = h.speak(s.tts_port, "Back to the spawner.", response_format="pcm")
            assert r.status == 200, r
            if _started(s, "tts")[-1][1] == "spawner":
                break
            _kill_worker(s, _started(s, "tts")[-1][0])
            time.sleep(0.5)
        pid3, via = _started(s, "tts")[-1]
        assert via == "spawner", _started(s, "tts")
        assert s.spawner_pids() and s.spawner_pids() != [sp], (s.spawner_pids(), sp)
        assert len([l for l in s.stderr_lines if "event=spawner_unavailable" in l]) == 1
        assert not s.zombie_children(), s.zombie_children()
    finally:
        s.stop()

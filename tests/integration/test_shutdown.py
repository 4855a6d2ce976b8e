"""test_shutdown.py - SIGTERM / SIGINT end `serve` cleanly and within bounds.

The front stops accepting, answers a request still being worked on with a
503 `shutting_down` error (not a cut connection), stops its workers, frees
what it allocated and returns from main with status 0 (so LeakSanitizer
checks it in the sanitizer run of tests/run_all.sh). A worker that does not
exit by itself (here: SIGSTOPped) is SIGKILLed after SHUTDOWN_GRACE_SECONDS,
so it cannot keep the server from exiting. Real engines for the in-flight
and idle cases; the test engine only for the stopped worker. No assertion is
on elapsed time: the waits are generous upper bounds that fail a hang."""

import os
import signal

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")
EXIT_WAIT = 60.0  # a hang fails the test, well before the runner's limit


def _exit_status(s, sig):
    s.proc.send_signal(sig)
    try:
        return s.proc.wait(EXIT_WAIT)
    except Exception:
        raise AssertionError("front still running %.0f s after signal %d:\n%s"
                             % (EXIT_WAIT, sig, s.stderr_tail()))


def test_sigterm_answers_request_in_flight_and_exits_0():
    """Real pocketsphinx busy on a long clip when SIGTERM arrives."""
    clip = h.long_librivox_wav(4, "shutdown-long.wav")
    s = h.Server(env={"SHUTDOWN_GRACE_SECONDS": "5"}, service="asr", name="shutdown").start()
    t, box = h.in_thread(lambda: h.transcribe(s.asr_port, clip, timeout=EXIT_WAIT))
    pid = s.busy_worker_pid("asr", timeout=60)
    assert _exit_status(s, signal.SIGTERM) == 0, s.stderr_tail()
    r = h.join(t, box, EXIT_WAIT)
    assert r.complete, "reply cut short: %r" % (r,)
    e = h.assert_error_shape(r, 503)
    assert e["code"] == "shutting_down", e
    assert not h.proc_alive(pid), "worker %d outlived the front" % pid
    assert s.log_contains(r"event=shutdown_complete\b", timeout=2), s.stderr_tail()


def test_sigint_with_idle_workers_exits_0():
    """Both real engines loaded and idle: their workers exit on EOF."""
    s = h.Server(name="shutdown-idle").start()
    r = h.transcribe(s.asr_port, CARD)
    assert r.status == 200, r
    r = h.speak(s.tts_port, "Goodbye.", response_format="wav")
    assert r.status == 200, r
    workers = s.worker_pids()
    assert len(workers) == 2, workers
    assert _exit_status(s, signal.SIGINT) == 0, s.stderr_tail()
    for w in workers:
        assert not h.proc_alive(w), "worker %d outlived the front" % w
    assert s.log_contains(r"event=shutdown_complete\b", timeout=2), s.stderr_tail()
    assert not s.log_contains(r"reason=shutdown_grace"), s.stderr_tail()


def test_sigterm_kills_a_stuck_worker_after_the_grace_period():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "VS_TEST_ENGINE_SLEEP_MS": "0",
                      "SHUTDOWN_GRACE_SECONDS": "1"}, service="asr",
                 name="shutdown-stuck").start()
    r = h.transcribe(s.asr_port, CARD)
    assert r.status == 200, r
    w = s.wait_worker("asr")
    os.kill(w, signal.SIGSTOP)  # idle, but it will never read the EOF
    try:
        assert _exit_status(s, signal.SIGTERM) == 0, s.stderr_tail()
        assert not h.proc_alive(w), "stopped worker %d outlived the front" % w
        assert s.log_contains(r"event=worker_killed\b.*\breason=shutdown_grace\b"), \
            s.stderr_tail()
    finally:
        if h.proc_alive(w):
            os.kill(w, signal.SIGKILL)

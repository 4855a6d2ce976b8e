"""test_sd_notify.py - the front under systemd: Type=notify, the watchdog,
the journal's priorities (front code, so it runs in the sanitizer pass too;
the unit files are test_systemd.py).

systemd's side is played here: an AF_UNIX datagram socket passed as
NOTIFY_SOCKET (harness.NotifySocket), WATCHDOG_USEC for the watchdog, and a
stderr pipe named by JOURNAL_STREAM (harness.Server.journal_stream). A thread
of the front is frozen from outside with ptrace (harness.FrozenThreads;
threads found by their names in /proc/PID/task/*/comm), no seam in the code.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import harness as h

CARD = os.path.join(h.CARDS, "001.wav")
# 2 s: pings every second, so a frozen thread shows within a few seconds
WATCHDOG_USEC = "2000000"


def _ports(*names):
    return {n: h.server.free_port() for n in names}


def _connects(port):
    try:
        socket.create_connection((h.HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


def test_ready_comes_once_every_port_listens():
    ports = _ports("asr", "tts", "wy")
    at_ready = {}

    def on_message(f):
        # the moment READY=1 arrives, before the test sees anything else
        if f.get("READY") == "1" and not at_ready:
            at_ready.update({k: _connects(p) for k, p in ports.items()})

    n = h.NotifySocket(on_message)
    s = h.Server(env={"NOTIFY_SOCKET": n.path, "WYOMING_ASR_PORT": ports["wy"]},
                 flags=["--asr-port", str(ports["asr"]), "--tts-port", str(ports["tts"])],
                 name="notify-ready").start()
    try:
        n.wait("READY", "1")
        assert at_ready == {"asr": True, "tts": True, "wy": True}, \
            "ports accepting connections when READY=1 arrived: %r" % at_ready
        assert n.values("READY") == ["1"], "READY sent more than once: %r" % n.values("READY")
        assert h.threads_named(s.pid, "vs-notify"), "no notifier thread with NOTIFY_SOCKET"
    finally:
        s.stop()
        n.close()


def test_status_shows_slots_queue_and_model_state():
    n = h.NotifySocket()
    s = h.Server(env={"NOTIFY_SOCKET": n.path, "ASR_MAX_CONCURRENT_REQUESTS": "3",
                      "ASR_MAX_QUEUE": "4"}, name="notify-status").start()
    try:
        st = n.wait("STATUS")
        for want in ("asr", "tts", "0/3 slots", "queue 0/4", "pocketsphinx", "espeak-ng"):
            assert want in st, "STATUS=%r lacks %r" % (st, want)
        assert "not loaded" in st, "STATUS before any request: %r" % st
        t0 = time.monotonic()
        assert h.transcribe(s.asr_port, CARD, timeout=90).status == 200
        # a real pocketsphinx worker now holds the model: STATUS follows
        loaded = h.wait_for(lambda: [v for v in n.values("STATUS", t0)
                                     if re.search(r"pocketsphinx (1 )?loaded", v)],
                            "STATUS with pocketsphinx loaded", 20)
        assert len(loaded[0]) < 200, "STATUS is not short: %r" % loaded[0]
        # not one message per request: a burst of requests changes nothing
        # once they are done, and an unchanged state is not re-sent at once
        before = len(n.values("STATUS"))
        for _ in range(5):
            assert s.get("asr", "/health").status == 200
        time.sleep(1.5)
        assert len(n.values("STATUS")) - before <= 1, n.values("STATUS")[before:]
    finally:
        s.stop()
        n.close()


def test_watchdog_pings_stop_when_a_front_thread_freezes():
    """WATCHDOG=1 only while every thread that serves makes progress: the
    HTTP daemon's thread, the service's connection watcher, the reactor."""
    n = h.NotifySocket()
    s = h.Server(env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": WATCHDOG_USEC,
                      "HTTP_THREADS": "1"}, service="asr", name="notify-watchdog").start()
    frozen = h.FrozenThreads()
    try:
        n.wait("READY", "1")
        t0 = time.monotonic()
        h.wait_for(lambda: len(n.values("WATCHDOG", t0)) >= 2, "two WATCHDOG=1 pings", 15)
        # thread name -> which proof must notice it (the withheld line says)
        for name, proof in (("MHD-", "http"), ("vs-watch-asr", "watcher"),
                            ("vs-reactor", "reactor")):
            tids = h.threads_named(s.pid, name)
            assert tids, "no thread named %s* in %s" % (name, s.pid)
            frozen.freeze(tids)
            try:
                time.sleep(2.5)  # a check that began before the freeze may still ping
                t1 = time.monotonic()
                time.sleep(3.0)
                late = n.values("WATCHDOG", t1)
                assert not late, "%d WATCHDOG=1 pings while %s (%s) was frozen" % (
                    len(late), name, tids)
                assert s.log_contains(r"event=watchdog_withheld thread=%s\b" % proof), \
                    "the %s freeze was not put down to the %s proof" % (name, proof)
            finally:
                frozen.thaw()
            t2 = time.monotonic()
            h.wait_for(lambda: n.values("WATCHDOG", t2), "pings again after %s thawed" % name,
                       15)
        r = h.transcribe(s.asr_port, CARD, timeout=90)
        assert r.status == 200, r
    finally:
        frozen.thaw()
        s.stop()
        n.close()


def test_stopping_on_sigterm_and_reloading_on_sighup():
    n = h.NotifySocket()
    s = h.Server(env={"NOTIFY_SOCKET": n.path}, service="tts", name="notify-stop").start()
    try:
        n.wait("READY", "1")
        t0 = time.monotonic()
        os.kill(s.pid, signal.SIGHUP)
        n.wait("RELOADING", "1", since=t0)
        n.wait("READY", "1", since=t0)
        assert s.proc.poll() is None
        assert h.speak(s.tts_port, "still here").status == 200
        os.kill(s.pid, signal.SIGTERM)
        n.wait("STOPPING", "1", timeout=10)
        s.proc.wait(20)
    finally:
        s.stop()
        n.close()


def test_without_notify_socket_nothing_changes():
    # WATCHDOG_USEC alone (no NOTIFY_SOCKET): still no notifier
    s = h.Server(env={"WATCHDOG_USEC": WATCHDOG_USEC}, service="asr",
                 name="no-notify").start()
    try:
        assert not h.threads_named(s.pid, "vs-notify"), "a notifier without NOTIFY_SOCKET"
        assert not s.log_contains(r"event=(sd_notify|watchdog)"), s.stderr_tail()
        assert h.transcribe(s.asr_port, CARD, timeout=90).status == 200
        assert not s.log_contains(r"^<\d>"), "journal prefixes without JOURNAL_STREAM"
    finally:
        s.stop()


# the specification's troubleshooting command (CONCURRENCY_AND_RESOURCES.md)
SPEC_GREP = ["grep", "-i", r"resource\|memory\|slot\|idle"]


def test_journal_priorities_and_the_spec_troubleshooting_grep():
    """Start, a slot refusal (429), a memory refusal (503: the cgroup's
    memory.max as MemoryMax= sets it), an idle unload: each line the
    specification promises passes its grep, with the syslog priority the
    journal files it under (`journalctl -p warning` shows the refusals of
    memory, not the routine lines)."""
    gib = 1024 ** 3
    root = h.fake_cgroup_root(gib, gib // 4)
    s = h.Server(env={"ASR_ENGINE": "test-asr", "VS_TEST_ENGINE_SLEEP_MS": "2000",
                      "ASR_MAX_CONCURRENT_REQUESTS": "1", "ASR_MAX_QUEUE": "0",
                      "ASR_IDLE_TIMEOUT_MINUTES": "0.02", "IDLE_CHECK_INTERVAL_SECONDS": "0.2",
                      "MEMORY_THRESHOLD_PERCENT": "90", "VS_TEST_PROC_ROOT": root},
                 service="asr", name="journal")
    s.journal_stream = True
    s.start()
    try:
        busy = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=30))
        h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"] == 1,
                   "the one slot busy", 10)
        assert h.transcribe(s.asr_port, CARD).status == 429
        res = h.join(*busy)
        assert res.status == 200, res
        h.fake_cgroup_use(root, gib, gib * 95 // 100)  # 95% of MemoryMax=1G
        h.wait_for(lambda: h.transcribe(s.asr_port, CARD).status == 503, "a memory 503", 10)
        h.fake_cgroup_use(root, gib, gib // 4)
        assert s.log_contains(r"event=model_unloaded", timeout=20), "no idle unload"
    finally:
        s.stop()
    text = "\n".join(s.stderr_lines) + "\n"
    shown = subprocess.run(SPEC_GREP, input=text, capture_output=True, text=True).stdout
    promised = {
        "slots at start": r"^<6>.*event=listening service=asr.*\b1 slots?\b",
        "idle checker started": r"^<6>.*Idle timeout checker started",
        "slot refusal": r"^<6>.*event=reject reason=slot .*status=429",
        "memory refusal": r"^<4>.*event=reject reason=memory .*status=503.*cgroup limit",
        "idle unload": r"^<6>.*event=model_unloaded service=asr .*idle",
    }
    missing = [k for k, rx in promised.items() if not re.search(rx, shown, re.M)]
    assert not missing, "the spec's grep does not show %s; it shows:\n%s" % (missing, shown)
    # every line of the front carries a priority the journal understands
    bare = [ln for ln in s.stderr_lines if ln and not re.match(r"<[0-7]>", ln)]
    assert not bare, "lines without a <N> priority: %r" % bare[:5]

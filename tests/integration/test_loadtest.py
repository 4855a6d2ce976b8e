"""test_loadtest.py - voicestack-loadtest against the real server.

The tool's own figures are checked against the server's: its count per HTTP
status equals the movement of voicestack_requests_total for the same run;
more workers than slots with no queue gives 429s carrying Retry-After 10, and
a queue large enough turns every one of them into a 200. One run against the
real engines (pocketsphinx + espeak-ng); bad flags exit 2; an unreachable
server exits 1 with the transport error grouped by CURLcode.

The test engines (a sleep) keep every run short and its shape predictable;
no assertion is on elapsed time. The tool binary is build/tools/loadtest/
voicestack-loadtest beside the server binary, or $VOICESTACK_LOADTEST."""

import json
import os
import pty
import re
import select
import socket
import subprocess
import time

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}
RUN_TIMEOUT = 60.0


def _tool():
    path = os.environ.get("VOICESTACK_LOADTEST") or os.path.join(
        os.path.dirname(os.path.abspath(h.BIN)), "tools", "loadtest", "voicestack-loadtest")
    assert os.access(path, os.X_OK), "load-test tool %s not built (ninja -C build)" % path
    return path


def _run(args, stderr=subprocess.PIPE):
    """Run the tool; returns (rc, stdout str, stderr str)."""
    p = subprocess.run([_tool()] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=stderr, timeout=RUN_TIMEOUT)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            (p.stderr or b"").decode("utf-8", "replace"))


def _run_json(args):
    rc, out, err = _run(list(args) + ["--json"])
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise AssertionError("--json output is not JSON (%s), rc=%d:\n%s\nstderr:\n%s"
                             % (e, rc, out[:2000], err[-2000:]))
    return rc, doc, err


# ---------------------------------------------------------------- metrics

_SAMPLE = re.compile(r'^voicestack_requests_total\{([^}]*)\}\s+(\S+)$')


def _requests_total(s, service, route):
    """{status: count} of voicestack_requests_total for one service and route."""
    r = s.get("asr", "/metrics")
    assert r.status == 200, "/metrics: %r" % (r,)
    out = {}
    for line in r.body.decode("utf-8").splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if labels.get("service") == service and labels.get("route") == route:
            # summed over the models that served them
            out[labels["status"]] = out.get(labels["status"], 0) + int(float(m.group(2)))
    return out


def _delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in set(before) | set(after) if after.get(k, 0) != before.get(k, 0)}


def _metrics_delta(s, service, route, before, want_total, timeout=5.0):
    """Delta of the counters since `before`, waited for until it sums to
    want_total: the server counts a request when MHD reports it complete,
    which may be just after the client has read the last byte."""
    deadline = time.monotonic() + timeout
    while True:
        d = _delta(before, _requests_total(s, service, route))
        if sum(d.values()) >= want_total or time.monotonic() > deadline:
            return d
        time.sleep(0.05)


# ---------------------------------------------------------------- tests

def test_counts_per_status_equal_server_metrics():
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="300",
                          ASR_MAX_CONCURRENT_REQUESTS="2", TTS_MAX_CONCURRENT_REQUESTS="2"),
                 name="lt-metrics").start()
    try:
        before = {svc: _requests_total(s, svc, route)
                  for svc, route in (("asr", TRANSCRIBE), ("tts", SPEECH))}
        # one URL as the full endpoint, the other as a base with a slash
        rc, doc, err = _run_json(["--service", "both", "--workers", "4", "--requests", "3",
                                  "--asr-url", s.asr_url + TRANSCRIBE,
                                  "--tts-url", s.tts_url + "/"])
        assert rc == 0, "exit %d: %s\n%s" % (rc, json.dumps(doc, indent=1)[:3000], err)
        assert doc["exit_status"] == 0
        # stderr is not a terminal: no progress line, nothing at all
        assert err == "", "stderr not empty without a terminal: %r" % err[:500]
        for svc, route, url in (("asr", TRANSCRIBE, s.asr_url + TRANSCRIBE),
                                ("tts", SPEECH, s.tts_url + SPEECH)):
            st = doc["services"][svc]
            assert st["url"] == url, (st["url"], url)
            assert st["sent"] == 12 and st["completed"] == 12 and st["answered"] == 12, st
            assert st["transport_errors"] == 0 and st["errors"] == [], st["errors"]
            tool = {k: v for k, v in st["status"].items()}
            assert sum(tool.values()) == 12, tool
            server = _metrics_delta(s, svc, route, before[svc], 12)
            assert tool == server, "%s: tool counted %s, server /metrics moved by %s" % (
                svc, tool, server)
            # 4 workers on 2 slots of 300 ms: both outcomes must be present,
            # or the comparison above proved little
            assert tool.get("200", 0) >= 2 and tool.get("429", 0) >= 1, tool
            lat = st["latency_ms"]
            assert lat["all"]["count"] == 12, lat
            assert lat["200"]["count"] == tool["200"], lat
            # a 200 took the engine's 300 ms; a 429 is refused at once
            assert lat["200"]["min"] >= 290, lat["200"]
            assert lat["429"]["p50"] < lat["200"]["p50"], lat
            a = lat["all"]
            assert a["min"] <= a["p50"] <= a["p90"] <= a["p99"] <= a["max"], a
    finally:
        s.stop()


def test_more_workers_than_slots_without_queue_gives_429_retry_after_10():
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="500",
                          ASR_MAX_CONCURRENT_REQUESTS="2", ASR_MAX_QUEUE="0"),
                 service="asr", name="lt-noqueue").start()
    try:
        rc, doc, err = _run_json(["--service", "asr", "--workers", "10", "--requests", "2",
                                  "--asr-url", s.asr_url])
        st = doc["services"]["asr"]
        assert rc == 0, "429 is an answer, exit should be 0, got %d: %s" % (rc, st)
        assert st["sent"] == st["answered"] == 20, st
        n429 = st["status"].get("429", 0)
        assert n429 >= 1, "10 workers on 2 slots without a queue gave no 429: %s" % st["status"]
        assert st["status"].get("200", 0) >= 2, st["status"]
        assert set(st["status"]) <= {"200", "429"}, st["status"]
        # every 429 carried Retry-After: 10 (the original's value), and only they
        assert st["retry_after"] == {"10": n429}, st["retry_after"]
        # the text summary says the same
        rc2, out, _ = _run(["--service", "asr", "--workers", "10", "--requests", "1",
                            "--asr-url", s.asr_url])
        assert rc2 == 0, out
        assert re.search(r'Retry-After\s+"10": \d+', out), out
        assert re.search(r"status\s+200: \d+ 429: \d+", out), out
    finally:
        s.stop()


def _read_pty(fd, proc, timeout):
    """Everything written to the pty until proc exits (bounded)."""
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                b = os.read(fd, 4096)
            except OSError:       # EIO: the slave side is closed
                break
            if not b:
                break
            chunks.append(b)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def test_queue_large_enough_gives_no_429():
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="150",
                          ASR_MAX_CONCURRENT_REQUESTS="2", ASR_MAX_QUEUE="20",
                          ASR_QUEUE_TIMEOUT_SECONDS="60"),
                 service="asr", name="lt-queue").start()
    master, slave = pty.openpty()
    try:
        # stderr on a terminal: the run (~1.5 s) must show a progress line
        p = subprocess.Popen([_tool(), "--service", "asr", "--workers", "10", "--requests", "2",
                              "--asr-url", s.asr_url, "--json"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        slave = None
        tty = _read_pty(master, p, RUN_TIMEOUT)
        out, _ = p.communicate(timeout=RUN_TIMEOUT)
        doc = json.loads(out.decode())
        st = doc["services"]["asr"]
        assert p.returncode == 0, (p.returncode, st)
        assert st["status"] == {"200": 20}, "the queue should absorb every request: %s" % (
            st["status"],)
        assert st["retry_after"] == {}, st["retry_after"]
        assert re.search(r"\r\x1b\[K\s*\d+\.\ds\s+asr sent \d+ done \d+ in flight \d+ \[200:\d+",
                         tty), "no progress line on the terminal: %r" % tty[:500]
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
        s.stop()


def test_real_engines_both_services_all_200():
    s = h.Server(name="lt-real").start()
    try:
        rc, doc, err = _run_json(["--service", "both", "--workers", "2", "--requests", "2",
                                  "--asr-url", s.asr_url, "--tts-url", s.tts_url,
                                  "--format", "wav"])
        assert rc == 0, "exit %d: %s\n%s" % (rc, json.dumps(doc, indent=1)[:3000], err)
        for svc in ("asr", "tts"):
            st = doc["services"][svc]
            assert st["status"] == {"200": 4}, (svc, st["status"], st["errors"])
            assert st["bytes_received"] > 0, st
        # 4 WAVs of synthesized speech are far more than 4 short JSON texts
        assert doc["services"]["tts"]["bytes_received"] > 4 * 10000, doc["services"]["tts"]
    finally:
        s.stop()


def _free_port():
    with socket.socket() as so:
        so.bind((h.HOST, 0))
        return so.getsockname()[1]


def test_bad_flags_exit_2_and_unreachable_exits_1():
    bad = [["--workers", "0"], ["--workers", "many"], ["--service", "stt"],
           ["--requests", "5", "--duration", "2"], ["--timeout", "0"], ["--no-such-flag"],
           ["--asr-url", "ftp://example.org"], ["--file", "/nonexistent/a.wav"],
           ["--format", "mp3; rm"], ["stray"], ["--workers"]]
    for args in bad:
        rc, out, err = _run(args)
        assert rc == 2, "%s: exit %d, want 2 (stderr %r)" % (args, rc, err)
        assert out == "", "%s: printed on stdout: %r" % (args, out)
        assert err.startswith("voicestack-loadtest: ") and "--help" in err, (args, err)
    rc, out, err = _run(["--help"])
    assert rc == 0, rc
    for flag in ("--service", "--workers", "--requests", "--duration", "--timeout",
                 "--verbose", "--asr-url", "--tts-url", "--file", "--text", "--format",
                 "--api-key", "--json"):
        assert flag in out, "--help does not list %s" % flag

    port = _free_port()      # nothing listens there any more
    url = "http://%s:%d" % (h.HOST, port)
    rc, doc, err = _run_json(["--service", "asr", "--workers", "2", "--requests", "2",
                              "--asr-url", url])
    st = doc["services"]["asr"]
    assert rc == 1 and doc["exit_status"] == 1, (rc, st)
    assert st["sent"] == 4 and st["answered"] == 0 and st["transport_errors"] == 4, st
    assert st["status"] == {}, st["status"]
    assert len(st["errors"]) == 1, "4 identical refusals must be one group: %s" % st["errors"]
    e = st["errors"][0]
    assert e["code"] == 7 and e["count"] == 4 and not e["timeout"], e   # CURLE_COULDNT_CONNECT
    assert "connect" in e["message"].lower(), e
    rc, out, err = _run(["--service", "tts", "--workers", "1", "--requests", "3",
                         "--tts-url", url])
    assert rc == 1, out
    assert re.search(r"errors\s+3 x CURLE 7 \(", out), out
    assert "3 of 3 tts requests got no HTTP answer (exit 1)" in out, out

"""test_connections.py - connection-level defences of the HTTP front (issue 7).

Slow bodies (a whole-body deadline, TTS bodies read before a slot is taken),
clients that leave mid-upload, idle-connection exhaustion (header/keep-alive
deadline, per-IP connection limit), refusals a client that keeps sending can
still read (lingering close, no "100 Continue" around a refusal), and HTTP
framing that is refused (duplicate or malformed Content-Length,
Transfer-Encoding with Content-Length or other than chunked).

Small setting values keep the tests short; no assertion is on elapsed time,
every wait is bounded."""

import json
import socket
import threading
import time
import uuid

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CARD = h.os.path.join(h.CARDS, "001.wav")
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}

# real engines, one slot per service; a long stall timeout so that a slot
# freed quickly is freed by the fix, not by the stall timeout
real = h.SharedServer(env={"ASR_MAX_CONCURRENT_REQUESTS": "1",
                           "TTS_MAX_CONCURRENT_REQUESTS": "1",
                           "UPLOAD_STALL_TIMEOUT_SECONDS": "60",
                           "BODY_TIMEOUT_SECONDS": "3"}, name="conn-real")


def teardown_module():
    real.stop()


def _active(s, service):
    return s.health_detailed(service)["concurrency"]["active_requests"]


def _wait(pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "%s: not reached within %.0f s" % (what, timeout)
        time.sleep(0.05)


def _trickle(so, stop, every=0.3):
    """Send one space every `every` s until stop is set or the send fails."""
    while not stop.wait(every):
        try:
            so.sendall(b" ")
        except OSError:
            return


def _speech_head(length, extra=""):
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (SPEECH, length, extra)).encode()


# ---------------------------------------------------------------- 1 slow bodies

def test_slow_tts_bodies_do_not_take_the_slots():
    """Two clients trickling a 60000-byte speech body do not keep a third
    from speaking (the body is read before a slot is taken), and each gets
    408 at the body deadline."""
    s = real()
    stop = threading.Event()
    socks, threads = [], []
    try:
        for _ in range(2):
            so = socket.create_connection((h.HOST, s.tts_port), timeout=10)
            so.sendall(_speech_head(60000) + b"{")
            socks.append(so)
            t = threading.Thread(target=_trickle, args=(so, stop), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(0.5)
        r = h.speak(s.tts_port, "Hello there.", response_format="wav", timeout=60)
        assert r.status == 200, "speech while two bodies trickle in: %d %r" % (r.status,
                                                                              r.body[:300])
        for so in socks:
            raw, _ = h.read_until_close(so, timeout=15)
            assert raw, "no reply to a body still incomplete at BODY_TIMEOUT_SECONDS=3"
            h.assert_error_shape(h.parse_response(raw), 408)
    finally:
        stop.set()
        for so in socks:
            so.close()
    s.wait_slots_free("tts")


def test_slow_asr_body_gets_408_and_frees_the_slot_while_connected():
    s = real()
    boundary = "vsitest" + uuid.uuid4().hex
    stop = threading.Event()
    so = socket.create_connection((h.HOST, s.asr_port), timeout=10)
    try:
        so.sendall(h.upload_head(boundary, 20000000) + h.multipart_head(boundary) + b"\0" * 1000)
        _wait(lambda: _active(s, "asr") == 1, "slow upload holds the slot")
        t = threading.Thread(target=_trickle, args=(so, stop, 2.0), daemon=True)
        t.start()
        st, hdrs, body = h.recv_response(so, timeout=20)
        e = h.assert_error_shape(h.Resp(st, hdrs, body), 408)
        assert "BODY_TIMEOUT_SECONDS" in e["message"], e
        # the slot is back while the client is still connected and sending
        s.wait_slots_free("asr", timeout=5)
        assert t.is_alive(), "inconclusive: the trickling client stopped"
    finally:
        stop.set()
        so.close()
    r = h.transcribe(s.asr_port, CARD, timeout=90)
    assert r.status == 200, "transcription after a 408: %d %r" % (r.status, r.body[:300])


# ---------------------------------------------------------------- 4b departed clients

def test_slot_back_at_once_after_clients_leave_mid_upload_many_times():
    """UPLOAD_STALL_TIMEOUT_SECONDS is 60 here: a hang-up the server misses
    would keep the slot for 60 s (BODY_TIMEOUT_SECONDS 120); the wait allowed
    is 10 s."""
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "1", "UPLOAD_STALL_TIMEOUT_SECONDS": "60",
                      "BODY_TIMEOUT_SECONDS": "120"}, service="asr", name="leave-mid").start()
    try:
        _leave_mid_upload(s)
    finally:
        s.stop()


def _leave_mid_upload(s):
    for i in range(12):
        boundary = "vsitest" + uuid.uuid4().hex
        so = socket.create_connection((h.HOST, s.asr_port), timeout=10)
        try:
            so.sendall(h.upload_head(boundary, 20000000))
            so.sendall(h.multipart_head(boundary) + b"\0" * (10000 + 131072 * (i % 7)))
            # half of the clients leave at once (head, part of the body and
            # FIN arrive together: the case libmicrohttpd's epoll mode missed),
            # the others once the request holds the slot
            if i % 2:
                _wait(lambda: _active(s, "asr") == 1, "half-uploaded request holds the slot")
        finally:
            so.close()
        try:
            s.wait_slots_free("asr", timeout=10)
        except AssertionError as e:
            raise AssertionError("disconnect %d of 12: %s" % (i + 1, e))


# ---------------------------------------------------------------- 5 exhaustion

def test_idle_sockets_are_closed_at_the_header_deadline():
    s = h.Server(env={"MAX_CONNECTIONS": "10", "HEADER_TIMEOUT_SECONDS": "1",
                      "MAX_CONNECTIONS_PER_IP": "0"}, service="tts", name="hdr-1s").start()
    idle = []
    try:
        for _ in range(10):
            idle.append(socket.create_connection((h.HOST, s.tts_port), timeout=10))
        idle[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # half a request head
        # the eleventh client waits in the backlog until the idle ones go
        r = h.request(s.tts_port, "GET", "/health", timeout=15)
        assert r.status == 200, r
        for so in idle:
            assert h.closed_by_peer(so, 10), "an idle connection was left open"
        # a keep-alive connection idle after its request is closed too
        with socket.create_connection((h.HOST, s.tts_port), timeout=10) as so:
            so.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            st, _, _ = h.recv_response(so, timeout=10)
            assert st == 200
            assert h.closed_by_peer(so, 10), "idle keep-alive connection left open"
    finally:
        for so in idle:
            so.close()
        s.stop()


def test_connections_over_the_per_ip_limit_are_refused():
    s = h.Server(env={"MAX_CONNECTIONS_PER_IP": "4", "HEADER_TIMEOUT_SECONDS": "60"},
                 service="tts", name="per-ip-4").start()
    idle = []
    try:
        for _ in range(4):
            idle.append(socket.create_connection((h.HOST, s.tts_port), timeout=10))
        time.sleep(0.3)  # let the server accept them
        with socket.create_connection((h.HOST, s.tts_port), timeout=10) as so:
            try:
                so.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                pass
            raw, closed = h.read_until_close(so, timeout=10)
            assert closed and not raw.startswith(b"HTTP/1.1 200"), \
                "fifth connection from one IP with MAX_CONNECTIONS_PER_IP=4: %r" % raw[:200]
        idle.pop().close()
        time.sleep(0.3)
        r = h.request(s.tts_port, "GET", "/health", timeout=10)
        assert r.status == 200, r
    finally:
        for so in idle:
            so.close()
        s.stop()


# ---------------------------------------------------------------- 9 readable refusals

def _send_all_then_read(port, head, body_parts):
    """Send head and every body part (ignoring that a reply may already be
    there), then read the reply. Returns (raw, error-or-None)."""
    so = socket.create_connection((h.HOST, port), timeout=20)
    try:
        try:
            so.sendall(head)
            for p in body_parts:
                so.sendall(p)
        except OSError as e:
            return b"", "send: %r" % e
        try:
            raw, _ = h.read_until_close(so, timeout=20)
        except OSError as e:
            return b"", "recv: %r" % e
        return raw, None
    finally:
        so.close()


def _chunked(data, size=65536):
    for i in range(0, len(data), size):
        c = data[i:i + size]
        yield b"%x\r\n%s\r\n" % (len(c), c)
    yield b"0\r\n\r\n"


def _check_refusals(port, status, make, n=15):
    fails = []
    for i in range(n):
        head, parts = make()
        raw, err = _send_all_then_read(port, head, parts)
        lines = h.status_lines(raw)
        if err or not raw:
            fails.append("try %d: %s (got %r)" % (i + 1, err or "no reply", raw[:80]))
            continue
        assert len(lines) == 1, "try %d: status lines %r" % (i + 1, lines)
        h.assert_error_shape(h.parse_response(raw), status)
    assert not fails, "%d of %d refused uploads did not read the %d:\n%s" % (
        len(fails), n, status, "\n".join(fails))


def test_429_readable_by_a_client_that_sends_its_whole_chunked_or_expect_body():
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1",
                          VS_TEST_ENGINE_SLEEP_MS="120000"), service="asr",
                 name="refuse-429").start()
    try:
        hold = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=200))
        _wait(lambda: _active(s, "asr") == 1, "a request holds the only slot")
        boundary = "vsitest" + uuid.uuid4().hex
        body = h.multipart_head(boundary) + b"\0" * (3 * 1024 * 1024)

        def chunked():
            return h.upload_head(boundary), list(_chunked(body))

        def expect():
            head = h.upload_head(boundary, len(body))
            head = head[:-2] + b"Expect: 100-continue\r\n\r\n"
            return head, [body[i:i + 65536] for i in range(0, len(body), 65536)]
        _check_refusals(s.asr_port, 429, chunked)
        _check_refusals(s.asr_port, 429, expect)
        assert hold[0].is_alive(), "inconclusive: the slot holder finished"
    finally:
        s.stop()


def test_413_readable_by_a_client_that_sends_its_whole_chunked_body():
    s = h.Server(env={"MAX_UPLOAD_SIZE_MB": "1"}, service="asr", name="refuse-413").start()
    try:
        boundary = "vsitest" + uuid.uuid4().hex
        body = h.multipart_head(boundary) + b"\0" * (4 * 1024 * 1024)
        _check_refusals(s.asr_port, 413, lambda: (h.upload_head(boundary),
                                                  list(_chunked(body))))
        # declared too large with Expect: the 413 comes instead of 100 Continue
        head = h.upload_head(boundary, len(body))[:-2] + b"Expect: 100-continue\r\n\r\n"
        _check_refusals(s.asr_port, 413, lambda: (head, [body[i:i + 65536] for i in
                                                         range(0, len(body), 65536)]))
        s.wait_slots_free("asr")
    finally:
        s.stop()


# ---------------------------------------------------------------- 10 framing

def _framing_refused(head, body=b""):
    s = real()
    with socket.create_connection((h.HOST, s.tts_port), timeout=10) as so:
        so.sendall(head + body)
        raw, closed = h.read_until_close(so, timeout=10)
    lines = h.status_lines(raw)
    assert len(lines) == 1, "want exactly one status line, got %r in %r" % (lines, raw[:600])
    h.assert_error_shape(h.parse_response(raw), 400)
    assert closed, "connection left open after a 400 for bad framing"
    s.wait_slots_free("tts", timeout=5)
    r = h.speak(s.tts_port, "Next.", response_format="wav", timeout=60)
    assert r.status == 200, "next request after the 400: %d %r" % (r.status, r.body[:200])


_OK_BODY = json.dumps({"model": "tts-1", "input": "Hi.", "voice": "alloy",
                       "response_format": "wav"}).encode()


def test_two_different_content_lengths_refused():
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
            % (SPEECH, len(_OK_BODY), len(_OK_BODY) + 5)).encode()
    _framing_refused(head, _OK_BODY)


def test_transfer_encoding_with_content_length_refused():
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_OK_BODY), _OK_BODY)
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n"
            % (SPEECH, len(chunked))).encode()
    _framing_refused(head, chunked)


def test_malformed_content_length_refused_once():
    """libmicrohttpd 0.9.75 answers this itself, before the application sees
    the request, and writes its head twice: reported as a skip (with what
    was seen) until a libmicrohttpd that gets it right is in use."""
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 12abc\r\n\r\n" % SPEECH).encode()
    try:
        _framing_refused(head, _OK_BODY)
    except AssertionError as e:
        if "exactly one status line" in str(e) and str(e).count("400 Bad Request") >= 2:
            raise h.Skip("libmicrohttpd 0.9.75 writes its own 400 head twice for a malformed "
                         "Content-Length (not reachable from the application)")
        raise


def test_transfer_encoding_gzip_refused():
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: gzip\r\n\r\n" % SPEECH).encode()
    _framing_refused(head, b"\x1f\x8b")


def test_transfer_encoding_identity_refused():
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: identity\r\n\r\n" % SPEECH).encode()
    _framing_refused(head, _OK_BODY)

"""test_admission.py - admission control, in the order the server applies it.

Resource guard (503 with MEMORY_THRESHOLD_PERCENT=1; swap 0% is not over 1%),
upload limit (413 before the body is read: curl with a 150 MB sparse file, a
raw Content-Length with no body, a chunked upload cut off at the limit),
concurrency (429 with one slot, with the test engine and with two real
pocketsphinx transcriptions), the FIFO queue and its timeout, and a slot
coming back on every path a request can end by (success, engine error, worker
crash, client gone mid-upload or mid-response, queue timeout). The request
timeout path is in test_timeout.py.

No assertion is on elapsed time; every wait is bounded."""

import json
import os
import re
import select
import socket
import threading
import time
import uuid

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CARD = os.path.join(h.CARDS, "001.wav")
SENT_0870 = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0870.wav")
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}

# real engines, one slot per service: a slot that leaks shows at once as a 429
# a short UPLOAD_STALL_TIMEOUT_SECONDS keeps a test that leaves a body
# unfinished short (missed hang-ups: test_connections.py)
real1 = h.SharedServer(env={"ASR_MAX_CONCURRENT_REQUESTS": "1",
                            "TTS_MAX_CONCURRENT_REQUESTS": "1",
                            "UPLOAD_STALL_TIMEOUT_SECONDS": "3"}, name="real-1slot")


def teardown_module():
    real1.stop()


# ---------------------------------------------------------------- helpers





def _wait_health(s, service, pred, what, timeout=20.0):
    """Poll /health/detailed until pred(doc) is true; returns the doc."""
    deadline = time.monotonic() + timeout
    while True:
        d = s.health_detailed(service)
        if pred(d):
            return d
        if time.monotonic() > deadline:
            raise AssertionError("%s: not reached within %.0f s; last concurrency=%s queue=%s"
                                 % (what, timeout, d.get("concurrency"), d.get("queue")))
        time.sleep(0.03)


def _slots_back(s, service):
    """available_slots back at max and the queue empty (<= 10 s)."""
    d = s.wait_slots_free(service, timeout=10)
    assert d["queue"]["depth"] == 0, "queue not empty: %s" % d["queue"]
    return d


_recv_response = h.recv_response
_closed_by_peer = h.closed_by_peer
_Prefixed = h.Prefixed
_upload_headers = h.upload_head
_multipart_head = h.multipart_head


def _numbers(s):
    return [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)\s*%", s)]


# ---------------------------------------------------------------- 503 guard

def test_memory_over_threshold_gives_503_but_health_and_metrics_answer():
    s = h.Server(env={"MEMORY_THRESHOLD_PERCENT": "1"}, name="mem-1pct").start()
    try:
        d = s.health_detailed("asr")
        assert d["memory"]["percent"] > 1, "inconclusive: memory use %s%% is not over 1%%" % (
            d["memory"]["percent"])
        for svc, resp in (("asr", lambda: h.transcribe(s.asr_port, CARD, timeout=30)),
                          ("tts", lambda: h.speak(s.tts_port, "Hello.", timeout=30))):
            r = resp()
            e = h.assert_error_shape(r, 503)
            assert r.headers.get("retry-after") == "60", "Retry-After %r" % (
                r.headers.get("retry-after"),)
            msg = e["message"]
            assert "memory" in msg.lower(), "message does not name memory: %r" % msg
            nums = _numbers(msg)
            assert 1.0 in nums, "message does not give the 1%% threshold: %r" % msg
            cur = [n for n in nums if n != 1.0]
            assert cur and abs(cur[0] - d["memory"]["percent"]) < 10, \
                "message usage %r does not match /health/detailed memory.percent %s" % (
                    msg, d["memory"]["percent"])
            assert re.search(r"\d+ MB", msg), "message gives no MB figures: %r" % msg
            # liveness, detail and metrics are never refused
            assert s.get(svc, "/health").status == 200
            det = s.health_detailed(svc)
            assert det["status"] == "degraded", "status %r while refusing" % det["status"]
            assert det["memory"]["threshold_percent"] == 1
            m = s.get(svc, "/metrics")
            assert m.status == 200 and b"voicestack_requests_total" in m.body, m.status
            ready = s.get(svc, "/health/ready")
            assert ready.status == 503, "/health/ready %d while refusing" % ready.status
            rd = ready.json()
            reason = json.dumps(rd).lower()
            assert "memory" in reason, "/health/ready gives no memory reason: %r" % rd
        # refused before any work: no engine worker was started
        assert s.worker_pids() == [], "workers started for refused requests: %s" % (
            s.worker_pids())
        assert s.log_contains(r"(?i)reject.*memory|memory.*reject", timeout=2), \
            "no log line for the memory rejection"
    finally:
        s.stop()


def _swap_state():
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            info[k] = int(v.split()[0])
    return info.get("SwapTotal", 0), info.get("SwapFree", 0)


def test_no_swap_is_zero_percent_and_not_over_1_percent():
    total, free = _swap_state()
    if total != 0:
        raise h.Skip("this machine has swap (%d kB); the test needs a swapless host" % total)
    s = h.Server(env={"SWAP_THRESHOLD_PERCENT": "1"}, name="swap-1pct").start()
    try:
        d = s.health_detailed("asr")
        assert d["swap"]["percent"] == 0, "swap.percent %r without swap" % d["swap"]["percent"]
        assert d["swap"]["total_mb"] == 0 and d["swap"]["used_mb"] == 0, d["swap"]
        assert d["swap"]["threshold_percent"] == 1, d["swap"]
        assert d["status"] == "healthy", d["status"]
        assert s.get("asr", "/health/ready").status == 200
        r = h.transcribe(s.asr_port, CARD, timeout=90)
        assert r.status == 200, "transcription refused with SWAP_THRESHOLD_PERCENT=1 and no " \
            "swap: %d %r" % (r.status, r.body[:300])
        r = h.speak(s.tts_port, "Hello.", response_format="wav", timeout=60)
        assert r.status == 200, "speech refused: %d %r" % (r.status, r.body[:300])
        assert not s.log_contains(r"reason=swap"), "a swap rejection was logged"
    finally:
        s.stop()


# ---------------------------------------------------------------- 413 size

def test_413_for_150mb_upload_with_curl_body_not_read():
    s = real1()
    big = h.tmppath("150mb.wav")
    with open(big, "wb") as f:
        f.truncate(150 * 1024 * 1024)  # sparse: costs no disk
    url = s.asr_url + TRANSCRIBE
    fmt = "%{http_code} %{size_upload} %{time_total}"
    results = []
    # default curl (sends Expect: 100-continue), then without Expect, where curl
    # starts sending at once and only the server's early reply stops it
    for extra in ([], ["-H", "Expect:"]):
        p = h.run(["curl", "-sS", "-o", "/dev/null", "-w", fmt, "--max-time", "60"] + extra +
                  ["-F", "model=whisper-1", "-F", "file=@%s;type=audio/wav" % big, url],
                  timeout=90)
        out = p.stdout.decode().strip().split()
        assert len(out) == 3, "curl -w output %r (rc %d, %s)" % (p.stdout, p.returncode,
                                                               p.stderr.decode())
        code, up, t = int(out[0]), float(out[1]), float(out[2])
        results.append((extra, code, up, t, p.returncode))
        print("  curl %s: http %d, uploaded %.0f bytes in %.2f s (rc %d)" % (
            " ".join(extra) or "(default)", code, up, t, p.returncode))
        if not extra:
            assert code == 413, "curl got HTTP %d for a 150 MB upload (stderr %s)" % (
                code, p.stderr.decode()[-300:])
        else:
            # without 100-continue the server's close may reset the connection
            # before curl reads the 413 (curl: 55 send failure / 56 recv failure);
            # either way the body was refused unread
            assert code == 413 or (code == 0 and p.returncode in (55, 56)), \
                "curl without Expect: HTTP %d rc %d (%s)" % (code, p.returncode,
                                                            p.stderr.decode()[-300:])
        assert up < 16 * 1024 * 1024, "curl uploaded %.0f bytes of 150 MB: the body was " \
            "read" % up
    assert s.log_contains(r"reason=size.*status=413|status=413.*reason=size", timeout=2), \
        "no log line for the size rejection"
    _slots_back(s, "asr")


def test_413_from_headers_alone_without_sending_a_body():
    s = real1()
    boundary = "vsitest" + uuid.uuid4().hex
    req = _upload_headers(boundary, 157286400)
    with socket.create_connection((h.HOST, s.asr_port), timeout=10) as so:
        so.sendall(req)  # headers only: not one byte of body
        status, hdrs, body = _recv_response(so, timeout=15)
        e = h.assert_error_shape(h.Resp(status, hdrs, body), 413)
        assert "157286400" in e["message"] or "MAX_UPLOAD_SIZE_MB" in e["message"], e
        # the unread body is not waited for: the server ends the connection
        assert _closed_by_peer(so, 10), "connection left open after the 413 with an unread " \
            "150 MB body"
    # the same for a TTS JSON body over MAX_JSON_BODY_KB (64 KB default)
    req = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n" % (SPEECH, 50 * 1024 * 1024)).encode()
    with socket.create_connection((h.HOST, s.tts_port), timeout=10) as so:
        so.sendall(req)
        status, hdrs, body = _recv_response(so, timeout=15)
        h.assert_error_shape(h.Resp(status, hdrs, body), 413)
    _slots_back(s, "asr")
    _slots_back(s, "tts")


def test_413_small_refused_body_leaves_connection_usable():
    """A refused body small enough to be drained (here a 100 KB JSON body over
    MAX_JSON_BODY_KB=64) gets its 413 and the keep-alive connection serves
    the next request."""
    s = real1()
    payload = b'{"model":"tts-1","voice":"alloy","input":"' + b"a" * (100 * 1024) + b'"}'
    with socket.create_connection((h.HOST, s.tts_port), timeout=10) as so:
        so.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (SPEECH, len(payload))).encode() + payload)
        status, hdrs, body = _recv_response(so, timeout=15)
        h.assert_error_shape(h.Resp(status, hdrs, body), 413)
        if "close" in hdrs.get("connection", "").lower():
            raise AssertionError("server closed the connection after draining a 100 KB body")
        so.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, hdrs, body = _recv_response(so, timeout=15)
        assert status == 200, "second request on the same connection: %d %r" % (status, body)
    _slots_back(s, "tts")


def test_413_chunked_upload_cut_off_at_limit_and_connection_closed():
    s = h.Server(env=dict(TEST_ENGINES, MAX_UPLOAD_SIZE_MB="1", VS_TEST_ENGINE_SLEEP_MS="0"),
                 name="upload-1mb").start()
    try:
        boundary = "vsitest" + uuid.uuid4().hex
        so = socket.create_connection((h.HOST, s.asr_port), timeout=10)
        try:
            so.sendall(_upload_headers(boundary))
            head = _multipart_head(boundary)
            so.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            chunk = b"\0" * 65536
            frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            sent = len(head)
            cap = 64 * 1024 * 1024   # 64 x the limit: surely cut off long before
            reset = False

            deadline = time.monotonic() + 30
            while sent < cap and time.monotonic() < deadline:
                r, w, _ = select.select([so], [so], [], 1.0)
                if r:
                    break  # the server answered: stop sending, read it
                if w:
                    try:
                        so.sendall(frame)
                        sent += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        reset = True
                        break
            print("  chunked: sent %d body bytes before the server answered (reset=%s)" % (
                sent, reset))
            assert sent < cap, "server read %d bytes of a chunked upload over a 1 MB limit " \
                "without answering" % sent
            assert sent > 1024 * 1024, "inconclusive: answered before the limit was passed"
            so.settimeout(15)
            try:
                first = so.recv(65536)
            except ConnectionResetError:
                first = b""
            assert first, "the server closed the connection without a 413 after %d bytes " \
                "of a chunked upload over MAX_UPLOAD_SIZE_MB=1" % sent
            status, hdrs, body = _recv_response(_Prefixed(so, first), timeout=15)
            h.assert_error_shape(h.Resp(status, hdrs, body), 413)
            assert _closed_by_peer(so, 10), "connection left open (half-read) after the 413"
        finally:
            so.close()
        assert s.log_contains(r"reason=size", timeout=2), "no log line for the size rejection"
        _slots_back(s, "asr")
        r = h.transcribe(s.asr_port, CARD, timeout=30)
        assert r.status == 200, "request after the cut-off upload: %d %r" % (r.status, r.body)
    finally:
        s.stop()


# ---------------------------------------------------------------- 429 slots

def test_429_when_the_only_slot_is_busy_test_engine():
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1",
                          VS_TEST_ENGINE_SLEEP_MS="2000"), name="slots-1").start()
    try:
        go = threading.Barrier(2)

        def one():
            go.wait(10)
            return h.transcribe(s.asr_port, CARD, timeout=60)
        a, b = h.in_thread(one), h.in_thread(one)
        ra, rb = h.join(*a), h.join(*b)
        by = {ra.status: ra, rb.status: rb}
        assert sorted((ra.status, rb.status)) == [200, 429], \
            "two concurrent requests on one slot: %d and %d" % (ra.status, rb.status)
        r429 = by[429]
        e = h.assert_error_shape(r429, 429)
        assert r429.headers.get("retry-after") == "10", r429.headers
        assert "concurrent" in e["message"].lower() or "slot" in e["message"].lower(), e
        assert s.log_contains(r"(?i)reject.*slot", timeout=2), "no log line with 'slot' for " \
            "the 429"
        _slots_back(s, "asr")
    finally:
        s.stop()


def test_429_two_real_transcriptions_one_slot():
    s = real1()
    # first request holds the slot (model load + ~7 s of speech); the second
    # is sent once the first is seen active, so the outcome does not depend
    # on how fast this machine is
    a = h.in_thread(lambda: h.transcribe(s.asr_port, SENT_0870, timeout=120))
    _wait_health(s, "asr", lambda d: d["concurrency"]["active_requests"] == 1,
                 "first transcription active")
    r2 = h.transcribe(s.asr_port, SENT_0870, timeout=60)
    still_running = a[0].is_alive()
    e = h.assert_error_shape(r2, 429)
    assert r2.headers.get("retry-after") == "10", r2.headers
    assert e["code"] == "rate_limit_exceeded", e
    assert still_running, "inconclusive: the first transcription ended before the 429"
    r1 = h.join(*a, timeout=120)
    assert r1.status == 200, "first transcription: %d %r" % (r1.status, r1.body[:300])
    assert len(h.words(r1.json()["text"])) >= 5, r1.json()
    _slots_back(s, "asr")


# ---------------------------------------------------------------- queue

def test_queue_fifo_depth_and_full_queue():
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1", ASR_MAX_QUEUE="2",
                          ASR_QUEUE_TIMEOUT_SECONDS="60", VS_TEST_ENGINE_SLEEP_MS="1000"),
                 name="queue-2").start()
    try:
        jobs = []
        for i in range(3):
            jobs.append(h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=60)))
            if i == 0:
                _wait_health(s, "asr", lambda d: d["concurrency"]["active_requests"] == 1,
                             "first request holds the slot")
            else:
                _wait_health(s, "asr", lambda d, n=i: d["queue"]["depth"] >= n,
                             "queue depth %d" % i)
        d = s.health_detailed("asr")
        assert d["queue"]["depth"] == 2 and d["queue"]["max"] == 2, d["queue"]
        assert d["concurrency"]["available_slots"] == 0, d["concurrency"]
        # a 4th: the queue is full -> 429 at once, while the others still wait
        r4 = h.transcribe(s.asr_port, CARD, timeout=30)
        waiting = sum(t.is_alive() for t, _ in jobs)
        e = h.assert_error_shape(r4, 429)
        assert e["code"] == "queue_full", e
        assert r4.headers.get("retry-after") == "10", r4.headers
        assert waiting >= 2, "inconclusive: queued requests ended before the 4th was refused"
        # /health answers while every slot is busy and the queue is full
        assert s.get("asr", "/health").status == 200
        rs = [h.join(t, b, timeout=60) for t, b in jobs]
        assert [r.status for r in rs] == [200, 200, 200], [(r.status, r.body[:200]) for r in rs]
        done = [b["t"] for _, b in jobs]
        assert done == sorted(done), "queued requests not served in FIFO order: %s" % done
        assert s.log_contains(r"reason=queue_full", timeout=2), "no log line for queue_full"
        _slots_back(s, "asr")
    finally:
        s.stop()


def test_queued_request_whose_body_comes_later():
    """A queued client that sent only its headers (with Expect: 100-continue)
    is told to continue once it gets the slot, and is then served."""
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1", ASR_MAX_QUEUE="1",
                          ASR_QUEUE_TIMEOUT_SECONDS="60", VS_TEST_ENGINE_SLEEP_MS="1000"),
                 name="queue-late-body").start()
    try:
        with open(CARD, "rb") as f:
            body, ct = h.encode_multipart([("model", "whisper-1"),
                                           ("file", ("a.wav", f.read(), "audio/wav"))])
        a = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=60))
        _wait_health(s, "asr", lambda d: d["concurrency"]["active_requests"] == 1,
                     "first request holds the slot")
        so = socket.create_connection((h.HOST, s.asr_port), timeout=10)
        try:
            so.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                        "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                        % (TRANSCRIBE, ct, len(body))).encode())
            _wait_health(s, "asr", lambda d: d["queue"]["depth"] == 1, "headers-only request "
                         "queued")
            # while it waits nothing is sent to it (no 100 Continue: the body
            # should stay with the client)
            so.settimeout(0.2)
            try:
                early = so.recv(4096)
            except socket.timeout:
                early = b""
            holder_running = a[0].is_alive()
            assert early == b"" or not holder_running, "answered %r while queued" % early[:200]
            so.settimeout(30)
            interim = early or so.recv(4096)
            assert interim.startswith(b"HTTP/1.1 100"), "expected 100 Continue once the slot " \
                "was free, got %r" % interim[:200]
            so.sendall(body)
            status, hdrs, rbody = _recv_response(so, timeout=30)
            assert status == 200, "queued late-body request: %d %r" % (status, rbody[:300])
            assert b"test transcript" in rbody, rbody[:200]
        finally:
            so.close()
        assert h.join(*a).status == 200
        _slots_back(s, "asr")
    finally:
        s.stop()


def test_queue_timeout_gives_429_and_releases_the_place():
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1", ASR_MAX_QUEUE="1",
                          ASR_QUEUE_TIMEOUT_SECONDS="1", VS_TEST_ENGINE_SLEEP_MS="3000"),
                 name="queue-timeout").start()
    try:
        a = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, timeout=60))
        _wait_health(s, "asr", lambda d: d["concurrency"]["active_requests"] == 1,
                     "first request holds the slot")
        r2 = h.transcribe(s.asr_port, CARD, timeout=30)
        first_running = a[0].is_alive()
        e = h.assert_error_shape(r2, 429)
        assert e["code"] == "queue_timeout", e
        assert r2.headers.get("retry-after") == "10", r2.headers
        assert first_running, "inconclusive: the slot holder ended before the queue timeout"
        d = s.health_detailed("asr")
        assert d["queue"]["depth"] == 0, "queue place not released: %s" % d["queue"]
        r1 = h.join(*a, timeout=60)
        assert r1.status == 200, r1
        assert s.log_contains(r"reason=queue_timeout", timeout=2)
        _slots_back(s, "asr")
        r3 = h.transcribe(s.asr_port, CARD, timeout=60)
        assert r3.status == 200, "request after a queue timeout: %d %r" % (r3.status, r3.body)
        _slots_back(s, "asr")
    finally:
        s.stop()


# ---------------------------------------------------------------- slot release

def test_slot_released_after_success_and_engine_errors():
    s = real1()
    r = h.transcribe(s.asr_port, CARD, timeout=90)
    assert r.status == 200, r
    _slots_back(s, "asr")
    # engine error: pocketsphinx has only English (the worker answers 400)
    r = h.transcribe(s.asr_port, CARD, fields={"language": "fr"}, timeout=60)
    e = h.assert_error_shape(r, 400)
    assert "fr" in e["message"], e
    _slots_back(s, "asr")
    # undecodable audio: FFmpeg in the worker refuses it
    junk = bytes((i * 7919 + 13) % 251 for i in range(20000))
    r = h.transcribe(s.asr_port, junk, filename="junk.mp3", timeout=60)
    h.assert_error_shape(r, 400)
    _slots_back(s, "asr")
    # TTS engine error: a voice the engine does not know
    r = h.speak(s.tts_port, "Hello.", voice="no-such-voice-xyz", timeout=60)
    h.assert_error_shape(r, 400)
    _slots_back(s, "tts")
    r = h.transcribe(s.asr_port, CARD, timeout=90)
    assert r.status == 200, "request after engine errors: %d %r" % (r.status, r.body[:300])
    r = h.speak(s.tts_port, "Hello.", response_format="wav", timeout=60)
    assert r.status == 200, "speech after engine errors: %d %r" % (r.status, r.body[:300])
    _slots_back(s, "asr")
    _slots_back(s, "tts")


def test_slot_released_after_worker_crash():
    s = h.Server(env=dict(TEST_ENGINES, ASR_MAX_CONCURRENT_REQUESTS="1",
                          VS_TEST_ENGINE_SLEEP_MS="200", VS_TEST_ENGINE_CRASH="1"),
                 name="crash-slot").start()
    try:
        for _ in range(2):  # the second one is admitted (no 429) and gets a fresh worker
            r = h.transcribe(s.asr_port, CARD, timeout=60)
            e = h.assert_error_shape(r, 500)
            assert "crash" in e["message"].lower() or e["code"] == "worker_crashed", e
            _slots_back(s, "asr")
        pids = set(re.findall(r"event=worker_started service=asr .*?pid=(\d+)",
                              "\n".join(s.stderr_lines)))
        assert len(pids) == 2, "expected a fresh worker per crashed request, saw pids %s" % pids
    finally:
        s.stop()


def test_slot_released_after_client_disconnect_mid_upload():
    s = real1()
    # a few times: a missed hang-up shows only now and then
    for i in range(5):
        boundary = "vsitest" + uuid.uuid4().hex
        so = socket.create_connection((h.HOST, s.asr_port), timeout=10)
        try:
            so.sendall(_upload_headers(boundary, 20000000))
            so.sendall(_multipart_head(boundary) + b"\0" * 200000)
            _wait_health(s, "asr", lambda d: d["concurrency"]["active_requests"] == 1,
                         "half-uploaded request holds the slot")
        finally:
            so.close()
        try:
            _slots_back(s, "asr")
        except AssertionError as e:
            raise AssertionError("disconnect %d of 5: %s" % (i + 1, e))
    r = h.transcribe(s.asr_port, CARD, timeout=90)
    assert r.status == 200, "request after a client left mid-upload: %d %r" % (r.status,
                                                                             r.body[:300])
    _slots_back(s, "asr")


def test_slot_released_after_client_disconnect_mid_response():
    s = real1()
    text = ("The quick brown fox jumps over the lazy dog near the river bank, and then it "
            "runs back home. ") * 60
    text = text[:4000]
    body = json.dumps({"model": "tts-1", "input": text, "voice": "alloy",
                       "response_format": "pcm"}).encode()
    so = socket.create_connection((h.HOST, s.tts_port), timeout=30)
    got = b""
    try:
        so.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (SPEECH, len(body))).encode() + body)
        deadline = time.monotonic() + 60
        while len(got) < 8192 and time.monotonic() < deadline:
            so.settimeout(max(0.1, deadline - time.monotonic()))
            b = so.recv(4096)
            if not b:
                break
            got += b
        assert got.startswith(b"HTTP/1.1 200"), "speech did not start: %r" % got[:300]
        assert len(got) >= 8192, "stream ended after %d bytes" % len(got)
        d = s.health_detailed("tts")
        print("  read %d bytes of a ~4000-char pcm stream, then closed; concurrency=%s" % (
            len(got), d["concurrency"]))
    finally:
        so.close()
    _slots_back(s, "tts")
    r = h.speak(s.tts_port, "Hello again.", response_format="wav", timeout=60)
    assert r.status == 200 and r.complete, "speech after a client left mid-stream: %d" % (
        r.status)
    _slots_back(s, "tts")

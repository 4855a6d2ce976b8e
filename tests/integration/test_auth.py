"""test_auth.py - API keys and CORS (issue 10, "API keys").

With API_KEYS_FILE (or API_KEY) every route but /health and /health/ready
needs `Authorization: Bearer KEY` or `X-API-Key: KEY`; a missing or wrong
key gets 401 `invalid_api_key` with WWW-Authenticate, decided from the
request head before admission and before the body is read. The file is
re-read on SIGHUP (a broken file keeps the keys in force); key names, never
keys, reach the access log and /metrics; AUTH_PROTECT_STATUS opens or closes
/metrics and /health/detailed. CORS: ALLOW_ORIGINS, preflight answered
without a key and without admission, CORS headers on every answer.

Keys are random per run, so a search for them in the server's whole stderr
and /metrics can fail. The shared server runs the real engines
(pocketsphinx, espeak-ng); the test engines (a sleep) hold slots where a
test needs one busy.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CARD = os.path.join(h.CARDS, "001.wav")
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}

KEY_A = "vsk-" + secrets.token_hex(20)   # alice, lane high
KEY_B = "vsk-" + secrets.token_hex(20)   # bob, lane normal
WRONG = "vsk-" + secrets.token_hex(20)   # never in any file
REALM = 'Bearer realm="voicestack"'

# every protected route, on the port that serves it: (service, method, path)
PROTECTED = [("asr", "POST", TRANSCRIBE), ("asr", "POST", "/v1/audio/translations"),
             ("asr", "GET", "/v1/models"), ("tts", "POST", SPEECH),
             ("tts", "GET", "/v1/audio/voices"), ("tts", "GET", "/v1/models"),
             ("asr", "GET", "/health/detailed"), ("tts", "GET", "/metrics"),
             ("asr", "GET", "/no/such/route")]


def _keys_file(lines, name="keys", path=None):
    """Writes a key file (a new one, or over `path`); returns its path."""
    path = path or h.tmppath(name)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return path


_shared = {}


def _real():
    """The module's server: real engines, keys alice (high) and bob (normal)."""
    if "s" not in _shared:
        path = _keys_file(["# test keys: KEY NAME LANE", KEY_A + " alice high",
                           "  " + KEY_B + "\tbob normal   # rotated monthly", ""])
        _shared["s"] = h.SharedServer(env={"API_KEYS_FILE": path}, name="auth-real")
    s = _shared["s"]()
    s.headers = {"Authorization": "Bearer " + KEY_A}
    return s


def teardown_module():
    if "s" in _shared:
        _shared["s"].stop()


def _bearer(key):
    return {"Authorization": "Bearer " + key}


def _call(s, service, method, path, headers=None):
    """One request of the kind the route takes (a small valid body for POSTs)."""
    port = s.port(service)
    if path in (TRANSCRIBE, "/v1/audio/translations"):
        return h.transcribe(port, CARD, path=path, headers=headers, timeout=120)
    if path == SPEECH:
        return h.speak(port, "Hello there.", response_format="pcm", headers=headers,
                       timeout=120)
    return h.request(port, method, path, headers=headers or {}, timeout=60)


def _assert_401(r, what):
    e = h.assert_error_shape(r, 401)
    assert e["code"] == "invalid_api_key", "%s: code %r" % (what, e)
    assert e["type"] == "invalid_request_error", "%s: type %r" % (what, e)
    www = r.headers.get("www-authenticate", "")
    assert www.startswith(REALM), "%s: WWW-Authenticate %r" % (what, www)
    return e


# ---------------------------------------------------------------- 401

def test_every_protected_route_without_a_key_gets_401_real_engines():
    s = _real()
    for service, method, path in PROTECTED:
        r = _call(s, service, method, path)
        _assert_401(r, "%s %s on %s without a key" % (method, path, service))
    # refusals are counted as such, with reason auth
    m = s.metrics("asr")
    n = sum(v for k, v in m.items()
            if k.startswith("voicestack_rejections_total{") and 'reason="auth"' in k)
    assert n >= len(PROTECTED), "voicestack_rejections_total{reason=auth} = %s" % n
    assert s.log_contains(r"event=reject reason=auth\b.*status=401", timeout=2), \
        "no event=reject reason=auth line"


def test_right_key_in_either_header_gets_200_real_engines():
    s = _real()
    r = h.transcribe(s.asr_port, CARD, headers=_bearer(KEY_A), timeout=120)
    assert r.status == 200 and r.json()["text"].strip(), r
    # X-API-Key, and the scheme in any case
    r = h.transcribe(s.asr_port, CARD, headers={"X-API-Key": KEY_B}, timeout=120)
    assert r.status == 200 and r.json()["text"].strip(), r
    r = h.speak(s.tts_port, "Hello there.", response_format="wav",
                headers={"Authorization": "bearer " + KEY_B}, timeout=120)
    assert r.status == 200 and r.body[:4] == b"RIFF", r
    r = h.speak(s.tts_port, "Hello there.", response_format="pcm",
                headers={"X-API-Key": KEY_A}, timeout=120)
    assert r.status == 200 and len(r.body) > 1000, r
    for service in ("asr", "tts"):
        for path in ("/v1/models", "/health/detailed", "/metrics"):
            r = h.request(s.port(service), "GET", path, headers={"X-API-Key": KEY_B})
            assert r.status == 200, "%s on %s with a key: %r" % (path, service, r)
    r = h.request(s.tts_port, "GET", "/v1/audio/voices", headers=_bearer(KEY_A))
    assert r.status == 200 and r.json(), r


def test_wrong_keys_get_401():
    s = _real()
    wrong = [_bearer(WRONG), {"X-API-Key": WRONG}, _bearer(KEY_A + "x"),
             _bearer(KEY_A[:-1]), _bearer(""), {"Authorization": KEY_A},
             {"Authorization": "Basic " + KEY_A}, {"X-API-Key": ""},
             _bearer(KEY_A.upper()), _bearer("alice"), {"X-API-Key": "bob"}]
    for hdrs in wrong:
        for service, method, path in (("asr", "GET", "/v1/models"), ("tts", "POST", SPEECH)):
            r = _call(s, service, method, path, headers=hdrs)
            _assert_401(r, "%s %s with %r" % (method, path, list(hdrs)))


def test_health_and_ready_need_no_key():
    s = _real()
    for service in ("asr", "tts"):
        for path in ("/health", "/health/ready"):
            r = h.request(s.port(service), "GET", path)
            assert r.status == 200, "%s on %s without a key: %r" % (path, service, r)
            r = h.request(s.port(service), "GET", path, headers=_bearer(WRONG))
            assert r.status == 200, "%s on %s with a wrong key: %r" % (path, service, r)


def test_401_before_admission_no_slot_no_worker():
    """The only ASR slot busy and no queue: a request without a key gets 401,
    not 429; and a server that only ever saw refused requests started no
    worker."""
    s = h.Server(env=dict(TEST_ENGINES, API_KEY=KEY_A, ASR_MAX_CONCURRENT_REQUESTS="1",
                          VS_TEST_ENGINE_SLEEP_MS="60000"), name="auth-admission").start()
    s.headers = _bearer(KEY_A)
    try:
        for service, method, path in PROTECTED:
            _assert_401(_call(s, service, method, path), "%s %s" % (method, path))
        assert s.worker_pids() == [], "workers started for refused requests: %s" % (
            s.worker_pids())
        hold = h.in_thread(lambda: h.transcribe(s.asr_port, CARD, headers=_bearer(KEY_A),
                                                timeout=120))
        h.wait_for(lambda: s.health_detailed("asr")["concurrency"]["active_requests"] == 1,
                   "a request holds the only slot")
        _assert_401(h.transcribe(s.asr_port, CARD, timeout=30), "no key, slot busy")
        r = h.transcribe(s.asr_port, CARD, headers=_bearer(KEY_A), timeout=30)
        assert r.status == 429, "inconclusive: a keyed request was not refused 429: %r" % (r,)
        assert hold[0].is_alive(), "inconclusive: the slot holder finished"
    finally:
        s.stop()


def test_large_upload_without_key_refused_before_its_body():
    s = _real()
    boundary = "vsitest" + uuid.uuid4().hex
    with socket.create_connection((h.HOST, s.asr_port), timeout=10) as so:
        so.sendall(h.upload_head(boundary, 150 * 1024 * 1024))  # not one body byte
        status, hdrs, body = h.recv_response(so, timeout=15)
        _assert_401(h.Resp(status, hdrs, body), "150 MB upload without a key")
        assert "close" in hdrs.get("connection", "").lower(), hdrs
        assert h.closed_by_peer(so, 10), "connection left open after the 401 with an unread " \
            "150 MB body"
    # the same with a wrong key, and chunked
    with socket.create_connection((h.HOST, s.asr_port), timeout=10) as so:
        so.sendall(h.upload_head(boundary, None, headers={"X-API-Key": WRONG}))
        status, hdrs, body = h.recv_response(so, timeout=15)
        _assert_401(h.Resp(status, hdrs, body), "chunked upload with a wrong key")
        assert h.closed_by_peer(so, 10), "connection left open after the 401 (chunked)"
    # a small refused body is drained: the connection serves the next request
    body, ctype = h.encode_multipart([("model", "whisper-1"),
                                      ("file", ("a.wav", b"RIFF" + b"\0" * 4000, "audio/wav"))])
    with socket.create_connection((h.HOST, s.asr_port), timeout=10) as so:
        so.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                    "Content-Length: %d\r\n\r\n" % (TRANSCRIBE, ctype, len(body))).encode()
                   + body)
        status, hdrs, rbody = h.recv_response(so, timeout=15)
        _assert_401(h.Resp(status, hdrs, rbody), "small upload without a key")
        assert "close" not in hdrs.get("connection", "").lower(), hdrs
        so.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _ = h.recv_response(so, timeout=15)
        assert status == 200, "next request on the connection: %d" % status
    s.wait_slots_free("asr")


# ---------------------------------------------------------------- status routes

def test_status_routes_open_or_closed_by_auth_protect_status():
    for protect, want in (("true", 401), ("false", 200), (None, 401)):
        env = dict(TEST_ENGINES, API_KEY=KEY_B)
        if protect is not None:
            env["AUTH_PROTECT_STATUS"] = protect
        s = h.Server(env=env, name="auth-status-%s" % protect).start()
        try:
            for service in ("asr", "tts"):
                for path in ("/metrics", "/health/detailed"):
                    r = h.request(s.port(service), "GET", path)
                    assert r.status == want, "AUTH_PROTECT_STATUS=%s: %s on %s: %r" % (
                        protect, path, service, r)
                    if want == 401:
                        _assert_401(r, path)
                    r = h.request(s.port(service), "GET", path, headers=_bearer(KEY_B))
                    assert r.status == 200, "%s with the key: %r" % (path, r)
                # the work routes stay closed either way
                _assert_401(h.request(s.port(service), "GET", "/v1/models"), "/v1/models")
        finally:
            s.stop()


# ---------------------------------------------------------------- SIGHUP

def _reloaded(s, n_before, event):
    """Waits for one more `event` line than n_before; returns the line."""
    rx = re.compile(r"event=%s\b" % event)
    h.wait_for(lambda: len([l for l in s.stderr_lines if rx.search(l)]) > n_before,
               "an event=%s line" % event, timeout=10)
    return [l for l in s.stderr_lines if rx.search(l)][-1]


def _count(s, event):
    return len([l for l in s.stderr_lines if re.search(r"event=%s\b" % event, l)])


def _status_with(s, key):
    return h.request(s.asr_port, "GET", "/v1/models", headers=_bearer(key)).status


def test_sighup_reloads_the_keys_file_and_a_broken_file_keeps_the_old_keys():
    path = _keys_file([KEY_A + " alice high"], "reload-keys")
    s = h.Server(env=dict(TEST_ENGINES, API_KEYS_FILE=path), name="auth-reload").start()
    try:
        assert _status_with(s, KEY_A) == 200 and _status_with(s, KEY_B) == 401
        # add a key
        n = _count(s, "api_keys_reloaded")
        _keys_file([KEY_A + " alice high", KEY_B + " bob low"], path=path)
        os.kill(s.pid, signal.SIGHUP)
        line = _reloaded(s, n, "api_keys_reloaded")
        assert "keys=2" in line, line
        assert _status_with(s, KEY_A) == 200 and _status_with(s, KEY_B) == 200
        # remove a key (the file replaced by rename, as editors and tools do)
        n = _count(s, "api_keys_reloaded")
        tmp = _keys_file([KEY_B + " bob normal"], "reload-keys.new")
        os.replace(tmp, path)
        os.kill(s.pid, signal.SIGHUP)
        assert "keys=1" in _reloaded(s, n, "api_keys_reloaded")
        assert _status_with(s, KEY_A) == 401 and _status_with(s, KEY_B) == 200
        # broken files: the keys in force stay, one error line each
        for broken in ([KEY_A + " alice urgent"], [KEY_A + " al/ice high"],
                       [KEY_A + " alice high", KEY_A + " again normal"], ["# nothing"], None):
            n = _count(s, "api_keys_reload_failed")
            if broken is None:
                os.unlink(path)
            else:
                _keys_file(broken, path=path)
            os.kill(s.pid, signal.SIGHUP)
            line = _reloaded(s, n, "api_keys_reload_failed")
            assert KEY_A not in line and KEY_B not in line, "a key in the log: %s" % line
            assert _status_with(s, KEY_A) == 401 and _status_with(s, KEY_B) == 200, \
                "keys changed after a failed reload (%s)" % line
        assert s.alive(), "the server died of a SIGHUP"
        assert KEY_A not in s.log() and KEY_B not in s.log(), "a key in the server's stderr"
    finally:
        s.stop()


def _start_fails(env, what):
    """Starts a server that must refuse to start; returns its stderr."""
    s = h.Server(env=dict(TEST_ENGINES, **env), name="auth-bad-start")
    try:
        s.start()
        raise AssertionError("the server started with %s" % what)
    except h.server.Failed:
        pass
    finally:
        s.stop()
    return s.log()


def test_a_bad_keys_file_stops_start_up_without_printing_the_key():
    for lines, why in (([KEY_A + " alice urgent"], "lane"), ([KEY_A], "name"),
                       ([KEY_A + " alice high", KEY_A + " bob low"], "duplicate")):
        path = _keys_file(lines, "bad-keys")
        log = _start_fails({"API_KEYS_FILE": path}, "a bad keys file (%s)" % why)
        assert "API_KEYS_FILE" in log and "line" in log, "no error naming the file: %s" % log
        assert KEY_A not in log, "the key is in the start-up error: %s" % log


# ---------------------------------------------------------------- log and metrics

def test_key_name_in_access_log_and_metrics_never_the_key():
    s = _real()
    rid = "auth-name-" + uuid.uuid4().hex[:8]
    r = h.speak(s.tts_port, "Hello.", response_format="pcm",
                headers={"X-API-Key": KEY_B, "X-Request-Id": rid}, timeout=120)
    assert r.status == 200, r
    r = h.request(s.asr_port, "GET", "/v1/models", headers=_bearer(WRONG))
    assert r.status == 401
    assert s.log_contains(r"event=access .*request_id=%s\b" % rid, timeout=5)
    line = [l for l in s.stderr_lines if "event=access" in l and "request_id=" + rid in l][0]
    assert re.search(r"\bkey=bob\b", line), "no key=bob in %s" % line
    m = s.metrics("tts")
    by_key = {k: v for k, v in m.items() if k.startswith("voicestack_requests_by_key_total{")}
    assert any('key="bob"' in k and 'service="tts"' in k and v >= 1 for k, v in by_key.items()), \
        by_key
    assert any('key="alice"' in k for k in by_key), by_key
    text = s.get("asr", "/metrics").body.decode() + s.get("tts", "/metrics").body.decode()
    for key in (KEY_A, KEY_B, WRONG):
        assert key not in text, "a key in /metrics"
        assert key not in s.log(), "a key in the server's stderr"
        assert key[4:] not in s.log(), "part of a key in the server's stderr"


# ---------------------------------------------------------------- CORS

ORIGIN = "http://localhost:3000"
CORS_ENV = dict(TEST_ENGINES, API_KEY=KEY_A, VS_TEST_ENGINE_SLEEP_MS="0",
                ALLOW_ORIGINS="https://app.example, " + ORIGIN, BODY_TIMEOUT_SECONDS="1")


def _csv(v):
    return [x.strip().lower() for x in (v or "").split(",") if x.strip()]


def _assert_cors(r, origin, what):
    assert r.headers.get("access-control-allow-origin") == origin, "%s: %r" % (what, r.headers)
    assert "origin" in _csv(r.headers.get("vary")), "%s: Vary %r" % (what, r.headers)
    exposed = _csv(r.headers.get("access-control-expose-headers"))
    for name in ("x-request-id", "x-voicestack-model", "retry-after"):
        assert name in exposed, "%s: %s not exposed: %r" % (what, name, exposed)


def test_cors_preflight_without_key_or_admission_and_headers_on_every_answer():
    s = h.Server(env=CORS_ENV, name="auth-cors").start()
    s.headers = _bearer(KEY_A)
    try:
        for service, path, method in (("tts", SPEECH, "POST"), ("asr", TRANSCRIBE, "POST"),
                                      ("asr", "/v1/models", "GET")):
            r = h.request(s.port(service), "OPTIONS", path,
                          headers={"Origin": ORIGIN, "Access-Control-Request-Method": method,
                                   "Access-Control-Request-Headers": "authorization, content-type"})
            assert r.status == 204, "preflight %s: %r" % (path, r)
            assert r.headers.get("access-control-allow-origin") == ORIGIN, r.headers
            assert "origin" in _csv(r.headers.get("vary")), r.headers
            assert method.lower() in _csv(r.headers.get("access-control-allow-methods")), \
                r.headers
            allowed = _csv(r.headers.get("access-control-allow-headers"))
            for name in ("authorization", "content-type", "x-api-key", "x-request-id",
                         "x-voicestack-degrade"):
                assert name in allowed, "preflight: %s not allowed: %r" % (name, allowed)
            assert int(r.headers.get("access-control-max-age", "0")) > 0, r.headers
            assert "www-authenticate" not in r.headers, r.headers
        assert s.worker_pids() == [], "a preflight started a worker"
        assert s.log_contains(r"event=access .*method=OPTIONS route=%s status=204"
                              % re.escape(SPEECH), timeout=5), "no access line for the preflight"
        # an origin not in the list: no permission
        r = h.request(s.tts_port, "OPTIONS", SPEECH,
                      headers={"Origin": "https://evil.example",
                               "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers, r.headers
        # answers: a stream, a 401, a 415, a 404, /health
        r = h.speak(s.tts_port, "Hello.", response_format="pcm",
                    headers={"Origin": ORIGIN, "X-API-Key": KEY_A}, timeout=60)
        assert r.status == 200 and r.chunked, r
        _assert_cors(r, ORIGIN, "stream")
        r = h.speak(s.tts_port, "Hello.", headers={"Origin": "https://app.example"}, timeout=60)
        _assert_401(r, "no key with an Origin")
        _assert_cors(r, "https://app.example", "401")
        r = h.request(s.tts_port, "POST", SPEECH, b"{}",
                      {"Origin": ORIGIN, "Content-Type": "text/plain", "X-API-Key": KEY_A})
        assert r.status == 415, r
        _assert_cors(r, ORIGIN, "415")
        r = h.request(s.asr_port, "GET", "/health", headers={"Origin": ORIGIN})
        assert r.status == 200
        _assert_cors(r, ORIGIN, "/health")
        r = h.request(s.asr_port, "GET", "/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers, r.headers
        # a reply the front writes itself mid-body (408 past BODY_TIMEOUT_SECONDS)
        boundary = "vsitest" + uuid.uuid4().hex
        with socket.create_connection((h.HOST, s.asr_port), timeout=10) as so:
            so.sendall(h.upload_head(boundary, None, headers={"Origin": ORIGIN,
                                                              "X-API-Key": KEY_A}))
            head = h.multipart_head(boundary)
            so.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            status, hdrs, body = h.recv_response(so, timeout=15)
            assert status == 408, (status, body)
            _assert_cors(h.Resp(status, hdrs, body), ORIGIN, "408 mid-body")
    finally:
        s.stop()


def test_cors_wildcard_and_off():
    s = h.Server(env=dict(TEST_ENGINES, API_KEY=KEY_A, ALLOW_ORIGINS="*"),
                 name="auth-cors-any").start()
    try:
        r = h.request(s.asr_port, "GET", "/v1/models",
                      headers={"Origin": "https://anything.example", "X-API-Key": KEY_A})
        assert r.status == 200 and r.headers.get("access-control-allow-origin") == "*", r.headers
    finally:
        s.stop()
    s = h.Server(env=dict(TEST_ENGINES, API_KEY=KEY_A), name="auth-cors-off").start()
    try:
        r = h.request(s.asr_port, "OPTIONS", "/v1/models",
                      headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert r.status != 204, "a preflight answered with CORS off: %r" % (r,)
        r = h.request(s.asr_port, "GET", "/v1/models",
                      headers={"Origin": ORIGIN, "X-API-Key": KEY_A})
        assert r.status == 200, r
        assert not [k for k in r.headers if k.startswith("access-control-")], r.headers
    finally:
        s.stop()


def test_cors_and_key_settings_are_checked_at_start_up():
    for bad in ("https://app.example/path", "app.example", "*, https://a.example"):
        log = _start_fails({"ALLOW_ORIGINS": bad}, "ALLOW_ORIGINS=%r" % bad)
        assert "ALLOW_ORIGINS" in log, log
    # API_KEY with a blank, and both ways of giving keys at once: refused,
    # and the key is not printed
    log = _start_fails({"API_KEY": "two words" + KEY_A}, "a key with a blank")
    assert "API_KEY" in log and KEY_A not in log, log
    path = _keys_file([KEY_B + " bob"], "keys-and-key")
    log = _start_fails({"API_KEYS_FILE": path, "API_KEY": KEY_A}, "API_KEYS_FILE and API_KEY")
    assert "API_KEY" in log and KEY_A not in log, log
    # `voicestack config` shows that a key is set, not the key
    p = subprocess.run([h.BIN, "config"], env=h.server.clean_env({"API_KEY": KEY_A}),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "API_KEY=(set)  (environment)" in p.stdout, p.stdout
    assert KEY_A not in p.stdout + p.stderr


# ---------------------------------------------------------------- load tester

def test_loadtest_api_key_flag():
    tool = os.path.join(os.path.dirname(os.path.abspath(h.BIN)), "tools", "loadtest",
                        "voicestack-loadtest")
    s = h.Server(env=dict(TEST_ENGINES, API_KEY=KEY_A, VS_TEST_ENGINE_SLEEP_MS="0"),
                 name="auth-loadtest").start()
    try:
        import json
        for extra, want in ((["--api-key", KEY_A], "200"), ([], "401"),
                            (["--api-key", WRONG], "401")):
            p = subprocess.run([tool, "--service", "both", "--workers", "2", "--requests", "2",
                                "--asr-url", s.asr_url, "--tts-url", s.tts_url, "--json"]
                               + extra, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60)
            doc = json.loads(p.stdout)
            for svc in ("asr", "tts"):
                assert doc["services"][svc]["status"] == {want: 4}, (extra[:1], svc,
                                                                       doc["services"][svc])
        assert KEY_A not in s.log() and WRONG not in s.log()
    finally:
        s.stop()

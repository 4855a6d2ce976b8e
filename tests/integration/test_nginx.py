"""test_nginx.py - deploy/nginx-voicestack.conf, run by the real nginx.

The repository's conf file is rendered for the test by substituting ONLY the
listen address and the two upstream ports (nginx_render(); each substitution
must match, so a conf that loses them fails), included into a minimal main
config whose pid, logs and temp paths live in the run's temp dir, and served
by Debian's nginx as the current user on loopback in front of a real server.

What is checked, and how:
- every route a client uses, through nginx, with the real engines:
  transcription, speech, voices, /v1/models, /health, /health/detailed,
  /metrics, and the /asr/ /tts/ prefixes for the per-service ones;
- TTS is streamed: the first audio bytes reach the client through nginx
  while the server still reports the request active (test engine, which
  emits its audio in ten spaced blocks; no clock is read). nginx forwards
  bytes as they come even with proxy_buffering on while the client keeps
  up (checked by hand); what `off` changes is that a slow reader's
  backpressure reaches the server instead of nginx spooling the whole
  stream to disk, which needs more audio than a test should make, so
  `proxy_buffering off` on the speech routes is asserted from the file;
- nginx does not cut a long request. A 5-minute test would be slow, so:
  (1) the conf's proxy_read_timeout and proxy_send_timeout, parsed from the
  file for every proxied location, are at least REQUEST_TIMEOUT_SECONDS plus
  the longer queue timeout of the deployment's settings
  (deploy/voicestack.env.example via `voicestack config`), and
  client_max_body_size equals MAX_UPLOAD_SIZE_MB; (2) a variant of the same
  conf with only those two timeouts lowered to 1 s turns a 3 s request into
  nginx's 504, while the conf as shipped returns the 200: so the directives
  are the ones in force on that route, and (1) makes them long enough.
"""

import os
import re
import signal
import socket
import subprocess
import time

import harness as h
from pyvs import balancer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "deploy", "nginx-voicestack.conf")
ENV_EXAMPLE = os.path.join(ROOT, "deploy", "voicestack.env.example")
NGINX = "/usr/sbin/nginx"
CARD = os.path.join(h.CARDS, "001.wav")
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}


# ---------------------------------------------------------------- conf parsing

def _tokens(text):
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(r"\"[^\"]*\"|'[^']*'|[{};]|[^\s{};]+", text)


def parse_conf(text):
    """nginx conf -> list of (name, [args], children or None)."""
    toks = _tokens(text)
    pos = 0

    def block():
        nonlocal pos
        out = []
        while pos < len(toks) and toks[pos] != "}":
            words = []
            while toks[pos] not in ("{", ";", "}"):
                words.append(toks[pos])
                pos += 1
            if toks[pos] == "{":
                pos += 1
                kids = block()
                assert toks[pos] == "}", "unbalanced braces in %s" % CONF
                pos += 1
                out.append((words[0], words[1:], kids))
            elif toks[pos] == ";":
                pos += 1
                out.append((words[0], words[1:], None))
            else:
                raise AssertionError("directive without ';' in %s: %r" % (CONF, words))
        return out
    tree = block()
    assert pos == len(toks), "unbalanced braces in %s" % CONF
    return tree


def _seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", v)
    assert m, "cannot read nginx time %r" % v
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def _megabytes(v):
    m = re.fullmatch(r"(\d+)([kKmMgG])?", v)
    assert m, "cannot read nginx size %r" % v
    return int(m.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024, None: 1 / 1048576}[
        (m.group(2) or "").lower() or None]


def proxied_locations(path=CONF):
    """[(location args, {directive: value} in force there)] for every location
    with a proxy_pass, server-level directives inherited as nginx does."""
    with open(path) as f:
        tree = parse_conf(f.read())
    servers = [kids for name, _, kids in tree if name == "server"]
    assert servers, "no server block in %s" % CONF
    out = []
    for srv in servers:
        inherited = {n: a for n, a, k in srv if k is None}
        for name, args, kids in srv:
            if name != "location":
                continue
            eff = dict(inherited)
            eff.update({n: a for n, a, k in kids if k is None})
            if "proxy_pass" in eff:
                out.append((" ".join(args), eff))
    return out


def server_settings():
    """The deployment's effective settings (`voicestack config` on the
    example env file), as a dict of strings."""
    p = h.run([h.BIN, "config", "--env-file", ENV_EXAMPLE], timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    out = {}
    for line in p.stdout.decode().splitlines():
        m = re.match(r"([A-Z0-9_]+)=(\S*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# ---------------------------------------------------------------- nginx

def nginx_render(asr_port, tts_port, listen_port, overrides=None):
    """The repo's conf with only the listen address and upstream ports (and,
    for a variant, the directives in overrides) replaced."""
    with open(CONF) as f:
        text = f.read()
    subs = [(r"\blisten\s+80\s*;", "listen %s:%d;" % (h.HOST, listen_port)),
            (r"127\.0\.0\.1:5001\b", "127.0.0.1:%d" % asr_port),
            (r"127\.0\.0\.1:5002\b", "127.0.0.1:%d" % tts_port)]
    for name, value in (overrides or {}).items():
        subs.append((r"(\b%s\s+)[^;]+;" % re.escape(name), r"\g<1>%s;" % value))
    for rx, rep in subs:
        text, n = re.subn(rx, rep, text)
        assert n > 0, "%s no longer has %r to substitute" % (CONF, rx)
    return text


def _free_port():
    s = socket.socket()
    s.bind((h.HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx(h.ToolProcess):
    """nginx in the foreground as the current user; everything in a temp dir.
    render(listen_port) -> the site conf; default: this file's conf for server
    (test_balancers.py passes its own for deploy/nginx-cluster.conf)."""
    STOP_SIGNAL = signal.SIGQUIT   # graceful

    def __init__(self, server=None, overrides=None, render=None):
        self.dir = h.tmppath("nginx")
        os.makedirs(self.dir)
        self.port = _free_port()
        site = os.path.join(self.dir, "voicestack.conf")
        with open(site, "w") as f:
            # a one-service server: the other upstream points at the discard port
            f.write(render(self.port) if render else
                    nginx_render(server.ports.get("asr", 9), server.ports.get("tts", 9),
                                 self.port, overrides))
        d = self.dir
        main = balancer.nginx_main(d, site)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(main)
        t = h.run([NGINX, "-t", "-p", d, "-e", d + "/error.log", "-c", self.conf], timeout=30)
        assert t.returncode == 0, "nginx -t rejects the conf:\n%s" % t.stderr.decode()
        self.proc = subprocess.Popen([NGINX, "-p", d, "-e", d + "/error.log", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((h.HOST, self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, "nginx exited: %s" % self.error_log()
                assert time.monotonic() < deadline, "nginx not listening: %s" % self.error_log()
                time.sleep(0.05)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""



def _need_nginx():
    if not os.access(NGINX, os.X_OK):
        # make test installs nginx-light (TEST_DEPS): missing is a failure
        raise AssertionError("%s not found: install nginx-light (Makefile TEST_DEPS)" % NGINX)


# ---------------------------------------------------------------- tests

def test_conf_timeouts_and_body_size_cover_the_server_settings():
    cfg = server_settings()
    need = float(cfg["REQUEST_TIMEOUT_SECONDS"]) + max(
        float(cfg["ASR_QUEUE_TIMEOUT_SECONDS"]), float(cfg["TTS_QUEUE_TIMEOUT_SECONDS"]))
    locs = proxied_locations()
    routes = {loc for loc, _ in locs}
    for want in ("/v1/audio/transcriptions", "/v1/audio/speech"):
        assert any(want in r for r in routes), "no location for %s in %s" % (want, routes)
    for loc, eff in locs:
        for d in ("proxy_read_timeout", "proxy_send_timeout"):
            assert d in eff, "location %s: no %s (nginx's default 60 s would cut a long " \
                             "request)" % (loc, d)
            v = _seconds(eff[d][0])
            assert v >= need, "location %s: %s %ss < REQUEST_TIMEOUT_SECONDS + queue " \
                              "timeout = %ss" % (loc, d, v, need)
        if "/transcriptions" in loc or "/translations" in loc or loc.startswith("/asr/"):
            assert "client_max_body_size" in eff, "location %s: no client_max_body_size" % loc
            mb = _megabytes(eff["client_max_body_size"][0])
            assert mb == float(cfg["MAX_UPLOAD_SIZE_MB"]), \
                "location %s: client_max_body_size %s MB != MAX_UPLOAD_SIZE_MB %s" % (
                    loc, mb, cfg["MAX_UPLOAD_SIZE_MB"])
        if loc.endswith("/v1/audio/speech"):
            assert eff.get("proxy_buffering") == ["off"], \
                "location %s: streaming TTS needs proxy_buffering off" % loc


def test_every_route_through_nginx_real_engines():
    _need_nginx()
    s = h.Server(name="behind-nginx").start()
    with Nginx(s) as ng:
        p = ng.port
        r = h.transcribe(p, CARD)
        assert r.status == 200, "transcription via nginx: %r\n%s" % (r, ng.error_log())
        assert h.words(r.json()["text"]), r
        r = h.speak(p, "Through the proxy.", response_format="wav")
        assert r.status == 200 and r.content_type() == "audio/wav", r
        out = h.tmppath("nginx.wav")
        with open(out, "wb") as f:
            f.write(r.body)
        assert h.decoded_duration(out) > 0.3, "speech via nginx too short"
        r = h.request(p, "GET", "/v1/audio/voices")
        assert r.status == 200 and r.json()["voices"], r
        r = h.request(p, "GET", "/v1/models")
        assert r.status == 200, r
        ids = {m["id"] for m in r.json()["data"]}
        assert "whisper-1" in ids, ids
        r = h.request(p, "GET", "/tts/v1/models")
        assert r.status == 200 and "tts-1" in {m["id"] for m in r.json()["data"]}, r
        r = h.request(p, "GET", "/health")
        assert r.status == 200 and r.json()["status"] == "ok", r
        for path, service in (("/health/detailed", "asr"), ("/asr/health/detailed", "asr"),
                              ("/tts/health/detailed", "tts")):
            r = h.request(p, "GET", path)
            assert r.status == 200 and r.json()["service"] == service, (path, r)
        r = h.request(p, "GET", "/health/ready")
        assert r.status in (200, 503) and r.content_type() == "application/json", r
        r = h.request(p, "GET", "/metrics")
        assert r.status == 200 and b'service="asr"' in r.body and b'service="tts"' in r.body, r
        # every request above reached the server (nginx answered none itself)
        hits = h.request(s.asr_port, "GET", "/metrics").body.decode()
        assert re.search(r'route="/v1/audio/transcriptions"', hits), hits[:500]


def speech_first_bytes(port, server):
    """Speech (pcm) through a proxy on port: (the first bytes read, the
    server's active requests right then, the rest of the body)."""
    import http.client
    import json
    conn = http.client.HTTPConnection(h.HOST, port, timeout=60)
    conn.request("POST", "/v1/audio/speech", body=json.dumps(
        {"model": "tts-1", "input": "stream me", "voice": "alloy",
         "response_format": "pcm"}), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, (r.status, r.read()[:300])
    first = r.read1(65536)
    assert first, "no body"
    active = server.health_detailed("tts")["concurrency"]["active_requests"]
    rest = r.read()
    conn.close()
    return first, active, rest


def test_speech_streams_through_nginx():
    """The first audio bytes arrive while the server still works on the rest."""
    _need_nginx()
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="3000"), service="tts",
                 name="tts-behind-nginx").start()
    with Nginx(s) as ng:
        first, active, rest = speech_first_bytes(ng.port, s)
        assert active == 1, "first bytes arrived only after the server finished " \
                            "(nginx buffered the stream)"
        direct = h.speak(s.tts_port, "stream me", response_format="pcm")
        assert direct.status == 200, direct
        assert len(first) + len(rest) == len(direct.body), \
            "pcm via nginx %d bytes, direct %d" % (len(first) + len(rest), len(direct.body))


def test_long_request_is_not_cut_but_a_short_proxy_timeout_would():
    _need_nginx()
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="3000"), service="asr",
                 name="slow-behind-nginx").start()
    with Nginx(s) as ng:
        r = h.transcribe(ng.port, CARD)
        assert r.status == 200, "slow request through the shipped conf: %r" % (r,)
    s.wait_slots_free("asr")
    short = {"proxy_read_timeout": "1s", "proxy_send_timeout": "1s"}
    with Nginx(s, overrides=short) as ng:
        r = h.transcribe(ng.port, CARD)
        assert r.status == 504, "with 1 s proxy timeouts a 3 s request should get nginx's " \
                                "504, got %r" % (r,)

"""test_balancers.py - deploy/nginx-cluster.conf and deploy/haproxy-voicestack.cfg
in front of three real instances on loopback.

The shipped files are run by Debian's nginx and HAProxy with only the listen
address and the HOST:PORT of each server line substituted (pyvs.balancer.
render(), which fails if a spelling it substitutes is gone). Each instance
has two slots and no queue (ASR_MAX_CONCURRENT_REQUESTS=2, ASR_MAX_QUEUE=0),
so three give six slots. What is shown, for each balancer:
- a burst of 6 concurrent transcriptions (real engine, pocketsphinx, the
  librivox clip) all get their transcript, where the same burst straight at
  one instance gets 2 transcripts and 4 429s;
- past six at once nginx answers with the instances' own 429 (JSON,
  Retry-After), never its 502 "no live upstreams" (the reason each instance
  is listed again as a backup), while HAProxy queues the surplus itself and
  serves all of it (maxconn);
- an instance SIGKILLed with two requests in flight costs at most those two:
  every other client gets its 200, and the instances left serve what comes
  next;
- an instance stopped (SIGTERM, a restart) answers what it holds 503
  shutting_down, after the work started; both balancers run it elsewhere,
  HAProxy only when the request fits its buffer (15360 bytes), which is
  shown both ways;
- an instance whose memory guard refuses (/health/ready 503, reason memory,
  through the fake /proc seam) gets no work: nginx may still ask it (no
  active checks in nginx open source) and gets the 503 it sends before any
  work, then retries elsewhere; HAProxy's check takes it out. Its model is
  never loaded and it answers no transcription with 200.
- streamed speech is not held by either balancer.
- HAProxy's own 503 is the servers' JSON error with a Retry-After.
The overlap is made certain with the sleeping test engine (test-asr,
VS_TEST_ENGINE_SLEEP_MS) where a test needs requests to be in flight
together; no clock is read in an assertion.

A missing nginx or HAProxy skips, naming the Debian package (the Makefile's
TEST_DEPS installs both for make test).
"""

import os
import re
import signal
import socket
import subprocess
import threading

import harness as h
import test_nginx as tn
from pyvs import balancer
from pyvs.server import free_port

SANITIZER_PASS = False   # deployment files: the normal pass only (run.py)
HAPROXY_BIN = "/usr/sbin/haproxy"
CLIP = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0870.wav")
CARD = os.path.join(h.CARDS, "001.wav")
TWO_SLOTS = {"ASR_MAX_CONCURRENT_REQUESTS": "2", "ASR_MAX_QUEUE": "0"}
ROUTE = 'route="/v1/audio/transcriptions"'


# ---------------------------------------------------------------- balancers

def need(tool, package):
    if not os.access(tool, os.X_OK):
        raise h.Skip("%s not found (Debian package %s)" % (tool, package))


def instances(n=3, sleep_ms=None, env_of=None, service="asr"):
    """n instances with two slots and no queue; sleep_ms: the test engine
    taking that long per request (else the real engines); env_of(i): more
    settings for instance i."""
    out = []
    for i in range(n):
        env = dict(TWO_SLOTS)
        if sleep_ms is not None:
            env.update(ASR_ENGINE="test-asr", TTS_ENGINE="test-tts",
                       VS_TEST_ENGINE_SLEEP_MS=str(sleep_ms))
        env.update((env_of or (lambda i: {}))(i))
        out.append(h.Server(env=env, service=service, name="inst%d" % (i + 1)).start())
    return out


def ports(servers):
    """[{"asr": port, "tts": port}] of Servers (or such dicts as they are)."""
    return [s if isinstance(s, dict) else dict(s.ports) for s in servers]


def nginx(servers):
    need(tn.NGINX, "nginx-light")
    return tn.Nginx(render=lambda port: balancer.render(balancer.NGINX_CLUSTER, port,
                                                        ports(servers)))


class HAProxy(h.ToolProcess):
    """haproxy -db (foreground) on the rendered shipped config; its stderr
    (server state changes) is collected."""

    def __init__(self, servers):
        need(HAPROXY_BIN, "haproxy")
        d = h.tmppath("haproxy")
        os.makedirs(d)
        self.port = free_port()
        self.cfg = os.path.join(d, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(balancer.render(balancer.HAPROXY, self.port, ports(servers)))
        t = h.run([HAPROXY_BIN, "-c", "-f", self.cfg], timeout=30)
        assert t.returncode == 0, "haproxy -c rejects the config:\n%s" % t.stdout.decode()
        self.lines = []
        self.proc = subprocess.Popen([HAPROXY_BIN, "-db", "-f", self.cfg],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        h.wait_for(lambda: self._listening(), "haproxy listening", 15)

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def _listening(self):
        assert self.proc.poll() is None, "haproxy exited:\n%s" % "\n".join(self.lines)
        try:
            socket.create_connection((h.HOST, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def down(self, server):
        """True once haproxy has logged server (e.g. voicestack_asr/asr1) DOWN."""
        return any(re.search(r"Server %s is DOWN" % re.escape(server), l) for l in self.lines)


BALANCERS = (("nginx", nginx), ("haproxy", HAProxy))


# ---------------------------------------------------------------- helpers

def served(server):
    """Transcriptions this instance answered, by status: {status: count}."""
    out = {}
    for k, v in server.metrics("asr").items():
        m = re.match(r'voicestack_requests_total\{(.*)\}', k)
        if m and ROUTE in m.group(1):
            st = re.search(r'status="(\d+)"', m.group(1)).group(1)
            out[int(st)] = out.get(int(st), 0) + int(v)
    return out


def wait_busy(servers, each=2):
    h.wait_for(lambda: all(s.health_detailed("asr")["concurrency"]["active_requests"] == each
                           for s in servers), "every instance holding %d requests" % each, 20)


def statuses(resps):
    return sorted(r.status for r in resps)


# ---------------------------------------------------------------- tests

def test_shipped_files_match_the_settings():
    """The numbers the files comment on are the deployment's settings."""
    cfg = tn.server_settings()
    queue_s = max(float(cfg["ASR_QUEUE_TIMEOUT_SECONDS"]), float(cfg["TTS_QUEUE_TIMEOUT_SECONDS"]))
    need_s = float(cfg["REQUEST_TIMEOUT_SECONDS"]) + queue_s
    locs = dict(tn.proxied_locations(balancer.NGINX_CLUSTER))
    assert "= /v1/audio/transcriptions" in locs and "= /v1/audio/speech" in locs, locs.keys()
    for loc, eff in locs.items():
        for d in ("proxy_read_timeout", "proxy_send_timeout"):
            assert tn._seconds(eff[d][0]) >= need_s, (loc, d, eff[d], need_s)
        assert tn._megabytes(eff["client_max_body_size"][0]) == float(cfg["MAX_UPLOAD_SIZE_MB"])
        nu = eff["proxy_next_upstream"]
        for want in ("error", "timeout", "http_429", "http_503", "non_idempotent"):
            assert want in nu, "%s: proxy_next_upstream lacks %s: %s" % (loc, want, nu)
        assert "http_500" not in nu and "http_504" not in nu, nu
        assert eff.get("proxy_request_buffering", ["on"]) == ["on"], loc
        assert int(eff["proxy_next_upstream_tries"][0]) >= balancer.SHIPPED_INSTANCES
        if loc.endswith("/v1/audio/speech") or loc.startswith("/tts/"):
            assert eff.get("proxy_buffering") == ["off"], loc
    with open(balancer.HAPROXY) as f:
        hp = f.read()

    def directive(name):
        m = re.search(r"^\s*%s\s+(.+)$" % re.escape(name), hp, re.M)
        assert m, "haproxy config has no %s" % name
        return m.group(1).strip()
    assert re.search(r"\bmaxconn (\d+)", directive("default-server")).group(1) == \
        cfg["ASR_MAX_CONCURRENT_REQUESTS"] == cfg["TTS_MAX_CONCURRENT_REQUESTS"]
    assert tn._seconds(directive("timeout queue")) == queue_s
    assert tn._seconds(directive("timeout server")) >= need_s
    assert tn._seconds(directive("timeout client")) >= need_s
    assert int(re.search(r"gt (\d+)", directive("http-request deny")).group(1)) == \
        int(cfg["MAX_UPLOAD_SIZE_MB"]) * 1048576
    assert "503" in directive("retry-on").split() and \
        "empty-response" in directive("retry-on").split()
    assert directive("option httpchk") == "GET /health/ready"
    assert "option http-buffer-request" in hp and "option redispatch" in hp
    assert "observe layer7" in directive("default-server")
    if os.access(HAPROXY_BIN, os.X_OK):
        # what the config says about 429 is what this HAProxy does
        probe = h.tmppath("retry-429.cfg")
        with open(probe, "w") as f:
            f.write("defaults\n  mode http\nbackend b\n  retry-on 429\n")
        out = h.run([HAPROXY_BIN, "-c", "-f", probe], timeout=30)
        assert out.returncode != 0 and b"unknown keyword '429'" in out.stdout + out.stderr, \
            "this HAProxy accepts retry-on 429: use it in deploy/haproxy-voicestack.cfg"


def test_haproxy_own_503_is_the_servers_json_error():
    """With no instance reachable, HAProxy's own 503 (http-error) has the
    OpenAI error body and a Retry-After, like the instances' refusals."""
    nobody = free_port()   # nothing listens there
    with HAProxy([{"asr": nobody, "tts": nobody}]) as hp:
        r = h.request(hp.port, "GET", "/health")
        e = h.assert_error_shape(r, 503)
        assert e["code"] == "service_unavailable" and r.headers.get("retry-after") == "10", r


def test_burst_of_six_served_behind_each_balancer_real_engine():
    """One instance alone: 2 transcripts, 4 x 429. Behind either balancer: 6."""
    srv = instances(3)
    alone = h.burst(6, lambda i: h.transcribe(srv[0].asr_port, CLIP))
    assert statuses(alone) == [200, 200, 429, 429, 429, 429], statuses(alone)
    for r in alone:
        if r.status == 429:
            h.assert_error_shape(r, 429)
    text = [r for r in alone if r.status == 200][0].json()["text"]
    assert len(h.words(text)) > 5, text
    for name, make in BALANCERS:
        before = [served(s).get(200, 0) for s in srv]
        with make(srv) as lb:
            got = h.burst(6, lambda i: h.transcribe(lb.port, CLIP))
        assert statuses(got) == [200] * 6, "%s: %s %r" % (name, statuses(got),
                                                      [r.body[:120] for r in got])
        for r in got:
            assert r.json()["text"] == text, (name, r.json()["text"], text)
        after = [served(s).get(200, 0) for s in srv]
        spread = [a - b for a, b in zip(after, before)]
        # six slots, six requests: each instance served its two
        assert spread == [2, 2, 2], "%s: transcripts per instance %s" % (name, spread)


def test_past_six_nginx_answers_the_servers_429_haproxy_queues():
    srv = instances(3, sleep_ms=1500)
    with nginx(srv) as ng:
        got = h.burst(9, lambda i: h.transcribe(ng.port, CARD))
        assert statuses(got).count(200) == 6, statuses(got)
        for r in got:
            if r.status != 200:
                # the instances' answer, not nginx's 502 "no live upstreams"
                h.assert_error_shape(r, 429)
                assert r.headers.get("retry-after"), r.headers
    with HAProxy(srv) as hp:
        got = h.burst(9, lambda i: h.transcribe(hp.port, CARD))
        assert statuses(got) == [200] * 9, statuses(got)


def _kill_mid_run(make, sleep_ms):
    srv = instances(3, sleep_ms=sleep_ms)
    with make(srv) as lb:
        calls = [h.in_thread(lambda: h.transcribe(lb.port, CARD)) for _ in range(6)]
        wait_busy(srv)
        victim = srv[0]
        held = victim.health_detailed("asr")["concurrency"]["active_requests"]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        got = [h.join(t, box, 60) for t, box in calls]
        failed = [r for r in got if r.status != 200]
        assert len(failed) <= held, "killing an instance holding %d cost %d requests: %s" % (
            held, len(failed), statuses(got))
        # the two left serve a full load of their own
        after = h.burst(4, lambda i: h.transcribe(lb.port, CARD))
        assert statuses(after) == [200] * 4, statuses(after)
        return lb, srv, got


def test_instance_killed_mid_run_costs_at_most_what_it_held_nginx():
    _kill_mid_run(nginx, 2500)


def test_instance_killed_mid_run_costs_at_most_what_it_held_haproxy():
    # 4.5 s of work: at least two checks (2 s apart) see the others busy;
    # they must stay UP (the check passes on reason "busy")
    lb, srv, got = _kill_mid_run(HAProxy, 4500)
    assert not lb.down("voicestack_asr/asr2") and not lb.down("voicestack_asr/asr3"), \
        "a busy instance was taken out:\n%s" % "\n".join(lb.lines)


def test_stopping_instance_hands_its_requests_to_another():
    """SIGTERM (a restart) answers what an instance holds with 503
    shutting_down, after the work started (its worker is killed); the result
    is thrown away, so both balancers run the request elsewhere. HAProxy only
    if the whole request fits its buffer (15360 bytes): a larger upload gets
    the 503 itself."""
    small = h.wav_bytes(b"\0\0" * 4000)   # 8 KB upload
    assert len(small) < 15000 < os.path.getsize(CARD)
    for name, make, audio, want in (("nginx", nginx, CARD, 200),
                                    ("haproxy", HAProxy, small, 200),
                                    ("haproxy", HAProxy, CARD, 503)):
        srv = instances(3, sleep_ms=3000)
        with make(srv) as lb:
            t, box = h.in_thread(lambda: h.transcribe(lb.port, audio))
            victim = h.wait_for(lambda: next((s for s in srv if s.health_detailed("asr")[
                "concurrency"]["active_requests"]), None), "a request in flight")
            victim.stop()
            r = h.join(t, box, 60)
        assert victim.log_contains(r"event=access .*status=503"), \
            "%s: the stopped instance did not answer its request 503" % name
        if want == 200:
            assert r.status == 200, "%s, %d-byte upload: %r" % (name, len(audio) if isinstance(
                audio, bytes) else os.path.getsize(audio), r)
            others = [s for s in srv if s is not victim]
            assert sum(served(s).get(200, 0) for s in others) == 1, name
        else:
            assert r.status == 503 and r.json()["error"]["code"] == "shutting_down", \
                "%s: an upload above the buffer was retried? %r" % (name, r)


def test_memory_refusing_instance_gets_no_work():
    # instance 1 sees 8 GB with 100 MB available: above MEMORY_THRESHOLD_PERCENT
    fake = h.fake_proc_root(8 * 1024 * 1024, 100 * 1024)
    srv = instances(3, sleep_ms=1000,
                    env_of=lambda i: {"VS_TEST_PROC_ROOT": fake} if i == 0 else {})
    r = h.request(srv[0].asr_port, "GET", "/health/ready")
    assert r.status == 503 and r.json()["reason"] == "memory", r
    for name, make in BALANCERS:
        before = served(srv[0])
        with make(srv) as lb:
            if name == "haproxy":
                h.wait_for(lambda: lb.down("voicestack_asr/asr1"), "haproxy: asr1 DOWN", 20)
            got = h.burst(4, lambda i: h.transcribe(lb.port, CARD))
            assert statuses(got) == [200] * 4, "%s: %s" % (name, statuses(got))
        after = served(srv[0])
        new = {st: n - before.get(st, 0) for st, n in after.items() if n != before.get(st, 0)}
        # nginx may ask it (each ask answered 503 before any work); HAProxy does not
        allowed = {503} if name == "nginx" else set()
        assert set(new) <= allowed, "%s: the refusing instance answered %s" % (name, new)
        assert not srv[0].health_detailed("asr")["model"]["loaded"], \
            "%s: the refusing instance loaded its model (a worker did a job)" % name


def test_speech_streams_through_each_balancer():
    """First audio bytes arrive while the instance still works (test-tts
    emits its tone in ten spaced blocks)."""
    srv = instances(1, sleep_ms=3000, service="tts")
    for name, make in BALANCERS:
        with make(srv) as lb:
            first, active, rest = tn.speech_first_bytes(lb.port, srv[0])
            assert active == 1, "%s held the stream back" % name
            assert len(first) + len(rest) > 40000, (name, len(first) + len(rest))
        srv[0].wait_slots_free("tts")

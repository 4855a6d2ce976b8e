"""test_lanes.py - priority lanes (issue 10): reserved slots, the lane queue
(high first, FIFO within a lane), the bound on how long `low` may wait,
where a request's lane comes from (X-Voicestack-Priority, only with
ALLOW_CLIENT_PRIORITY), lanes at the model's slots too, and what
/health/detailed, /metrics and voicestack-loadtest report per lane.

Timing-sensitive cases use the sleeping test engines; the reserved slot is
also shown once with the real engines. No assertion is on elapsed time:
"admitted at once" means the request never queued (queue_ms=0 in its access
line) while normal requests queued before it were still waiting; order is
read from the order of the access lines (one slot: the order of the grants).
Lanes off (the defaults) is the specification's behaviour, which
test_admission.py and the rest of the suite keep checking.
"""

import json
import os
import subprocess
import threading
import uuid

import harness as h
from pyvs.server import clean_env

TEST_TIMEOUT = 300
SENTENCE = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0870.wav")
PRIO = "X-Voicestack-Priority"
TEST_ENGINES = {"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts"}
_wav = []


def _silence():
    """1 s of silence (the test engines ignore the audio), made once."""
    if not _wav:
        _wav.append(h.wav_bytes(b"\0\0" * 16000))
    return _wav[0]


def _tx(port, lane=None, rid=None, audio=None, timeout=120.0, model=None, headers=None):
    headers = dict(headers or {})
    if lane:
        headers[PRIO] = lane
    if rid:
        headers["X-Request-Id"] = rid
    fields = {"model": model} if model else None
    return h.transcribe(port, audio or _silence(), headers=headers, fields=fields,
                        timeout=timeout)


def _rid(tag):
    return "%s-%s" % (tag, uuid.uuid4().hex[:8])


class Flood:
    """n clients, each sending transcriptions back to back in `lane` (None:
    no header) until stop() or `limit` requests in all, or `once`: one
    request each. Request ids are prefix + sequence number; every answer is
    kept as (rid, status)."""

    def __init__(self, port, n, lane=None, prefix=None, once=False, audio=None, model=None,
                 limit=None, headers=None):
        self.port, self.lane, self.once, self.audio, self.model = port, lane, once, audio, model
        self.limit, self.headers = limit, headers
        self.prefix = prefix or _rid("flood") + "-"
        self.answers, self.errors = [], []
        self._seq, self._mu, self._stop = 0, threading.Lock(), threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(n)]
        for t in self._threads:
            t.start()

    def _next_rid(self):
        with self._mu:
            if self.limit is not None and self._seq >= self.limit:
                return None
            self._seq += 1
            return "%s%03d" % (self.prefix, self._seq)

    def _client(self):
        while not self._stop.is_set():
            rid = self._next_rid()
            if rid is None:
                return
            try:
                r = _tx(self.port, self.lane, rid, self.audio, model=self.model,
                        headers=self.headers)
                with self._mu:
                    self.answers.append((rid, r.status))
            except Exception as e:  # noqa: B902 - reported by stop()
                with self._mu:
                    self.errors.append((rid, repr(e)))
                return
            if self.once:
                return

    def stop(self, timeout=120.0):
        """Stops the clients (once) and returns the answers; asserts that
        every client ended and no request failed in transport."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "flood clients still running"
        assert not self.errors, "flood requests failed: %s" % self.errors[:3]
        return self.answers

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            # the test failed: report its error; the server's stop ends
            # what is still in flight (the clients are daemon threads)
            self._stop.set()
            return False
        self.stop()
        return False


def _lane(d, lane):
    assert "lanes" in d, "/health/detailed has no lanes: %s" % sorted(d)
    return d["lanes"][lane]


def _wait_lanes(s, pred, what, service="asr", timeout=30.0):
    return h.wait_for(lambda: (lambda d: d if pred(d) else None)(s.health_detailed(service)),
                      what, timeout)


def _server(name, **env):
    e = dict(TEST_ENGINES, ALLOW_CLIENT_PRIORITY="true", ASR_QUEUE_TIMEOUT_SECONDS="120",
             TTS_QUEUE_TIMEOUT_SECONDS="120")
    e.update({k: str(v) for k, v in env.items()})
    return h.Server(env=e, name=name).start()


# ---------------------------------------------------------------- reserved slots

def test_high_is_admitted_at_once_every_time_while_normal_floods_the_other_slot():
    """2 slots, 1 reserved: five normal clients keep the one normal slot busy
    and the normal queue full; a high request, five rounds in a row, never
    queues, and is answered while normal requests queued before it wait."""
    s = _server("lanes-reserved", ASR_MAX_CONCURRENT_REQUESTS=2, ASR_RESERVED_SLOTS=1,
                ASR_MAX_QUEUE=4, VS_TEST_ENGINE_SLEEP_MS=1500)
    try:
        with Flood(s.asr_port, 5, "normal") as flood:
            _wait_lanes(s, lambda d: _lane(d, "normal")["active"] == 1 and
                        _lane(d, "normal")["queued"] == 4, "normal flood saturating")
            for i in range(5):
                rid = _rid("high%d" % i)
                r = _tx(s.asr_port, "high", rid)
                after = s.health_detailed("asr")
                assert r.status == 200, "round %d: high answered %d %r" % (
                    i, r.status, r.body[:300])
                f = h.access_line(s, rid)
                assert f.get("lane") == "high", "round %d: access line lane %r" % (
                    i, f.get("lane"))
                assert f["queue_ms"] == "0", "round %d: the high request queued %s ms" % (
                    i, f["queue_ms"])
                # the flood was still saturating when high was answered: normal
                # requests queued before it were still waiting
                assert _lane(after, "normal")["queued"] >= 2, \
                    "inconclusive: the normal queue ran dry (%s)" % after["lanes"]
            answers = flood.stop()
            assert answers and all(st == 200 for _, st in answers), answers[:10]
            s.wait_slots_free("asr", timeout=30)
    finally:
        s.stop()


def test_high_still_enters_when_the_normal_queue_is_full():
    """Normal slot busy and the normal queue full (a normal newcomer gets
    429 queue_full): a high request takes the reserved slot at once; a second
    high one, with the reserved slot busy too, waits in its own lane's queue
    (not 429) and gets the next free slot ahead of the normal requests that
    queued before it."""
    s = _server("lanes-queue-full", ASR_MAX_CONCURRENT_REQUESTS=2, ASR_RESERVED_SLOTS=1,
                ASR_MAX_QUEUE=2, VS_TEST_ENGINE_SLEEP_MS=2000)
    try:
        n1 = Flood(s.asr_port, 1, "normal", prefix="n1-", once=True)
        _wait_lanes(s, lambda d: _lane(d, "normal")["active"] == 1, "n1 running")
        nq = Flood(s.asr_port, 2, "normal", prefix="nq-", once=True)
        _wait_lanes(s, lambda d: _lane(d, "normal")["queued"] == 2, "normal queue full")
        r = _tx(s.asr_port, "normal")
        e = h.assert_error_shape(r, 429)
        assert e["code"] == "queue_full", e
        h1 = Flood(s.asr_port, 1, "high", prefix="h1-", once=True)
        _wait_lanes(s, lambda d: _lane(d, "high")["active"] == 1, "h1 on the reserved slot")
        h2 = Flood(s.asr_port, 1, "high", prefix="h2-", once=True)
        d = _wait_lanes(s, lambda d: _lane(d, "high")["queued"] == 1 or
                        _lane(d, "high")["active"] == 2, "h2 queued in the high lane")
        assert _lane(d, "normal")["queued"] == 2, "inconclusive: normal queue no longer full %s" \
            % d["lanes"]
        for fl in (n1, nq, h1, h2):
            assert all(st == 200 for _, st in fl.stop()), fl.answers
        assert h.access_line(s, "h1-001")["queue_ms"] == "0"
        order = h.access_order(s, "", expect=("n1-001", "nq-001", "nq-002", "h1-001", "h2-001"))
        order = [x for x in order if x[:3] in ("n1-", "nq-", "h1-", "h2-")]
        assert order.index("h2-001") < order.index("nq-001") and \
            order.index("h2-001") < order.index("nq-002"), \
            "the queued high request was not served before the normal ones queued " \
            "earlier: %s" % order
        s.wait_slots_free("asr", timeout=30)
    finally:
        s.stop()


# ---------------------------------------------------------------- low's bound

def test_low_gets_its_turn_within_the_documented_bound():
    """One slot, LOW_LANE_MAX_SKIPS=1, a normal flood keeping four normal
    requests queued: a low request queued behind them is granted after at
    most one normal hand-over (plus the request holding the slot when it
    arrived), while normal requests are still waiting. FIFO would serve it
    after the four queued before it; strict priority never."""
    skips = 1
    s = _server("lanes-low-bound", ASR_MAX_CONCURRENT_REQUESTS=1, ASR_MAX_QUEUE=8,
                LOW_LANE_MAX_SKIPS=skips, VS_TEST_ENGINE_SLEEP_MS=400)
    try:
        # finite, so that a low request starved by strict priority still ends
        # (after all of them) and the count below says so
        with Flood(s.asr_port, 5, "normal", prefix="n-", limit=25) as flood:
            _wait_lanes(s, lambda d: _lane(d, "normal")["queued"] == 4, "four normal queued")
            low = Flood(s.asr_port, 1, "low", prefix="low-", once=True)
            _wait_lanes(s, lambda d: _lane(d, "low")["queued"] == 1, "low queued")
            # counted once low is seen queued: a normal request ending between
            # low's arrival and this count can only make the bound looser
            done_before = len(h.access_order(s, "n-"))
            assert all(st == 200 for _, st in low.stop()), low.answers
            after = s.health_detailed("asr")
            order = h.access_order(s, "", expect=("low-001",))
            order = [x for x in order if x.startswith(("n-", "low-"))]
            i = order.index("low-001")
            normals_between = i - done_before
            assert normals_between <= skips + 1, \
                "low waited for %d normal requests (bound: LOW_LANE_MAX_SKIPS=%d, plus the one " \
                "holding the slot): %s" % (normals_between, skips, order)
            assert _lane(after, "normal")["queued"] >= 2, \
                "inconclusive: normal requests were no longer waiting when low was served (%s)" % (
                    after["lanes"],)
            flood.stop()
    finally:
        s.stop()


# ---------------------------------------------------------------- model level

def test_lane_order_applies_at_the_models_slots_too():
    """Model a has one slot (MODELS_FILE slots=1) within a service of 3: a
    high request waiting for a's slot gets it before a normal one that
    queued for it earlier."""
    path = h.tmppath("lanes-models.txt")
    with open(path, "w") as f:
        f.write("a asr test-asr slots=1\nt tts test-tts\n")
    s = _server("lanes-model", MODELS_FILE=path, ASR_MAX_CONCURRENT_REQUESTS=3,
                ASR_MAX_QUEUE=4, VS_TEST_ENGINE_SLEEP_MS=1500)
    try:
        def model_a(d):
            return [m for m in d["models"] if m["id"] == "a"][0]
        n1 = Flood(s.asr_port, 1, "normal", prefix="mn1-", once=True, model="a")
        h.wait_for(lambda: model_a(s.health_detailed("asr"))["concurrency"]
                   ["active_requests"] == 1, "n1 holds a's slot")
        n2 = Flood(s.asr_port, 1, "normal", prefix="mn2-", once=True, model="a")
        h.wait_for(lambda: model_a(s.health_detailed("asr"))["queue"]["depth"] == 1,
                   "n2 waits for a's slot")
        hi = Flood(s.asr_port, 1, "high", prefix="mh-", once=True, model="a")
        d = h.wait_for(lambda: (lambda m: m if m["queue"]["depth"] == 2 else None)(
            model_a(s.health_detailed("asr"))), "high waits for a's slot")
        assert d["lanes"]["high"]["queued"] == 1 and d["lanes"]["normal"]["queued"] == 1, \
            d["lanes"]
        for fl in (n1, n2, hi):
            assert all(st == 200 for _, st in fl.stop()), fl.answers
        order = h.access_order(s, "m", expect=("mn1-001", "mh-001", "mn2-001"))
        order = [x for x in order if x[:3] in ("mn1", "mn2", "mh-")]
        assert order == ["mn1-001", "mh-001", "mn2-001"], \
            "model queue not served high first: %s" % order
    finally:
        s.stop()


# ---------------------------------------------------------------- speech

def test_speech_high_is_admitted_at_once_with_a_reserved_tts_slot():
    s = _server("lanes-tts", TTS_MAX_CONCURRENT_REQUESTS=2, TTS_RESERVED_SLOTS=1,
                TTS_MAX_QUEUE=2, VS_TEST_ENGINE_SLEEP_MS=1500)
    stop = threading.Event()
    threads, bad = [], []
    try:
        def normal_client():
            while not stop.is_set():
                r = h.speak(s.tts_port, "hello", response_format="pcm",
                            headers={PRIO: "normal"}, timeout=120)
                if r.status != 200:
                    bad.append((r.status, r.body[:200]))
                    return
        for _ in range(3):
            t = threading.Thread(target=normal_client, daemon=True)
            t.start()
            threads.append(t)
        _wait_lanes(s, lambda d: _lane(d, "normal")["active"] == 1 and
                    _lane(d, "normal")["queued"] == 2, "normal speech saturating", "tts")
        for i in range(3):
            rid = _rid("tts-high%d" % i)
            r = h.speak(s.tts_port, "urgent", response_format="pcm",
                        headers={PRIO: "high", "X-Request-Id": rid}, timeout=60)
            assert r.status == 200 and r.complete, (r.status, r.body[:200])
            f = h.access_line(s, rid)
            assert f["queue_ms"] == "0" and f.get("lane") == "high", f
        assert not bad, "normal speech failed: %s" % bad
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        s.stop()


# ---------------------------------------------------------------- the lane's source

def test_priority_header_refused_while_clients_may_not_choose():
    """ALLOW_CLIENT_PRIORITY=false (the default): any X-Voicestack-Priority
    is refused with 400 naming the setting, never silently ignored."""
    s = h.Server(env=dict(TEST_ENGINES, VS_TEST_ENGINE_SLEEP_MS="0"), name="lanes-off").start()
    try:
        for lane in ("high", "normal", "low"):
            r = _tx(s.asr_port, lane)
            e = h.assert_error_shape(r, 400)
            assert e["code"] == "priority_not_allowed", e
            assert "ALLOW_CLIENT_PRIORITY" in e["message"], e
        r = h.speak(s.tts_port, "hi", headers={PRIO: "high"})
        e = h.assert_error_shape(r, 400)
        assert e["code"] == "priority_not_allowed", e
        # without the header: served, in the normal lane
        rid = _rid("plain")
        r = _tx(s.asr_port, rid=rid)
        assert r.status == 200, r
        assert h.access_line(s, rid).get("lane") == "normal"
        d = s.health_detailed("asr")
        assert d["lanes"]["reserved_slots"] == 0 and d["lanes"]["client_priority"] is False, \
            d["lanes"]
    finally:
        s.stop()


def test_invalid_priority_value_is_400_and_case_is_ignored():
    s = _server("lanes-values", VS_TEST_ENGINE_SLEEP_MS=0)
    try:
        for bad in ("urgent", "", "high,low", "1"):
            r = _tx(s.asr_port, bad) if bad else h.request(
                s.asr_port, "POST", "/v1/audio/transcriptions", b"",
                {"Content-Type": "multipart/form-data; boundary=x", PRIO: ""})
            e = h.assert_error_shape(r, 400)
            assert e["code"] == "invalid_header" and PRIO in e["message"], (bad, e)
        for lane in ("HIGH", "Low", "normal"):
            rid = _rid("case")
            r = _tx(s.asr_port, lane, rid)
            assert r.status == 200, (lane, r.status, r.body[:200])
            assert h.access_line(s, rid).get("lane") == lane.lower()
    finally:
        s.stop()


def test_reserved_slots_must_leave_one_for_normal_requests():
    p = subprocess.run([h.BIN, "serve"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=15,
                       env=clean_env({"ASR_MAX_CONCURRENT_REQUESTS": "2",
                                      "ASR_RESERVED_SLOTS": "2", "ASR_PORT": "0",
                                      "TTS_PORT": "0"}))
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 2, "started with every slot reserved (rc %d): %s" % (
        p.returncode, err[-500:])
    assert "ASR_RESERVED_SLOTS" in err and "ASR_MAX_CONCURRENT_REQUESTS" in err, err[-500:]


def test_the_api_keys_lane_is_the_requests_lane():
    """API_KEYS_FILE gives each key a lane: a `high` key's transcriptions
    take the reserved slot at once while a `normal` key floods the other; a
    `low` key's request is admitted in the low lane; with clients not
    allowed to choose, the header is still refused, key or not."""
    keys = {lane: "vsk-" + uuid.uuid4().hex for lane in ("high", "normal", "low")}
    path = h.tmppath("lanes-keys")
    with open(path, "w") as f:
        for lane, key in keys.items():
            f.write("%s %s-client %s\n" % (key, lane, lane))
    s = h.Server(env=dict(TEST_ENGINES, API_KEYS_FILE=path, ASR_MAX_CONCURRENT_REQUESTS="2",
                          ASR_RESERVED_SLOTS="1", ASR_MAX_QUEUE="4",
                          ASR_QUEUE_TIMEOUT_SECONDS="120", VS_TEST_ENGINE_SLEEP_MS="1500"),
                 name="lanes-keys").start()
    auth = {lane: {"Authorization": "Bearer " + key} for lane, key in keys.items()}
    try:
        with Flood(s.asr_port, 5, headers=auth["normal"]) as flood:

            def health():
                r = h.request(s.asr_port, "GET", "/health/detailed", headers=auth["normal"])
                assert r.status == 200, r
                return r.json()
            h.wait_for(lambda: _lane(health(), "normal")["queued"] == 4, "normal key flooding")
            for i in range(3):
                rid = _rid("key-high%d" % i)
                r = _tx(s.asr_port, rid=rid, headers=auth["high"])
                assert r.status == 200, (r.status, r.body[:200])
                f = h.access_line(s, rid)
                assert f.get("key") == "high-client" and f.get("lane") == "high", f
                assert f["queue_ms"] == "0", "the high key's request queued %s ms" % f["queue_ms"]
            assert _lane(health(), "normal")["queued"] >= 2, "inconclusive: the flood ran dry"
            rid = _rid("key-low")
            low = Flood(s.asr_port, 1, prefix=rid, once=True, headers=auth["low"])
            assert all(st == 200 for _, st in low.stop()), low.answers
            assert h.access_line(s, rid + "001").get("lane") == "low"
            r = _tx(s.asr_port, "high", headers=auth["normal"])
            e = h.assert_error_shape(r, 400)
            assert e["code"] == "priority_not_allowed", e
            flood.stop()
    finally:
        s.stop()


# ---------------------------------------------------------------- reporting

def test_health_and_metrics_show_slots_queue_and_refusals_per_lane():
    """No queue (the specification's default): a second normal request is
    refused although the reserved slot is free, and says so; a second high
    one is refused too. /health/detailed and /metrics count both per lane."""
    s = _server("lanes-report", ASR_MAX_CONCURRENT_REQUESTS=2, ASR_RESERVED_SLOTS=1,
                ASR_MAX_QUEUE=0, VS_TEST_ENGINE_SLEEP_MS=3000)
    try:
        n1 = Flood(s.asr_port, 1, "normal", prefix="rn-", once=True)
        _wait_lanes(s, lambda d: _lane(d, "normal")["active"] == 1, "normal running")
        r = _tx(s.asr_port, "normal")
        e = h.assert_error_shape(r, 429)
        assert "reserved" in e["message"], e
        h1 = Flood(s.asr_port, 1, "high", prefix="rh-", once=True)
        d = _wait_lanes(s, lambda d: _lane(d, "high")["active"] == 1, "high running")
        r = _tx(s.asr_port, "high")
        h.assert_error_shape(r, 429)
        d = s.health_detailed("asr")
        lanes = d["lanes"]
        assert lanes["reserved_slots"] == 1 and lanes["client_priority"] is True, lanes
        assert d["concurrency"]["active_requests"] == 2, d["concurrency"]
        assert lanes["normal"]["active"] == 1 and lanes["high"]["active"] == 1, lanes
        assert lanes["low"]["active"] == 0 and lanes["low"]["queued"] == 0, lanes
        assert lanes["normal"]["rejected"]["slot"] == 1, lanes
        assert lanes["high"]["rejected"]["slot"] == 1, lanes
        assert lanes["low"]["rejected"]["slot"] == 0, lanes
        m = s.metrics("asr")
        assert m.get('voicestack_reserved_slots{service="asr"}') == 1, \
            [k for k in m if "reserved" in k]
        assert m.get('voicestack_lane_active_requests{service="asr",lane="high"}') == 1, \
            [k for k in m if "lane" in k]
        assert m.get('voicestack_lane_active_requests{service="asr",lane="normal"}') == 1
        assert m.get('voicestack_lane_queue_depth{service="asr",lane="normal"}') == 0
        for lane in ("normal", "high"):
            key = 'voicestack_lane_rejections_total{service="asr",lane="%s",reason="slot"}' % lane
            assert m.get(key) == 1, (key, [k for k in m if "lane_rejections" in k])
        for fl in (n1, h1):
            assert all(st == 200 for _, st in fl.stop()), fl.answers
        s.wait_slots_free("asr", timeout=30)
    finally:
        s.stop()


# ---------------------------------------------------------------- load tester

def _loadtest():
    path = os.path.join(os.path.dirname(os.path.abspath(h.BIN)), "tools", "loadtest",
                        "voicestack-loadtest")
    assert os.access(path, os.X_OK), "load-test tool %s not built" % path
    return path


def test_loadtest_sends_lanes_and_reports_per_lane():
    s = _server("lanes-loadtest", ASR_MAX_CONCURRENT_REQUESTS=2, ASR_RESERVED_SLOTS=1,
                ASR_MAX_QUEUE=0, VS_TEST_ENGINE_SLEEP_MS=300)
    try:
        before = s.metrics("asr")
        p = subprocess.run([_loadtest(), "--service", "asr", "--asr-url", s.asr_url,
                            "--lane", "normal=3", "--lane", "high=1", "--requests", "4",
                            "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        assert p.returncode == 0, (p.returncode, p.stderr[-800:])
        doc = json.loads(p.stdout)
        asr = doc["services"]["asr"]
        lanes = asr["lanes"]
        assert set(lanes) == {"high", "normal"}, lanes.keys()
        # one high client: the reserved slot is always there for it
        assert lanes["high"]["sent"] == 4 and lanes["high"]["status"] == {"200": 4}, \
            lanes["high"]
        # three normal clients share one slot without a queue: some are refused
        assert lanes["normal"]["sent"] == 12 and lanes["normal"]["status"].get("429", 0) > 0, \
            lanes["normal"]
        assert asr["sent"] == 16, asr["sent"]
        after = s.metrics("asr")
        key = 'voicestack_lane_rejections_total{service="asr",lane="normal",reason="slot"}'
        assert after.get(key, 0) - before.get(key, 0) == lanes["normal"]["status"]["429"], \
            (after.get(key), before.get(key), lanes["normal"]["status"])
        # text report: one line per lane
        p = subprocess.run([_loadtest(), "--service", "asr", "--asr-url", s.asr_url,
                            "--lane", "low", "--workers", "1", "--requests", "1"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        out = p.stdout.decode()
        assert p.returncode == 0 and "lane low" in out, out
        for bad in (["--lane", "urgent"], ["--lane", "high", "--lane", "normal=2"],
                    ["--lane", "high=0"], ["--lane", "normal=2", "--workers", "3"]):
            p = subprocess.run([_loadtest(), "--service", "asr", "--asr-url", s.asr_url] + bad,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            assert p.returncode == 2 and b"--lane" in p.stderr + p.stdout, (bad, p.stderr)
    finally:
        s.stop()


# ---------------------------------------------------------------- real engines

def test_high_admitted_at_once_with_the_real_engines():
    """pocketsphinx: long normal transcriptions keep the normal slot busy and
    the queue full; a one-sentence high one is transcribed at once, on the
    reserved slot, as the engine's own CLI transcribes it."""
    s = h.Server(env={"ASR_MAX_CONCURRENT_REQUESTS": "2", "ASR_RESERVED_SLOTS": "1",
                      "ALLOW_CLIENT_PRIORITY": "true", "ASR_MAX_QUEUE": "1",
                      "ASR_QUEUE_TIMEOUT_SECONDS": "300"}, name="lanes-real").start()
    try:
        with open(h.long_librivox_wav(2, "lanes-long.wav"), "rb") as f:
            long_wav = f.read()
        with Flood(s.asr_port, 2, "normal", once=True, audio=long_wav) as flood:
            _wait_lanes(s, lambda d: _lane(d, "normal")["active"] == 1 and
                        _lane(d, "normal")["queued"] == 1, "normal transcriptions saturating",
                        timeout=60)
            # what the engine's own CLI hears in the same sentence
            ref = h.pocketsphinx_continuous(h.canonical_wav(SENTENCE))
            rid = _rid("real-high")
            with open(SENTENCE, "rb") as f:
                r = _tx(s.asr_port, "high", rid, f.read())
            after = s.health_detailed("asr")
            assert r.status == 200, (r.status, r.body[:300])
            assert h.wer(ref, r.json()["text"]) < 0.2, (ref, r.json()["text"])
            assert h.access_line(s, rid)["queue_ms"] == "0"
            assert _lane(after, "normal")["queued"] == 1, \
                "inconclusive: the normal queue emptied before the high request ended %s" % (
                    after["lanes"],)
            assert all(st == 200 for _, st in flood.stop(timeout=240)), flood.answers
    finally:
        s.stop()

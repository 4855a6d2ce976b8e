"""test_health_metrics.py - /health/detailed schema and /metrics content.

/health/detailed: exactly the original specification's keys and JSON types
(status, service, timestamp, memory, swap, model, concurrency, config) plus
Voice Stack's queue, workers[], uptime_seconds and version; the default
settings show up as the specification's defaults; model.loaded follows the
worker. /metrics: after traffic that produced a 200, a 400 and a 429, the
text passes `promtool check metrics`, counters moved by exactly the requests
made, histograms are complete, gauges tell the slot and model state."""

import datetime
import os
import re
import subprocess
import threading
import time

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
CARD = os.path.join(h.CARDS, "001.wav")
PROMTOOL = "/usr/bin/promtool"

NUM = (int, float)

SPEC_KEYS = {"status", "service", "timestamp", "memory", "swap", "model", "concurrency",
             "config"}
ADDED_KEYS = {"queue", "workers", "uptime_seconds", "version", "models", "degrade_under_load",
              "admission", "lanes"}
LANES = ("high", "normal", "low")
WORKER_KEYS = {"pid", "state", "rss_mb", "requests_served", "idle_seconds",
               "unload_in_seconds"}

shared = h.SharedServer(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                             "VS_TEST_ENGINE_SLEEP_MS": "0"}, name="health-defaults")


def teardown_module():
    shared.stop()


def _is_num(v):
    return isinstance(v, NUM) and not isinstance(v, bool)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_schema(d, service):
    """Asserts the key set and JSON type of every field; returns d."""
    keys = set(d)
    extra_ok = {"degraded_reason"} if d.get("status") == "degraded" else set()
    assert SPEC_KEYS | ADDED_KEYS <= keys, "missing keys: %s" % (
        sorted(SPEC_KEYS | ADDED_KEYS - keys))
    assert keys <= SPEC_KEYS | ADDED_KEYS | extra_ok, "unexpected keys: %s" % (
        sorted(keys - SPEC_KEYS - ADDED_KEYS))
    assert d["status"] in ("healthy", "degraded"), d["status"]
    assert d["service"] == service, d["service"]
    assert isinstance(d["timestamp"], str)
    ts = datetime.datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None, "timestamp without a zone: %r" % d["timestamp"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - ts).total_seconds()) < 300, "timestamp %s far from now %s" % (ts, now)

    def obj(name, spec):
        o = d[name]
        assert isinstance(o, dict), "%s is not an object: %r" % (name, o)
        assert set(o) == set(spec), "%s keys %s, want %s" % (name, sorted(o), sorted(spec))
        for k, check in spec.items():
            assert check(o[k]), "%s.%s has the wrong type/value: %r" % (name, k, o[k])
        return o
    mem = obj("memory", {"percent": _is_num, "available_mb": _is_num, "total_mb": _is_num,
                         "threshold_percent": _is_int})
    assert 0 <= mem["percent"] <= 100 and 0 < mem["available_mb"] <= mem["total_mb"], mem
    sw = obj("swap", {"percent": _is_num, "used_mb": _is_num, "total_mb": _is_num,
                      "threshold_percent": _is_int})
    assert 0 <= sw["percent"] <= 100 and 0 <= sw["used_mb"] <= sw["total_mb"] + 0.1, sw
    obj("model", {"loaded": lambda v: isinstance(v, bool), "engine": lambda v: isinstance(v, str),
                  "model_name": lambda v: isinstance(v, str) and v != "",
                  "device": lambda v: isinstance(v, str) and v != ""})
    c = obj("concurrency", {"active_requests": _is_int, "max_concurrent": _is_int,
                            "available_slots": _is_int})
    assert c["active_requests"] + c["available_slots"] == c["max_concurrent"], c
    obj("config", {"idle_timeout_minutes": _is_num, "max_upload_mb": _is_int})
    q = obj("queue", {"depth": _is_int, "max": _is_int, "timeout_seconds": _is_num})
    assert 0 <= q["depth"] <= max(q["max"], 0), q
    assert isinstance(d["workers"], list), d["workers"]
    for w in d["workers"]:
        assert isinstance(w, dict) and WORKER_KEYS <= set(w), "worker item %r lacks %s" % (
            w, sorted(WORKER_KEYS - set(w)))
        assert _is_int(w["pid"]) and w["pid"] > 0, w
        assert isinstance(w["state"], str) and w["state"], w
        assert _is_num(w["rss_mb"]) and w["rss_mb"] >= 0, w
        assert _is_int(w["requests_served"]) and w["requests_served"] >= 0, w
        assert _is_num(w["idle_seconds"]) and w["idle_seconds"] >= 0, w
        assert w["unload_in_seconds"] is None or (_is_num(w["unload_in_seconds"]) and
                                                  w["unload_in_seconds"] >= 0), w
    lanes = d["lanes"]
    assert set(lanes) == {"reserved_slots", "low_max_skips", "client_priority"} | set(LANES), \
        sorted(lanes)
    assert _is_int(lanes["reserved_slots"]) and 0 <= lanes["reserved_slots"] < c["max_concurrent"]
    assert _is_int(lanes["low_max_skips"]) and lanes["low_max_skips"] >= 1, lanes
    assert isinstance(lanes["client_priority"], bool), lanes
    for lane in LANES:
        ln = lanes[lane]
        assert set(ln) == {"active", "queued", "rejected"}, (lane, ln)
        assert _is_int(ln["active"]) and _is_int(ln["queued"]), (lane, ln)
        assert set(ln["rejected"]) == {"slot", "queue_full", "queue_timeout"}, (lane, ln)
        assert all(_is_int(v) and v >= 0 for v in ln["rejected"].values()), (lane, ln)
    assert sum(lanes[lane]["active"] for lane in LANES) == c["active_requests"], lanes
    assert sum(lanes[lane]["queued"] for lane in LANES) == q["depth"], lanes
    assert _is_num(d["uptime_seconds"]) and d["uptime_seconds"] >= 0, d["uptime_seconds"]
    assert isinstance(d["version"], str) and re.match(r"\d+\.\d+", d["version"]), d["version"]
    return d


def test_health_detailed_schema_and_defaults():
    s = shared()
    for svc, engine in (("asr", "test-asr"), ("tts", "test-tts")):
        d = _check_schema(s.health_detailed(svc), svc)
        # the specification's defaults
        assert d["memory"]["threshold_percent"] == 90, d["memory"]
        assert d["swap"]["threshold_percent"] == 80, d["swap"]
        assert d["config"] == {"idle_timeout_minutes": 60, "max_upload_mb": 100}, d["config"]
        assert d["concurrency"] == {"active_requests": 0, "max_concurrent": 2,
                                    "available_slots": 2}, d["concurrency"]
        assert d["queue"]["max"] == 0 and d["queue"]["depth"] == 0, d["queue"]
        # lanes off: nothing reserved, clients may not choose
        assert d["lanes"]["reserved_slots"] == 0 and d["lanes"]["client_priority"] is False, \
            d["lanes"]
        assert d["model"]["engine"] == engine and d["model"]["device"] == "cpu", d["model"]
        assert d["status"] == "healthy", d["status"]
        # nothing asked yet: no worker holds the model
        assert d["model"]["loaded"] is False and d["workers"] == [], (d["model"], d["workers"])
    up0 = s.health_detailed("asr")["uptime_seconds"]
    r = h.transcribe(s.asr_port, CARD, timeout=60)
    assert r.status == 200, r
    d = _check_schema(s.health_detailed("asr"), "asr")
    assert d["model"]["loaded"] is True, d["model"]
    assert len(d["workers"]) == 1, d["workers"]
    w = d["workers"][0]
    assert w["pid"] in s.worker_pids("asr"), "worker pid %d is not a live asr worker %s" % (
        w["pid"], s.worker_pids("asr"))
    assert w["requests_served"] == 1 and w["state"] == "idle", w
    assert w["rss_mb"] > 1, w
    assert w["unload_in_seconds"] is not None and w["unload_in_seconds"] <= 3600, w
    assert d["uptime_seconds"] >= up0, (up0, d["uptime_seconds"])
    r = h.speak(s.tts_port, "Hello.", response_format="wav", timeout=60)
    assert r.status == 200, r
    d = _check_schema(s.health_detailed("tts"), "tts")
    assert d["model"]["loaded"] is True and len(d["workers"]) == 1, d


def test_health_detailed_schema_while_degraded():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "MEMORY_THRESHOLD_PERCENT": "1", "ASR_MAX_QUEUE": "3",
                      "ASR_IDLE_TIMEOUT_MINUTES": "0.5"}, name="health-degraded").start()
    try:
        d = _check_schema(s.health_detailed("asr"), "asr")
        assert d["status"] == "degraded", d["status"]
        assert d["memory"]["threshold_percent"] == 1
        assert d["queue"]["max"] == 3, d["queue"]
        assert d["config"]["idle_timeout_minutes"] == 0.5, d["config"]
    finally:
        s.stop()


# ---------------------------------------------------------------- metrics

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$')


def _parse(text):
    """{(name, frozenset(labels.items())): value} and {name: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "unparsable metrics line %r" % line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples, types


def _get(samples, name, **labels):
    """The sum of the series of `name` whose labels include `labels` (so a
    family that gained a label, such as model, sums over it)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def _scrape(s, svc="asr"):
    r = s.get(svc, "/metrics")
    assert r.status == 200, r.status
    assert r.content_type() == "text/plain", r.headers.get("content-type")
    return r.body.decode("utf-8")


def test_metrics_promtool_and_counters_follow_traffic():
    s = h.Server(env={"ASR_ENGINE": "test-asr", "TTS_ENGINE": "test-tts",
                      "ASR_MAX_CONCURRENT_REQUESTS": "1", "VS_TEST_ENGINE_SLEEP_MS": "1500"},
                 name="metrics").start()
    try:
        before, _ = _parse(_scrape(s))
        box = {}
        t = threading.Thread(target=lambda: box.update(r=h.transcribe(s.asr_port, CARD,
                                                                      timeout=60)),
                             daemon=True)
        t.start()
        deadline = time.monotonic() + 20
        while s.health_detailed("asr")["concurrency"]["active_requests"] != 1:
            assert time.monotonic() < deadline, "first request never became active"
            time.sleep(0.03)
        r429 = h.transcribe(s.asr_port, CARD, timeout=30)
        assert r429.status == 429, r429
        t.join(60)
        assert not t.is_alive() and box["r"].status == 200, box
        r400 = h.transcribe(s.asr_port, CARD, fields={"response_format": "bogus"}, timeout=30)
        assert r400.status == 400, r400
        # a request is counted when it completes, which can be just after its
        # client has read the reply: wait until all three are in
        def all_counted():
            got = _parse(_scrape(s))[0]
            return sum(_get(got, "voicestack_requests_total", service="asr", route=TRANSCRIBE,
                            status=st) - _get(before, "voicestack_requests_total", service="asr",
                                              route=TRANSCRIBE, status=st)
                       for st in ("200", "429", "400")) >= 3
        h.wait_for(all_counted, "the three requests counted", 5)
        text = _scrape(s)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        lint = (p.stdout + p.stderr).decode().strip()
        after, types = _parse(text)

        def delta(name, **labels):
            return _get(after, name, **labels) - _get(before, name, **labels)
        route = dict(service="asr", route=TRANSCRIBE)
        for status in ("200", "429", "400"):
            got = delta("voicestack_requests_total", status=status, **route)
            assert got == 1, "voicestack_requests_total{status=%s} moved by %s, want 1" % (
                status, got)
        assert delta("voicestack_rejections_total", service="asr", reason="slot") == 1
        # histogram: count == +Inf bucket, buckets non-decreasing, moved by 3
        assert types.get("voicestack_request_duration_seconds") == "histogram", types
        cnt = _get(after, "voicestack_request_duration_seconds_count", **route)
        assert cnt - _get(before, "voicestack_request_duration_seconds_count", **route) == 3
        # one series per outcome (ok, refused, client_error): summed by le,
        # as `sum by (le)` does
        by_le = {}
        for k, v in after.items():
            if k[0] == "voicestack_request_duration_seconds_bucket" and \
                    dict(k[1]).get("route") == TRANSCRIBE:
                le = float(dict(k[1])["le"])
                by_le[le] = by_le.get(le, 0) + v
        buckets = sorted(by_le.items())
        assert buckets and buckets[-1][0] == float("inf") and buckets[-1][1] == cnt, buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
        assert _get(after, "voicestack_request_duration_seconds_sum", **route) > 1.0
        assert types.get("voicestack_queue_wait_seconds") == "histogram", types
        # gauges: the slot is back, the model is held by one worker
        g = lambda n: _get(after, n, service="asr")  # noqa: E731
        assert g("voicestack_available_slots") == 1, g("voicestack_available_slots")
        assert g("voicestack_max_concurrent_requests") == 1
        assert g("voicestack_active_requests") == 0
        assert g("voicestack_queue_depth") == 0
        assert g("voicestack_model_loaded") == 1
        assert g("voicestack_worker_rss_bytes") > 1e6, g("voicestack_worker_rss_bytes")
        assert _get(after, "voicestack_model_loads_total", service="asr") >= 1
        assert 0 < _get(after, "voicestack_memory_used_percent") <= 100
        assert _get(after, "voicestack_memory_available_bytes") > 0
        assert ("voicestack_swap_used_percent", frozenset()) in after
        assert p.returncode == 0, "promtool check metrics failed (rc %d): %s" % (
            p.returncode, lint)
    finally:
        s.stop()

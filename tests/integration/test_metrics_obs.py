"""test_metrics_obs.py - the metrics a dashboard needs, driven through the
real engines (pocketsphinx, espeak-ng).

- voicestack_request_duration_seconds has an `outcome` label: a 200 is
  "ok", the 429 of a full slot "refused", a bad response_format
  "client_error" (and the old {service, route} sums are unchanged);
- voicestack_audio_in_seconds_total moves by the decoded length of the
  uploaded clip, voicestack_audio_out_seconds_total by the length of the
  speech sent back, voicestack_processing_seconds_total by a positive time
  for each, so real-time factor = processing / audio can be graphed;
- voicestack_tts_time_to_first_byte_seconds counts one observation per
  speech request, no longer than the request itself;
- process_* metrics of the front agree with /proc; voicestack_build_info
  names the version `voicestack --version` prints;
- both ports of one process serve the same registry (scrape one port);
- `promtool check metrics` stays clean."""

import os
import struct
import subprocess
import time

import harness as h

TRANSCRIBE = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"
CARD = os.path.join(h.CARDS, "001.wav")
PROMTOOL = "/usr/bin/promtool"

shared = h.SharedServer(env={"ASR_MAX_CONCURRENT_REQUESTS": "1"}, name="metrics-obs")


def teardown_module():
    shared.stop()


def _text(s, svc="asr"):
    r = s.get(svc, "/metrics")
    assert r.status == 200, r.status
    return r.body.decode("utf-8")


def _val(m, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    want = ['%s="%s"' % kv for kv in labels.items()]
    tot = 0.0
    for k, v in m.items():
        base, _, rest = k.partition("{")
        if base == name and all(w in rest for w in want):
            tot += v
    return tot


def _wav_seconds(body):
    """Length of a RIFF/WAVE body whose data size may be unknown (streamed)."""
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE", body[:16]
    off, rate, block, data = 12, None, None, None
    while off + 8 <= len(body):
        cid, size = body[off:off + 4], struct.unpack("<I", body[off + 4:off + 8])[0]
        if cid == b"fmt ":
            _, ch, rate, _, block = struct.unpack("<HHIIH", body[off + 8:off + 22])
        if cid == b"data":
            data = len(body) - off - 8
            break
        off += 8 + size
    assert rate and block and data is not None, "no fmt/data chunk"
    return data / block / rate


def test_outcome_label_ok_refused_client_error():
    s = shared()
    before = s.metrics("asr")
    # hold the only ASR slot with an upload whose body has not come yet: the
    # slot is taken on the headers, so the next request is refused at once
    r429 = h.refused_while_slot_held(s, CARD)
    assert r429.status == 429, r429
    ok = h.transcribe(s.asr_port, CARD, timeout=120)
    assert ok.status == 200, ok
    bad = h.transcribe(s.asr_port, CARD, fields={"response_format": "bogus"}, timeout=60)
    assert bad.status == 400, bad
    name = "voicestack_request_duration_seconds_count"
    route = dict(service="asr", route=TRANSCRIBE)

    def moved(outcome):
        return _val(s.metrics("asr"), name, outcome=outcome, **route) - \
            _val(before, name, outcome=outcome, **route)
    h.wait_for(lambda: moved("ok") >= 1 and moved("refused") >= 1 and
               moved("client_error") >= 1, "ok, refused and client_error observed", 10)
    after = s.metrics("asr")
    assert moved("ok") == 1 and moved("refused") == 1 and moved("client_error") == 1, (
        moved("ok"), moved("refused"), moved("client_error"))
    # the 429 is not an ok, nor a server error; the held upload (client gone) is its own
    assert moved("server_error") == 0, moved("server_error")
    # the old sums over {service, route} still add up: outcome only splits them
    total = _val(after, name, **route) - _val(before, name, **route)
    by_outcome = sum(moved(o) for o in ("ok", "refused", "client_error", "server_error",
                                        "timeout", "client_gone"))
    assert total == by_outcome, (total, by_outcome)
    # a refusal lands in the millisecond buckets, which must exist
    assert any('le="0.001"' in k for k in after if k.startswith(
        "voicestack_request_duration_seconds_bucket")), "no 1 ms bucket"


def test_audio_in_and_processing_seconds_follow_a_transcription():
    s = shared()
    s.wait_slots_free("asr")
    before = s.metrics("asr")
    r = h.transcribe(s.asr_port, CARD, timeout=120)
    assert r.status == 200, r
    model = r.headers.get("x-voicestack-model")
    assert model, r.headers
    lab = dict(service="asr", model=model)
    h.wait_for(lambda: _val(s.metrics("asr"), "voicestack_audio_in_seconds_total", **lab) >
               _val(before, "voicestack_audio_in_seconds_total", **lab),
               "audio seconds in counted", 10)
    after = s.metrics("asr")

    def delta(n):
        return _val(after, n, **lab) - _val(before, n, **lab)
    clip = h.decoded_duration(CARD)
    got = delta("voicestack_audio_in_seconds_total")
    assert abs(got - clip) < 0.05, "audio in moved by %.3f s, the clip is %.3f s" % (got, clip)
    assert delta("voicestack_processing_seconds_total") > 0, delta(
        "voicestack_processing_seconds_total")
    # the same registry on the other port of this process
    other = s.metrics("tts")
    assert _val(other, "voicestack_audio_in_seconds_total", **lab) == \
        _val(after, "voicestack_audio_in_seconds_total", **lab)


def test_tts_ttfb_and_audio_out_per_speech_request():
    s = shared()
    before = s.metrics("tts")
    seconds = 0.0
    for text in ("Hello there.", "The quick brown fox jumps over the lazy dog."):
        r = h.speak(s.tts_port, text, response_format="wav", timeout=120)
        assert r.status == 200, r
        seconds += _wav_seconds(r.body)
    model = r.headers.get("x-voicestack-model")
    lab = dict(service="tts", model=model)
    ttfb = "voicestack_tts_time_to_first_byte_seconds_count"
    h.wait_for(lambda: _val(s.metrics("tts"), ttfb, **lab) - _val(before, ttfb, **lab) >= 2,
               "two TTFB observations", 10)
    after = s.metrics("tts")

    def delta(n, **extra):
        return _val(after, n, **lab, **extra) - _val(before, n, **lab, **extra)
    assert delta(ttfb) == 2, delta(ttfb)
    out = delta("voicestack_audio_out_seconds_total")
    assert abs(out - seconds) < 0.05, "audio out moved by %.3f s, the answers hold %.3f s" % (
        out, seconds)
    assert delta("voicestack_processing_seconds_total") > 0
    # the first byte comes before the end of the request
    first = delta("voicestack_tts_time_to_first_byte_seconds_sum")
    whole = _val(after, "voicestack_request_duration_seconds_sum", service="tts",
                 route=SPEECH, outcome="ok") - \
        _val(before, "voicestack_request_duration_seconds_sum", service="tts", route=SPEECH,
             outcome="ok")
    assert 0 < first <= whole, (first, whole)
    # a refused speech request (bad voice) sends no byte: no TTFB observation
    bad = h.speak(s.tts_port, "Hello.", voice="no-such-voice", response_format="wav",
                  timeout=60)
    assert bad.status == 400, bad
    h.wait_for(lambda: _val(s.metrics("tts"), "voicestack_requests_total", service="tts",
                            route=SPEECH, status="400") >
               _val(after, "voicestack_requests_total", service="tts", route=SPEECH,
                    status="400"), "the 400 counted", 10)
    assert _val(s.metrics("tts"), ttfb, **lab) == _val(after, ttfb, **lab)


def _proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("%s not in /proc/%d/status" % (key, pid))


def test_process_metrics_and_build_info():
    t0 = time.time()
    s = h.Server(name="metrics-process").start()
    t1 = time.time()
    try:
        pid = s.pid
        m1 = s.metrics("asr")
        for n in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                  "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                  "process_start_time_seconds"):
            assert n in m1, "%s missing" % n
        # start time: the front started between our two clock readings (1 s slack:
        # the kernel counts in clock ticks from boot time rounded to a second)
        st = m1["process_start_time_seconds"]
        assert t0 - 1 <= st <= t1 + 1, (t0, st, t1)
        with open("/proc/%d/limits" % pid) as f:
            soft = [ln.split()[3] for ln in f if ln.startswith("Max open files")][0]
        assert m1["process_max_fds"] == float(soft), (m1["process_max_fds"], soft)
        fds = len(os.listdir("/proc/%d/fd" % pid))
        assert abs(m1["process_open_fds"] - fds) <= 8, (m1["process_open_fds"], fds)
        rss = _proc_status(pid, "VmRSS")
        assert 0.5 * rss <= m1["process_resident_memory_bytes"] <= 2 * rss, (
            m1["process_resident_memory_bytes"], rss)
        vsz = _proc_status(pid, "VmSize")
        assert 0.5 * vsz <= m1["process_virtual_memory_bytes"] <= 2 * vsz
        # CPU time only grows, and work makes it grow
        r = h.transcribe(s.asr_port, CARD, timeout=120)
        assert r.status == 200, r
        for _ in range(50):
            s.metrics("asr")
        m2 = s.metrics("asr")
        assert m2["process_cpu_seconds_total"] >= m1["process_cpu_seconds_total"]
        # build info: 1, labelled with the version --version prints
        out = subprocess.run([h.BIN, "--version"], stdout=subprocess.PIPE, timeout=30,
                             check=True).stdout.decode().split()
        key = [k for k in m2 if k.startswith("voicestack_build_info{")]
        assert len(key) == 1, key
        assert 'version="%s"' % out[-1] in key[0] and m2[key[0]] == 1, (key, out)
    finally:
        s.stop()


def test_promtool_clean_after_traffic():
    s = shared()
    s.wait_slots_free("asr")
    r = h.transcribe(s.asr_port, CARD, timeout=120)
    assert r.status == 200
    r = h.speak(s.tts_port, "Hello.", response_format="mp3", timeout=120)
    assert r.status == 200
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=_text(s, "tts").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()

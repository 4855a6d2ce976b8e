"""test_page.py - the page for people (issue 11): GET / on either port.

Shown against the real server (pocketsphinx, espeak-ng) in Debian's headless
Chromium, driven over the DevTools protocol (tools/pyvs/cdp.py, on ws.py):
- `/`, `/page.js`, `/page.css`, `/page/config` on both ports, with a
  Content-Security-Policy that allows no inline script and lets the page
  reach the sibling port; the sibling port answers the page's origin with
  CORS by itself (ALLOW_ORIGINS unset).
- The fake microphone plays a librivox sentence; the page records a few
  seconds (MediaRecorder, webm/opus), uploads it and shows the transcript:
  it must share words with that sentence's reference transcript.
- Typed text spoken with response_format=pcm: bytes arrive and the page's
  AudioContext is fed samples while the answer streams.
- The live panel shows /health/detailed of both services.
- A screenshot is taken into the test tmpdir and kept as an artifact in
  VS_ARTIFACT_DIR (default /tmp/vs-artifacts/page.png; the path is printed).
- With API keys on, the page still loads, asks for a key and, given it,
  lists the voices (the key goes as Authorization: Bearer).
No timed assertion: every wait is bounded.
"""

import json
import os
import re
import shutil

import harness as h
from pyvs import cdp

CLIP = os.path.join(h.LIBRIVOX, "sense_and_sensibility_01_austen_64kb-0880.wav")
srv = h.SharedServer(name="page")


def teardown_module():
    srv.stop()


def _words(text):
    return set(re.findall(r"[a-z']+", text.lower()))


def test_page_routes_and_csp():
    s = srv.get()
    for port, sib in ((s.asr_port, s.tts_port), (s.tts_port, s.asr_port)):
        r = h.request(port, "GET", "/")
        assert r.status == 200, (r.status, r.body[:200])
        assert r.headers["content-type"].startswith("text/html"), r.headers
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert ":%d" % sib in csp, csp  # connect-src names the sibling port
        assert b"<script" in r.body and b"src=\"/page.js\"" in r.body, r.body[:400]
        # no inline script: every <script> has a src and no body
        for m in re.finditer(rb"<script([^>]*)>(.*?)</script>", r.body, re.S):
            assert b"src=" in m.group(1) and not m.group(2).strip(), m.group(0)
        js = h.request(port, "GET", "/page.js")
        assert js.status == 200 and "javascript" in js.headers["content-type"], js.headers
        css = h.request(port, "GET", "/page.css")
        assert css.status == 200 and css.headers["content-type"].startswith("text/css")
        cfg = json.loads(h.request(port, "GET", "/page/config").body)
        assert cfg["asr"]["port"] == s.asr_port and cfg["tts"]["port"] == s.tts_port, cfg
        assert cfg["auth"] is False, cfg
        assert cfg["asr"]["model"] and cfg["tts"]["model"], cfg


def test_sibling_origin_cors():
    s = srv.get()
    origin = "http://%s:%d" % (h.HOST, s.asr_port)
    r = h.request(s.tts_port, "OPTIONS", "/v1/audio/speech",
                  headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                           "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204, (r.status, r.body)
    assert r.headers.get("access-control-allow-origin") == origin, r.headers
    # any other origin stays refused while ALLOW_ORIGINS is unset
    r = h.request(s.tts_port, "GET", "/v1/audio/voices",
                  headers={"Origin": "http://evil.example:%d" % s.asr_port})
    assert "access-control-allow-origin" not in r.headers, r.headers
    r = h.request(s.tts_port, "GET", "/v1/audio/voices",
                  headers={"Origin": "http://%s:%d" % (h.HOST, s.tts_port + 1 if
                                                        s.tts_port + 1 != s.asr_port
                                                        else s.tts_port + 2)})
    assert "access-control-allow-origin" not in r.headers, r.headers


def test_page_in_chromium():
    s = srv.get()
    profile = h.tmp.tmppath("chromium-profile")
    os.makedirs(profile)
    b = cdp.Browser(s.asr_url + "/", profile, extra_args=[
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--use-file-for-fake-audio-capture=" + CLIP,
        "--autoplay-policy=no-user-gesture-required"])
    try:
        b.send("Page.enable")
        b.wait_js("window.vsPage && window.vsPage.ready", "the page to load its config")
        # the live panel shows both services
        b.wait_js("document.getElementById('health').textContent.includes('asr') && "
                  "document.getElementById('health').textContent.includes('tts')",
                  "the health panel", timeout=20)
        # record ~6 s from the fake microphone
        b.eval("document.getElementById('rec').click()")
        b.wait_js("window.vsPage.stats.recording", "recording to start", timeout=10)
        b.eval("new Promise(r => setTimeout(r, 6000))", timeout=20)
        b.eval("document.getElementById('rec').click()")
        text = b.wait_js("window.vsPage.stats.asrDone && "
                         "document.getElementById('transcript').textContent",
                         "the transcript", timeout=90)
        stats = b.eval("JSON.stringify(window.vsPage.stats)")
        print("page transcript: %r stats: %s" % (text, stats))
        # the fake microphone loops the clip from an unknown point: at least
        # half of the sentence's distinct words must be heard
        ref = _words(h.reference_transcript(CLIP))
        assert len(_words(text) & ref) * 2 >= len(ref), (text, h.reference_transcript(CLIP))
        # speak typed text as streamed pcm
        b.wait_js("document.getElementById('voice').options.length > 0", "the voices")
        b.eval("document.getElementById('text').value = 'Hello from the page, this is "
               "a streamed test of speech.'; document.getElementById('format').value = "
               "'pcm'; document.getElementById('speak').click()")
        b.wait_js("window.vsPage.stats.ttsDone", "speech to finish", timeout=60)
        st = json.loads(b.eval("JSON.stringify(window.vsPage.stats)"))
        print("speech stats: %s" % st)
        assert st["ttsError"] is None, st
        assert st["ttsBytes"] > 24000, st  # > 0.5 s of 24 kHz pcm16
        assert st["ttsSamples"] * 2 >= st["ttsBytes"] - 2, st  # all went to the AudioContext
        assert st["ttsChunks"] >= 1, st
        shot = b.screenshot(h.tmp.tmppath("page.png"))
        assert os.path.getsize(shot) > 1000
        # the scratch dir goes at exit (unless VS_KEEP_TMP): the artifact is
        # kept in VS_ARTIFACT_DIR (default /tmp/vs-artifacts), overwritten per run
        keep = os.environ.get("VS_ARTIFACT_DIR") or "/tmp/vs-artifacts"
        os.makedirs(keep, exist_ok=True)
        kept = os.path.join(keep, "page.png")
        shutil.copyfile(shot, kept)
        print("screenshot: %s (kept: %s)" % (shot, kept))
    finally:
        b.close()


def test_page_with_api_key():
    s = h.Server(env={"API_KEY": "sk-page-test-key"}, name="page-auth").start()
    try:
        for port in (s.asr_port, s.tts_port):
            for path in ("/", "/page.js", "/page.css", "/page/config"):
                r = h.request(port, "GET", path)
                assert r.status == 200, (path, r.status)
            cfg = json.loads(h.request(port, "GET", "/page/config").body)
            assert cfg["auth"] is True, cfg
            assert b"sk-page-test-key" not in h.request(port, "GET", "/page.js").body
            assert h.request(port, "GET", "/v1/models").status == 401
        # in the browser: the page asks for the key, then lists the voices
        profile = h.tmp.tmppath("chromium-profile-auth")
        os.makedirs(profile)
        b = cdp.Browser(s.tts_url + "/", profile)
        try:
            b.wait_js("window.vsPage && window.vsPage.ready", "the page to load its config")
            assert b.eval("!document.getElementById('keybox').hidden")
            assert b.eval("document.getElementById('voice').options.length") == 0
            b.eval("const k = document.getElementById('key'); k.value = 'sk-page-test-key';"
                   "k.dispatchEvent(new Event('change'))")
            b.wait_js("document.getElementById('voice').options.length > 0",
                      "the voices with the key", timeout=20)
        finally:
            b.close()
    finally:
        s.stop()

// page.js - the page for people (served at /page.js; docs/API.md "The page").
// No framework, no build step: plain DOM. The page is served on both ports;
// /page/config says where each service listens, and the sibling port allows
// this page's origin by itself (CORS). The API key, when the server wants one,
// lives only in the variable `key` below: never stored, never in the page.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const stats = { recording: false, asrDone: false, asrEvents: 0, asrStreamed: false,
                  ttsDone: false, ttsBytes: 0, ttsChunks: 0, ttsSamples: 0, ttsError: null };
  const page = { ready: false, stats: stats, cfg: null };
  window.vsPage = page; // read by tests/integration/test_page.py
  let key = "";
  let base = { asr: null, tts: null };

  function origin(port) {
    if (!port) return null;
    if (String(port) === location.port) return "";
    return location.protocol + "//" + location.hostname + ":" + port;
  }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (key) h["Authorization"] = "Bearer " + key;
    return h;
  }
  async function errorText(resp) {
    const t = await resp.text();
    try { return resp.status + ": " + JSON.parse(t).error.message; }
    catch (e) { return resp.status + ": " + t.slice(0, 200); }
  }
  function info(id, text, err) {
    const el = $(id);
    el.textContent = text;
    el.className = err ? "info err" : "info";
  }

  // ---- speech to text
  let recorder = null;
  async function toggleRecord() {
    if (recorder) { recorder.stop(); return; }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (e) { info("asrinfo", "microphone: " + e.message + " (it needs https or localhost)", true); return; }
    const type = MediaRecorder.isTypeSupported("audio/webm;codecs=opus") ? "audio/webm;codecs=opus" : "";
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const parts = [];
    recorder.ondataavailable = (e) => { if (e.data.size) parts.push(e.data); };
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      const blob = new Blob(parts, { type: recorder.mimeType || "audio/webm" });
      recorder = null;
      stats.recording = false;
      $("rec").textContent = "● Record";
      $("rec").classList.remove("on");
      transcribe(blob, blob.type.includes("ogg") ? "speech.ogg" : "speech.webm");
    };
    recorder.start(250);
    stats.recording = true;
    $("rec").textContent = "■ Stop";
    $("rec").classList.add("on");
    info("asrinfo", "recording…");
  }

  async function transcribe(blob, name) {
    stats.asrDone = false;
    const out = $("transcript");
    out.textContent = "";
    info("asrinfo", "transcribing " + Math.round(blob.size / 1024) + " KiB…");
    const form = new FormData();
    form.append("file", blob, name);
    form.append("model", page.cfg.asr.model);
    form.append("stream", "true"); // SSE where the server streams; JSON otherwise
    const t0 = performance.now();
    try {
      const resp = await fetch(base.asr + "/v1/audio/transcriptions",
                               { method: "POST", body: form, headers: headers() });
      if (!resp.ok) { info("asrinfo", await errorText(resp), true); return; }
      const ct = resp.headers.get("Content-Type") || "";
      if (ct.startsWith("text/event-stream")) {
        stats.asrStreamed = true;
        await readSSE(resp, (ev) => {
          stats.asrEvents++;
          if (ev.error) throw new Error(ev.error.message);
          if (ev.type === "transcript.text.delta") out.textContent += ev.delta;
          if (ev.type === "transcript.text.done") out.textContent = ev.text;
        });
      } else {
        out.textContent = (await resp.json()).text;
      }
      info("asrinfo", "done in " + Math.round(performance.now() - t0) + " ms" +
           (stats.asrStreamed ? " (streamed)" : "") + ", model " +
           (resp.headers.get("X-Voicestack-Model") || page.cfg.asr.model));
    } catch (e) {
      info("asrinfo", String(e.message || e), true);
    } finally {
      stats.asrDone = true;
    }
  }

  // text/event-stream read from fetch's body: only `data:` lines matter
  async function readSSE(resp, onEvent) {
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, "");
        buf = buf.slice(i + 1);
        if (line.startsWith("data:")) {
          const data = line.slice(5).trim();
          if (data && data !== "[DONE]") onEvent(JSON.parse(data));
        }
      }
    }
  }

  // ---- text to speech
  let ctx = null;
  async function speak() {
    const fmt = $("format").value;
    Object.assign(stats, { ttsDone: false, ttsBytes: 0, ttsChunks: 0, ttsSamples: 0, ttsError: null });
    $("speak").disabled = true;
    info("ttsinfo", "speaking…");
    const t0 = performance.now();
    let first = 0;
    try {
      const resp = await fetch(base.tts + "/v1/audio/speech", {
        method: "POST", headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ model: page.cfg.tts.model, input: $("text").value,
                               voice: $("voice").value, response_format: fmt }) });
      if (!resp.ok) throw new Error(await errorText(resp));
      if (fmt === "pcm") {
        // 24 kHz 16-bit LE mono, played chunk by chunk as it arrives
        if (!ctx) ctx = new AudioContext({ sampleRate: 24000 });
        ctx.resume();
        let at = ctx.currentTime + 0.05, odd = null;
        const reader = resp.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (!first) first = performance.now() - t0;
          stats.ttsBytes += value.length;
          stats.ttsChunks++;
          let bytes = value;
          if (odd) { bytes = new Uint8Array(value.length + 1); bytes[0] = odd[0]; bytes.set(value, 1); odd = null; }
          if (bytes.length % 2) { odd = bytes.slice(-1); bytes = bytes.subarray(0, bytes.length - 1); }
          const n = bytes.length / 2;
          if (!n) continue;
          const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
          const buf = ctx.createBuffer(1, n, 24000);
          const ch = buf.getChannelData(0);
          for (let i = 0; i < n; i++) ch[i] = dv.getInt16(2 * i, true) / 32768;
          const src = ctx.createBufferSource();
          src.buffer = buf;
          src.connect(ctx.destination);
          at = Math.max(at, ctx.currentTime);
          src.start(at);
          at += buf.duration;
          stats.ttsSamples += n;
        }
      } else {
        // other formats play when complete (an <audio> of a blob)
        const blob = await resp.blob();
        first = performance.now() - t0;
        stats.ttsBytes = blob.size;
        stats.ttsChunks = 1;
        const audio = new Audio(URL.createObjectURL(blob));
        audio.onended = () => URL.revokeObjectURL(audio.src);
        audio.play().catch((e) => info("ttsinfo", "play: " + e.message, true));
      }
      info("ttsinfo", Math.round(stats.ttsBytes / 1024) + " KiB " + fmt + ", first audio after " +
           Math.round(first) + " ms, all in " + Math.round(performance.now() - t0) + " ms");
    } catch (e) {
      stats.ttsError = String(e.message || e);
      info("ttsinfo", stats.ttsError, true);
    } finally {
      stats.ttsDone = true;
      $("speak").disabled = false;
    }
  }

  async function loadVoices() {
    if (base.tts === null) return;
    try {
      const resp = await fetch(base.tts + "/v1/audio/voices", { headers: headers() });
      if (!resp.ok) { info("ttsinfo", await errorText(resp), true); return; }
      const sel = $("voice");
      sel.textContent = "";
      const j = await resp.json();
      // OpenAI's names first (mapped by the engine), then the engine's own
      const list = (j.openai_voices || []).map((n) => ({ id: n }))
        .concat((j.voices || []).map((v) => ({ id: v.id || v.name, label: v.name, lang: v.language || v.languages })));
      for (const v of list) {
        const o = document.createElement("option");
        o.value = v.id;
        o.textContent = v.id + (v.lang ? " (" + v.lang + ")" : "");
        sel.appendChild(o);
      }
    } catch (e) { info("ttsinfo", "voices: " + e.message, true); }
  }

  // ---- the live panel
  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
  async function pollHealth() {
    const table = document.createElement("table");
    const head = document.createElement("tr");
    for (const t of ["service", "status", "slots busy", "queue", "memory", "workers", "models"]) {
      const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
    }
    table.appendChild(head);
    for (const svc of ["asr", "tts"]) {
      if (base[svc] === null) continue;
      const tr = document.createElement("tr");
      cell(tr, svc);
      try {
        const resp = await fetch(base[svc] + "/health/detailed", { headers: headers() });
        if (!resp.ok) { cell(tr, await errorText(resp)); table.appendChild(tr); continue; }
        const h = await resp.json();
        const c = h.concurrency || {}, q = h.queue || {}, m = h.memory || {};
        const w = Array.isArray(h.workers) ? h.workers.length : (h.workers || 0);
        cell(tr, h.status);
        cell(tr, c.active_requests + " / " + c.max_concurrent);
        cell(tr, q.depth + " / " + q.max);
        cell(tr, m.percent + "%");
        cell(tr, String(w));
        cell(tr, (h.models || []).map((x) => x.id || x.name).join(", "));
      } catch (e) { cell(tr, "unreachable: " + e.message); }
      table.appendChild(tr);
    }
    $("health").replaceChildren(table);
  }

  async function start() {
    try {
      const resp = await fetch("/page/config");
      page.cfg = await resp.json();
    } catch (e) { $("status").textContent = "no /page/config: " + e.message; return; }
    base.asr = origin(page.cfg.asr.port);
    base.tts = origin(page.cfg.tts.port);
    if (base.asr === null) { $("asr").hidden = true; }
    if (base.tts === null) { $("tts").hidden = true; }
    if (page.cfg.auth) {
      $("keybox").hidden = false;
      $("key").addEventListener("change", () => { key = $("key").value.trim(); loadVoices(); pollHealth(); });
    }
    $("rec").addEventListener("click", toggleRecord);
    $("file").addEventListener("change", () => { const f = $("file").files[0]; if (f) transcribe(f, f.name); });
    $("speak").addEventListener("click", speak);
    $("status").textContent = "ASR :" + (page.cfg.asr.port || "off") + " · TTS :" + (page.cfg.tts.port || "off");
    loadVoices();
    pollHealth();
    setInterval(pollHealth, 2000);
    page.ready = true;
  }
  start();
})();

"""wyoming.py - a Wyoming protocol client (Home Assistant's voice protocol),
written from the protocol's description, for the tests and bench/.

DESIGN
The wire format, as the protocol's README states it: one JSON header line
(UTF-8, ending in "\\n") with `type`, optional `data`, `data_length`,
`payload_length` and `version`; then exactly `data_length` bytes of JSON data
(an object merged over the header's `data`), then exactly `payload_length`
bytes of binary payload. Nothing here comes from a server's code.

Owns: Client (connect, send an event, read one), and the three exchanges
the tests and the bench drive: describe, transcribe (PCM as audio-chunks in
any rate/width/channels) and synthesize (one-shot or streamed text).
`raw` send helpers let a test write malformed bytes on purpose.
Every read has a timeout: a silent server fails a test, never hangs it.
"""

import json
import socket
import struct
import time

from . import Failed
from .http import HOST

VERSION = "1.9.0"  # the protocol version this client speaks
SAMPLES_PER_CHUNK = 1024  # what the reference servers send per audio-chunk


class Event:
    __slots__ = ("type", "data", "payload", "header")

    def __init__(self, type_, data=None, payload=b"", header=None):
        self.type = type_
        self.data = data or {}
        self.payload = payload or b""
        self.header = header or {}

    def __repr__(self):
        return "Event(%s, %s, %d payload bytes)" % (self.type, json.dumps(self.data)[:300],
                                                    len(self.payload))


def encode(type_, data=None, payload=b"", data_inline=False, extra=None):
    """One event as bytes. data goes after the header line (data_length) as the
    reference libraries write it, or inside the header when data_inline."""
    head = {"type": type_, "version": VERSION}
    body = b""
    if data:
        if data_inline:
            head["data"] = data
        else:
            body = json.dumps(data).encode("utf-8")
            head["data_length"] = len(body)
    if payload:
        head["payload_length"] = len(payload)
    head.update(extra or {})
    return json.dumps(head).encode("utf-8") + b"\n" + body + (payload or b"")


class Client:
    def __init__(self, port, timeout=30.0, host=HOST):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, type_, data=None, payload=b"", **kw):
        self.sock.sendall(encode(type_, data, payload, **kw))

    def send_raw(self, raw):
        self.sock.sendall(raw)

    def abort(self):
        """Close with RST (SO_LINGER 0): a client that vanishes."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failed("no Wyoming event within %.0f s" % self.timeout)
        self.sock.settimeout(left)
        try:
            got = self.sock.recv(65536)
        except socket.timeout:
            raise Failed("no Wyoming event within %.0f s" % self.timeout)
        except ConnectionResetError:
            got = b""
        return got

    def _take(self, n, deadline):
        while len(self.buf) < n:
            got = self._fill(deadline)
            if not got:
                raise Failed("connection closed inside an event")
            self.buf += got
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=None):
        """The next event, or None when the server closed the connection."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            got = self._fill(deadline)
            if not got:
                if self.buf:
                    raise Failed("connection closed inside a header: %r" % self.buf[:200])
                return None
            self.buf += got
        line, self.buf = self.buf.split(b"\n", 1)
        head = json.loads(line.decode("utf-8"))
        assert isinstance(head.get("type"), str), "header without a type: %r" % head
        data = dict(head.get("data") or {})
        if head.get("data_length"):
            data.update(json.loads(self._take(head["data_length"], deadline).decode("utf-8")))
        payload = self._take(head["payload_length"], deadline) if head.get(
            "payload_length") else b""
        return Event(head["type"], data, payload, head)

    def recv_until(self, types, timeout=None):
        """Events up to and including the first whose type is in types (or an
        error event); raises if the connection closes first."""
        out = []
        while True:
            e = self.recv(timeout)
            if e is None:
                raise Failed("connection closed before %s; got %r" % (types, out[-5:]))
            out.append(e)
            if e.type in types or e.type == "error":
                return out

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (events
        that arrive meanwhile are dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.recv(max(0.05, deadline - time.monotonic()))
            except Failed:
                return False
            if e is None:
                return True
        return False


# ---------------------------------------------------------------- exchanges

def describe(port, timeout=60.0):
    with Client(port, timeout) as c:
        c.send("describe")
        evs = c.recv_until(("info",))
        assert evs[-1].type == "info", "describe answered %r" % evs[-1]
        return evs[-1].data


def send_audio(c, pcm, rate, width, channels, samples_per_chunk=SAMPLES_PER_CHUNK,
               stop=True):
    """audio-start, audio-chunks of pcm (bytes in the given format), audio-stop."""
    fmt = {"rate": rate, "width": width, "channels": channels}
    c.send("audio-start", dict(fmt, timestamp=0))
    step = samples_per_chunk * width * channels
    ts = 0
    for off in range(0, len(pcm), step):
        chunk = pcm[off:off + step]
        c.send("audio-chunk", dict(fmt, timestamp=ts), chunk)
        ts += int(1000 * len(chunk) / (rate * width * channels))
    if stop:
        c.send("audio-stop", {"timestamp": ts})


def transcribe(port, pcm, rate=16000, width=2, channels=1, name=None, language=None,
               timeout=180.0):
    """The final event of a transcription: `transcript` or `error`."""
    with Client(port, timeout) as c:
        t = {}
        if name:
            t["name"] = name
        if language:
            t["language"] = language
        c.send("transcribe", t)
        send_audio(c, pcm, rate, width, channels)
        return c.recv_until(("transcript",))[-1]


def collect_audio(events):
    """(audio-start data, PCM bytes) of the audio events among events; every
    chunk must have the start's format."""
    start, pcm = None, b""
    for e in events:
        if e.type == "audio-start":
            start = start or e.data
        elif e.type == "audio-chunk":
            assert start is not None, "audio-chunk before audio-start"
            for k in ("rate", "width", "channels"):
                assert e.data.get(k) == start[k], "chunk %s %r != start's %r" % (
                    k, e.data.get(k), start[k])
            pcm += e.payload
    return start, pcm


def synthesize(port, text, voice=None, timeout=180.0):
    """(events, audio-start data, PCM) of a one-shot `synthesize`; events end
    with audio-stop or error."""
    with Client(port, timeout) as c:
        d = {"text": text}
        if voice:
            d["voice"] = voice
        c.send("synthesize", d)
        evs = c.recv_until(("audio-stop",))
    start, pcm = collect_audio(evs)
    return evs, start, pcm


def synthesize_stream(port, chunks, voice=None, compat_text=None, timeout=180.0):
    """Streamed text: synthesize-start, synthesize-chunk per item of chunks,
    the compatibility `synthesize` (compat_text, or the joined chunks), then
    synthesize-stop. Returns (events up to synthesize-stopped, PCM)."""
    with Client(port, timeout) as c:
        start = {"voice": voice} if voice else {}
        c.send("synthesize-start", start)
        for t in chunks:
            c.send("synthesize-chunk", {"text": t})
        full = {"text": compat_text if compat_text is not None else "".join(chunks)}
        if voice:
            full["voice"] = voice
        c.send("synthesize", full)
        c.send("synthesize-stop")
        evs = c.recv_until(("synthesize-stopped",))
    _, pcm = collect_audio(evs)
    return evs, pcm

"""ws.py - a minimal WebSocket client (RFC 6455) for the realtime tests.

Why it is shaped so:
- Python's standard library has no WebSocket client and the tests take no
  third-party package, so this is the client side only, written for tests:
  the handshake (checks Sec-WebSocket-Accept), masked frames out, text /
  binary / close / ping frames in (continuations joined), nothing else. The
  server's framing is libwslay's, not this.
- Everything is blocking with a timeout, so a silent server fails a test
  instead of hanging it.
- Raw helpers (send_frame with any opcode, fin and length, send_raw) exist so
  tests can send what a well-behaved client never would.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

from . import http

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class Closed(Exception):
    """The server closed the WebSocket (code, reason) or the TCP connection (code None)."""

    def __init__(self, code, reason=""):
        super().__init__("closed code=%r reason=%r" % (code, reason))
        self.code = code
        self.reason = reason


class HandshakeRefused(Exception):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, resp):
        super().__init__("upgrade refused: %d %s" % (resp.status, resp.body[:300]))
        self.resp = resp


def _accept(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class Client:
    """One WebSocket connection to path on port (loopback)."""

    def __init__(self, port, path="/v1/realtime?intent=transcription", headers=None,
                 timeout=30.0):
        self.sock = socket.create_connection((http.HOST, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        head = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (http.HOST, port),
                "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            head.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        head_raw, _, self.buf = raw.partition(b"\r\n\r\n")
        self.resp = http.parse_response(head_raw + b"\r\n\r\n")
        if self.resp.status != 101:
            # the refusal's body (an OpenAI error) follows the head
            length = int(self.resp.headers.get("content-length", "0") or 0)
            body = self.buf
            while len(body) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            self.resp = http.Resp(self.resp.status, self.resp.headers, body[:length])
            self.sock.close()
            raise HandshakeRefused(self.resp)
        assert self.resp.headers.get("sec-websocket-accept") == _accept(key), self.resp.headers
        self.close_code = None

    # ---- sending
    def send_frame(self, opcode, payload, fin=True, length=None):
        """One masked frame; length overrides the declared payload length."""
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
            else _mask_fast(payload, mask)
        self.sock.sendall(head + mask + body)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send(self, event):
        self.send_text(json.dumps(event))

    def close(self, code=1000):
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code))
        except OSError:
            pass
        self.sock.close()

    def abort(self):
        """Drop the TCP connection without a close frame (RST if unread data)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # ---- receiving
    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        b0, b1 = self._need(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8, deadline))[0]
        assert not b1 & 0x80, "a server frame must not be masked"
        return bool(b0 & 0x80), b0 & 0x0F, self._need(n, deadline)

    def recv_message(self, timeout=30.0):
        """(opcode, payload) of the next data message; answers pings; raises
        Closed on a close frame."""
        deadline = time.monotonic() + timeout
        parts, first = [], None
        while True:
            fin, op, data = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == OP_PING:
                self.send_frame(OP_PONG, data)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                self.close_code = code
                raise Closed(code, data[2:].decode("utf-8", "replace"))
            if first is None:
                first = op
            parts.append(data)
            if fin:
                return first, b"".join(parts)

    def recv(self, timeout=30.0):
        """The next server event, as a dict."""
        op, data = self.recv_message(timeout)
        assert op == OP_TEXT, "server sent opcode %d" % op
        return json.loads(data)

    def until(self, etype, timeout=60.0):
        """Events up to and including the first of type etype: a list."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            ev = self.recv(max(0.01, deadline - time.monotonic()))
            got.append(ev)
            if ev.get("type") == etype:
                return got

    def closed_after(self, timeout=30.0):
        """Reads events until the server closes; returns (events, close code)."""
        deadline = time.monotonic() + timeout
        got = []
        try:
            while True:
                got.append(self.recv(max(0.01, deadline - time.monotonic())))
        except Closed as c:
            return got, c.code


def _mask_fast(payload, mask):
    n = len(payload)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")


def append_event(pcm):
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


def stream_pcm(client, pcm, chunk_ms=100, rate=24000):
    """Appends pcm (s16le mono at rate) in chunk_ms pieces, as a microphone would."""
    step = rate * 2 * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        client.send(append_event(pcm[i:i + step]))

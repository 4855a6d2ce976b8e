"""http.py - HTTP and raw-socket helpers (stdlib only) for talking to the server.

Why both: http.client for ordinary requests (a response cut short comes back
with complete=False instead of raising), raw sockets where a test or a bench
needs control over framing, timing or the exact bytes on the wire.
"""

import http.client
import json
import re
import socket
import time
import uuid

HOST = "127.0.0.1"


class Resp(tuple):
    """(status, headers, body) with conveniences. headers: lowercase keys."""

    def __new__(cls, status, headers, body, chunked=False, complete=True):
        t = tuple.__new__(cls, (status, headers, body))
        t.chunked = chunked
        t.complete = complete
        return t

    status = property(lambda s: s[0])
    headers = property(lambda s: s[1])
    body = property(lambda s: s[2])

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError("response is not JSON (%s): %r" % (e, self.body[:300]))

    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.content_type(), self.body[:200])


def _headers(msg):
    h = {}
    for k, v in msg.items():
        k = k.lower()
        h[k] = h[k] + ", " + v if k in h else v
    return h


def read_rest(r, parts=None):
    """The rest of an http.client response body: (bytes, complete). A body
    cut short (connection closed mid-body) is returned, not raised."""
    parts = list(parts or [])
    try:
        while True:
            b = r.read1(65536)
            if not b:
                break
            parts.append(b)
    except http.client.IncompleteRead as e:
        parts.append(e.partial)
        return b"".join(parts), False
    except (ConnectionError, http.client.HTTPException):
        return b"".join(parts), False
    return b"".join(parts), True


def request(port, method, path, body=None, headers=None, timeout=120.0):
    """One HTTP request on a fresh connection; returns Resp. A response cut
    short (connection closed mid-body) is returned with complete=False and the
    bytes received so far, rather than raised."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        chunked = bool(r.chunked)
        body, complete = read_rest(r)
        return Resp(r.status, _headers(r.msg), body, chunked, complete)
    finally:
        conn.close()


def post_json(port, path, obj, timeout=120.0, headers=None):
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return request(port, "POST", path, body, dict({"Content-Type": "application/json"},
                                                  **(headers or {})), timeout)


def encode_multipart(fields, boundary=None):
    """fields: list of (name, value) where value is str (a plain field) or a
    tuple (filename, bytes, content_type) (a file). Returns (body, ctype)."""
    boundary = boundary or "----vsitest" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(b"--" + boundary.encode() + b"\r\n")
        if isinstance(value, tuple):
            fname, data, ctype = value
            out.append(('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                        % (name, fname)).encode())
            out.append(("Content-Type: %s\r\n\r\n" % ctype).encode())
            out.append(data)
        else:
            out.append(('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode())
            out.append(str(value).encode("utf-8"))
        out.append(b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary



# ---------------------------------------------------------------- raw sockets

def recv_response(sock, timeout=30.0):
    """Read one HTTP/1.1 response from a raw socket (Content-Length or chunked
    body). Returns (status, headers(lowercase), body)."""
    deadline = time.monotonic() + timeout
    buf = b""

    def more():
        left = deadline - time.monotonic()
        assert left > 0, "no complete response within %.0f s (got %r)" % (timeout, buf[:300])
        sock.settimeout(left)
        b = sock.recv(65536)
        assert b, "connection closed before the response was complete (got %r)" % buf[:300]
        return b
    while b"\r\n\r\n" not in buf:
        buf += more()
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(rest) < n:
            buf = more()
            rest += buf
        return status, hdrs, rest[:n]
    if "chunked" in hdrs.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, rest = rest.split(b"\r\n", 1)
            n = int(size_line.split(b";")[0], 16)
            while len(rest) < n + 2:
                rest += more()
            body += rest[:n]
            rest = rest[n + 2:]
            if n == 0:
                return status, hdrs, body
    return status, hdrs, rest


def closed_by_peer(sock, timeout=5.0):
    """True if the peer closes the connection (EOF or reset) within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class Prefixed:
    """A socket whose first recv() returns bytes already read."""

    def __init__(self, so, first):
        self.so, self.first = so, first

    def settimeout(self, t):
        self.so.settimeout(t)

    def recv(self, n):
        if self.first:
            b, self.first = self.first, b""
            return b
        return self.so.recv(n)


def upload_head(boundary, length=None, headers=None):
    """Raw request head of a transcription upload: Content-Length `length`,
    or chunked when length is None; headers: more header lines."""
    size = ("Content-Length: %d" % length) if length is not None else \
        "Transfer-Encoding: chunked"
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\n%s\r\n%s\r\n"
            % ("/v1/audio/transcriptions", boundary, size, extra)).encode()


def multipart_head(boundary, filename="big.wav"):
    return ("--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
            % (boundary, boundary, filename)).encode()



def read_until_close(sock, timeout=10.0):
    """Everything the peer sends until it closes (or timeout). Returns
    (bytes, closed): closed is False when the connection was still open at
    the timeout; a reset after some bytes counts as closed."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return buf, False
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return buf, False
        except (ConnectionResetError, BrokenPipeError):
            return buf, True
        if not b:
            return buf, True
        buf += b


def status_lines(raw):
    """Every HTTP status line in raw, wherever it appears."""
    return re.findall(rb"HTTP/1\.[01] \d{3}[^\r\n]*", raw)


def parse_response(raw):
    """One response (head + Content-Length body) from bytes: Resp."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", len(rest)))
    return Resp(int(lines[0].split()[1]), hdrs, rest[:n])


def open_request(port, method, path, body=b"", headers=None, rcvbuf=None, timeout=30.0):
    """Connect, send one request (Content-Length framing) and return the
    socket unread. rcvbuf: SO_RCVBUF set before connecting, so the window the
    server sees stays small (a slow reader)."""

    so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    so.settimeout(timeout)
    so.connect((HOST, port))
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (method, path, HOST,
                                                                    len(body))
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    so.sendall(head.encode("latin-1") + b"\r\n" + body)
    return so


def read_head(so, timeout=30.0):
    """Read a response head from a raw socket: (status, headers with lowercase
    keys, bytes of the body already received)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        assert left > 0, "no response head within %.0f s (got %r)" % (timeout, buf[:300])
        so.settimeout(left)
        b = so.recv(1024)
        assert b, "connection closed before the response head (got %r)" % buf[:300]
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, rest



def raw_response_size(port, path):
    """(bytes of one whole GET response, bytes of its body), Connection: close."""
    with socket.create_connection((HOST, port), timeout=5) as so:
        so.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                    % (path, HOST, port)).encode())
        data, _closed = read_until_close(so, 10.0)
    _head, _, body = data.partition(b"\r\n\r\n")
    return len(data), len(body)


_METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)")


def parse_metrics(text):
    """Prometheus text format as {"name{labels}": float}; comments skipped."""
    out = {}
    for line in text.splitlines():
        m = _METRIC_RE.match(line)
        if m and not line.startswith("#"):
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


class SSE:
    """A server-sent-events answer read from a raw socket as it arrives
    (chunked transfer coding undone by hand, so the arrival of each event is
    seen, not the end of the body). events() yields (arrival, object) for
    every `data:` line, arrival being time.monotonic() when its bytes came
    in; afterwards `complete` says the body ended with its terminating
    chunk and `other_lines` holds any line that was not `data: ...` (the
    OpenAI SDKs want data-only events). A non-200 answer is not read as a
    stream: resp() returns it whole."""

    def __init__(self, so, timeout=120.0):
        self.so, self.timeout = so, timeout
        self.status, self.headers, self._raw = read_head(so, timeout)
        self._body = b""        # decoded, not yet split into events
        self.body = b""         # everything decoded
        self.complete = False   # the terminating zero-size chunk came
        self.other_lines = []

    def _decode(self):
        while not self.complete:
            j = self._raw.find(b"\r\n")
            if j < 0:
                return
            size = int(self._raw[:j].split(b";")[0], 16)
            if size == 0:
                self.complete = True
                return
            if len(self._raw) < j + 2 + size + 2:
                return
            piece = self._raw[j + 2:j + 2 + size]
            self._raw = self._raw[j + 2 + size + 2:]
            self._body += piece
            self.body += piece

    def _more(self):
        """Reads once; False at EOF."""
        self.so.settimeout(self.timeout)
        try:
            b = self.so.recv(65536)
        except ConnectionResetError:
            b = b""
        self._raw += b
        return bool(b)

    def events(self):
        assert self.status == 200, "not a stream: %d %s" % (self.status, self.headers)
        assert self.headers.get("transfer-encoding") == "chunked", self.headers
        while True:
            self._decode()
            now = time.monotonic()
            while b"\n\n" in self._body:
                block, self._body = self._body.split(b"\n\n", 1)
                data = []
                for line in block.decode("utf-8").split("\n"):
                    if line.startswith("data: "):
                        data.append(line[6:])
                    else:
                        self.other_lines.append(line)
                if data:
                    yield now, json.loads("\n".join(data))
            if self.complete or not self._more():
                return

    def resp(self):
        """A whole non-stream answer (Content-Length framing): Resp."""
        n = int(self.headers.get("content-length", "0"))
        while len(self._raw) < n and self._more():
            pass
        return Resp(self.status, self.headers, self._raw[:n])

    def close(self):
        self.so.close()


def open_sse(port, path, body, headers, timeout=120.0, rcvbuf=None):
    """Sends one request and returns its SSE reader (head read)."""
    return SSE(open_request(port, "POST", path, body, headers, rcvbuf=rcvbuf, timeout=timeout),
               timeout)

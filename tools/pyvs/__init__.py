"""pyvs - the Python helpers shared by the integration tests and the bench.

DESIGN
Owns: what both tests/integration/harness.py and bench/ need to drive the
real `voicestack serve` from outside: starting and stopping it with settings
(procs.py: /proc readers; server.py: the Server), talking HTTP and raw
sockets to it (http.py), making and probing audio with the ffmpeg CLI
(media.py), speech requests and word error rates (speech.py) and one scratch
directory per run (tmp.py).

Why here: bench/ and tests/ are both entry points run as scripts, and
neither should import the other; tools/ already holds the tooling that is
not the server (tools/loadtest).  Each entry point (bench/bench.py,
tests/integration/harness.py) puts tools/ on sys.path once; everything else
imports `pyvs` (or `harness`, which re-exports the names tests use).
Python stdlib only.  Errors are `Failed` (an AssertionError), so a test
fails and a bench section is marked broken with the same exception.
"""


class Failed(AssertionError):
    """Something is broken (server did not start, a tool failed, ...)."""

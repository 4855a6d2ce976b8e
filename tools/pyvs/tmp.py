"""tmp.py - one scratch directory per run, removed at exit.

The entry point names it (PREFIX: `vs-itest-`, `vs-bench-`) so a leftover
directory says who made it; BENCH_KEEP_TMP or VS_KEEP_TMP keeps it.
"""

import atexit
import os
import shutil
import tempfile
import uuid

PREFIX = "vs-"
_dir = None


def tmpdir():
    """The run's scratch directory (made on first use)."""
    global _dir
    if _dir is None:
        _dir = tempfile.mkdtemp(prefix=PREFIX)
        if not (os.environ.get("BENCH_KEEP_TMP") or os.environ.get("VS_KEEP_TMP")):
            atexit.register(shutil.rmtree, _dir, True)
    return _dir


def tmppath(name):
    """A fresh path in the scratch directory (the file is not created)."""
    return os.path.join(tmpdir(), "%s-%s" % (uuid.uuid4().hex[:8], name))

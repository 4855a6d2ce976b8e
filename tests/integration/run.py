#!/usr/bin/python3
"""run.py - minimal runner for the Voice Stack black-box integration suite.

DESIGN
Discovers test_*.py beside this file and their test_* functions in file
order, runs each with a time limit (SIGALRM; a module may set TEST_TIMEOUT),
prints `ok   mod.name (1.2s)`, `skip mod.name: why` or `FAIL mod.name: why`
with the traceback and the stderr tail of every server the test touched, and
fails a test during which a server did not stop cleanly on SIGTERM (status
0, in time) or printed a sanitizer report (harness.findings), and
leaves out, in the sanitizer pass (VS_SANITIZER_PASS=1, set by
tests/run_all.sh), modules that set SANITIZER_PASS = False: tests of what we
ship around the binary (package, units, balancer configs, dashboards), which
run the same front code the other tests already run instrumented, and
ends with exactly one summary line `N passed, N failed[, N skipped]`; exit 0
iff nothing failed. A module's teardown_module() (e.g. stopping its shared
server) runs after its tests; harness.stop_all() runs after every module and
at exit, so no server outlives the suite. Stdlib only.

Usage (from the repo root):
    /usr/bin/python3 tests/integration/run.py --bin build/voicestack [-k substr] [-x]
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 240


def _alarm(signum, frame):
    raise harness.TestTimeout("test exceeded its time limit")


def _raise_findings():
    """Fails the current test if a server stopped uncleanly or a sanitizer
    report appeared in a server's stderr (see harness.findings)."""
    f = harness.take_findings()
    if f:
        raise AssertionError("\n".join("server %s (pid %s): %s" % x for x in f))


def discover():
    mods = []
    for fn in sorted(os.listdir(HERE)):
        if fn.startswith("test_") and fn.endswith(".py"):
            name = fn[:-3]
            spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, fn))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            tests = [(n, f) for n, f in vars(mod).items()
                     if n.startswith("test_") and callable(f)
                     and getattr(f, "__module__", None) == name]
            tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
            mods.append((name, mod, tests))
    return mods


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/voicestack", help="server binary")
    ap.add_argument("-k", dest="filter", default=None, help="run tests whose "
                    "module.name contains this substring")
    ap.add_argument("-x", dest="exitfirst", action="store_true", help="stop at first failure")
    args = ap.parse_args()
    src_bin = os.path.abspath(args.bin)
    if not os.access(src_bin, os.X_OK):
        print("FAIL setup: server binary %s not found / not executable" % src_bin)
        print("0 passed, 1 failed")
        return 1
    # harness.BIN stays the build's path (tests find sibling build outputs
    # from it); servers run a private copy so that a rebuild (ninja replacing
    # the file) during the run cannot make them or their exec'd workers fail.
    harness.BIN = src_bin
    harness.SERVER_BIN = os.path.join(harness.tmpdir(), "voicestack")
    shutil.copy2(src_bin, harness.SERVER_BIN)
    # the front finds the worker binary beside itself (/proc/self/exe)
    worker = os.path.join(os.path.dirname(src_bin), "voicestack-worker")
    if os.access(worker, os.X_OK):
        shutil.copy2(worker, os.path.join(harness.tmpdir(), "voicestack-worker"))
    os.environ["VOICESTACK_BIN"] = harness.BIN
    # tools built beside the server (the load tester) are found from the real build dir
    lt = os.path.join(os.path.dirname(src_bin), "tools", "loadtest", "voicestack-loadtest")
    if os.access(lt, os.X_OK):
        tool = os.path.join(harness.tmpdir(), "voicestack-loadtest")
        shutil.copy2(lt, tool)
        os.environ.setdefault("VOICESTACK_LOADTEST", tool)
    signal.signal(signal.SIGALRM, _alarm)
    # a SIGTERM from make/CI still runs atexit (stops every server)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))

    passed = failed = skipped = 0
    t_suite = time.monotonic()
    try:
        mods = discover()
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 1
    stop = False
    sanitizer_pass = os.environ.get("VS_SANITIZER_PASS") == "1"
    for modname, mod, tests in mods:
        if sanitizer_pass and not getattr(mod, "SANITIZER_PASS", True):
            print("(%s: normal pass only)" % modname, flush=True)
            continue
        selected = [(n, f) for n, f in tests
                    if args.filter is None or args.filter in "%s.%s" % (modname, n)]
        if not selected:
            continue
        limit = int(getattr(mod, "TEST_TIMEOUT", DEFAULT_TIMEOUT))
        try:
            for name, fn in selected:
                full = "%s.%s" % (modname, name)
                harness.touched.clear()
                t0 = time.monotonic()
                signal.alarm(limit)
                try:
                    fn()
                    signal.alarm(0)
                    _raise_findings()
                    passed += 1
                    print("ok   %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
                except harness.Skip as e:
                    signal.alarm(0)
                    skipped += 1
                    print("skip %s: %s" % (full, e), flush=True)
                except BaseException as e:  # noqa: B902 - report everything, even timeouts
                    signal.alarm(0)
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    failed += 1
                    reason = str(e).split("\n")[0] or type(e).__name__
                    print("FAIL %s: %s (%.1fs)" % (full, reason, time.monotonic() - t0))
                    traceback.print_exc(file=sys.stdout)
                    for s in list(harness.touched):
                        print("---- stderr tail of %s (pid %s) ----" % (s.name, s.proc.pid
                                                                       if s.proc else "-"))
                        print(s.stderr_tail(30))
                    for x in harness.take_findings():
                        print("---- also: server %s (pid %s): %s" % x)
                    print("----", flush=True)
                    if args.exitfirst:
                        stop = True
                        break
        finally:
            signal.alarm(0)
            td = getattr(mod, "teardown_module", None)
            if td is not None:
                try:
                    td()
                except Exception:
                    traceback.print_exc(file=sys.stdout)
            harness.stop_all()
        # servers stopped by teardown/stop_all: an unclean exit or a (leak)
        # report at exit fails the module's teardown, counted as one test
        try:
            _raise_findings()
        except AssertionError as e:
            failed += 1
            print("FAIL %s.teardown: %s" % (modname, e), flush=True)
            if args.exitfirst:
                break
        if stop:
            break
    print("# suite took %.0fs" % (time.monotonic() - t_suite))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line, flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        harness.stop_all()
    sys.exit(rc)

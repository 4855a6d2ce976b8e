"""procs.py - what /proc says about a process and its descendants.

Why /proc/*/stat and not psutil or /proc/PID/task/*/children: stdlib only,
and `children` needs a kernel option that /proc/*/stat does not.  A service
is its front plus every descendant (workers, and a spawner if the build has
one), so figures that sum a service stay honest whatever the process model.
"""

import os
import signal

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """/proc/PID/stat fields after the command name (state first), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read().decode("latin-1")
    except OSError:
        return None
    return st[st.rfind(")") + 2:].split()


def ppid_state(pid):
    """(ppid, state letter) of pid, or (0, "") when it is gone."""
    rest = stat_fields(pid)
    return (int(rest[1]), rest[0]) if rest and len(rest) > 1 else (0, "")


def alive(pid):
    """True if pid exists and is not a zombie."""
    rest = stat_fields(pid)
    return bool(rest) and rest[0] != "Z"


def children(pid):
    """Direct children of pid (ppid from /proc/*/stat)."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            rest = stat_fields(int(d))
            if rest and len(rest) > 1 and int(rest[1]) == pid:
                kids.append(int(d))
    return kids


def descendants(pid):
    """Every descendant of pid, breadth first (bounded walk)."""
    out, todo = [], [pid]
    for _ in range(1000):
        if not todo:
            break
        for c in children(todo.pop(0)):
            out.append(c)
            todo.append(c)
    return out


def service_pids(front):
    """The front and every live process below it."""
    return [front] + [p for p in descendants(front) if alive(p)]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def is_spawner(args):
    """argv of the spawner (`voicestack-worker spawner ...`, src/worker/spawner.c):
    it forks workers and is not one."""
    return "spawner" in args


def is_worker(args):
    """argv of a worker: the `worker` command of `voicestack-worker`, exec'd or
    forked by the spawner (which rewrites its command line to say so)."""
    return "worker" in args and not is_spawner(args)


def serves(args, service):
    """argv names --service SERVICE (or --service=SERVICE)."""
    return any(a == "--service=" + service or
               (a == "--service" and i + 1 < len(args) and args[i + 1] == service)
               for i, a in enumerate(args))


def rss_kb(pid):
    """VmRSS in kB (0 if the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid):
    return rss_kb(pid) / 1024.0


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def cpu_ticks(pids):
    """utime + stime of pids, in clock ticks (CLK_TCK per second)."""
    total = 0
    for p in pids:
        rest = stat_fields(p)
        if rest and len(rest) > 12:
            total += int(rest[11]) + int(rest[12])
    return total


def kill_if_alive(pids, sig=signal.SIGKILL):
    for p in pids:
        if alive(p):
            try:
                os.kill(p, sig)
            except OSError:
                pass

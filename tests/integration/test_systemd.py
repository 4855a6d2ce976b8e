"""test_systemd.py - the systemd units meson makes from
deploy/systemd/voice-stack.service.in: what they say, what systemd-analyze
thinks of them (offline: systemd is not PID 1 here), and their ExecStart run
as written. The front's sd_notify/watchdog/journal code is test_sd_notify.py.

What is mapped, and only that, when an ExecStart line runs here: the
installed binary path (<bindir>/voicestack) becomes this build's binary, and
the env file path (<sysconfdir>/voicestack/voicestack.env) a temporary file
holding loopback ports. The sandbox (DynamicUser=, ProtectSystem=,
SystemCallFilter=, MemoryMax= ...) needs systemd as the service manager, so
it is checked by systemd-analyze, not enforced while these run.
"""

import json
import os
import re
import shlex
import shutil
import subprocess

import harness as h

# deployment test: runs in the normal pass only (run.py)
SANITIZER_PASS = False

UNITS = {"voice-stack-asr.service": "asr", "voice-stack-tts.service": "tts",
         "voice-stack.service": "all"}
# the lines meson fills in per unit; everything else is the one template
PER_UNIT = re.compile(r"^(# \S+\.service - |Description=|Conflicts=|ExecStart=|MemoryMax=)")
CARD = os.path.join(h.CARDS, "001.wav")


def _unit_dir():
    return os.path.join(os.path.dirname(os.path.abspath(h.BIN)), "deploy", "systemd")


def _read(name):
    with open(os.path.join(_unit_dir(), name)) as f:
        return f.read()


def _directive(text, key):
    vals = re.findall(r"^%s=(.*)$" % re.escape(key), text, re.M)
    assert vals, "no %s= in the unit" % key
    return vals[-1]


def _analyze(*args, env=None):
    if not shutil.which("systemd-analyze"):
        raise h.Skip("systemd-analyze missing (Debian package systemd)")
    return subprocess.run(["systemd-analyze"] + list(args), capture_output=True, text=True,
                          timeout=60, env=env)


def test_units_come_from_one_template_and_install_where_systemd_looks():
    texts = {u: _read(u) for u in UNITS}
    rest = {u: [ln for ln in t.splitlines() if not PER_UNIT.match(ln)]
            for u, t in texts.items()}
    first = rest["voice-stack-asr.service"]
    for u, lines in rest.items():
        assert lines == first, "%s differs from the template beyond its own lines" % u
    for u, svc in UNITS.items():
        argv = shlex.split(_directive(texts[u], "ExecStart"))
        assert argv[0].endswith("/bin/voicestack") and os.path.isabs(argv[0]), argv
        assert argv[1:5] == ["serve", "--service", svc, "--env-file"], argv
        assert argv[5].endswith("/voicestack/voicestack.env") and len(argv) == 6, argv
        assert _directive(texts[u], "Type") == "notify"
        assert not re.search(r"@[A-Z_]+@", texts[u]), "unfilled @VAR@ in %s" % u
    # where meson installs them: <prefix>/lib/systemd/system (the packaging
    # relies on these names and this directory)
    build = os.path.dirname(os.path.abspath(h.BIN))
    p = subprocess.run(["meson", "introspect", "--installed", build], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    installed = json.loads(p.stdout)
    prefix = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", build],
                                       capture_output=True, text=True, timeout=60).stdout)
    prefix = [o["value"] for o in prefix if o["name"] == "prefix"][0]
    for u in UNITS:
        dest = installed.get(os.path.join(_unit_dir(), u))
        assert dest == os.path.join(prefix, "lib/systemd/system", u), (u, dest)


def test_units_pass_systemd_analyze_verify():
    """Offline, on the units as generated: a scratch root holds systemd's own
    units, /bin/kill (ExecReload) and this build's binary at the unit's
    ExecStart path, so verify sees the unit exactly as installed. verify runs
    `man` for Documentation=man:voicestack(1) on the host: MANPATH points it
    at the page this build made."""
    _analyze("--version")  # skips without systemd
    root = h.tmppath("verify-root")
    shutil.copytree("/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                    symlinks=True)
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2("/bin/kill", os.path.join(root, "bin/kill"))
    unit_dir = os.path.join(root, "etc/systemd/system")
    os.makedirs(unit_dir)
    man1 = os.path.join(root, "usr/share/man/man1")
    os.makedirs(man1)
    shutil.copy2(os.path.join(os.path.dirname(os.path.abspath(h.BIN)), "docs", "voicestack.1"),
                 man1)
    env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"))
    for u in UNITS:
        text = _read(u)
        exe = shlex.split(_directive(text, "ExecStart"))[0]
        os.makedirs(os.path.dirname(root + exe), exist_ok=True)
        shutil.copy2(h.BIN, root + exe)
        with open(os.path.join(unit_dir, u), "w") as f:
            f.write(text)
        p = _analyze("verify", "--root=" + root, os.path.join(unit_dir, u), env=env)
        assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), \
            "systemd-analyze verify %s: %s%s" % (u, p.stdout, p.stderr)


def test_units_are_rated_ok_by_systemd_analyze_security():
    for u in UNITS:
        p = _analyze("security", "--offline=true", os.path.join(_unit_dir(), u))
        m = re.search(r"Overall exposure level for %s: (\d+\.\d+) (\w+)" % re.escape(u),
                      p.stdout)
        assert m, "no exposure level for %s: %s%s" % (u, p.stdout[-500:], p.stderr)
        level = float(m.group(1))
        assert level <= 2.0 and m.group(2) == "OK", "%s: exposure %.1f %s" % (
            u, level, m.group(2))


class UnitServer(h.Server):
    """The front run with a unit's ExecStart argv (already mapped)."""

    def __init__(self, argv, env, service):
        super().__init__(env=env, service=service, name="unit-" + service)
        self.unit_argv = argv

    def argv(self):
        return self.unit_argv


def _mapped_argv(unit, env_file):
    argv = shlex.split(_directive(_read(unit), "ExecStart"))
    assert argv[5].endswith("voicestack.env")
    return [os.path.abspath(h.SERVER_BIN or h.BIN)] + argv[1:5] + [env_file]


def test_each_unit_execstart_serves_real_requests():
    """Type=notify: READY=1 as systemd would get it; then a real transcription
    (pocketsphinx) and real speech (espeak-ng) through what the unit serves;
    then SIGTERM to the main process only (KillMode=mixed) ends it cleanly
    within the unit's TimeoutStopSec."""
    for unit, svc in UNITS.items():
        env_file = h.tmppath("voicestack.env")
        with open(env_file, "w") as f:
            f.write("HOST=127.0.0.1\nASR_PORT=0\nTTS_PORT=0\n")
        n = h.NotifySocket()
        s = UnitServer(_mapped_argv(unit, env_file), {"NOTIFY_SOCKET": n.path}, svc)
        try:
            s.start()
            n.wait("READY", "1")
            if svc in ("asr", "all"):
                r = h.transcribe(s.asr_port, CARD, timeout=90)
                assert r.status == 200 and h.words(r.json()["text"]), (unit, r)
            if svc in ("tts", "all"):
                r = h.speak(s.tts_port, "Hello from systemd.")
                assert r.status == 200 and len(r.body) > 1000, (unit, r)
            stop_s = float(_directive(_read(unit), "TimeoutStopSec"))
            s.stop(timeout=stop_s)  # a finding (test failure) unless status 0 in time
            n.wait("STOPPING", "1", timeout=1)
        finally:
            s.stop()
            n.close()


def test_execstart_with_the_env_file_missing_fails_loudly():
    """The package installs the env file as a conffile; if an operator
    removed it, the unit fails at once with the path in the journal (no
    silent start on defaults)."""
    missing = h.tmppath("gone.env")
    argv = _mapped_argv("voice-stack-asr.service", missing)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       env=h.server.clean_env())
    assert p.returncode != 0, "started without its env file"
    assert missing in p.stderr, p.stderr


def _bytes(size):
    m = re.fullmatch(r"(\d+)([KMG]?)", size)
    assert m, "MemoryMax=%s" % size
    return int(m.group(1)) * 1024 ** " KMG".index(m.group(2) or " ")


def test_memorymax_of_the_unit_binds_the_memory_guard():
    """The guard takes the cgroup's memory.max (what MemoryMax= sets) as the
    memory it may fill: MEMORY_THRESHOLD_PERCENT of MemoryMax, not of the
    machine's RAM (8 GB here, almost all free)."""
    limit = _bytes(_directive(_read("voice-stack-asr.service"), "MemoryMax"))
    root = h.fake_cgroup_root(limit, limit * 80 // 100)
    s = h.Server(env={"VS_TEST_PROC_ROOT": root, "MEMORY_THRESHOLD_PERCENT": "90"},
                 service="asr", name="memorymax").start()
    try:
        r = h.transcribe(s.asr_port, CARD, timeout=90)
        assert r.status == 200, r
        h.fake_cgroup_use(root, limit, limit * 92 // 100)
        r = h.wait_for(lambda: (lambda x: x if x.status == 503 else None)(
            h.transcribe(s.asr_port, CARD, timeout=90)), "503 at 92% of MemoryMax", 10)
        h.assert_error_shape(r, 503)
        msg = r.json()["error"]["message"]
        assert "%d MB cgroup limit" % (limit // 1024 ** 2) in msg, msg
    finally:
        s.stop()

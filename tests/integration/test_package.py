"""test_package.py - `make install` and the Debian package, installed and run.

What is checked, and how (docs/DEPLOY.md "Install" is the layout promised):
- `make install DESTDIR=<tmp> PREFIX=/usr` with a private build directory
  (BUILD=<tmp>: the repository's build/ is never touched): every file of the
  layout is there with its mode, nothing is world-writable, the settings
  file is the example; the installed `voicestack` (found in DESTDIR, its
  worker beside it) serves a real transcription and a real speech request
  with the installed settings file, and its workers are the installed
  `voicestack-worker`. A second install keeps an edited settings file;
  `make uninstall` removes the rest and keeps it.
- the man pages render with no groff warning (`groff -ww -z`, `man -l`),
  and voicestack(1) documents every setting `voicestack config` knows.
- `make deb` (into a temp dir): lintian has nothing to say, even with
  --pedantic --display-info (a tag kept must be overridden in
  debian/voicestack.lintian-overrides with its reason); the package has no
  world-writable path and its settings file is a conffile; `apt-get install
  -s` of the .deb against an EMPTY dpkg status (a machine with nothing
  installed) resolves every dependency from Debian 12's package lists
  without changing anything; `dpkg -x` into a scratch root and the binary
  from there serves real requests. When the tree has deploy/systemd/, the
  package carries the units and enables and starts voice-stack-asr and
  voice-stack-tts but not the combined voice-stack.service.
Tools missing from the machine (TEST_DEPS installs them) skip the test that
needs them, naming the Debian package.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile

import harness as h

# a deployment test: no point in running it again under the sanitizers
SANITIZER_PASS = False
TEST_TIMEOUT = 300

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV_EXAMPLE = os.path.join(ROOT, "deploy", "voicestack.env.example")
HAS_UNITS = os.path.isdir(os.path.join(ROOT, "deploy", "systemd"))
UNITS = ("voice-stack-asr.service", "voice-stack-tts.service", "voice-stack.service")
SENTENCE = "Please call me back as soon as you can, I will be at home all day long."
CARD = os.path.join(h.CARDS, "005.wav")

# the layout, relative to DESTDIR with PREFIX=/usr: path -> mode
BINARIES = ("usr/bin/voicestack", "usr/bin/voicestack-worker", "usr/bin/voicestack-loadtest")
MAN_PAGES = ("voicestack.1", "voicestack-worker.1", "voicestack-loadtest.1")
DOC = "usr/share/doc/voicestack"
LAYOUT = dict([(b, 0o755) for b in BINARIES] +
              [("usr/share/man/man1/" + m, 0o644) for m in MAN_PAGES] +
              [(DOC + "/" + d, 0o644) for d in ("README.md", "API.md", "CONFIG.md",
                                                "DEPLOY.md", "MODELS.md")] +
              [(DOC + "/examples/voicestack.env.example", 0o644),
               (DOC + "/examples/nginx-voicestack.conf", 0o644),
               ("etc/voicestack/voicestack.env", 0o644)])

_state = {}  # built once per run: {"install": (build, destdir), "deb": path}


def _need(tool, package):
    if not shutil.which(tool):
        raise h.Skip("%s not found (Debian package %s)" % (tool, package))


def _run(argv, timeout=600, cwd=ROOT, env=None):
    p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout.decode(errors="replace")


def _scratch(name):
    return tempfile.mkdtemp(dir=h.tmpdir(), prefix=name + "-")


def _world_writable(root):
    """Paths under root (not symlinks) anyone may write."""
    bad = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH:
                bad.append(os.path.relpath(os.path.join(d, n), root))
    return bad


def _install():
    """make install into a scratch DESTDIR from a private build dir (once)."""
    if "install" not in _state:
        _need("meson", "meson")
        d = _scratch("install")
        build, dest = os.path.join(d, "build"), os.path.join(d, "root")
        rc, out = _run(["make", "install", "BUILD=" + build, "DESTDIR=" + dest, "PREFIX=/usr"])
        assert rc == 0, "make install failed:\n" + out[-3000:]
        _state["install"] = (build, dest)
    return _state["install"]


def _deb():
    """make deb into a scratch dir (once); the path of voicestack_*.deb."""
    if "deb" not in _state:
        for tool, package in (("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"),
                              ("lintian", "lintian"), ("help2man", "help2man")):
            _need(tool, package)
        d = _scratch("deb")
        rc, out = _run(["make", "deb", "DIST=" + os.path.join(d, "dist"),
                        "DEB_WORK=" + os.path.join(d, "work")], timeout=900)
        assert rc == 0, "make deb failed:\n" + out[-4000:]
        debs = [f for f in os.listdir(os.path.join(d, "dist"))
                if f.startswith("voicestack_") and f.endswith(".deb")]
        assert len(debs) == 1, debs
        _state["deb"] = os.path.join(d, "dist", debs[0])
    return _state["deb"]


def _serve_and_check(root, envfile):
    """Run root/usr/bin/voicestack with the installed settings file: a real
    transcription (the engine's own CLI gives the expected words) and a real
    speech request, read back by the same server; its workers must be root's
    voicestack-worker."""
    binary = os.path.join(root, "usr", "bin", "voicestack")
    p = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith(b"voicestack "), p.stdout
    s = h.Server(flags=["--env-file", envfile], binary=binary, name="installed")
    s.start()
    try:
        r = h.transcribe(s.asr_port, CARD, fields={"response_format": "text"})
        assert r.status == 200, (r.status, r.body[:300])
        assert r.body.decode().split() == h.pocketsphinx_continuous(CARD).split(), r.body
        r = h.speak(s.tts_port, SENTENCE, response_format="wav")
        assert r.status == 200 and r.body[:4] == b"RIFF", (r.status, r.body[:100])
        back = h.transcribe(s.asr_port, r.body, fields={"response_format": "text"})
        shared = set(h.words(SENTENCE)) & set(h.words(back.body.decode()))
        assert len(shared) >= 2, "speech read back as %r" % back.body
        worker = os.path.realpath(os.path.join(root, "usr", "bin", "voicestack-worker"))
        for service in ("asr", "tts"):
            pids = [w["pid"] for w in s.health_detailed(service)["workers"] if w.get("pid")]
            assert pids, "no %s worker in /health/detailed" % service
            for pid in pids:
                exe = os.readlink("/proc/%d/exe" % pid)
                assert exe == worker, "%s worker %d runs %s, not %s" % (service, pid, exe,
                                                                        worker)
    finally:
        s.stop()


# ---------------------------------------------------------------- make install

def test_make_install_puts_the_layout_in_destdir():
    build, dest = _install()
    for rel, mode in sorted(LAYOUT.items()):
        path = os.path.join(dest, rel)
        assert os.path.isfile(path), "make install did not install /%s" % rel
        got = stat.S_IMODE(os.stat(path).st_mode)
        assert got == mode, "/%s has mode %o, not %o" % (rel, got, mode)
    assert not _world_writable(dest), _world_writable(dest)
    with open(ENV_EXAMPLE, "rb") as a, open(os.path.join(dest, "etc/voicestack/voicestack.env"),
                                             "rb") as b:
        assert a.read() == b.read(), "installed settings differ from the example"
    if HAS_UNITS:
        for unit in UNITS:
            path = os.path.join(dest, "usr/lib/systemd/system", unit)
            assert os.path.isfile(path), "unit %s not installed" % unit
            with open(path) as f:
                text = f.read()
            assert "ExecStart=/usr/bin/voicestack serve" in text, (unit, text)
            assert "/etc/voicestack/voicestack.env" in text, (unit, text)


def test_installed_binary_serves_real_requests_with_its_installed_worker():
    build, dest = _install()
    _serve_and_check(dest, os.path.join(dest, "etc/voicestack/voicestack.env"))


def test_man_pages_render_without_warnings_and_list_every_setting():
    _need("groff", "groff-base")
    _need("man", "man-db")
    build, dest = _install()
    env = {"LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    pages = {}
    for m in MAN_PAGES:
        path = os.path.join(dest, "usr/share/man/man1", m)
        rc, out = _run(["groff", "-ww", "-z", "-man", "-Tutf8", path], env=env)
        assert rc == 0 and not out.strip(), "groff warns about %s:\n%s" % (m, out)
        p = subprocess.run(["man", "--warnings", "-l", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(os.environ, **env), timeout=60)
        assert p.returncode == 0 and not p.stderr.strip(), (m, p.stderr.decode())
        pages[m] = p.stdout.decode()
    rc, out = _run([os.path.join(dest, "usr/bin/voicestack"), "config"], cwd=h.tmpdir())
    assert rc == 0, out
    names = [line.split("=", 1)[0] for line in out.splitlines() if "=" in line]
    assert len(names) > 20, out
    missing = [n for n in names if "(%s)" % n not in pages["voicestack.1"]]
    assert not missing, "voicestack(1) lacks %s" % missing
    assert "/etc/voicestack/voicestack.env" in pages["voicestack.1"]
    assert "--requests N" in pages["voicestack-loadtest.1"]


def test_reinstall_keeps_edited_settings_and_uninstall_removes_the_rest():
    build, dest = _install()
    env = os.path.join(dest, "etc/voicestack/voicestack.env")
    with open(env, "a") as f:
        f.write("ASR_MAX_QUEUE=3\n")
    with open(env) as f:
        edited = f.read()
    rc, out = _run(["make", "install", "BUILD=" + build, "DESTDIR=" + dest, "PREFIX=/usr"])
    assert rc == 0, out[-3000:]
    with open(env) as f:
        assert f.read() == edited, "make install overwrote the edited settings file"
    rc, out = _run(["make", "uninstall", "BUILD=" + build])
    assert rc == 0, out[-3000:]
    left = [rel for rel in LAYOUT if os.path.exists(os.path.join(dest, rel))]
    assert left == ["etc/voicestack/voicestack.env"], left
    del _state["install"]  # the next user installs again


# ---------------------------------------------------------------- the package

def test_deb_is_lintian_clean_and_has_no_world_writable_path():
    deb = _deb()
    changes = re.sub(r"\.deb$", ".changes", deb)
    rc, out = _run(["lintian", "--pedantic", "--display-info", "--display-experimental",
                    "--fail-on", "error,warning,info,pedantic", changes], timeout=300)
    tags = [line for line in out.splitlines() if re.match(r"[EWIPX]: ", line)]
    assert rc == 0 and not tags, "lintian:\n" + out
    rc, listing = _run(["dpkg-deb", "-c", deb])
    assert rc == 0, listing
    wide = [line for line in listing.splitlines() if line[:10][8:9] == "w"]
    assert not wide, "world-writable in the package:\n" + "\n".join(wide)
    for rel in LAYOUT:
        # dh_compress gzips man pages and the larger documents
        assert re.search(r" \./%s(\.gz)?\n" % re.escape(rel), listing + "\n"), \
            "/%s not in the package" % rel
    ctl = _scratch("control")
    rc, out = _run(["dpkg-deb", "-e", deb, ctl])
    assert rc == 0, out
    with open(os.path.join(ctl, "conffiles")) as f:
        assert "/etc/voicestack/voicestack.env" in f.read().split()
    with open(os.path.join(ctl, "control")) as f:
        control = f.read()
    for dep in ("pocketsphinx-en-us", "espeak-ng-data", "libmicrohttpd12", "libpocketsphinx3"):
        assert re.search(r"^Depends:.*\b%s\b" % dep, control, re.M), (dep, control)
    with open(os.path.join(ROOT, "meson.build")) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    assert "\nVersion: %s\n" % version in control, "debian/changelog is not at %s" % version
    if HAS_UNITS:
        for unit in UNITS:
            assert " ./lib/systemd/system/%s\n" % unit in listing + "\n", unit
        with open(os.path.join(ctl, "postinst")) as f:
            postinst = f.read()
        # dh_installsystemd's snippets: an enabled unit is enabled on first
        # install; a --no-enable one only re-enabled where the admin had
        # enabled it ("debian-installed" guard)
        for unit in UNITS[:2]:
            assert "deb-systemd-helper enable '%s'" % unit in postinst, (unit, postinst)
            assert "debian-installed '%s'" % unit not in postinst, (unit, postinst)
        assert "if deb-systemd-helper debian-installed 'voice-stack.service'" in postinst, \
            postinst
        starts = [line for line in postinst.splitlines() if "deb-systemd-invoke" in line]
        assert starts and not any("'voice-stack.service'" in line for line in starts), starts


def test_deb_dependencies_all_resolve_from_debian_on_an_empty_machine():
    _need("apt-get", "apt")
    deb = _deb()
    status = os.path.join(_scratch("apt"), "status")
    open(status, "w").close()
    # -s: a simulation; with an empty dpkg status apt must find every
    # dependency (and theirs) in Debian's package lists, as on a clean machine
    rc, out = _run(["apt-get", "install", "-s", "--no-install-recommends",
                    "-o", "Dir::State::status=" + status, deb], timeout=120)
    assert rc == 0, out[-3000:]
    inst = [line for line in out.splitlines() if line.startswith("Inst ")]
    assert any(line.startswith("Inst voicestack ") for line in inst), out[-2000:]
    for want in ("pocketsphinx-en-us", "espeak-ng-data", "libmicrohttpd12"):
        assert any(line.startswith("Inst %s " % want) for line in inst), (want, out[-2000:])
    foreign = [line for line in inst
               if not line.startswith("Inst voicestack ") and "Debian" not in line]
    assert not foreign, "not from Debian:\n" + "\n".join(foreign)


def test_deb_unpacked_into_a_scratch_root_serves_real_requests():
    _need("dpkg", "dpkg")
    deb = _deb()
    root = _scratch("root")
    rc, out = _run(["dpkg", "-x", deb, root])
    assert rc == 0, out
    _serve_and_check(root, os.path.join(root, "etc/voicestack/voicestack.env"))


def test_containerfile_runs_the_package_as_a_non_root_user_on_all_addresses():
    # the image build itself is not run here (docs/DEPLOY.md says why and how
    # it was tried); this checks the file against the package and defaults
    with open(os.path.join(ROOT, "Containerfile")) as f:
        text = f.read()
    lines = [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]
    base = [line for line in lines if line.startswith("ARG BASE=")]
    assert base and "debian:bookworm" in base[0], base
    assert "COPY dist/voicestack_*.deb /tmp/" in lines, lines
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0"), user
    assert "ENV HOST=0.0.0.0" in lines, lines
    rc, out = _run([h.BIN, "config"], cwd=h.tmpdir())
    ports = re.findall(r"^(?:ASR|TTS)_PORT=(\d+)", out, re.M)
    assert ["EXPOSE " + " ".join(ports)] == [line for line in lines
                                             if line.startswith("EXPOSE")], (ports, lines)
    assert '"--env-file", "/etc/voicestack/voicestack.env"' in text
    with open(os.path.join(ROOT, ".containerignore")) as f:
        assert "!dist/voicestack_*.deb" in f.read().split()

#!/usr/bin/env python3
"""tune_asr.py - choose pocketsphinx-accurate's decoder settings on human speech.

DESIGN
Not part of `make test` or `make bench`: a rerunnable experiment (stdlib
Python) whose result is the constant vs_ps_accurate_options in
src/engine/catalog.c and the section of docs/MODELS.md that says how it was
chosen. Run from the repository root after a build:

    python3 bench/tune_asr.py --bin build/voicestack            # sweep + report
    python3 bench/tune_asr.py --bin build/voicestack --eval "lw=5,topn=8"  # one setting

Recordings: the human speech on a fresh Debian machine with the project's
packages (pocketsphinx-testdata), plus the 11 s JFK clip that npm's
nodejs-whisper@0.3.1 ships (fetched once with `npm pack` into bench/.cache).
They are split by recording into TUNE and HELD-OUT below, each speaker's
material kept apart where there is more than one clip; the sweep only ever
decodes TUNE, and HELD-OUT is decoded once per finalist, at the end.

Luck: this model's errors move with where the 10 ms frames start (zeros
prepended to a clip change its errors by half), so every clip is decoded at
OFFSETS (zero samples prepended) and a setting is scored on all copies.

Decoding: one `voicestack-worker worker` per setting (the server's own
worker, speaking the frame protocol of src/worker/proto.h over a
socketpair), so the model loads once per setting, the samples and the code
path are the server's, and CPU time per request is the worker's own
(/proc/PID/schedstat, excluding the load). Real-time factor = CPU seconds /
audio seconds. With no options the worker's transcripts are compared with
`pocketsphinx_continuous` on the same raw samples (parity of the default
model), reported at the end.

Search (TUNE only): a grid over the language-model weights (lw, fwdflatlw,
bestpathlw scaled together), wip and topn; then one pass of coordinate
descent from the grid's best over the other settings. A change is kept only
when it removes at least MIN_GAIN errors on TUNE (small wins on ~400 words
are noise that does not carry over), and no setting may cost more than
MAX_CPU times the defaults' CPU.
"""

import argparse
import array
import concurrent.futures as cf
import json
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from pyvs import speech  # noqa: E402
import tempfile
import time
import wave

TD = "/usr/share/pocketsphinx/test/data"
LV = TD + "/librivox/sense_and_sensibility_01_austen_64kb-"
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
JFK_PKG = "nodejs-whisper@0.3.1"
JFK_MEMBER = "package/cpp/whisper.cpp/bindings/go/samples/jfk.wav"
JFK = os.path.join(CACHE, "jfk.wav")

# (id, path, set, reference). References: the testdata transcription files;
# goforward/something/dhd from pocketsphinx's own tests; numbers.raw has no
# published transcript: its reference is what pocketsphinx's digit model
# (testdata tidigits hmm + fsg) hears, and it sits in TUNE so that a wrong
# reference could only blunt the sweep, never flatter the held-out figure.
RECORDINGS = [
    ("librivox-0870", LV + "0870.wav", "tune",
     "and mister john dashwood had then leisure to consider how much there might be "
     "prudently in his power to do for them"),
    ("librivox-0890", LV + "0890.wav", "tune",
     "unless to be rather cold hearted and rather selfish is to be ill disposed"),
    ("librivox-0920", LV + "0920.wav", "tune",
     "had he married a more a amiable woman he might have been made still more respectable "
     "than he was"),
    ("cards-001", TD + "/cards/001.wav", "tune", "ten of clubs"),
    ("cards-002", TD + "/cards/002.wav", "tune", "four queen of clubs"),
    ("cards-003", TD + "/cards/003.wav", "tune", "seven of clubs"),
    ("numbers", TD + "/numbers.raw", "tune", "three three four six nine eight two"),
    ("something", TD + "/something.raw", "tune", "go somewhere and do something"),
    ("librivox-0880", LV + "0880.wav", "held-out", "he was not an ill disposed young man"),
    ("librivox-0930", LV + "0930.wav", "held-out", "he might even have been made amiable himself"),
    ("cards-004", TD + "/cards/004.wav", "held-out", "five five"),
    ("cards-005", TD + "/cards/005.wav", "held-out",
     "eight of spades four of clubs seven of hearts"),
    ("goforward", TD + "/goforward.raw", "held-out", "go forward ten meters"),
    ("tidigits-dhd", TD + "/tidigits/dhd.2934z.raw", "held-out", "two nine three four zero"),
    ("jfk", JFK, "held-out",
     "and so my fellow americans ask not what your country can do for you ask what you can "
     "do for your country"),
]
OFFSETS = (0, 37, 80, 160, 301)  # zero samples prepended to each clip
MIN_GAIN = 3  # errors on TUNE a change must remove to be kept
MAX_CPU = 3.0  # most CPU of a setting, times the defaults'

LW = {"lw": 6.5, "fwdflatlw": 8.5, "bestpathlw": 9.5}  # pocketsphinx defaults
GRID = {"lw_scale": (1.0, 0.85, 0.7, 0.55), "wip": (0.65, 0.2), "topn": (4, 8, 16)}
DESCENT = [  # (name, values); "beams" sets beam and pbeam together
    ("wip", ("0.05", "0.2", "0.4", "0.65", "1.0", "2.0")),
    ("bestpathlw_scale", ("0.8", "0.9", "1.1", "1.2")),
    ("pip", ("0.3", "1.0", "3.0")),
    ("silprob", ("0.001", "0.005", "0.02", "0.1")),
    ("beams", ("1e-40", "1e-48", "1e-56", "1e-64", "1e-80")),
    ("wbeam", ("1e-24", "7e-29", "1e-35", "1e-40")),
    ("maxhmmpf", ("30000", "-1")),
    ("pl_window", ("0", "5", "10")),
    ("vad_threshold", ("1.5", "2.0", "2.5", "3.0")),
    ("fwdflat", ("yes", "no")),
]

# ---- recordings ----


def fetch_jfk():
    if os.path.exists(JFK):
        return True
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["npm", "pack", "--silent", JFK_PKG], cwd=d,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        tgz = p.stdout.decode().strip().splitlines()[-1:] if p.returncode == 0 else []
        if not tgz:
            sys.stderr.write("tune_asr: npm pack %s failed: %s\n" % (JFK_PKG, p.stderr[-300:]))
            return False
        subprocess.run(["tar", "xzf", tgz[0], JFK_MEMBER], cwd=d, check=True)
        os.replace(os.path.join(d, JFK_MEMBER), JFK)
    return True


def samples(path):
    """mono s16le 16 kHz samples of a canonical WAV or a raw file"""
    if path.endswith(".wav"):
        with wave.open(path) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), path
            return w.readframes(w.getnframes())
    with open(path, "rb") as f:
        return f.read()


def prepare(tmp, sets):
    """clips: list of dicts (id, set, ref, words, seconds, wav, raw), one per
    recording and offset, written as canonical WAV (the worker) and raw
    s16le (pocketsphinx_continuous): the same samples for both"""
    clips = []
    for rid, path, which, ref in RECORDINGS:
        if which not in sets:
            continue
        pcm = samples(path)
        for k in OFFSETS:
            data = b"\0\0" * k + pcm
            base = os.path.join(tmp, "%s+%d" % (rid, k))
            with wave.open(base + ".wav", "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(data)
            with open(base + ".raw", "wb") as f:
                f.write(data)
            clips.append({"id": "%s+%d" % (rid, k), "rec": rid, "set": which, "ref": ref,
                          "words": len(ref.split()), "seconds": len(data) / 32000.0,
                          "wav": base + ".wav", "raw": base + ".raw"})
    return clips

# ---- the worker, over the frame protocol (src/worker/proto.h) ----


MAGIC, HDR = 0x56530001, struct.Struct(">IHHI")
TRANSCRIBE, LOADED, RESULT, ERROR = 1, 10, 11, 14


class Worker:
    def __init__(self, exe, options):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [exe, "worker", "--service", "asr", "--engine", "pocketsphinx", "--fd",
                str(theirs.fileno()), "--vad", "1", "--max-audio-seconds", "600",
                "--log-level", "error"]
        for o in options:
            argv += ["--option", o]
        self.proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        theirs.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("worker closed: %s" % self.proc.stderr.read().decode()[-300:])
            buf += chunk
        return buf

    def _recv(self):
        magic, typ, flags, length = HDR.unpack(self._recv_exact(HDR.size))
        assert magic == MAGIC and flags == 0, (magic, flags)
        return typ, self._recv_exact(length)

    def cpu_ns(self):
        with open("/proc/%d/schedstat" % self.proc.pid) as f:
            return int(f.read().split()[0])

    def transcribe(self, wav):
        """(text, cpu seconds of the request)"""
        body = json.dumps({"language": "en"}).encode()
        with open(wav, "rb") as f:
            hdr = HDR.pack(MAGIC, TRANSCRIBE, 0, len(body))
            t0 = self.cpu_ns() if hasattr(self, "loaded") else None
            socket.send_fds(self.sock, [hdr + body], [f.fileno()])
        while True:
            typ, payload = self._recv()
            if typ == LOADED:
                self.loaded = True  # the first request loaded the model: not counted
                t0 = self.cpu_ns()
                continue
            if typ == ERROR:
                raise RuntimeError(payload.decode())
            assert typ == RESULT, typ
            cpu = (self.cpu_ns() - t0) / 1e9 if t0 is not None else None
            return json.loads(payload)["text"], cpu

    def close(self):
        self.sock.close()
        self.proc.wait(timeout=30)

# ---- scoring ----


def errors(ref, hyp):
    """word-level edit distance (substitutions + deletions + insertions), the
    tests' and the bench's one definition (tools/pyvs/speech.py)"""
    return speech.word_edits(ref, hyp)[0]


def decode(exe, options, clips):
    """per clip: (text, errors, cpu seconds). The first clip is decoded twice
    (the first time loads the model and is not timed)."""
    w = Worker(exe, options)
    try:
        w.transcribe(clips[0]["wav"])
        out = {}
        for c in clips:
            text, cpu = w.transcribe(c["wav"])
            out[c["id"]] = (text, errors(c["ref"], text), cpu)
        return out
    finally:
        w.close()


def summary(clips, res):
    s = {}
    for which in ("tune", "held-out"):
        cs = [c for c in clips if c["set"] == which and c["id"] in res]
        if not cs:
            continue
        errs = sum(res[c["id"]][1] for c in cs)
        n = sum(c["words"] for c in cs)
        cpu = sum(res[c["id"]][2] for c in cs)
        secs = sum(c["seconds"] for c in cs)
        per_off = [sum(res[c["id"]][1] for c in cs if c["id"].endswith("+%d" % k))
                   for k in OFFSETS]
        s[which] = {"errors": errs, "words": n, "wer": errs / n, "rtf": cpu / secs,
                    "errors_per_offset": per_off}
    return s

# ---- settings ----


def options_of(p):
    """a point of the search (dict) -> the engine's key=value list"""
    opts, p = [], dict(p)
    s = float(p.pop("lw_scale", 1.0))
    b = float(p.pop("bestpathlw_scale", 1.0))
    if s != 1.0:
        opts += ["lw=%g" % (LW["lw"] * s), "fwdflatlw=%g" % (LW["fwdflatlw"] * s)]
    if s != 1.0 or b != 1.0:
        opts.append("bestpathlw=%g" % (LW["bestpathlw"] * s * b))
    beams = p.pop("beams", None)
    if beams is not None:
        opts += ["beam=%s" % beams, "pbeam=%s" % beams]
    defaults = {"wip": "0.65", "topn": "4", "pip": "1.0", "silprob": "0.005", "wbeam": "7e-29",
                "maxhmmpf": "30000", "pl_window": "5", "vad_threshold": "2.0",
                "fwdflat": "yes"}
    for k, v in sorted(p.items()):
        if str(v) != defaults.get(k):
            opts.append("%s=%s" % (k, v))
    return opts


class Sweep:
    def __init__(self, exe, clips, jobs, log):
        self.exe, self.clips, self.jobs, self.log = exe, clips, jobs, log
        self.seen = {}  # tuple(options) -> summary on TUNE

    def score(self, points):
        todo = []
        for p in points:
            key = tuple(options_of(p))
            if key not in self.seen and key not in [t[0] for t in todo]:
                todo.append((key, p))
        with cf.ThreadPoolExecutor(self.jobs) as ex:
            futs = {ex.submit(decode, self.exe, list(k), self.clips): k for k, _ in todo}
            for f in cf.as_completed(futs):
                k = futs[f]
                self.seen[k] = summary(self.clips, f.result())["tune"]
                t = self.seen[k]
                self.log("  tune errors %3d/%d  rtf %.3f  %s" % (
                    t["errors"], t["words"], t["rtf"], " ".join(k) or "(defaults)"))
        return [self.seen[tuple(options_of(p))] for p in points]


def search(sw, log):
    base = sw.score([{}])[0]
    cap = base["rtf"] * MAX_CPU
    log("grid: %s" % GRID)
    grid = [{"lw_scale": s, "wip": w, "topn": t} for s in GRID["lw_scale"]
            for w in GRID["wip"] for t in GRID["topn"]]
    scores = sw.score(grid)
    ok = [(sc["errors"], sc["rtf"], i) for i, sc in enumerate(scores) if sc["rtf"] <= cap]
    e, _, i = min(ok)
    best, best_e = dict(grid[i]), e
    if base["errors"] - best_e < MIN_GAIN:
        best, best_e = {}, base["errors"]
    grid_best = dict(best)
    log("grid best: %s (%d errors; defaults %d)" % (options_of(best), best_e, base["errors"]))
    for name, values in DESCENT:
        pts = []
        for v in values:
            p = dict(best)
            p[name] = v
            pts.append(p)
        scores = sw.score(pts)
        cand = [(sc["errors"], sc["rtf"], j) for j, sc in enumerate(scores) if sc["rtf"] <= cap]
        e, _, j = min(cand)
        if best_e - e >= MIN_GAIN:
            best, best_e = pts[j], e
            log("  keep %s=%s (%d errors)" % (name, values[j], e))
    return grid_best, best

# ---- parity of the default model ----


def continuous(raw):
    p = subprocess.run(["pocketsphinx_continuous", "-infile", raw, "-logfn", "/dev/null"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    return " ".join(line for line in p.stdout.decode().splitlines() if line.strip())


def parity(clips, res, jobs):
    with cf.ThreadPoolExecutor(jobs) as ex:
        cli = dict(zip([c["id"] for c in clips], ex.map(continuous, [c["raw"] for c in clips])))
    return [c["id"] for c in clips if cli[c["id"]].split() != res[c["id"]][0].split()]

# ---- main ----


def table(rows):
    out = ["| setting | TUNE WER | TUNE RTF | HELD-OUT WER | HELD-OUT RTF | "
           "HELD-OUT errors per offset %s |" % "/".join(map(str, OFFSETS)),
           "| --- | --- | --- | --- | --- | --- |"]
    for name, s in rows:
        t, h = s["tune"], s["held-out"]
        out.append("| %s | %.1f%% (%d/%d) | %.3f | %.1f%% (%d/%d) | %.3f | %s |" % (
            name, 100 * t["wer"], t["errors"], t["words"], t["rtf"], 100 * h["wer"],
            h["errors"], h["words"], h["rtf"], "/".join(map(str, h["errors_per_offset"]))))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/voicestack", help="the voicestack binary")
    ap.add_argument("--jobs", type=int, default=2, help="settings decoded at once")
    ap.add_argument("--eval", action="append", default=[],
                    help="only evaluate these settings (comma-separated key=value), no sweep")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    exe = os.path.join(os.path.dirname(os.path.abspath(a.bin)), "voicestack-worker")
    t_start = time.time()

    def log(msg):
        print("[%6.0fs] %s" % (time.time() - t_start, msg), flush=True)

    if not fetch_jfk():
        sys.exit("tune_asr: the held-out set needs %s (npm pack %s)" % (JFK, JFK_PKG))
    with tempfile.TemporaryDirectory(prefix="tune_asr.") as tmp:
        clips = prepare(tmp, ("tune", "held-out"))
        tune = [c for c in clips if c["set"] == "tune"]
        log("TUNE %d clips %.0f s, HELD-OUT %d clips %.0f s, offsets %s" % (
            len(tune), sum(c["seconds"] for c in tune), len(clips) - len(tune),
            sum(c["seconds"] for c in clips if c["set"] != "tune"), OFFSETS))
        if a.eval:
            finalists = [("defaults", [])] + [
                (e, [o for o in e.split(",") if o]) for e in a.eval]
        else:
            sw = Sweep(exe, tune, a.jobs, log)
            grid_best, best = search(sw, log)
            finalists = [("defaults", []), ("grid best", options_of(grid_best)),
                         ("chosen on TUNE", options_of(best))]
            finalists = [f for i, f in enumerate(finalists)
                         if f[1] not in [g[1] for g in finalists[:i]]]
        log("finalists on both sets: %s" % finalists)
        results, rows = {}, []
        with cf.ThreadPoolExecutor(a.jobs) as ex:
            futs = [ex.submit(decode, exe, opts, clips) for _, opts in finalists]
            for (name, opts), f in zip(finalists, futs):
                results[name] = f.result()
                rows.append(("%s: `%s`" % (name, " ".join(opts) or "(none)"),
                             summary(clips, results[name])))
        mismatch = parity(clips, results["defaults"], a.jobs)
        print()
        print(table(rows))
        print()
        print("parity of the defaults with pocketsphinx_continuous on the same samples: "
              "%d of %d clips differ %s" % (len(mismatch), len(clips), mismatch or ""))
        log("done")
        if a.out:
            with open(a.out, "w") as f:
                json.dump({"finalists": finalists, "summary": dict(rows),
                           "transcripts": results, "parity_mismatch": mismatch}, f, indent=1)


if __name__ == "__main__":
    main()

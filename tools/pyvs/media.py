"""media.py - audio made and inspected with the ffmpeg/ffprobe CLIs.

Why the CLIs: they are the reference implementation the server's own FFmpeg
use is compared against, and they keep this package stdlib-only.
"""

import json
import os
import subprocess
import wave

from . import Failed
from .tmp import tmppath

DATA = "/usr/share/pocketsphinx/test/data"
LIBRIVOX = os.path.join(DATA, "librivox")
CARDS = os.path.join(DATA, "cards")


def librivox_wavs():
    """The pocketsphinx-testdata librivox sentences (16 kHz mono wavs), sorted."""
    try:
        wavs = sorted(os.path.join(LIBRIVOX, f) for f in os.listdir(LIBRIVOX)
                      if f.endswith(".wav"))
    except OSError:
        wavs = []
    if not wavs:
        raise Failed("no librivox wavs in %s (Debian package pocketsphinx-testdata)" % LIBRIVOX)
    return wavs


def run(argv, timeout=120.0, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def ffprobe(path):
    """ffprobe's JSON for format and streams; asserts it parses the file."""
    p = run(["ffprobe", "-v", "error", "-show_entries",
             "format=format_name,duration:stream=codec_name,sample_rate,channels,duration",
             "-of", "json", path], timeout=60)
    assert p.returncode == 0, "ffprobe failed on %s: %s" % (path, p.stderr.decode()[-500:])
    doc = json.loads(p.stdout.decode())
    assert doc.get("streams"), "ffprobe found no stream in %s" % path
    return doc


def ffprobe_duration(path):
    """Container duration, else the first stream's; None if neither known."""
    doc = ffprobe(path)
    for v in (doc.get("format", {}).get("duration"), doc["streams"][0].get("duration")):
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    return None


def decode_pcm(path, rate=16000, extra_in=()):
    """Fully decode path with ffmpeg to s16le mono at rate. Asserts ffmpeg
    reports no error. Returns the PCM bytes."""
    p = run(["ffmpeg", "-nostdin", "-v", "error"] + list(extra_in) +
            ["-i", path, "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"], timeout=120)
    err = p.stderr.decode("utf-8", "replace").strip()
    assert p.returncode == 0 and not err, "ffmpeg could not decode %s cleanly: rc=%d %s" % (
        path, p.returncode, err[-600:])
    return p.stdout


def decoded_duration(path):
    return len(decode_pcm(path, 16000)) / 32000.0


def rms_s16(pcm):
    n = len(pcm) // 2
    if n == 0:
        return 0.0
    import array
    a = array.array("h")
    a.frombytes(pcm[:n * 2])
    step = max(1, n // 200000)
    s = 0
    m = 0
    for i in range(0, n, step):
        s += a[i] * a[i]
        m += 1
    return (s / m) ** 0.5


_FMT_ARGS = {
    "wav": ([], "wav"),
    "mp3": (["-c:a", "libmp3lame"], "mp3"),
    "ogg": (["-c:a", "libvorbis"], "ogg"),
    "opus": (["-c:a", "libopus"], "opus"),
    "flac": (["-c:a", "flac"], "flac"),
    "m4a": (["-c:a", "aac"], "m4a"),        # ffmpeg default: moov atom at the end
    "webm": (["-c:a", "libopus"], "webm"),
}


def make_audio(src, fmt, rate=None, channels=None, extra=()):
    """Encode src with the ffmpeg CLI into the run's temp dir; returns the path."""
    args, ext = _FMT_ARGS[fmt]
    out = tmppath("%s-%s-%s.%s" % (os.path.basename(src).split(".")[0], rate or "r",
                                   channels or "c", ext))
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src]
    if rate:
        argv += ["-ar", str(rate)]
    if channels:
        argv += ["-ac", str(channels)]
    argv += list(args) + list(extra) + [out]
    p = run(argv, timeout=120)
    assert p.returncode == 0, "ffmpeg failed: %s: %s" % (" ".join(argv), p.stderr.decode())
    return out


def concat_wavs(paths, out):
    """Concatenate same-format wavs with the wave module (exact, no codec)."""
    with wave.open(paths[0]) as w0:
        params = w0.getparams()
    with wave.open(out, "wb") as o:
        o.setparams(params)
        for p in paths:
            with wave.open(p) as w:
                o.writeframes(w.readframes(w.getnframes()))
    return out


def long_librivox_wav(times, name):
    """The five librivox sentences (~24.6 s) repeated `times` times, joined
    sample-exactly: a clip that keeps pocketsphinx busy for many seconds."""
    return concat_wavs(librivox_wavs() * times, tmppath(name))


def wav_bytes(pcm, rate=16000, channels=1):
    path = tmppath("gen.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    with open(path, "rb") as f:
        return f.read()



def ffmpeg_concat(out, files, limit=None, rate=16000):
    """files joined with ffmpeg's concat filter, mono at rate, cut to limit s."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    for f in files:
        argv += ["-i", f]
    argv += ["-filter_complex", "concat=n=%d:v=0:a=1" % len(files)]
    if limit:
        argv += ["-t", str(limit)]
    argv += ["-ar", str(rate), "-ac", "1", out]
    p = run(argv, timeout=120)
    if p.returncode != 0:
        raise Failed("ffmpeg concat failed: %s" % p.stderr.decode("utf-8", "replace")[-500:])
    return out


def silence(out, seconds, rate=16000):
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             "anullsrc=r=%d:cl=mono" % rate, "-t", str(seconds), out], timeout=60)
    if p.returncode != 0:
        raise Failed("ffmpeg silence failed: %s" % p.stderr.decode("utf-8", "replace")[-500:])
    return out


def raw_pcm(path, rate, channels, fmt="s16le"):
    """path decoded by the ffmpeg CLI to headerless PCM: fmt is ffmpeg's
    raw format (u8, s16le, s24le, s32le), at rate Hz with channels channels."""
    p = run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", fmt, "-ar", str(rate),
             "-ac", str(channels), "-"], timeout=120)
    if p.returncode != 0 or not p.stdout:
        raise Failed("ffmpeg -f %s failed on %s: %s" % (fmt, path,
                                                        p.stderr.decode("utf-8", "replace")))
    return p.stdout

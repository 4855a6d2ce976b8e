"""test_cli.py - the one-shot subcommands run the same engines in-process.

`voicestack speak` and `voicestack transcribe` are the in-process baseline of
the benchmarks and a user's quickest check that the engines work; `--help`
and `--version` must work on every subcommand.
"""

import json
import os
import subprocess

import harness as h

SENTENCE = "Please call me back as soon as you can, I will be at home all day long."
CARD = os.path.join(h.CARDS, "005.wav")


def _vs(*args, timeout=120.0, env=None):
    return subprocess.run([h.BIN] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_speak_writes_each_format_and_transcribe_reads_it_back():
    outs = {}
    for fmt in ("wav", "mp3", "opus", "flac"):
        out = outs[fmt] = h.tmppath("cli." + fmt)
        p = _vs("speak", SENTENCE, "-o", out, "--voice", "alloy")
        assert p.returncode == 0, (fmt, p.stderr.decode())
        dur = h.ffprobe_duration(out) if fmt != "flac" else h.decoded_duration(out)
        assert 1.0 < dur < 15.0, "%s: implausible duration %r" % (fmt, dur)
    p = _vs("transcribe", outs["wav"])
    assert p.returncode == 0, p.stderr.decode()
    shared = set(h.words(SENTENCE)) & set(h.words(p.stdout.decode()))
    assert len(shared) >= 2, "transcript %r shares %r with the input" % (p.stdout, shared)


def test_transcribe_formats_match_the_engines_own_cli():
    p = _vs("transcribe", CARD, "--format", "verbose_json")
    assert p.returncode == 0, p.stderr.decode()
    v = json.loads(p.stdout)
    assert v["segments"] and v["words"], v
    assert v["text"].split() == h.pocketsphinx_continuous(CARD).split(), v["text"]
    for fmt, marker in (("srt", " --> "), ("vtt", "WEBVTT"), ("json", '"text"')):
        p = _vs("transcribe", CARD, "--format", fmt)
        assert p.returncode == 0 and marker in p.stdout.decode(), (fmt, p.stdout)


def test_bad_cli_input_exits_nonzero_with_a_reason():
    p = _vs("transcribe", "/nonexistent.wav")
    assert p.returncode != 0 and b"nonexistent" in p.stderr
    p = _vs("transcribe", CARD, "--format", "docx")
    assert p.returncode == 2 and b"docx" in p.stderr, p.stderr
    p = _vs("speak", "hello", "-o", h.tmppath("x.wav"), "--voice", "no-such-voice")
    assert p.returncode != 0 and b"no-such-voice" in p.stderr, p.stderr
    p = _vs("speak", "hello")
    assert p.returncode == 2, p.returncode


def test_help_and_version_work_everywhere():
    for sub in ([], ["serve"], ["transcribe"], ["speak"], ["config"]):
        p = _vs(*(sub + ["--help"]))
        assert p.returncode == 0 and b"Usage: voicestack" in p.stdout, (sub, p.stdout[:200])
        p = _vs(*(sub + ["--version"]))
        assert p.returncode == 0 and p.stdout.startswith(b"voicestack "), (sub, p.stdout)


FLITE = {"TTS_ENGINE": "flite"}


def test_speak_option_voice_file_speaks_with_the_files_voice():
    # --option passes a model's engine options (as MODELS_FILE will) to the
    # engine: a .flitevox becomes the voice, named after its file
    d = h.tmppath("vox")  # a directory of its own: the file's name is the voice's
    os.makedirs(d)
    vox = h.flite_voice_file(os.path.join(d, "mine.flitevox"))
    mine, builtin = h.tmppath("mine.wav"), h.tmppath("slt.wav")
    p = _vs("speak", SENTENCE, "-o", mine, "--voice", "mine", "--option",
            "voice_file=" + vox, env=FLITE)
    assert p.returncode == 0, p.stderr.decode()
    p = _vs("speak", SENTENCE, "-o", builtin, "--voice", "slt", env=FLITE)
    assert p.returncode == 0, p.stderr.decode()
    assert 2.0 < h.ffprobe_duration(mine) < 15.0
    p = _vs("transcribe", mine)
    assert p.returncode == 0, p.stderr.decode()
    wer = h.wer(SENTENCE, p.stdout.decode())
    print("  file voice: %r (WER %.0f%%)" % (p.stdout.decode().strip(), 100 * wer))
    assert wer <= 0.5, "the file voice is not intelligible: %r" % p.stdout
    # the OpenAI default name is the model's voice too
    alloy = h.tmppath("alloy.wav")
    p = _vs("speak", SENTENCE, "-o", alloy, "--voice", "alloy", "--option",
            "voice_file=" + vox, env=FLITE)
    assert p.returncode == 0, p.stderr.decode()
    assert open(alloy, "rb").read() == open(mine, "rb").read()


def test_speak_bad_option_fails_with_the_reason():
    p = _vs("speak", "hello", "-o", h.tmppath("x.wav"), "--option",
            "voice_file=/nonexistent/v.flitevox", env=FLITE)
    assert p.returncode == 1 and b"/nonexistent/v.flitevox" in p.stderr, p.stderr
    p = _vs("speak", "hello", "-o", h.tmppath("x.wav"), "--option", "voice=bogus", env=FLITE)
    assert p.returncode == 1 and b"bogus" in p.stderr, p.stderr
    p = _vs("speak", "hello", "-o", h.tmppath("x.wav"), "--option", "nope=1")
    assert p.returncode == 1 and b"espeak-ng has no option 'nope'" in p.stderr, p.stderr
    p = _vs("speak", "hello", "-o", h.tmppath("x.wav"), "--option")
    assert p.returncode == 2, p.stderr


def test_transcribe_takes_engine_options():
    """`--option key=value` (repeatable) reaches the engine, as a model's
    options do: the engine's defaults change nothing, a narrow beam changes
    the transcript, and a bad key or value is refused with its name."""
    plain = _vs("transcribe", CARD)
    assert plain.returncode == 0 and plain.stdout.strip(), plain.stderr.decode()
    same = _vs("transcribe", CARD, "--option", "lw=6.5", "--option", "beam=1e-48")
    assert same.returncode == 0, same.stderr.decode()
    assert same.stdout == plain.stdout
    narrow = _vs("transcribe", "--option", "beam=1e-2", CARD, "--option", "pbeam=1e-2",
                 "--option", "wbeam=1e-2")
    assert narrow.returncode == 0, narrow.stderr.decode()
    assert narrow.stdout != plain.stdout, narrow.stdout
    for bad, name in ((["--option", "nope=1"], b"nope"), (["--option", "beam=abc"], b"beam"),
                      (["--option", "topn=0"], b"topn")):
        p = _vs("transcribe", CARD, *bad)
        assert p.returncode != 0 and name in p.stderr, (bad, p.returncode, p.stderr)
    p = _vs("transcribe", CARD, "--option")
    assert p.returncode == 2, (p.returncode, p.stderr)

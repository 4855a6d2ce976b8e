"""test_wer.py - accuracy on real human speech through the HTTP endpoint.

The recordings and reference transcripts are Debian's pocketsphinx-testdata
(librivox: 5 read sentences; cards: 5 short card names). The server's corpus
WER must match the engine's own CLI, pocketsphinx_continuous, on the same
files: the server may lose nothing to decoding, resampling or segmentation.
"""

import threading

import harness as h

srv = h.SharedServer(name="wer")


def teardown_module():
    srv.stop()


# Allowed slack over the engine's own figure, in WER points. Same engine, same
# model, same audio (these are 16 kHz mono already): only a difference in how
# the server feeds the decoder (segmentation, dropped samples, a resampler on a
# no-op path) could cost words, so the slack is half a point, not a margin for
# noise (pocketsphinx decoding is deterministic).
SLACK_POINTS = 0.5
# Absolute sanity bound. Measured on this machine (Debian 12, pocketsphinx
# 5prealpha, default en-us model) with this file's own WER function:
#   for f in .../librivox/*.wav .../cards/*.wav; do pocketsphinx_continuous -infile $f; done
# gives 36 edits over 92 reference words = 39.1% (librivox alone 26/71 = 36.6%;
# e.g. "dashwood" -> "guess what", cards "ten of clubs" -> "i've been up close").
# The "about 23%" quoted in the issue is not what this engine build gets on
# these files. 45% leaves room for engine version drift, and still fails a
# server that drops or garbles audio (that pushes WER towards 100%).
ABS_BOUND = 0.45


def test_wer_librivox_and_cards():
    s = srv()
    items = h.load_transcripts()
    assert len(items) == 10, "expected 10 reference recordings, found %d" % len(items)

    # The engine's CLI runs in a thread while the server decodes (2 cores).
    cli_hyp = {}

    def run_cli():
        for path, _ in items:
            cli_hyp[path] = h.pocketsphinx_continuous(path)
    t = threading.Thread(target=run_cli, daemon=True)
    t.start()

    srv_edits = cli_edits = nwords = 0
    rows = []
    for path, ref in items:
        r = h.transcribe(s.asr_port, path, path.rsplit("/", 1)[1], "audio/wav")
        assert r.status == 200, "%s: %r" % (path, r)
        hyp = r.json()["text"]
        e, n = h.word_edits(ref, hyp)
        srv_edits += e
        nwords += n
        rows.append((path.rsplit("/", 1)[1], e, n, hyp))
    t.join(300)
    assert not t.is_alive(), "pocketsphinx_continuous did not finish"
    for i, (path, ref) in enumerate(items):
        e, _ = h.word_edits(ref, cli_hyp[path])
        cli_edits += e
        name, se, n, hyp = rows[i]
        print("  %-45s server %2d/%2d %-60r cli %2d/%2d %r" % (name, se, n, hyp, e, n,
                                                             cli_hyp[path]))
    w_srv = srv_edits / nwords
    w_cli = cli_edits / nwords
    print("WER server=%.1f%% pocketsphinx_continuous=%.1f%% over %d files, %d words" % (
        100 * w_srv, 100 * w_cli, len(items), nwords))
    assert w_srv * 100 <= w_cli * 100 + SLACK_POINTS, \
        "server WER %.1f%% worse than the engine's own %.1f%%" % (100 * w_srv, 100 * w_cli)
    assert w_srv < ABS_BOUND, "server WER %.1f%% >= %.0f%%" % (100 * w_srv, 100 * ABS_BOUND)

// openai_sdk.mjs - drives the official OpenAI Node SDK against Voice Stack.
//
// DESIGN
// Issue 7 found refusals that the SDK could not read: it uploads with
// fs.createReadStream, the server answered 429 and closed without reading,
// and the SDK saw EPIPE (APIConnectionError) instead of the 429, so it never
// retried. This script does exactly what a user's program does, through the
// SDK's own code paths, and prints one JSON line per call for the Python test
// (tests/integration/test_sdk_node.py) to judge. It judges nothing itself.
//
//   node openai_sdk.mjs refusals ASR_BASE FILE N   N uploads with maxRetries 0
//   node openai_sdk.mjs roundtrip ASR_BASE TTS_BASE TEXT OUT
//                                                  speech -> OUT -> transcription
//   node openai_sdk.mjs stream ASR_BASE FILE       transcription with stream: true;
//                                                  one line per event the SDK yields
//   node openai_sdk.mjs speech_sse TTS_BASE TEXT FORMAT OUT
//                                                  speech with stream_format 'sse', its
//                                                  events read by the SDK's Stream; the
//                                                  decoded audio to OUT
// The API key is OPENAI_API_KEY, as for any program using the SDK ('unused'
// when it is not set: a server without API keys ignores it).
import fs from 'node:fs';
import OpenAI from 'openai';
import { Stream } from 'openai/streaming';

const client = (baseURL) => new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || 'unused', maxRetries: 0, timeout: 120000 });

function outcome(err) {
  if (err instanceof OpenAI.APIConnectionError)
    return { ok: false, connection_error: true, name: err.constructor.name, message: String(err.cause || err.message) };
  if (err instanceof OpenAI.APIError)
    return { ok: false, status: err.status, name: err.constructor.name, code: err.code ?? null, message: err.message };
  return { ok: false, name: String(err && err.name), message: String(err && err.message) };
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'refusals') {
  const [base, file, n] = args;
  const c = client(base);
  for (let i = 0; i < Number(n); i++) {
    try {
      const t = await c.audio.transcriptions.create({ file: fs.createReadStream(file), model: 'whisper-1' });
      console.log(JSON.stringify({ ok: true, text: t.text }));
    } catch (err) {
      console.log(JSON.stringify(outcome(err)));
    }
  }
} else if (cmd === 'roundtrip') {
  const [asr, tts, text, out] = args;
  try {
    const speech = await client(tts).audio.speech.create({ model: 'tts-1', voice: 'alloy', input: text, response_format: 'wav' });
    fs.writeFileSync(out, Buffer.from(await speech.arrayBuffer()));
    const t = await client(asr).audio.transcriptions.create({ file: fs.createReadStream(out), model: 'whisper-1' });
    console.log(JSON.stringify({ ok: true, bytes: fs.statSync(out).size, text: t.text }));
  } catch (err) {
    console.log(JSON.stringify(outcome(err)));
  }
} else if (cmd === 'stream') {
  const [base, file] = args;
  try {
    const stream = await client(base).audio.transcriptions.create({ file: fs.createReadStream(file), model: 'whisper-1', stream: true });
    for await (const ev of stream)
      console.log(JSON.stringify({ ok: true, at_ms: performance.now(), event: ev }));
  } catch (err) {
    console.log(JSON.stringify(outcome(err)));
  }
} else if (cmd === 'speech_sse') {
  const [base, text, format, out] = args;
  try {
    const controller = new AbortController();
    const resp = await client(base).audio.speech.create({ model: 'tts-1-hd', voice: 'alloy', input: text, response_format: format, stream_format: 'sse' }, { signal: controller.signal });
    const parts = [];
    for await (const ev of Stream.fromSSEResponse(resp, controller)) {
      if (ev.type === 'speech.audio.delta')
        parts.push(Buffer.from(ev.audio, 'base64'));
      console.log(JSON.stringify({ ok: true, type: ev.type, bytes: ev.audio ? ev.audio.length : 0, usage: ev.usage ?? null }));
    }
    fs.writeFileSync(out, Buffer.concat(parts));
  } catch (err) {
    console.log(JSON.stringify(outcome(err)));
  }
} else {
  console.error('usage: node openai_sdk.mjs refusals|roundtrip|stream|speech_sse ...');
  process.exit(2);
}

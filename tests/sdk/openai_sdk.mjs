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
// The API key is OPENAI_API_KEY, as for any program using the SDK ('unused'
// when it is not set: a server without API keys ignores it).
import fs from 'node:fs';
import OpenAI from 'openai';

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
} else {
  console.error('usage: node openai_sdk.mjs refusals|roundtrip ...');
  process.exit(2);
}

// Drives @anthropic-ai/sdk (TypeScript SDK, from <repo>/.cache/e2e-node via NODE_PATH) against the proxy.
//
//   node ts_sdk_stream.cjs <base url> '<JSON MessageStreamParams>'
//
// Runs client.messages.stream(params).finalMessage() and prints one JSON line:
//   {"sdk_version", "message": <final message>, "raw": [<every response body as received>], "texts": [...]}
// On an SDK error: {"error": {"name", "status", "message"}} and exit code 2.
'use strict';

const sdk = require('@anthropic-ai/sdk');
const Anthropic = sdk.default || sdk.Anthropic || sdk;
const { VERSION } = require('@anthropic-ai/sdk/version');

async function main() {
  const [baseURL, paramsJson] = process.argv.slice(2);
  const params = JSON.parse(paramsJson);
  const raw = [];
  const pending = [];

  // Tee every response body so the test can check the raw SSE bytes too.
  const teeFetch = async (url, init) => {
    const response = await fetch(url, init);
    if (!response.body) return response;
    const [forSdk, forUs] = response.body.tee();
    pending.push(new Response(forUs).text().then((text) => raw.push(text)));
    return new Response(forSdk, { status: response.status, statusText: response.statusText, headers: response.headers });
  };

  const client = new Anthropic({ baseURL, apiKey: 'sk-test', maxRetries: 0, fetch: teeFetch });
  const texts = [];
  const stream = client.messages.stream(params);
  stream.on('text', (delta) => texts.push(delta));
  const message = await stream.finalMessage();
  await Promise.all(pending);
  process.stdout.write(JSON.stringify({ sdk_version: VERSION, message, raw, texts }) + '\n');
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: { name: err && err.constructor && err.constructor.name,
    status: err && err.status, message: String(err && err.message) } }) + '\n');
  process.exit(2);
});

// engine.test.js: the loader without a browser. Node instantiates the same
// engine.js and wasi.js as the Worker, with the wasm files read from disk,
// and must print exactly what the native `wisp run` prints.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { createEngine, simdSupported, WispError } from '../engine.js';
import { download, hexSHA256 } from '../download.js';
import { ggufMetadata } from '../gguf.js';
import { defaultModel, missing, nativeText, site } from './helpers.js';

// The build outputs must exist (make site models): their absence fails
// rather than skips.
const skip = false;
test('the build outputs the tests need exist', () => assert.equal(missing(), ''));

async function newEngine() {
  const wasm = (f) => readFile(path.join(site, 'wasm', f));
  return createEngine({ engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm') });
}

describe('engine.js in Node', { skip }, () => {
  let engine;
  let bytes;
  before(async () => {
    bytes = await readFile(defaultModel);
    engine = await newEngine();
    engine.load(bytes);
  });

  test('SIMD128 is detected', () => {
    assert.equal(simdSupported(), true);
  });

  test('info describes the model', () => {
    const info = engine.info;
    assert.equal(info.architecture, 'llama');
    assert.equal(info.fileSize, bytes.byteLength);
    assert.equal(info.kernels, 'wasm-simd128');
    assert.ok(info.params > 0 && info.contextLength > 0 && info.vocabSize > 0);
  });

  // wisp run -n 200 with the BOS-only prompt evaluates 200 positions and
  // prints the token sampled after the last one too: 200 tokens.
  test('greedy generation matches wisp run', async () => {
    const want = await nativeText(defaultModel, { positions: 200 });
    let got = '';
    for (const piece of engine.generate('', { temperature: 0, maxTokens: 200 })) got += piece;
    assert.equal(got + '\n', want);
  });

  test('with echo, a prompt matches wisp run -p', async () => {
    const prompt = 'Once upon a time, a little dog';
    const want = await nativeText(defaultModel, { prompt, positions: 64 });
    const n = engine.tokenize(prompt).length;
    let got = '';
    for (const piece of engine.generate(prompt, { temperature: 0, maxTokens: 64 - n + 1, echo: true })) got += piece;
    assert.equal(got + '\n', want);
  });

  test('generation ends with the reason', () => {
    const g = engine.generate('Once', { temperature: 0, maxTokens: 3 });
    let r;
    while (!(r = g.next()).done);
    assert.equal(r.value, 'length');
  });

  test('engine errors become WispErrors with the engine message', () => {
    assert.throws(() => engine.load(bytes), { name: 'WispError', code: 'usage', message: /already loaded/ });
    const long = 'Once upon a time '.repeat(400);
    assert.throws(() => engine.prompt(long, { temperature: 0 }), (err) => {
      assert.ok(err instanceof WispError);
      assert.equal(err.op, 'wisp_prompt_tokens');
      assert.ok(err.status < 0);
      assert.match(err.message, /context|positions|long/);
      return true;
    });
    // The engine goes on working after an error.
    const g = engine.generate('', { temperature: 0, maxTokens: 5 });
    assert.ok([...g].join('').length > 0);
  });

  test('a corrupt file is an error, not a crash', async () => {
    const e = await newEngine();
    const cases = [
      ['garbage', new TextEncoder().encode('this is not a model at all'), /GGUF/],
      ['truncated', bytes.subarray(0, 1000), /./],
      ['empty', new Uint8Array(0), /empty/],
    ];
    for (const [name, data, re] of cases) {
      assert.throws(() => e.load(data), (err) => err instanceof WispError && re.test(err.message), name);
    }
    assert.ok(e.load(bytes).params > 0, 'loads after the failures');
  });

  test('a model larger than the memory allowed is too large', async () => {
    const wasm = (f) => readFile(path.join(site, 'wasm', f));
    const e = await createEngine({
      engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm'), memoryLimitMiB: 64,
    });
    // A model padded to 80 MiB: refused from its header, before its bytes are copied in.
    const big = new Uint8Array(80 << 20);
    big.set(bytes);
    assert.throws(() => e.load(big), { code: 'too-large', message: /too large.*a model of 80\.0 MiB with a session of 256 positions/ });
    assert.throws(() => e.check(bytes.subarray(0, 64 << 10), big.byteLength), { code: 'too-large', message: /a model of 80\.0 MiB/ });
    assert.ok(e.load(bytes).params > 0, 'a model that fits still loads');
  });

  test('ggufMetadata reads the header and refuses garbage', () => {
    const meta = ggufMetadata(bytes);
    assert.equal(meta['general.architecture'], 'llama');
    assert.equal(ggufMetadata(new Uint8Array(8)), null);
    assert.equal(ggufMetadata(bytes.subarray(0, 100)), null);
  });
});

describe('download.js in Node', { skip }, () => {
  test('progress, size and SHA-256', async (t) => {
    const body = await readFile(defaultModel);
    const srv = http.createServer((req, res) => {
      if (req.url !== '/m.gguf') {
        res.writeHead(404).end('no');
        return;
      }
      res.writeHead(200, { 'Content-Length': body.byteLength });
      res.end(body);
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    t.after(() => srv.close());
    const base = `http://127.0.0.1:${srv.address().port}`;
    const events = [];
    const sha = await hexSHA256(body);
    const got = await download(`${base}/m.gguf`, { sha256: sha, onProgress: (p) => events.push(p) });
    assert.deepEqual(Buffer.from(got.bytes), body);
    assert.equal(got.fromCache, false); // Node has no Cache Storage
    assert.ok(events.length >= 2);
    const last = events.at(-1);
    assert.equal(last.loaded, body.byteLength);
    assert.equal(last.total, body.byteLength);
    await assert.rejects(download(`${base}/m.gguf`, { sha256: '00'.repeat(32) }), { code: 'sha256' });
    await assert.rejects(download(`${base}/missing.gguf`), { code: 'http', message: /404/ });
  });

  test('a file beyond 4 GiB is refused before its body', async (t) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Length': String(5 * 2 ** 30) });
      res.write('GGUF'); // and never more
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    t.after(() => { srv.closeAllConnections(); srv.close(); });
    await assert.rejects(download(`http://127.0.0.1:${srv.address().port}/big.gguf`), { code: 'too-large' });
  });
});

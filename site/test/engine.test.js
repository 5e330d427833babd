// engine.test.js: the loader without a browser. Node instantiates the same
// engine.js and wasi.js as the Worker, with the wasm files read from disk,
// and must print exactly what the native `wisp run` prints.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { SHARED_MEMORY } from '../abi.js';
import { createEngine, sharedMemory, simdSupported, WispError } from '../engine.js';
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

describe('the threaded build in Node', { skip }, () => {
  test('wisp-shared.wasm and kernels-shared.wasm run on a shared memory and generate what the engine does', async () => {
    const wasm = (f) => readFile(path.join(site, 'wasm', f));
    const [engineBytes, kernelsBytes] = await Promise.all([wasm('wisp-shared.wasm'), wasm('kernels-shared.wasm')]);
    assert.ok(WebAssembly.validate(engineBytes) && WebAssembly.validate(kernelsBytes), 'V8 validates both');
    for (const bytes of [engineBytes, kernelsBytes]) {
      const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes)).filter((i) => i.kind === 'memory');
      assert.deepEqual(imports, [{ module: SHARED_MEMORY.module, name: SHARED_MEMORY.name, kind: 'memory' }]);
    }
    const memory = sharedMemory();
    const shared = await createEngine({ engine: engineBytes, kernels: kernelsBytes, forward: wasm('forward.wasm'), memory });
    assert.equal(shared.memory, memory, 'the engine runs on the memory it was given');
    assert.ok(shared.memory.buffer instanceof SharedArrayBuffer);
    const own = await newEngine();
    const bytes = await readFile(defaultModel);
    shared.load(bytes);
    own.load(bytes);
    const text = (e) => [...e.generate('And God said', { temperature: 0, maxTokens: 60 })].join('');
    assert.equal(text(shared), text(own));
    assert.ok(memory.buffer.byteLength > bytes.byteLength, 'the memory grew to hold the model');
  });
});

describe('Engine.reserve', { skip }, () => {
  test('a model written into the engine\'s buffer loads as load would load it', async () => {
    const bytes = await readFile(defaultModel);
    const a = await newEngine();
    const b = await newEngine();
    a.load(bytes);
    const buf = b.reserve(bytes.byteLength);
    assert.equal(buf.size, bytes.byteLength);
    buf.view().set(bytes);
    assert.deepEqual(buf.load(), a.info);
    assert.throws(() => buf.view(), { code: 'usage' });
    const text = (e) => [...e.generate('', { temperature: 0, maxTokens: 30 })].join('');
    assert.equal(text(b), text(a));
    assert.throws(() => b.reserve(10), { code: 'usage', message: /already loaded/ });
  });

  test('a bad file in the buffer is the engine\'s error, and the buffer is freed', async () => {
    const e = await newEngine();
    const buf = e.reserve(4096);
    buf.view().set(Buffer.from('not a GGUF file'));
    assert.throws(() => buf.load(), { code: 'engine', message: /GGUF|magic/i });
    assert.throws(() => buf.view(), { code: 'usage', message: /freed/ });
    assert.throws(() => e.reserve(0), { code: 'engine', message: /empty/ });
    assert.throws(() => e.reserve(5 * 2 ** 30), { code: 'too-large' });
    // The engine still loads a good model afterwards.
    assert.equal(e.load(await readFile(defaultModel)).architecture, 'llama');
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

  // cutting serves body at /m.gguf with Range support and an ETag; plan
  // says, request by request, where to cut the connection (a byte offset
  // into the file, or Infinity), whether to ignore Range, and which ETag
  // to send. It records the Range header of every request.
  async function cutting(t, body, plan) {
    const ranges = [];
    const srv = http.createServer((req, res) => {
      const step = plan[Math.min(ranges.length, plan.length - 1)];
      ranges.push(req.headers.range ?? '');
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = m && !step.ignoreRange ? Number(m[1]) : 0;
      const headers = { 'Content-Length': body.byteLength - from, ETag: step.etag ?? '"v1"' };
      if (from) headers['Content-Range'] = `bytes ${from}-${body.byteLength - 1}/${body.byteLength}`;
      res.writeHead(from ? 206 : 200, headers);
      const cut = step.cut ?? Infinity;
      if (cut >= body.byteLength) {
        res.end(body.subarray(from));
        return;
      }
      res.write(body.subarray(from, Math.max(from, cut)), () => res.socket.destroy());
    });
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    t.after(() => { srv.closeAllConnections(); srv.close(); });
    return { url: `http://127.0.0.1:${srv.address().port}/m.gguf`, ranges };
  }

  test('a download cut mid-way resumes where it stopped', async (t) => {
    const body = await readFile(defaultModel);
    const a = 300_000;
    const b = 1_500_000;
    const srv = await cutting(t, body, [{ cut: a }, { cut: b }, {}]);
    const events = [];
    const got = await download(srv.url, { retryDelays: [1, 1, 1], onProgress: (p) => events.push(p) });
    assert.ok(Buffer.from(got.bytes).equals(body), 'the bytes are the file');
    // The first request asks for the file, each resumption for the rest.
    assert.equal(srv.ranges[0], '');
    assert.match(srv.ranges[1], /^bytes=\d+-$/);
    assert.equal(srv.ranges.length, 3);
    const froms = srv.ranges.slice(1).map((r) => Number(r.slice(6, -1)));
    assert.ok(froms[0] <= a && froms[0] > 0 && froms[1] <= b && froms[1] > froms[0], `resumed from ${froms}`);
    assert.equal(events.at(-1).retries, 2);
    assert.equal(events.at(-1).loaded, body.byteLength);
    assert.ok(events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded || e.retries > events[i - 1].retries));
  });

  test('a resumption that is not the rest of the same file starts again', async (t) => {
    const body = await readFile(defaultModel);
    for (const second of [{ ignoreRange: true }, { etag: '"v2"' }]) {
      const srv = await cutting(t, body, [{ cut: 400_000 }, second, {}]);
      const got = await download(srv.url, { retryDelays: [1, 1] });
      assert.ok(Buffer.from(got.bytes).equals(body), `the bytes are the file (${JSON.stringify(second)})`);
    }
  });

  test('a download that keeps failing says how often it resumed', async (t) => {
    const body = await readFile(defaultModel);
    const srv = await cutting(t, body, [{ cut: 100_000 }]);
    await assert.rejects(download(srv.url, { retryDelays: [1, 1] }),
      { code: 'http', message: /m\.gguf: .*\(after 2 resumptions\)$/ });
    assert.equal(srv.ranges.length, 3);
  });

  test('an abort during the wait before a resumption stops at once', async (t) => {
    const body = await readFile(defaultModel);
    const srv = await cutting(t, body, [{ cut: 100_000 }]);
    const ctl = new AbortController();
    const t0 = performance.now();
    const p = download(srv.url, {
      retryDelays: [60_000], signal: ctl.signal,
      onProgress: (e) => { if (e.retries === 1) ctl.abort(new DOMException('stop', 'AbortError')); },
    });
    await assert.rejects(p, { name: 'AbortError' });
    assert.ok(performance.now() - t0 < 10_000, 'it did not wait out the delay');
  });

  test('with into, the bytes go straight into the array it gives, across a resumption', async (t) => {
    const body = await readFile(defaultModel);
    const srv = await cutting(t, body, [{ cut: 500_000 }, {}]);
    const sizes = [];
    let given = null;
    const into = (n) => { sizes.push(n); given = new Uint8Array(n); return given; };
    const got = await download(srv.url, { retryDelays: [1], into });
    assert.equal(got.bytes, given, 'the result is the array into gave');
    assert.ok(Buffer.from(got.bytes).equals(body));
    assert.deepEqual(sizes, [body.byteLength], 'one array, kept across the resumption');
    // A file that changed size between two answers gets a new array.
    const body2 = body.subarray(0, body.byteLength - 1000);
    let n = 0;
    const srv2 = http.createServer((req, res) => {
      const b = n++ === 0 ? body : body2;
      res.writeHead(200, { 'Content-Length': b.byteLength, ETag: `"${b.byteLength}"` });
      if (n === 1) res.write(b.subarray(0, 300_000), () => res.socket.destroy());
      else res.end(b);
    });
    await new Promise((resolve) => srv2.listen(0, '127.0.0.1', resolve));
    t.after(() => { srv2.closeAllConnections(); srv2.close(); });
    sizes.length = 0;
    const got2 = await download(`http://127.0.0.1:${srv2.address().port}/m.gguf`, { retryDelays: [1], into });
    assert.deepEqual(sizes, [body.byteLength, body2.byteLength]);
    assert.equal(got2.bytes, given);
    assert.ok(Buffer.from(got2.bytes).equals(body2));
  });

  test('with into, a server that sends more than its Content-Length is an error', async () => {
    // A fetch whose body runs past the length it states (a lying server
    // or proxy): the bytes must stay within into's array.
    const fetch = async () => new Response(new Blob(['x'.repeat(3000)]).stream(), { headers: { 'Content-Length': '1000' } });
    await assert.rejects(download('http://example.invalid/m.gguf', { fetch, retryDelays: [], into: (n) => new Uint8Array(n) }),
      { code: 'http', message: /sent more than the 1000 bytes it said/ });
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

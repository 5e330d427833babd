// header.test.js: wisp.load reads a model's header with Range requests
// before it downloads the file, and refuses a model the engine cannot run
// or hold with the engine's own error, after a small part of the file.
// A proxy in front of `wisp serve` counts the bytes it serves; it can
// also ignore Range (paths under /norange/) and serve a made-up file of
// gigabytes (paths under /made-up/).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createEngine, MAX_MODEL_BYTES } from '../engine.js';
import { defaultModel, launch, missing, nativeText, serve, site, wisp } from './helpers.js';

const skip = false;
test('the build outputs the tests need exist', () => assert.equal(missing(), ''));

// What the engine says of a tensor of a type it does not read.
const iq2Error = 'engine: tensor "blk.0.ffn_down.weight" has type IQ2_XXS; ' +
  'wisp reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K';

const GGML_IQ2_XXS = 16;
const GGML_Q4_0 = 2;
const GGML_F32 = 0;

// retype changes the type of one tensor in a GGUF file's tensor infos, in
// place: its name's length and bytes are followed by the dimension count,
// the dims, then the type.
function retype(buf, name, type) {
  const key = Buffer.alloc(8 + name.length);
  key.writeBigUInt64LE(BigInt(name.length));
  key.write(name, 8, 'latin1');
  const at = buf.indexOf(key);
  assert.ok(at > 0, `no tensor info for ${name}`);
  const nd = buf.readUInt32LE(at + key.length);
  buf.writeUInt32LE(type, at + key.length + 4 + 8 * nd);
}

// ggufHeader writes a GGUF v3 header: the key/value pairs ([key, value],
// a string, a uint32 or an array of strings) and the tensor infos, each
// at the next multiple of 32 in the data section, padded to the data
// section. It returns the bytes and the end of the last tensor's data.
function ggufHeader(kvs, tensors) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  parts.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(tensors.length);
  u64(kvs.length);
  for (const [key, v] of kvs) {
    str(key);
    if (typeof v === 'string') { u32(8); str(v); }
    else if (typeof v === 'number') { u32(4); u32(v); }
    else { u32(9); u32(8); u64(v.length); v.forEach(str); }
  }
  let off = 0;
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    t.dims.forEach(u64);
    u32(t.type);
    u64(off);
    const [bytes, block] = t.type === GGML_Q4_0 ? [18, 32] : [4, 1];
    off += Math.ceil((t.dims.reduce((a, b) => a * b, 1) / block) * bytes / 32) * 32;
  }
  const head = Buffer.concat(parts);
  const padded = Buffer.alloc(Math.ceil(head.length / 32) * 32);
  head.copy(padded);
  return { bytes: padded, dataEnd: padded.length + off };
}

const CHAT_TEMPLATE = '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}';

// withChatTemplate adds tokenizer.chat_template to a GGUF file, first
// among its key/value pairs. The template is padded with spaces so that
// the pair takes a multiple of 32 bytes: the data section, aligned to 32,
// moves by as much and every tensor's offset in it stays right.
function withChatTemplate(file, template) {
  const key = Buffer.from('tokenizer.chat_template');
  const fixed = 8 + key.length + 4 + 8;
  const value = Buffer.from(template.padEnd(template.length + ((32 - ((fixed + template.length) % 32)) % 32)));
  const kv = Buffer.alloc(fixed + value.length);
  kv.writeBigUInt64LE(BigInt(key.length), 0);
  key.copy(kv, 8);
  kv.writeUInt32LE(8, 8 + key.length); // a string
  kv.writeBigUInt64LE(BigInt(value.length), 12 + key.length);
  value.copy(kv, fixed);
  const out = Buffer.concat([file.subarray(0, 24), kv, file.subarray(24)]);
  out.writeBigUInt64LE(out.readBigUInt64LE(16) + 1n, 16); // one more pair
  return out;
}

// llama7B is the header of a Llama-2-7B-shaped model in Q4_0 (3.5 GiB of
// tensors): its file plus the key/value cache of 256 positions (256 MiB)
// do not fit in the 4 GiB of wasm32, though the file alone would.
function llama7B() {
  const dim = 4096, hidden = 11008, layers = 32, vocab = 32000;
  const kvs = [
    ['general.architecture', 'llama'], ['general.name', 'made up'],
    ['llama.context_length', 4096], ['llama.embedding_length', dim], ['llama.block_count', layers],
    ['llama.feed_forward_length', hidden], ['llama.attention.head_count', 32], ['llama.attention.head_count_kv', 32],
    ['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', Array.from({ length: vocab }, (_, i) => `t${i}`)],
  ];
  const m = (name, rows, cols) => ({ name, dims: [cols, rows], type: GGML_Q4_0 });
  const v = (name) => ({ name, dims: [dim], type: GGML_F32 });
  const tensors = [m('token_embd.weight', vocab, dim)];
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(v(p + 'attn_norm.weight'), m(p + 'attn_q.weight', dim, dim), m(p + 'attn_k.weight', dim, dim),
      m(p + 'attn_v.weight', dim, dim), m(p + 'attn_output.weight', dim, dim), v(p + 'ffn_norm.weight'),
      m(p + 'ffn_gate.weight', hidden, dim), m(p + 'ffn_up.weight', hidden, dim), m(p + 'ffn_down.weight', dim, hidden));
  }
  tensors.push(v('output_norm.weight'), m('output.weight', vocab, dim));
  return ggufHeader(kvs, tensors);
}

// countingProxy serves upstream's files and counts the bytes of every
// answer. Under /norange/ it drops the Range header (as a server that
// ignores it); under /cut-once/ it cuts the connection of the first
// download of a file (a request with no Range) after 600 KB, as a dropped
// network would; under /made-up/ it serves the files of madeUp (a header,
// then zeros up to size) itself, with Range.
function countingProxy(upstream, madeUp) {
  const u = new URL(upstream);
  const log = [];
  const server = http.createServer((req, res) => {
    const entry = { path: req.url, range: req.headers.range, status: 0, bytes: 0 };
    log.push(entry);
    const send = (status, headers, chunks) => {
      entry.status = status;
      res.writeHead(status, headers);
      const pump = () => {
        for (;;) {
          const c = chunks.next();
          if (c.done) return res.end();
          entry.bytes += c.value.length;
          if (!res.write(c.value)) return res.once('drain', pump);
        }
      };
      pump();
    };
    if (req.url.startsWith('/made-up/')) {
      const file = madeUp[req.url.slice('/made-up/'.length)];
      if (!file) return send(404, {}, [][Symbol.iterator]());
      let [start, end] = [0, file.size - 1];
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) [start, end] = [Number(m[1]), Math.min(file.size - 1, m[2] ? Number(m[2]) : file.size - 1)];
      const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start + 1), 'Accept-Ranges': 'bytes' };
      if (m) headers['Content-Range'] = `bytes ${start}-${end}/${file.size}`;
      function* chunks() {
        const zeros = Buffer.alloc(1 << 16);
        for (let at = start; at <= end;) {
          const n = Math.min(1 << 16, end + 1 - at);
          const c = Buffer.alloc(n);
          if (at < file.header.length) file.header.copy(c, 0, at, Math.min(file.header.length, at + n));
          else zeros.copy(c, 0, 0, n);
          yield c;
          at += n;
        }
      }
      res.on('close', () => { entry.closed = true; });
      return send(m ? 206 : 200, headers, chunks());
    }
    const headers = { ...req.headers, host: u.host };
    let p = req.url;
    let cutAt = Infinity;
    if (p.startsWith('/norange/')) {
      p = p.slice('/norange'.length);
      delete headers.range;
    } else if (p.startsWith('/cut-once/')) {
      p = p.slice('/cut-once'.length);
      if (!req.headers.range && !log.some((e) => e !== entry && e.path === req.url && !e.range)) cutAt = 600_000;
    }
    const up = http.request({ host: u.hostname, port: u.port, method: req.method, path: p, headers }, (ur) => {
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode, ur.headers);
      ur.on('data', (c) => {
        if (entry.bytes + c.length > cutAt) {
          res.write(c.subarray(0, cutAt - entry.bytes), () => res.destroy());
          entry.bytes = cutAt;
          entry.cut = true;
          ur.destroy();
          return;
        }
        entry.bytes += c.length;
        if (!res.write(c)) ur.pause();
      });
      res.on('drain', () => ur.resume());
      ur.on('end', () => res.end());
    });
    res.on('close', () => up.destroy());
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return {
    log,
    /** served sums the bytes served for a path (any range). */
    served: (p) => log.filter((e) => e.path === p).reduce((n, e) => n + e.bytes, 0),
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}/`))),
    close: () => { server.closeAllConnections?.(); return new Promise((resolve) => server.close(resolve)); },
  };
}

describe('the early check of a model header, in Chromium', { skip }, () => {
  let dir;
  let srv;
  let proxy;
  let url;
  let browser;
  let page;
  let iq2Size;
  let huge;
  const errors = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-header-'));
    const models = path.join(dir, 'models');
    await mkdir(models);
    await copyFile(defaultModel, path.join(models, 'default.gguf'));
    // A TinyStories-15M-shaped model in F32 (its header holds 32000
    // tokens, some 700 KB), with one tensor of a type wisp does not read.
    const s15 = path.join(dir, 's15.gguf');
    await wisp(['synth', '--shape', 'stories15M', '--type', 'f32', '-o', s15]);
    const buf = await readFile(s15);
    retype(buf, 'blk.0.ffn_down.weight', GGML_IQ2_XXS);
    await writeFile(path.join(models, 'iq2.gguf'), buf);
    iq2Size = buf.length;
    await writeFile(path.join(models, 'chat.gguf'), withChatTemplate(await readFile(defaultModel), CHAT_TEMPLATE));
    const h = llama7B();
    huge = { header: h.bytes, size: MAX_MODEL_BYTES - (4 << 20) };
    assert.ok(h.dataEnd <= huge.size && h.dataEnd > 3.4 * 2 ** 30, `tensors end at ${h.dataEnd}`);
    [srv, browser] = await Promise.all([serve(models), launch()]);
    proxy = countingProxy(srv.url, { 'llama7b.gguf': huge });
    url = await proxy.listen();
    page = await browser.newPage();
    page.on('pageerror', (err) => errors.push(err));
    page.on('console', (msg) => { if (msg.type() === 'error') console.error('page:', msg.text()); });
    // A page of the origin that loads nothing itself.
    await page.goto(`${url}README.md`);
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.deepEqual(errors.map(String), [], 'uncaught errors in the page');
  });

  // load loads a model in the page and returns what happened.
  const load = (modelURL, opts = {}) => page.evaluate(async ([u, o]) => {
    const wisp = await import('./wisp.js');
    let progress = null;
    try {
      const m = await wisp.load(u, { ...o, onProgress: (p) => { progress = p; } });
      let text = '';
      for await (const piece of m.generate('', { temperature: 0, maxTokens: 40 })) text += piece;
      const { fileSize, fromCache, chatTemplate, memoryBytes } = m.info;
      m.unload();
      return { text, info: { fileSize, fromCache, chatTemplate, memoryBytes }, progress };
    } catch (err) {
      return { error: { code: err.code, op: err.op, message: err.message } };
    }
  }, [modelURL, opts]);

  test('a model with an IQ2 tensor is refused after its header, with the engine\'s error', async () => {
    // The full load's error, in Node and natively.
    const wasm = (f) => readFile(path.join(site, 'wasm', f));
    const eng = await createEngine({ engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm') });
    const full = await readFile(path.join(dir, 'models', 'iq2.gguf'));
    assert.throws(() => eng.load(full), { code: 'engine', message: iq2Error });
    await assert.rejects(wisp(['run', '-m', path.join(dir, 'models', 'iq2.gguf'), '-n', '4']), (err) => err.stderr.includes(iq2Error));

    const res = await load('models/iq2.gguf', { cache: false });
    assert.deepEqual(res.error, { code: 'engine', op: 'wisp_check', message: iq2Error });
    const reqs = proxy.log.filter((e) => e.path === '/models/iq2.gguf');
    const served = proxy.served('/models/iq2.gguf');
    console.log(`# refused after ${served} bytes of ${iq2Size} (${reqs.map((e) => `${e.status} ${e.range}`).join(', ')})`);
    assert.ok(reqs.length >= 2 && reqs.every((e) => e.status === 206 && e.range), 'only Range requests, growing');
    assert.ok(served < iq2Size / 20, `${served} bytes served of ${iq2Size}`);
  });

  test('a server that ignores Range: the body is cut short', async () => {
    const res = await load('norange/models/iq2.gguf', { cache: false });
    assert.deepEqual(res.error, { code: 'engine', op: 'wisp_check', message: iq2Error });
    const reqs = proxy.log.filter((e) => e.path === '/norange/models/iq2.gguf');
    const served = proxy.served('/norange/models/iq2.gguf');
    console.log(`# refused after ${served} bytes served of ${iq2Size} by a server that ignores Range (${reqs.length} requests)`);
    assert.equal(reqs.length, 1, 'one answer, read as far as the header needs');
    assert.equal(reqs[0].status, 200);
    // Each request reads only what it needs and cancels the rest; what the
    // server pushes before it sees the cancel is in the count.
    assert.ok(served < iq2Size / 2, `${served} bytes served of ${iq2Size}`);
  });

  test('a model too large for wasm32 memory is refused after its header', async () => {
    const res = await load('made-up/llama7b.gguf', { cache: false });
    const gib = (huge.size / 2 ** 30).toFixed(2);
    assert.equal(res.error?.code, 'too-large', JSON.stringify(res));
    assert.equal(res.error.message,
      `wisp: the model is ${gib} GiB, too large for the engine's memory (at most 3.94 GiB in wasm32, less where the browser grants less): ` +
      `wisp: a model of ${gib} GiB with a session of 256 positions does not fit in the 4.00 GiB of memory the module may use`);
    const served = proxy.served('/made-up/llama7b.gguf');
    console.log(`# refused after ${served} bytes of ${huge.size} (header ${huge.header.length})`);
    assert.ok(served < 2 * huge.header.length + (64 << 10), `${served} bytes served`);
  });

  test('a good model still loads and generates, from Range requests and from a server that ignores them', async () => {
    const want = (await nativeText(defaultModel, { positions: 40 })).replace(/\n$/, '');
    const size = (await readFile(defaultModel)).length;
    for (const p of ['models/default.gguf', 'norange/models/default.gguf']) {
      const res = await load(p, { cache: false });
      assert.equal(res.error, undefined, JSON.stringify(res.error));
      assert.equal(res.text, want, p);
      assert.equal(res.info.fileSize, size);
      const reqs = proxy.log.filter((e) => e.path === `/${p}`);
      assert.equal(reqs[0].range, 'bytes=0-65535', 'the header first');
      assert.equal(reqs.at(-1).range, undefined, 'then the download');
      assert.equal(reqs.at(-1).bytes, size);
    }
    // From Cache Storage: no request at all the second time.
    const first = await load('models/default.gguf');
    assert.equal(first.info.fromCache, false);
    const n = proxy.log.length;
    const second = await load('models/default.gguf');
    assert.equal(second.info.fromCache, true);
    assert.equal(second.text, want);
    // The kept copy is the file, byte for byte (it is written a MiB at a
    // time from views of the engine's memory).
    const kept = await page.evaluate(async (u) => {
      const buf = await (await (await caches.open('wisp-models-v1')).match(u)).arrayBuffer();
      return [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, new URL('models/default.gguf', url).href);
    assert.equal(kept, createHash('sha256').update(await readFile(defaultModel)).digest('hex'), 'the copy in Cache Storage');
    assert.deepEqual(proxy.log.slice(n).filter((e) => e.path.includes('.gguf')), [], 'a cached model needs no Range request');
  });

  test('a download cut mid-way completes, and its progress says it resumed', async () => {
    const want = (await nativeText(defaultModel, { positions: 40 })).replace(/\n$/, '');
    const size = (await readFile(defaultModel)).length;
    const res = await load('cut-once/models/default.gguf', { cache: false });
    assert.equal(res.error, undefined, JSON.stringify(res.error));
    assert.equal(res.text, want);
    assert.ok(res.progress.retries >= 1, JSON.stringify(res.progress));
    assert.equal(res.progress.loaded, size);
    // The header's range, the cut download, then the rest. Which requests
    // fetch the rest is the browser's business as much as the Worker's:
    // Chromium's network stack may itself retry a request whose
    // connection was reset. download.js's own requests are checked
    // exactly in engine.test.js, against a server that cuts; here, that a
    // page's load goes through a cut and says it resumed.
    const reqs = proxy.log.filter((e) => e.path === '/cut-once/models/default.gguf');
    assert.ok(reqs.find((e) => !e.range)?.cut, 'the first download was cut');
    const served = reqs.reduce((n, e) => n + e.bytes, 0);
    assert.ok(served < 3 * size, `${served} bytes served for a file of ${size}: ${JSON.stringify(reqs)}`);
  });

  // loadFile fetches a file, hands it to wisp.load as a File (as a picker
  // or a drop would) and returns what happened.
  const loadFile = (fileURL, name) => page.evaluate(async ([u, n]) => {
    const wisp = await import('./wisp.js');
    const file = new File([await (await fetch(u, { cache: 'no-store' })).arrayBuffer()], n);
    let progress = null;
    try {
      const m = await wisp.load(file, { onProgress: (p) => { progress = p; } });
      let text = '';
      for await (const piece of m.generate('', { temperature: 0, maxTokens: 40 })) text += piece;
      const { url, fileName, fileSize, fromCache } = m.info;
      m.unload();
      return { text, info: { url, fileName, fileSize, fromCache }, progress };
    } catch (err) {
      return { error: { code: err.code, op: err.op, message: err.message } };
    }
  }, [fileURL, name]);

  test('a local file loads with no request for it, and one wisp cannot run is refused', async () => {
    const want = (await nativeText(defaultModel, { positions: 40 })).replace(/\n$/, '');
    const size = (await readFile(defaultModel)).length;
    const n = proxy.log.length;
    const res = await loadFile('models/default.gguf', 'default.gguf');
    assert.equal(res.error, undefined, JSON.stringify(res.error));
    assert.equal(res.text, want);
    assert.deepEqual(res.info, { url: '', fileName: 'default.gguf', fileSize: size, fromCache: false });
    assert.deepEqual(res.progress, { ...res.progress, loaded: size, total: size, cached: false, retries: 0 });
    assert.equal(proxy.log.slice(n).filter((e) => e.path.endsWith('.gguf')).length, 1, 'only the test\'s own fetch');

    const bad = await loadFile('models/iq2.gguf', 'iq2.gguf');
    assert.deepEqual(bad.error, { code: 'engine', op: 'wisp_check', message: iq2Error });
    const text = await loadFile('README.md', 'notes.gguf');
    assert.equal(text.error?.code, 'engine', JSON.stringify(text));
    assert.match(text.error.message, /GGUF|magic/i);
  });

  test('wisp.cache lists, deletes and estimates the cached models', async () => {
    await load('models/default.gguf'); // cached (if an earlier test has not already)
    const size = (await readFile(defaultModel)).length;
    const res = await page.evaluate(async () => {
      const wisp = await import('./wisp.js');
      const before = await wisp.cache.list();
      const estimate = await wisp.cache.estimate();
      const deleted = await wisp.cache.delete('models/default.gguf');
      const again = await wisp.cache.delete('models/default.gguf');
      return { before, estimate, deleted, again, after: await wisp.cache.list() };
    });
    const model = new URL('models/default.gguf', url).href;
    assert.deepEqual(res.before.filter((e) => e.url === model), [{ url: model, size }]);
    assert.ok(res.estimate.usage >= size && res.estimate.quota > res.estimate.usage, JSON.stringify(res.estimate));
    assert.equal(res.deleted, true);
    assert.equal(res.again, false);
    assert.deepEqual(res.after.filter((e) => e.url === model), []);
    // The next load downloads it again.
    assert.equal((await load('models/default.gguf')).info.fromCache, false);
  });

  test('model.info has the chat template and the engine\'s memory', async () => {
    const plain = await load('models/default.gguf', { cache: false });
    const chat = await load('models/chat.gguf', { cache: false });
    assert.equal(chat.error, undefined, JSON.stringify(chat.error));
    assert.equal(plain.info.chatTemplate, '');
    assert.equal(chat.info.chatTemplate.trimEnd(), CHAT_TEMPLATE);
    assert.equal(chat.text, plain.text, 'the same model, with a template');
    for (const r of [plain, chat]) {
      assert.ok(r.info.memoryBytes > r.info.fileSize && r.info.memoryBytes < r.info.fileSize + (256 << 20), JSON.stringify(r.info));
    }
  });

  test('a corrupted copy in Cache Storage is dropped and fetched again', async () => {
    const body = await readFile(defaultModel);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const want = (await nativeText(defaultModel, { positions: 40 })).replace(/\n$/, '');
    const model = new URL('models/default.gguf', url).href;
    // corrupt replaces the cached copy: flipped bytes of the same length,
    // or a body shorter than its Content-Length says.
    const corrupt = (how) => page.evaluate(async ([u, h, n]) => {
      const store = await caches.open('wisp-models-v1');
      const bytes = new Uint8Array((await (await store.match(u)).arrayBuffer()));
      if (h === 'flipped') bytes[bytes.length >> 1] ^= 0xff;
      const kept = h === 'flipped' ? bytes : bytes.subarray(0, bytes.length >> 1);
      await store.put(u, new Response(kept, { headers: { 'Content-Length': String(n) } }));
    }, [model, how, body.length]);
    assert.equal((await load('models/default.gguf', { sha256 })).error, undefined); // cached now
    for (const [how, opts] of [['flipped', { sha256 }], ['cut short', {}]]) {
      await corrupt(how);
      const n = proxy.log.length;
      const res = await load('models/default.gguf', opts);
      assert.equal(res.error, undefined, `${how}: ${JSON.stringify(res.error)}`);
      assert.equal(res.info.fromCache, false, `${how}: the bad copy was used`);
      assert.equal(res.text, want, how);
      assert.equal(proxy.log.slice(n).filter((e) => e.path === '/models/default.gguf' && !e.range).length, 1, `${how}: one download`);
      const again = await load('models/default.gguf', opts);
      assert.equal(again.info.fromCache, true, `${how}: the fresh copy was kept`);
      assert.equal(again.text, want);
    }
  });

  test('a missing model is the download\'s error', async () => {
    const res = await load('models/missing.gguf', { cache: false });
    assert.equal(res.error?.code, 'http');
    assert.match(res.error.message, /HTTP 404/);
  });
});

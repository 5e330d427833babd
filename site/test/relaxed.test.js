// relaxed.test.js: relaxed.wasm (simd/relaxed.wat), the relaxed-SIMD passes
// of the quantized matrix-vector products, must give kernels.wasm's results
// to the bit. In Chromium: matmul_q of both over every quantized type, odd
// sizes, one to five vectors, unaligned addresses and hostile values; and
// the engine's greedy tokens and logits on quantized models with and without
// relaxed.wasm. In Node: the loader falls back to the baseline, and says
// why, where relaxed SIMD is missing or wrong.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { createEngine } from '../engine.js';
import { launch, missing, serve, site, wisp } from './helpers.js';

test('the build outputs the tests need exist', () => {
  assert.equal(missing(), '');
});

describe('relaxed.wasm in Chromium', () => {
  let dir;
  let srv;
  let browser;
  let page;
  // The models: Q4_K and Q6_K (rows of 256), Q5_0 and Q8_0 (the Q4_K_M
  // fallbacks for rows of 288), Q4_0, Q4_1, Q5_1 and Q5_K.
  const models = ['k-q4_k_m.gguf', 's15-q4_k_m.gguf', 'k-q4_0.gguf', 's15-q8_0.gguf', 'k-q4_1.gguf', 's15-q5_1.gguf', 'k-q5_k_m.gguf'];
  const seen = new Set(); // the tensor types the models held

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-relaxed-'));
    const m = path.join(dir, 'models');
    await mkdir(m);
    const k = path.join(dir, 'k.gguf');
    const s15 = path.join(dir, 's15.gguf');
    await Promise.all([
      wisp(['synth', '--dim', '256', '--hidden', '768', '--layers', '2', '--heads', '4', '--vocab', '1000', '-o', k]),
      wisp(['synth', '--shape', 'stories15M', '-o', s15]),
    ]);
    await Promise.all(models.map((f) => {
      const [src, type] = f.replace('.gguf', '').split('-');
      return wisp(['convert', '--type', type, '-o', path.join(m, f), src === 'k' ? k : s15]);
    }));
    [srv, browser] = await Promise.all([serve(m), launch()]);
    page = await browser.newPage();
    await page.goto(`${srv.url}embed.html`);
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('Chromium validates relaxed.wasm and its check passes', async () => {
    const res = await page.evaluate(async () => {
      const bytes = await (await fetch('wasm/relaxed.wasm')).arrayBuffer();
      const q = await import('./bench/qkernels.js');
      const get = async (u) => (await fetch(u)).arrayBuffer();
      const k = await q.instantiate({ kernels: await get('wasm/kernels.wasm'), forward: await get('wasm/forward.wasm') });
      const table = new WebAssembly.Table({ initial: 15, element: 'anyfunc' });
      const r = await WebAssembly.instantiate(bytes, { engine: { memory: k.memory }, simd: { table }, kernels: { matmul_q: k.base } });
      return { valid: WebAssembly.validate(bytes), check: r.instance.exports.check() };
    });
    assert.deepEqual(res, { valid: true, check: 1 });
  });

  test('matmul_q of relaxed.wasm equals kernels.wasm\'s to the bit', { timeout: 300_000 }, async () => {
    const res = await page.evaluate(async () => {
      const q = await import('./bench/qkernels.js');
      const get = async (u) => (await fetch(u)).arrayBuffer();
      const k = await q.instantiate({
        kernels: await get('wasm/kernels.wasm'), forward: await get('wasm/forward.wasm'), relaxed: await get('wasm/relaxed.wasm'),
      });
      // Twice: the first pass runs V8's baseline tier, the second (after
      // the functions have warmed up) its optimised code.
      const a = q.compare(k);
      const b = q.compare(k);
      return { cases: a.cases + b.cases, bad: [...a.bad, ...b.bad] };
    });
    assert.ok(res.cases > 5000, `only ${res.cases} cases`);
    assert.deepEqual(res.bad.slice(0, 10), []);
  });

  for (const model of models) {
    test(`${model}: greedy tokens and logits are the same with and without relaxed.wasm`, { timeout: 120_000 }, async () => {
      const res = await page.evaluate(async (url) => {
        const { createEngine } = await import('./engine.js');
        const file = new Uint8Array(await (await fetch(url)).arrayBuffer());
        const run = async (relaxed) => {
          const eng = await createEngine({
            engine: fetch('wasm/wisp.wasm'), kernels: fetch('wasm/kernels.wasm'), forward: fetch('wasm/forward.wasm'),
            relaxed: relaxed ? fetch('wasm/relaxed.wasm') : undefined,
          });
          const info = eng.load(file);
          eng.prompt('Once upon a time', { temperature: 0, maxTokens: 24 });
          const pieces = [];
          const logits = [];
          for (;;) {
            const { piece, done } = eng.next();
            if (done) break;
            pieces.push(piece);
            logits.push(Array.from(new Uint32Array(eng.bytes(eng.call('wisp_logits_ptr'), info.vocabSize * 4).slice().buffer)));
          }
          return { kernels: eng.kernels, types: info.tensorTypes, pieces, logits };
        };
        return { base: await run(false), relaxed: await run(true) };
      }, `models/${model}`);
      for (const t of Object.keys(res.base.types)) seen.add(t);
      assert.equal(res.base.kernels.name, 'wasm-simd128');
      assert.equal(res.relaxed.kernels.name, 'wasm-simd128+relaxed');
      assert.ok(res.base.pieces.length >= 20, `${res.base.pieces.length} tokens`);
      assert.deepEqual(res.relaxed.pieces, res.base.pieces);
      for (let i = 0; i < res.base.logits.length; i++) {
        assert.deepEqual(res.relaxed.logits[i], res.base.logits[i], `logits after token ${i}`);
      }
    });
  }

  test('the models held every type relaxed.wasm runs', () => {
    for (const t of ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']) assert.ok(seen.has(t), `no ${t} tensor: ${[...seen]}`);
  });

  test('the demo says which kernels it runs', async () => {
    const p = await browser.newPage();
    await p.goto(`${srv.url}?model=models/${models[0]}`);
    await p.waitForSelector('body[data-state=ready]', { timeout: 60_000 });
    assert.match(await p.textContent('#model-info'), /relaxed-SIMD kernels/);
    await p.close();
  });
});

describe('relaxed.wasm in Node', () => {
  const wasm = (f) => readFile(path.join(site, 'wasm', f));

  test('without relaxed SIMD the loader runs the baseline and says why', async () => {
    const bytes = await wasm('relaxed.wasm');
    if (WebAssembly.validate(bytes)) return; // a Node that has relaxed SIMD: the next test covers it
    const eng = await createEngine({
      engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm'), relaxed: bytes,
    });
    assert.deepEqual(eng.kernels, {
      name: 'wasm-simd128', relaxed: false, reason: 'this JavaScript engine lacks WebAssembly relaxed SIMD',
    });
  });

  // Node 20 has relaxed SIMD behind a flag, and its baseline compiler gets
  // i32x4.relaxed_dot_i8x16_i7x16_add_s wrong: the check must catch that,
  // and where the check passes the results must match.
  test('with --experimental-wasm-relaxed-simd the check decides, and the results match', { timeout: 300_000 }, async () => {
    const script = `
      import { readFile } from 'node:fs/promises';
      import { createEngine } from '${new URL('../engine.js', import.meta.url)}';
      import { instantiate, compare } from '${new URL('../bench/qkernels.js', import.meta.url)}';
      const wasm = (f) => readFile(${JSON.stringify(path.join(site, 'wasm'))} + '/' + f);
      const eng = await createEngine({ engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm'), relaxed: wasm('relaxed.wasm') });
      let cmp = null;
      if (eng.kernels.relaxed) {
        const k = await instantiate({ kernels: await wasm('kernels.wasm'), forward: await wasm('forward.wasm'), relaxed: await wasm('relaxed.wasm') });
        cmp = compare(k);
      }
      console.log(JSON.stringify({ kernels: eng.kernels, cmp }));`;
    const { stdout } = await promisify(execFile)(process.execPath,
      ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { maxBuffer: 1 << 24 });
    const res = JSON.parse(stdout);
    if (res.kernels.relaxed) {
      assert.deepEqual(res.cmp.bad.slice(0, 10), []);
    } else {
      assert.match(res.kernels.reason, /check|lacks/);
    }
    console.log(`Node ${process.version} with the flag: ${res.kernels.name}${res.kernels.reason ? ` (${res.kernels.reason})` : ''}`);
  });
});

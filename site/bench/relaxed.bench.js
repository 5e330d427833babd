// relaxed.bench.js: GB/s of quantized weights that kernels.wasm's and
// relaxed.wasm's matmul_q reach in headless Chromium, one vector, on the
// SmolLM2-135M shapes (1536×576: the feed-forward up and gate; 576×1536:
// down; 49152×576: the output). The two kernels run interleaved, several
// rounds, so that a busy machine slows both alike; it prints the median
// and range of each and their ratio. Run it with
// cd site && node --test bench/relaxed.bench.js (after make site).
//
// To time a change of the kernels, keep the build before it in a folder
// under site/ (mkdir -p site/wasm/old && cp site/wasm/{kernels,forward,
// relaxed}.wasm site/wasm/old/ before make site) and set
// WISP_OLD_WASM=wasm/old: the kernel test then also times that build
// against site/wasm's, and the decode test (WISP_DECODE_MODELS) runs the
// two builds' relaxed kernels instead of the baseline against relaxed.

import { test } from 'node:test';

import { launch, missing, serve } from '../test/helpers.js';

test('matmul_q GB/s in Chromium: kernels.wasm and relaxed.wasm', { timeout: 900_000 }, async (t) => {
  if (missing()) throw new Error(missing());
  const srv = await serve(new URL('../../models', import.meta.url).pathname);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html`);
  const rows = await page.evaluate(async () => {
    const q = await import('./bench/qkernels.js');
    const get = async (u) => (await fetch(u)).arrayBuffer();
    const k = await q.instantiate({
      kernels: await get('wasm/kernels.wasm'), forward: await get('wasm/forward.wasm'), relaxed: await get('wasm/relaxed.wasm'),
    });
    const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    const range = (a) => `${Math.min(...a).toFixed(1)}–${Math.max(...a).toFixed(1)}`;
    const out = [];
    for (const qt of ['Q8_0', 'Q5_0', 'Q4_0', 'Q4_1', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']) {
      for (const [r, c] of [[1536, 576], [576, 1536], [49152, 576]]) {
        if (c % q.QTypes[qt].len) continue;
        const cs = new q.Case(k.memory, { qt, rows: r, cols: c, n: 1, seed: 7 });
        const base = [];
        const relaxed = [];
        for (let i = 0; i < 4; i++) {
          base.push(...q.time(k.base, cs, { samples: 2, minMs: 150 }));
          relaxed.push(...q.time(k.relaxed, cs, { samples: 2, minMs: 150 }));
        }
        out.push({
          type: qt, shape: `${r}×${c}`, MB: +(cs.wBytes / 1e6).toFixed(2),
          'kernels.wasm GB/s': `${med(base).toFixed(1)} (${range(base)})`,
          'relaxed.wasm GB/s': `${med(relaxed).toFixed(1)} (${range(relaxed)})`,
          ratio: +(med(relaxed) / med(base)).toFixed(2),
        });
      }
    }
    return out;
  });
  console.log('matmul_q, one vector, GB/s of weights: median (range) of 8 samples each, interleaved:');
  console.table(rows);
});

// The same GB/s for two builds of the kernels, interleaved: the folder
// $WISP_OLD_WASM (under site/, such as wasm/old) holds an earlier
// kernels.wasm and relaxed.wasm, against which site/wasm's are timed; each
// build gets a memory of its own holding the same matrices. Without it this
// test is skipped. $WISP_QTYPES limits the types (comma-separated).
const oldWasm = process.env.WISP_OLD_WASM;
test('matmul_q GB/s in Chromium: an earlier build against this one', { skip: !oldWasm, timeout: 900_000 }, async (t) => {
  const srv = await serve(new URL('../../models', import.meta.url).pathname);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html`);
  const types = (process.env.WISP_QTYPES || 'Q8_0,Q5_0,Q4_K,Q6_K').split(',');
  const rows = await page.evaluate(async ({ oldWasm, types }) => {
    const q = await import('./bench/qkernels.js');
    const get = async (u) => (await fetch(u)).arrayBuffer();
    const build = async (dir) => q.instantiate({
      kernels: await get(`${dir}/kernels.wasm`), forward: await get(`${dir}/forward.wasm`), relaxed: await get(`${dir}/relaxed.wasm`),
    });
    const ks = { old: await build(oldWasm), new: await build('wasm') };
    const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    const range = (a) => `${Math.min(...a).toFixed(1)}–${Math.max(...a).toFixed(1)}`;
    const out = [];
    for (const qt of types) {
      for (const [r, c] of [[1536, 576], [576, 1536], [49152, 576]]) {
        if (c % q.QTypes[qt].len) continue;
        const res = {};
        for (const [name, k] of Object.entries(ks)) {
          const cs = new q.Case(k.memory, { qt, rows: r, cols: c, n: 1, seed: 7 });
          res[name] = { k, cs, base: [], relaxed: [] };
        }
        for (let i = 0; i < 4; i++) {
          for (const name of i % 2 ? ['new', 'old'] : ['old', 'new']) {
            const e = res[name];
            e.base.push(...q.time(e.k.base, e.cs, { samples: 2, minMs: 100 }));
            if (e.k.relaxed) e.relaxed.push(...q.time(e.k.relaxed, e.cs, { samples: 2, minMs: 100 }));
          }
        }
        const o = res.old;
        const n = res.new;
        out.push({
          type: qt, shape: `${r}×${c}`,
          'old kernels GB/s': `${med(o.base).toFixed(1)} (${range(o.base)})`,
          'new kernels GB/s': `${med(n.base).toFixed(1)} (${range(n.base)})`,
          'kernels new÷old': +(med(n.base) / med(o.base)).toFixed(2),
          'old relaxed GB/s': `${med(o.relaxed).toFixed(1)} (${range(o.relaxed)})`,
          'new relaxed GB/s': `${med(n.relaxed).toFixed(1)} (${range(n.relaxed)})`,
          'relaxed new÷old': +(med(n.relaxed) / med(o.relaxed)).toFixed(2),
        });
      }
    }
    return out;
  }, { oldWasm, types });
  console.log(`matmul_q, one vector, GB/s of weights, ${oldWasm} (old) against wasm (new): median (range) of 8 samples each, interleaved:`);
  console.table(rows);
});

// The decode rate of whole models, with and without relaxed.wasm, in one
// page: each model is loaded into two engines (createEngine, as the Worker
// makes them), and short greedy decodes alternate between all of them,
// round after round, so that a busy machine slows every one alike. The
// models are the GGUF files of $WISP_DECODE_MODELS (a folder; make bench's
// -dir keeps such files); without it this test is skipped.
const decodeModels = process.env.WISP_DECODE_MODELS;
test('decode tokens/s in Chromium, with and without relaxed.wasm (or an earlier build against this one)', { skip: !decodeModels, timeout: 1_800_000 }, async (t) => {
  const { readdir } = await import('node:fs/promises');
  const files = (await readdir(decodeModels)).filter((f) => f.endsWith('.gguf') && !/f32/i.test(f)).sort();
  const srv = await serve(decodeModels);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html`);
  const rounds = Number(process.env.WISP_DECODE_ROUNDS || 6);
  const tokens = Number(process.env.WISP_DECODE_TOKENS || 48);
  // $WISP_DECODE_PROMPT words of prompt (about as many tokens) put the
  // decode further into the context, as make bench's 128-token prompt does.
  const prompt = 'the '.repeat(Number(process.env.WISP_DECODE_PROMPT || 0)).trim();
  const res = await page.evaluate(async ({ files, rounds, tokens, prompt, oldWasm }) => {
    const { createEngine } = await import('./engine.js');
    const engines = [];
    for (const f of files) {
      const bytes = new Uint8Array(await (await fetch(`models/${f}`)).arrayBuffer());
      // With $WISP_OLD_WASM, an earlier build's kernels (relaxed both)
      // against site/wasm's instead of the baseline against relaxed.
      const builds = oldWasm ? [[oldWasm, true], ['wasm', true]] : [['wasm', false], ['wasm', true]];
      for (const [dir, relaxed] of builds) {
        const eng = await createEngine({
          engine: fetch('wasm/wisp.wasm'), kernels: fetch(`${dir}/kernels.wasm`), forward: fetch(`${dir}/forward.wasm`),
          relaxed: relaxed ? fetch(`${dir}/relaxed.wasm`) : undefined,
        });
        eng.load(bytes);
        engines.push({ file: f, kernels: oldWasm ? `${eng.kernels.name} (${dir})` : eng.kernels.name, eng, rates: [] });
      }
    }
    // One decode: the prompt, then `tokens` greedy tokens; the rate leaves
    // out the first step (the prompt's evaluation).
    const decode = (e) => {
      e.eng.prompt(prompt, { temperature: 0, maxTokens: tokens + 1, context: 512 });
      e.eng.next();
      const t0 = performance.now();
      let n = 0;
      while (!e.eng.next().done) n++;
      return (n * 1000) / (performance.now() - t0);
    };
    for (const e of engines) decode(e); // warm-up: V8's optimised tier
    for (const e of engines) decode(e);
    for (let r = 0; r < rounds; r++) {
      for (const e of r % 2 ? engines.slice().reverse() : engines) e.rates.push(decode(e));
    }
    return engines.map(({ file, kernels, rates }) => ({ file, kernels, rates }));
  }, { files, rounds, tokens, prompt, oldWasm });
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const f16 = Object.fromEntries(res.filter((r) => /f16/i.test(r.file)).map((r) => [r.kernels, r.rates]));
  // The ratio to F16 round by round (the two ran close in time).
  const ratios = (r) => r.rates.map((v, i) => v / f16[r.kernels][i]);
  console.log(`decode tokens/s, ${tokens} greedy tokens after ${prompt ? `a prompt of ${prompt.split(' ').length} words` : 'BOS'}, ${rounds} interleaved rounds: median (range), and the ratio to the F16 file's rate with the same kernels in the same round: median (range)`);
  console.table(res.map((r) => ({
    file: r.file, kernels: r.kernels,
    'tok/s': `${med(r.rates).toFixed(1)} (${Math.min(...r.rates).toFixed(1)}–${Math.max(...r.rates).toFixed(1)})`,
    // The best run is the one a busy machine disturbed least.
    best: +Math.max(...r.rates).toFixed(1),
    'best ÷ F16 best': f16[r.kernels] ? +(Math.max(...r.rates) / Math.max(...f16[r.kernels])).toFixed(2) : '',
    '÷ F16, by round': f16[r.kernels]
      ? `${med(ratios(r)).toFixed(2)} (${Math.min(...ratios(r)).toFixed(2)}–${Math.max(...ratios(r)).toFixed(2)})` : '',
  })));
  console.log(JSON.stringify(res));
});

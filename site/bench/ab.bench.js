// ab.bench.js: decode and prefill tokens/s of whole models in headless
// Chromium, two or more builds of the wasm side by side in one page, round
// after round, so that a busy machine slows each alike.
//
// The models are the GGUF files of $WISP_AB_MODELS (a folder); the builds
// are site/wasm/ ("new") and those $WISP_AB_BUILDS names, NAME=DIR,...,
// each DIR a folder under site/ holding another wisp.wasm, kernels.wasm,
// forward.wasm and relaxed.wasm (such as old=wasm/old/, the build before a
// change; the ratios are to the first). Every round times, on each engine in
// turn (the order reversed every other round), a prefill of
// $WISP_AB_PROMPT tokens (128) and then a decode of $WISP_AB_TOKENS greedy
// tokens (32) after another prompt of that length; each prompt's ids differ
// from the last one's, so that no engine reuses a cached prefix. Run it with
//
//	cd site && WISP_AB_MODELS=DIR WISP_AB_BUILDS=old=wasm/old/ node --test bench/ab.bench.js
//
// (after make site).

import { test } from 'node:test';

import { launch, serve } from '../test/helpers.js';

const models = process.env.WISP_AB_MODELS;

test('decode and prefill tokens/s in Chromium, builds side by side', { skip: !models, timeout: 3_600_000 }, async (t) => {
  const { readdir } = await import('node:fs/promises');
  const files = (await readdir(models)).filter((f) => f.endsWith('.gguf')).sort();
  const srv = await serve(models);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html`);
  const builds = (process.env.WISP_AB_BUILDS || '').split(',').filter(Boolean)
    .map((b) => { const [name, dir] = b.split('='); return { name, dir }; });
  builds.push({ name: 'new', dir: 'wasm/' });
  const rounds = Number(process.env.WISP_AB_ROUNDS || 6);
  const prompt = Number(process.env.WISP_AB_PROMPT || 128);
  const tokens = Number(process.env.WISP_AB_TOKENS || 32);
  const res = await page.evaluate(async ({ files, builds, rounds, prompt, tokens }) => {
    const { createEngine } = await import('./engine.js');
    let seed = 1;
    // ids returns n token ids (a xorshift of the next seed), none of the
    // first three (control tokens in these files).
    const ids = (n, vocab) => {
      let s = seed++;
      const v = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
        v[i] = 3 + (s % (vocab - 3));
      }
      return v;
    };
    const prefill = (e) => {
      const p = ids(prompt, e.vocab);
      const t0 = performance.now();
      e.eng.prompt(p, { temperature: 0, maxTokens: 1, context: prompt + tokens + 8 });
      const ms = performance.now() - t0;
      if (e.eng.reusedTokens) throw new Error(`prompt reused ${e.eng.reusedTokens} tokens`);
      return (prompt * 1000) / ms;
    };
    // decode evaluates a prompt, then times `tokens` greedy steps (the
    // first step, which evaluates the prompt, left out).
    const decode = (e) => {
      e.eng.prompt(ids(prompt, e.vocab), { temperature: 0, maxTokens: tokens + 1, context: prompt + tokens + 8 });
      e.eng.next();
      const t0 = performance.now();
      let n = 0;
      while (!e.eng.next().done) n++;
      if (n < 8) throw new Error(`decoded ${n} tokens (an end of text), asked for ${tokens}`);
      return (n * 1000) / (performance.now() - t0);
    };
    const engines = [];
    for (const f of files) {
      const bytes = new Uint8Array(await (await fetch(`models/${f}`)).arrayBuffer());
      for (const b of builds) {
        const eng = await createEngine({
          engine: fetch(`${b.dir}wisp.wasm`), kernels: fetch(`${b.dir}kernels.wasm`), forward: fetch(`${b.dir}forward.wasm`),
          relaxed: fetch(`${b.dir}relaxed.wasm`),
        });
        eng.load(bytes);
        engines.push({ file: f, build: b.name, kernels: eng.kernels.name, eng, vocab: eng.info.vocabSize, decode: [], prefill: [] });
      }
    }
    for (const e of engines) { prefill(e); decode(e); } // warm-up: V8's optimised tier
    for (let r = 0; r < rounds; r++) {
      for (const e of r % 2 ? engines.slice().reverse() : engines) {
        e.prefill.push(prefill(e));
        e.decode.push(decode(e));
      }
    }
    return engines.map(({ file, build, kernels, decode, prefill }) => ({ file, build, kernels, decode, prefill }));
  }, { files, builds, rounds, prompt, tokens });
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const fmt = (a, d = 1) => `${med(a).toFixed(d)} (${Math.min(...a).toFixed(d)}–${Math.max(...a).toFixed(d)})`;
  const byKey = Object.fromEntries(res.map((r) => [`${r.file}/${r.build}`, r]));
  const first = builds[0].name;
  console.log(`tokens/s, ${rounds} interleaved rounds: prefill of ${prompt} tokens; decode of ${tokens} tokens after ${prompt}; median (range), and ÷ ${first} round by round`);
  console.table(res.map((r) => {
    const base = byKey[`${r.file}/${first}`];
    const ratio = (k) => (r.build !== first ? fmt(r[k].map((v, i) => v / base[k][i]), 3) : '');
    return {
      file: r.file, build: r.build,
      'decode tok/s': fmt(r.decode), [`decode ÷ ${first}`]: ratio('decode'),
      'prefill tok/s': fmt(r.prefill), [`prefill ÷ ${first}`]: ratio('prefill'),
    };
  }));
  console.log(JSON.stringify(res));
});

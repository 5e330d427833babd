// prefill.bench.js: the prefill rate of whole models in headless Chromium,
// several builds of the wasm side by side in one page, and where a prefill's
// time goes.
//
// The models are the GGUF files of $WISP_PREFILL_MODELS (a folder; make
// bench's -dir keeps such files); without it the tests are skipped. Each
// file is loaded into one engine (createEngine, as the Worker makes them,
// relaxed.wasm included) per build: the build in site/wasm/ ("new"), and
// those $WISP_PREFILL_BUILDS names, NAME=DIR,... with each DIR a folder
// under site/ holding another wisp.wasm, kernels.wasm, forward.wasm and
// relaxed.wasm (such as old=wasm/old/, a copy made before a change; the
// ratios are to the first). Prompts of $WISP_PREFILL_TOKENS tokens (128)
// alternate between every engine, round after round, so that a busy
// machine slows each alike; each prompt's tokens differ from the last
// one's, so that no engine reuses a cached prefix. Run it with
//
//	cd site && WISP_PREFILL_MODELS=DIR node --test bench/prefill.bench.js
//
// (after make site). With $WISP_PREFILL_PROFILE set to a folder under
// site/ holding builds with function names (wat2wasm --debug-names, go
// build without -s), the second test samples V8's profiler over a few
// prefills of each model and prints the share of each function's own
// time.

import { test } from 'node:test';

import { launch, serve } from '../test/helpers.js';

const models = process.env.WISP_PREFILL_MODELS;
const tokens = Number(process.env.WISP_PREFILL_TOKENS || 128);

/** modelFiles lists the GGUF files of the models folder, sorted. */
async function modelFiles() {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(models)).filter((f) => f.endsWith('.gguf')).sort();
}

/**
 * openPage serves site/ and the models, launches Chromium and opens a
 * page; the test closes them after.
 */
async function openPage(t) {
  const srv = await serve(models);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html`);
  return page;
}

// pageSetup is evaluated in the page: it defines window.prefillBench, which
// loads a model into an engine of a build and times prompts on it.
const pageSetup = () => {
  window.prefillBench = {
    async open(file, dir) {
      const { createEngine } = await import('./engine.js');
      const eng = await createEngine({
        engine: fetch(`${dir}wisp.wasm`), kernels: fetch(`${dir}kernels.wasm`), forward: fetch(`${dir}forward.wasm`),
        relaxed: fetch(`${dir}relaxed.wasm`),
      });
      eng.load(new Uint8Array(await (await fetch(`models/${file}`)).arrayBuffer()));
      return eng;
    },
    // prefill evaluates n tokens (ids from seed) and returns tokens/s.
    prefill(eng, n, seed, vocab) {
      let s = seed >>> 0 || 1;
      const ids = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
        ids[i] = 3 + (s % (vocab - 3));
      }
      const t0 = performance.now();
      eng.prompt(ids, { temperature: 0, maxTokens: 1, context: 256 });
      const ms = performance.now() - t0;
      if (eng.reusedTokens) throw new Error(`prompt reused ${eng.reusedTokens} tokens`);
      return (n * 1000) / ms;
    },
  };
};

test('prefill tokens/s in Chromium, builds side by side', { skip: !models, timeout: 1_800_000 }, async (t) => {
  const files = await modelFiles();
  const page = await openPage(t);
  await page.evaluate(pageSetup);
  const builds = (process.env.WISP_PREFILL_BUILDS || '').split(',').filter(Boolean)
    .map((b) => { const [name, dir] = b.split('='); return { name, dir }; });
  builds.push({ name: 'new', dir: 'wasm/' });
  const rounds = Number(process.env.WISP_PREFILL_ROUNDS || 7);
  const res = await page.evaluate(async ({ files, builds, rounds, tokens }) => {
    const engines = [];
    for (const f of files) {
      for (const b of builds) {
        const eng = await window.prefillBench.open(f, b.dir);
        const vocab = eng.info.vocabSize;
        engines.push({ file: f, build: b.name, kernels: eng.kernels.name, eng, vocab, rates: [] });
      }
    }
    let seed = 1;
    const run = (e) => window.prefillBench.prefill(e.eng, tokens, seed++, e.vocab);
    for (const e of engines) { run(e); run(e); } // warm-up: V8's optimised tier
    for (let r = 0; r < rounds; r++) {
      for (const e of r % 2 ? engines.slice().reverse() : engines) e.rates.push(run(e));
    }
    return engines.map(({ file, build, kernels, rates }) => ({ file, build, kernels, rates }));
  }, { files, builds, rounds, tokens });
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  const byKey = Object.fromEntries(res.map((r) => [`${r.file}/${r.build}`, r]));
  const first = builds[0].name;
  console.log(`prefill tokens/s, ${tokens}-token prompts, context 256, ${rounds} interleaved rounds: median (range); ÷ ${first}, round by round`);
  console.table(res.map((r) => {
    const base = byKey[`${r.file}/${first}`];
    const ratios = r.build !== first ? r.rates.map((v, i) => v / base.rates[i]) : null;
    return {
      file: r.file, build: r.build, kernels: r.kernels,
      'tok/s': `${med(r.rates).toFixed(1)} (${Math.min(...r.rates).toFixed(1)}–${Math.max(...r.rates).toFixed(1)})`,
      [`÷ ${first}`]: ratios ? `${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '',
    };
  }));
  console.log(JSON.stringify(res));
});

const profileDir = process.env.WISP_PREFILL_PROFILE;
test('where a prefill spends its time in Chromium (V8 profiler)', { skip: !models || !profileDir, timeout: 900_000 }, async (t) => {
  const files = await modelFiles();
  const page = await openPage(t);
  await page.evaluate(pageSetup);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  for (const f of files) {
    await page.evaluate(async ({ f, dir }) => {
      window.prefillEngine = await window.prefillBench.open(f, dir);
      const e = window.prefillEngine;
      window.prefillVocab = e.info.vocabSize;
      for (let i = 0; i < 3; i++) window.prefillBench.prefill(e, 128, 100 + i, window.prefillVocab);
    }, { f, dir: profileDir });
    await cdp.send('Profiler.start');
    const rate = await page.evaluate(async (tokens) => {
      const r = [];
      for (let i = 0; i < 4; i++) r.push(window.prefillBench.prefill(window.prefillEngine, tokens, 200 + i, window.prefillVocab));
      return r;
    }, tokens);
    const { profile } = await cdp.send('Profiler.stop');
    await page.evaluate(() => { window.prefillEngine.unload?.(); window.prefillEngine = null; });
    const self = new Map();
    let total = 0;
    for (const n of profile.nodes) {
      const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}`;
      self.set(key, (self.get(key) || 0) + n.hitCount);
      total += n.hitCount;
    }
    const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)
      .map(([fn, hits]) => ({ fn, '%': +(100 * hits / total).toFixed(1) }));
    console.log(`${f}: prefill ${rate.map((v) => v.toFixed(0)).join(', ')} tok/s while profiled; own time by function:`);
    console.table(rows);
  }
});

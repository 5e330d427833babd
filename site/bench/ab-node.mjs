// ab-node.mjs: the A/B of ab.bench.js in Node, timed by the process's CPU
// time (process.cpuUsage), which other processes on a busy machine disturb
// less than wall time. Usage (from site/, after make site):
//
//	node --no-liftoff bench/ab-node.mjs MODELS_DIR ROUNDS old=wasm/old/ ...
//
// site/wasm/ is the build "new"; the ratios are to the first build named.

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { createEngine } from '../engine.js';

const [dir, roundsArg, ...buildArgs] = process.argv.slice(2);
const rounds = Number(roundsArg || 6);
const builds = buildArgs.map((b) => { const [name, d] = b.split('='); return { name, dir: d }; });
builds.push({ name: 'new', dir: 'wasm/' });
const prompt = Number(process.env.WISP_AB_PROMPT || 128);
const tokens = Number(process.env.WISP_AB_TOKENS || 32);
const site = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const files = (await readdir(dir)).filter((f) => f.endsWith('.gguf')).sort();

let seed = 1;
const ids = (n, vocab) => {
  let s = seed++;
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    v[i] = 3 + (s % (vocab - 3));
  }
  return v;
};
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const prefill = (e) => {
  const p = ids(prompt, e.vocab);
  const t0 = cpu();
  e.eng.prompt(p, { temperature: 0, maxTokens: 1, context: prompt + tokens + 8 });
  return prompt / (cpu() - t0);
};
const decode = (e) => {
  e.eng.prompt(ids(prompt, e.vocab), { temperature: 0, maxTokens: tokens + 1, context: prompt + tokens + 8 });
  e.eng.next();
  const t0 = cpu();
  let n = 0;
  while (!e.eng.next().done) n++;
  if (n < 8) throw new Error(`decoded ${n} tokens`);
  return n / (cpu() - t0);
};

const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const fmt = (a, d = 1) => `${med(a).toFixed(d)} (${Math.min(...a).toFixed(d)}–${Math.max(...a).toFixed(d)})`;
const rows = [];
for (const f of files) {
  const bytes = new Uint8Array(await readFile(path.join(dir, f)));
  const engines = [];
  for (const b of builds) {
    const rd = (n) => readFile(path.join(site, b.dir, n));
    const eng = await createEngine({ engine: rd('wisp.wasm'), kernels: rd('kernels.wasm'), forward: rd('forward.wasm'), relaxed: rd('relaxed.wasm') });
    eng.load(bytes);
    engines.push({ build: b.name, eng, vocab: eng.info.vocabSize, decode: [], prefill: [] });
  }
  for (const e of engines) { prefill(e); decode(e); }
  for (let r = 0; r < rounds; r++) {
    for (const e of r % 2 ? engines.slice().reverse() : engines) { e.prefill.push(prefill(e)); e.decode.push(decode(e)); }
  }
  const base = engines[0];
  for (const e of engines) {
    const ratio = (k) => (e === base ? '' : fmt(e[k].map((v, i) => v / base[k][i]), 3));
    rows.push({ file: f, build: e.build, 'decode cpu-tok/s': fmt(e.decode), 'decode ÷': ratio('decode'), 'prefill cpu-tok/s': fmt(e.prefill), 'prefill ÷': ratio('prefill') });
    e.eng.close?.();
  }
}
console.log(`Node ${process.version}, CPU time, ${rounds} interleaved rounds: prefill ${prompt} tokens; decode ${tokens} after ${prompt}`);
console.table(rows);

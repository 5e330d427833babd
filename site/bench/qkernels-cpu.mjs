// qkernels-cpu.mjs: relaxed.wasm's matmul_q of two builds of the kernels,
// one vector, timed by the process's CPU time rather than the clock, in
// Node. On a machine that other work keeps busy, Chromium's wall-clock
// figures (relaxed.bench.js) moved by ±30 % between two runs of the same
// build; CPU time, interleaved, by ±5 %. Node 20's V8 is older than
// Chromium's and spills differently (see kernels.wat's header), so a
// change measured here still needs relaxed.bench.js on a quiet machine.
//
//   node --experimental-wasm-relaxed-simd --no-liftoff bench/qkernels-cpu.mjs [OLD [NEW [TYPES]]]
//
// OLD and NEW are folders under site/ holding kernels.wasm, forward.wasm
// and relaxed.wasm (default wasm/old and wasm); TYPES is comma-separated
// (default Q5_0,Q8_0,Q4_K,Q6_K). It prints GB/s of weights, the median
// (range) of 10 interleaved samples of 60 ms of CPU time each, and new÷old.

import { readFileSync } from 'node:fs';

import * as q from './qkernels.js';

const site = new URL('..', import.meta.url).pathname;
const get = (p) => readFileSync(`${site}/${p}`);
const build = (d) => q.instantiate({
  kernels: get(`${d}/kernels.wasm`), forward: get(`${d}/forward.wasm`), relaxed: get(`${d}/relaxed.wasm`),
});
const [oldDir = 'wasm/old', newDir = 'wasm', typeList = 'Q5_0,Q8_0,Q4_K,Q6_K'] = process.argv.slice(2);
const builds = { old: await build(oldDir), new: await build(newDir) };
if (!builds.old.relaxed || !builds.new.relaxed) throw new Error('relaxed.wasm did not instantiate');

// cpuMs is this process's CPU time in milliseconds.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const range = (a) => `${Math.min(...a).toFixed(1)}–${Math.max(...a).toFixed(1)}`;

// rate runs one build's relaxed matmul_q on its case for 60 ms of CPU time.
const rate = ({ k, c }) => {
  const t0 = cpuMs();
  let reps = 0;
  do {
    k.relaxed(c.out, c.w, c.xq, c.xd, c.xs, c.xsum, c.rows, c.cols, c.n, c.id);
    reps++;
  } while (cpuMs() - t0 < 60);
  return (c.wBytes * reps) / ((cpuMs() - t0) * 1e6);
};

const rows = [];
for (const qt of typeList.split(',')) {
  for (const [r, cols] of [[1536, 576], [576, 1536], [49152, 576]]) {
    if (cols % q.QTypes[qt].len) continue;
    const e = {};
    for (const [name, k] of Object.entries(builds)) {
      e[name] = { k, c: new q.Case(k.memory, { qt, rows: r, cols, n: 1, seed: 7 }), rates: [] };
    }
    for (let i = 0; i < 2; i++) { rate(e.old); rate(e.new); } // warm-up
    for (let i = 0; i < 10; i++) {
      for (const name of i % 2 ? ['new', 'old'] : ['old', 'new']) e[name].rates.push(rate(e[name]));
    }
    rows.push({
      type: qt, shape: `${r}×${cols}`,
      [`${oldDir} GB/s`]: `${med(e.old.rates).toFixed(2)} (${range(e.old.rates)})`,
      [`${newDir} GB/s`]: `${med(e.new.rates).toFixed(2)} (${range(e.new.rates)})`,
      'new÷old': +(med(e.new.rates) / med(e.old.rates)).toFixed(3),
    });
  }
}
console.table(rows);

// dispatch.js: what a matrix product handed to kernel threads costs beyond
// the kernel itself (threads.wasm's round trip), in Node:
//
//	node bench/dispatch.js [helpers] [--json]    (after make site)
//
// (--json: one line {"helpers", "direct", "hot", "cold"}, each round's
// microseconds, which make bench reads.)
//
// It times a 16×8 matmul_f32 (nothing to compute) called directly and
// through threads.wasm's dispatcher with every product split (minWork 1):
// hot, back to back, while the helpers spin; and cold, 1 ms apart, when
// they have gone to sleep in wait32 and must be woken. With a product's
// single-thread time t, n threads give about t/n + this cost, which is how
// a visitor with more cores can be estimated from a 2-core machine.
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
const w = (f) => readFile(new URL(`../wasm/${f}`, import.meta.url));
const [fwdM, kernM, thrM] = await Promise.all([w('forward.wasm'), w('kernels-shared.wasm'), w('threads.wasm')].map(async (b) => WebAssembly.compile(await b)));
const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
const fwd = await WebAssembly.instantiate(fwdM, {});
const table = fwd.exports.table;
const kern = await WebAssembly.instantiate(kernM, { env: { memory }, simd: { table } });
const k = kern.exports;
const main = await WebAssembly.instantiate(thrM, { env: { memory }, simd: { table }, kernels: { matmul_f16: k.matmul_f16, matmul_f32: k.matmul_f32, matmul_bf16: k.matmul_bf16, matmul_q: k.matmul_q } });
const ctrl = 1 << 20, out = 2 << 20, wgt = 3 << 20, x = 4 << 20;
const args = process.argv.slice(2);
const json = args.includes('--json');
const helpers = Number(args.find((a) => a !== '--json') ?? 1);
const ws = [];
for (let id = 1; id <= helpers; id++) {
  const h = new Worker(new URL('../helper.js', import.meta.url));
  await new Promise((res) => { h.on('message', (m) => m.type === 'ready' && res()); h.postMessage({ memory, forward: fwdM, kernels: kernM, relaxed: null, threads: thrM, ctrl, id }); });
  ws.push(h);
}
main.exports.setup(ctrl, helpers, 1);
const time = (f, n) => { const t0 = performance.now(); for (let i = 0; i < n; i++) f(); return (performance.now() - t0) * 1000 / n; };
const rows = 16, cols = 8;
const rounds = { helpers, direct: [], hot: [], cold: [] };
for (let r = 0; r < 3; r++) {
  const direct = time(() => k.matmul_f32(out, wgt, x, rows, cols, 1), 20000);
  const hot = time(() => main.exports.matmul_f32(out, wgt, x, rows, cols, 1), 20000);
  // Cold: the helpers asleep in wait32 (1 ms of nothing between jobs, past their spin).
  let cold = 0;
  for (let i = 0; i < 200; i++) { const t = performance.now() + 1; while (performance.now() < t); cold += time(() => main.exports.matmul_f32(out, wgt, x, rows, cols, 1), 1); }
  rounds.direct.push(direct);
  rounds.hot.push(hot);
  rounds.cold.push(cold / 200);
  if (!json) console.log(`helpers ${helpers}: direct ${direct.toFixed(2)} µs, dispatched hot ${hot.toFixed(2)} µs, cold ${(cold / 200).toFixed(1)} µs`);
}
if (json) console.log(JSON.stringify(rounds));
main.exports.stop();
for (const h of ws) await h.terminate();

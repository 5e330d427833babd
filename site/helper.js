// helper.js: a kernel thread of a threaded engine (engine.js, createEngine
// with threads). It runs in a Worker (a page's, or Node's worker_threads)
// and gets one message: the shared memory, the compiled modules and the
// control block. It instantiates its own forwarding table, kernels
// (kernels-shared.wasm), relaxed passes where the engine's thread runs
// them, and threads.wasm, says 'ready', and runs threads.wasm's worker
// loop, which takes chunks of the matrix products the engine's thread
// dispatches, until engine.close() stops it.

const node = typeof WorkerGlobalScope === 'undefined';
const port = node ? (await import('node:worker_threads')).parentPort : self;
const once = (f) => (node ? port.once('message', f) : self.addEventListener('message', (e) => f(e.data), { once: true }));

once(async ({ memory, forward, kernels, relaxed, threads, ctrl, id }) => {
  try {
    const fwd = await WebAssembly.instantiate(forward, {});
    const table = fwd.exports.table;
    const kern = await WebAssembly.instantiate(kernels, { env: { memory }, simd: { table } });
    let matmulQ = kern.exports.matmul_q;
    if (relaxed) {
      const r = await WebAssembly.instantiate(relaxed, {
        env: { memory }, simd: { table }, kernels: { matmul_q: kern.exports.matmul_q },
      });
      if (r.exports.check() === 1) matmulQ = r.exports.matmul_q;
    }
    const thr = await WebAssembly.instantiate(threads, {
      env: { memory },
      simd: { table },
      kernels: {
        matmul_f16: kern.exports.matmul_f16, matmul_f32: kern.exports.matmul_f32,
        matmul_bf16: kern.exports.matmul_bf16, matmul_q: matmulQ,
      },
    });
    port.postMessage({ type: 'ready' });
    thr.exports.worker(ctrl, id);
    port.postMessage({ type: 'stopped' });
  } catch (err) {
    port.postMessage({ type: 'error', message: `kernel thread ${id}: ${err.message}` });
  }
});

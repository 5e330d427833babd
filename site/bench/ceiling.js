// ceiling.js: the machine's ceiling as a JavaScript engine's wasm sees it,
// for make bench (tools/bench): how fast one core reads memory (read.wasm's
// xor_sum over a block) and how many GFLOP/s the engine's own matrix-vector
// kernel (kernels.wasm's matmul_f16 and matmul_f32) reaches, in cache and
// from memory. It needs nothing of a browser: node.bench.js runs it in Node
// and browser.bench.js in a Chromium page. tools/bench measures the same
// things natively and in wazero, with the same sizes and the same rules.

/**
 * instantiate wires the three modules as tools/bench does in wazero:
 * read.wasm owns the memory and is "engine" to kernels.wasm, forward.wasm
 * is "simd" and lends its table. Each module is given as bytes.
 * @param {{read: BufferSource, kernels: BufferSource, forward: BufferSource}} mods
 */
export async function instantiate(mods) {
  const read = (await WebAssembly.instantiate(mods.read, {})).instance;
  const forward = (await WebAssembly.instantiate(mods.forward, {})).instance;
  const kernels = (await WebAssembly.instantiate(mods.kernels, {
    engine: { memory: read.exports.memory },
    simd: { table: forward.exports.table },
  })).instance;
  return { memory: read.exports.memory, xorSum: read.exports.xor_sum, kernels: kernels.exports };
}

/** ensure grows memory to at least n bytes. */
function ensure(memory, n) {
  const need = Math.ceil(n / 65536) - memory.buffer.byteLength / 65536;
  if (need > 0) memory.grow(need);
}

/**
 * timed calls f until at least minMs have passed, after as long a run of
 * untimed calls (so that V8 has switched to its optimised code), and
 * returns the timed calls made and the milliseconds they took.
 */
function timed(f, minMs) {
  const w0 = performance.now();
  do f(); while (performance.now() - w0 < minMs);
  let reps = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    f();
    reps++;
    t = performance.now();
  } while (t - t0 < minMs);
  return { reps, ms: t - t0 };
}

// base is where the blocks start: past the first MiB, 128-byte aligned.
const base = 1 << 20;

/**
 * readBandwidth returns `samples` measurements, in GB/s, of reading a
 * block of `bytes` bytes (a multiple of 128) with xor_sum.
 */
export function readBandwidth(c, bytes, samples, minMs) {
  ensure(c.memory, base + bytes);
  // Fill the block with a pattern so that no page is a shared zero page.
  const words = new Uint32Array(c.memory.buffer, base, bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 2654435761);
  const out = [];
  for (let s = 0; s < samples; s++) {
    const { reps, ms } = timed(() => c.xorSum(base, bytes), minMs);
    out.push((bytes * reps) / (ms * 1e6));
  }
  return out;
}

/**
 * matvec returns `samples` measurements, in GFLOP/s (2·rows·cols per
 * product), of one matrix-vector product by the engine's kernel for an
 * F16 or F32 matrix of rows×cols.
 */
export function matvec(c, { type, rows, cols }, samples, minMs) {
  const wsize = type === 'f16' ? 2 : 4;
  const px = base;
  const pout = px + 4 * cols + 128;
  const pw = (pout + 4 * rows + 128 + 127) & ~127;
  ensure(c.memory, pw + wsize * rows * cols);
  // x in [-2, 2); weights normal halves of magnitude 2^-8 to 2^0 (what a
  // flushed model holds), or the same values as float32.
  let seed = 0x9e3779b9;
  const rnd = () => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return seed >>> 0;
  };
  const x = new Float32Array(c.memory.buffer, px, cols);
  for (let i = 0; i < cols; i++) x[i] = (rnd() / 2 ** 32) * 4 - 2;
  if (type === 'f16') {
    const w = new Uint16Array(c.memory.buffer, pw, rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = (rnd() & 0x83ff) | ((7 + (rnd() & 7)) << 10);
  } else {
    const w = new Float32Array(c.memory.buffer, pw, rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = ((rnd() / 2 ** 32) * 2 - 1) * 2 ** -((rnd() & 7));
  }
  const f = type === 'f16' ? c.kernels.matmul_f16 : c.kernels.matmul_f32;
  const out = [];
  for (let s = 0; s < samples; s++) {
    const { reps, ms } = timed(() => f(pout, pw, px, rows, cols, 1), minMs);
    out.push((2 * rows * cols * reps) / (ms * 1e6));
  }
  return out;
}

/**
 * ceiling measures everything a spec from tools/bench asks for:
 * spec.read, block sizes in bytes; spec.matvec, [{name, type, rows, cols}];
 * spec.samples and spec.minMs. It returns {read: {bytes: [GB/s…]},
 * matvec: {name: [GFLOP/s…]}}.
 */
export async function ceiling(mods, spec) {
  const c = await instantiate(mods);
  const res = { read: {}, matvec: {} };
  for (const bytes of spec.read) res.read[bytes] = readBandwidth(c, bytes, spec.samples, spec.minMs);
  for (const m of spec.matvec) res.matvec[m.name] = matvec(c, m, spec.samples, spec.minMs);
  return res;
}

// qkernels.js: kernels.wasm's matmul_q and relaxed.wasm's side by side, on
// random quantized matrices, for the relaxed-SIMD test (compare: the two
// must agree to the bit) and its benchmark (time: GB/s of weights). It
// needs nothing of a browser: test/relaxed.test.js runs it in a Chromium
// page and in Node (with --experimental-wasm-relaxed-simd on Node 20).

/** QTypes are simd.QType's numbers, block lengths and block bytes. */
export const QTypes = Object.freeze({
  Q8_0: { id: 1, len: 32, bytes: 34 },
  Q4_0: { id: 2, len: 32, bytes: 18 },
  Q4_1: { id: 3, len: 32, bytes: 20 },
  Q5_0: { id: 4, len: 32, bytes: 22 },
  Q5_1: { id: 5, len: 32, bytes: 24 },
  Q4_K: { id: 6, len: 256, bytes: 144 },
  Q5_K: { id: 7, len: 256, bytes: 176 },
  Q6_K: { id: 8, len: 256, bytes: 210 },
});

/**
 * instantiate wires the modules as site/engine.js does, with a memory of
 * its own standing for the engine's: forward.wasm lends the table,
 * kernels.wasm fills it, and relaxed.wasm (when given) imports kernels'
 * matmul_q and replaces the table's entry. It returns the memory and both
 * matmul_q exports (relaxed null without the module).
 * @param {{kernels: BufferSource, forward: BufferSource, relaxed?: BufferSource}} mods
 */
export async function instantiate(mods) {
  const memory = new WebAssembly.Memory({ initial: 512 });
  const forward = (await WebAssembly.instantiate(mods.forward, {})).instance;
  const kernels = (await WebAssembly.instantiate(mods.kernels, {
    engine: { memory }, simd: { table: forward.exports.table },
  })).instance;
  let relaxed = null;
  if (mods.relaxed) {
    relaxed = (await WebAssembly.instantiate(mods.relaxed, {
      engine: { memory }, simd: { table: forward.exports.table },
      kernels: { matmul_q: kernels.exports.matmul_q },
    })).instance.exports.matmul_q;
  }
  return { memory, base: kernels.exports.matmul_q, relaxed, forward: forward.exports.matmul_q };
}

/** rng returns a xorshift32 generator of uint32s from a seed. */
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

// f16 returns the half nearest v (no subnormals needed here: |v| is 2^-14
// or more, or zero).
function f16(v) {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 255) - 127 + 15;
  if (v === 0 || e <= 0) return sign;
  if (e >= 31) return sign | 0x7bff;
  return sign | (e << 10) | ((u >>> 13) & 0x3ff);
}

// Halves that test the edges: zero, signed zero, subnormals, the largest,
// infinities, NaNs.
const hostileHalves = [0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x0400, 0x3c00];

/**
 * Case is one product in memory: a rows×cols matrix of type qt at w, n
 * vectors' Q8 blocks at xq, xd, xs, xsum, and room for the result at out.
 */
export class Case {
  /**
   * @param {WebAssembly.Memory} memory
   * @param {{qt: string, rows: number, cols: number, n: number, seed?: number,
   *          misalign?: number, hostile?: boolean, at?: number}} o
   *   hostile: −128 in weights and activations, extreme and NaN scales,
   *   sums that do not match the bytes; misalign: 0..15 bytes added to
   *   every address.
   */
  constructor(memory, o) {
    const t = QTypes[o.qt];
    Object.assign(this, { memory, qt: o.qt, id: t.id, rows: o.rows, cols: o.cols, n: o.n });
    const next = rng(o.seed ?? 1);
    const nb = o.cols / 32;
    const wBytes = o.rows * (o.cols / t.len) * t.bytes;
    const m = o.misalign ?? 0;
    let p = (o.at ?? 1 << 16);
    const take = (bytes) => { const a = p + m; p = Math.ceil((a + bytes + 64) / 64) * 64; return a; };
    this.w = take(wBytes);
    this.xq = take(o.n * o.cols);
    this.xd = take(o.n * nb * 4);
    this.xs = take(o.n * nb * 4);
    this.xsum = take(o.n * nb * 4);
    this.out = take(o.n * o.rows * 4);
    this.end = p;
    this.wBytes = wBytes;
    const need = Math.ceil(p / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    const u8 = new Uint8Array(memory.buffer);
    const dv = new DataView(memory.buffer);
    // Weights: random bytes, then each block's halves set to sane scales
    // (or hostile ones), Q8_0's bytes kept off -128 unless hostile.
    for (let i = 0; i < wBytes; i++) u8[this.w + i] = next() & 255;
    const half = () => {
      if (o.hostile && (next() & 7) === 0) return hostileHalves[next() % hostileHalves.length];
      return f16(((next() & 1) ? -1 : 1) * 2 ** -((next() % 10) + 4) * (1 + (next() % 1000) / 1000));
    };
    for (let b = 0; b < wBytes / t.bytes; b++) {
      const at = this.w + b * t.bytes;
      switch (o.qt) {
        case 'Q6_K': dv.setUint16(at + 208, half(), true); break;
        case 'Q4_1': case 'Q5_1': case 'Q4_K': case 'Q5_K':
          dv.setUint16(at, half(), true); dv.setUint16(at + 2, half(), true); break;
        default: dv.setUint16(at, half(), true);
      }
      if (o.qt === 'Q8_0' && !o.hostile) {
        for (let i = 2; i < 34; i++) if (u8[at + i] === 128) u8[at + i] = 129;
      }
      if (o.qt === 'Q8_0' && o.hostile && (next() & 3) === 0) {
        for (let i = 2; i < 34; i++) if (next() & 1) u8[at + i] = 128;
      }
    }
    // Activations: QuantizeQ8's range (or all bytes), d, s = d·sum, sum.
    for (let b = 0; b < o.n * nb; b++) {
      let sum = 0;
      for (let i = 0; i < 32; i++) {
        let q = (next() & 255) - 128;
        if (q === -128 && !o.hostile) q = -127;
        if (o.hostile && (b & 3) === 1) q = (next() & 1) ? -128 : 127; // extremes
        u8[this.xq + 32 * b + i] = q & 255;
        sum += q;
      }
      let d = Math.fround(2 ** -((next() % 8) + 3) * (1 + (next() % 1000) / 1000));
      if (o.hostile && (next() & 7) === 0) d = [NaN, Infinity, 0, -0, 1e-40, 3e38][next() % 6];
      if (o.hostile && (next() & 7) === 0) sum += (next() % 200) - 100; // a hand-built Q8
      dv.setFloat32(this.xd + 4 * b, d, true);
      dv.setFloat32(this.xs + 4 * b, Math.fround(d * sum), true);
      dv.setInt32(this.xsum + 4 * b, sum, true);
    }
  }

  /** run calls a matmul_q export on this case and returns a copy of out's bits. */
  run(fn) {
    new Uint8Array(this.memory.buffer, this.out, this.n * this.rows * 4).fill(0xa5);
    fn(this.out, this.w, this.xq, this.xd, this.xs, this.xsum, this.rows, this.cols, this.n, this.id);
    return new Uint32Array(this.memory.buffer.slice(this.out, this.out + this.n * this.rows * 4));
  }
}

/**
 * differ returns the first index where two results' bits differ (any NaN
 * matches any NaN), or -1.
 */
export function differ(a, b) {
  const nan = (u) => (u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(nan(a[i]) && nan(b[i]))) return i;
  }
  return -1;
}

/**
 * compare runs both kernels over every type, odd sizes, n = 1..5, unaligned
 * addresses and hostile values; it returns the cases run and a list of
 * mismatches (empty when the kernels agree everywhere).
 */
export function compare(k) {
  const bad = [];
  let cases = 0;
  let seed = 1;
  for (const qt of Object.keys(QTypes)) {
    const len = QTypes[qt].len;
    for (const colBlocks of len === 32 ? [1, 3, 7, 17, 18] : [1, 2, 3]) {
      for (const rows of [1, 2, 3, 4, 5, 7, 8, 17, 33]) {
        for (const n of [1, 2, 3, 4, 5]) {
          for (const hostile of [false, true]) {
            seed++;
            if (n > 1 && rows > 8 && !hostile) continue; // enough of those
            const c = new Case(k.memory, { qt, rows, cols: colBlocks * len, n, seed, hostile, misalign: seed % 7 });
            const want = c.run(k.base);
            const got = c.run(k.relaxed);
            cases++;
            const i = differ(want, got);
            if (i >= 0) {
              bad.push(`${qt} rows ${rows} cols ${colBlocks * len} n ${n}${hostile ? ' hostile' : ''}: out[${i}] ` +
                `0x${want[i].toString(16)} (baseline) != 0x${got[i].toString(16)} (relaxed)`);
            }
          }
        }
      }
    }
  }
  return { cases, bad };
}

/**
 * time returns the GB/s of weights that fn reaches on case c: the best of
 * `samples` runs of at least minMs each, after as long a warm-up.
 */
export function time(fn, c, { samples = 5, minMs = 200 } = {}) {
  const call = () => fn(c.out, c.w, c.xq, c.xd, c.xs, c.xsum, c.rows, c.cols, c.n, c.id);
  const w0 = performance.now();
  do call(); while (performance.now() - w0 < minMs);
  const rates = [];
  for (let s = 0; s < samples; s++) {
    let reps = 0;
    const t0 = performance.now();
    let t = t0;
    do { call(); reps++; t = performance.now(); } while (t - t0 < minMs);
    rates.push((c.wBytes * reps) / ((t - t0) * 1e6));
  }
  return rates;
}

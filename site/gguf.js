// gguf.js: reads the scalar metadata of a GGUF file's header, for what the
// engine's info does not tell (wisp.random, general.* descriptions). The
// engine parses the file for real; this reader only looks.

const scalarSizes = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

/**
 * ggufMetadata returns the scalar and string key/value pairs of a GGUF
 * file's header (arrays, such as the vocabulary, are skipped; 64-bit
 * integers become Numbers, or BigInts beyond 2^53). It returns null when
 * the bytes are not a GGUF file of version 2 or 3 or the header is cut
 * short: it never throws on bad input.
 * @param {Uint8Array} bytes
 * @returns {Record<string, string | number | bigint | boolean> | null}
 */
export function ggufMetadata(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder();
  let off = 0;
  const need = (n) => {
    if (n < 0 || off + n > bytes.byteLength) throw new RangeError('short');
  };
  const u32 = () => { need(4); const v = dv.getUint32(off, true); off += 4; return v; };
  const u64 = () => { need(8); const v = dv.getBigUint64(off, true); off += 8; return v; };
  const len = () => {
    const v = u64();
    if (v > BigInt(bytes.byteLength)) throw new RangeError('length');
    return Number(v);
  };
  // Browsers decode no view of a shared memory (the threaded engine's): a copy.
  const view = bytes.buffer instanceof ArrayBuffer ? (a, b) => bytes.subarray(a, b) : (a, b) => bytes.slice(a, b);
  const str = () => { const n = len(); need(n); const s = dec.decode(view(off, off + n)); off += n; return s; };
  const scalar = (type) => {
    const size = scalarSizes[type];
    if (!size) throw new RangeError('type');
    need(size);
    let v;
    switch (type) {
      case 0: v = dv.getUint8(off); break;
      case 1: v = dv.getInt8(off); break;
      case 2: v = dv.getUint16(off, true); break;
      case 3: v = dv.getInt16(off, true); break;
      case 4: v = dv.getUint32(off, true); break;
      case 5: v = dv.getInt32(off, true); break;
      case 6: v = dv.getFloat32(off, true); break;
      case 7: v = dv.getUint8(off) !== 0; break;
      case 10: v = small(dv.getBigUint64(off, true)); break;
      case 11: v = small(dv.getBigInt64(off, true)); break;
      case 12: v = dv.getFloat64(off, true); break;
    }
    off += size;
    return v;
  };
  try {
    if (u32() !== 0x46554747) return null; // "GGUF"
    const version = u32();
    if (version !== 2 && version !== 3) return null;
    len(); // tensors
    const count = len();
    const out = {};
    for (let i = 0; i < count; i++) {
      const key = str();
      const type = u32();
      if (type === STRING) {
        out[key] = str();
      } else if (type === ARRAY) {
        const elem = u32();
        const n = len();
        if (elem === STRING) {
          for (let j = 0; j < n; j++) { const m = len(); need(m); off += m; }
        } else {
          const size = scalarSizes[elem];
          if (!size) return null; // nested arrays: not in the files wisp reads
          need(n * size);
          off += n * size;
        }
      } else {
        out[key] = scalar(type);
      }
    }
    return out;
  } catch {
    return null;
  }
}

function small(v) {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

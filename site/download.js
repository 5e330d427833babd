// download.js: fetches a model file with progress, keeps it in Cache
// Storage, and checks its SHA-256. It runs in a Worker, on a page, or in
// Node (which has fetch and crypto.subtle, but no Cache Storage).

import { MAX_MODEL_BYTES, WispError, tooLarge } from './engine.js';

/** CACHE_NAME is the Cache Storage cache that holds downloaded models. */
export const CACHE_NAME = 'wisp-models-v1';

/**
 * download returns the bytes of the file at url (absolute).
 *
 * With options.cache (default true) and where Cache Storage exists, a
 * file kept there from an earlier download is returned without touching
 * the network, and a fresh download is kept there. With options.sha256
 * (hex), the bytes must have that SHA-256: a cached copy that does not is
 * dropped and fetched again, a download that does not is an error.
 * options.onProgress gets {loaded, total, rate, cached} (bytes, bytes,
 * bytes per second; total is 0 when the server does not say) as bytes
 * arrive, at most every 50 ms and once at the end. options.signal aborts.
 *
 * @param {string} url
 * @param {{cache?: boolean, sha256?: string, signal?: AbortSignal,
 *          onProgress?: (p: {loaded: number, total: number, rate: number, cached: boolean}) => void,
 *          fetch?: typeof fetch}} [options]
 * @returns {Promise<{bytes: Uint8Array, fromCache: boolean}>}
 */
export async function download(url, options = {}) {
  const { signal, onProgress, sha256 } = options;
  const useCache = options.cache !== false;
  const fetchFn = options.fetch ?? globalThis.fetch;
  const want = sha256 ? sha256.toLowerCase() : '';

  let store = null;
  if (useCache && globalThis.caches) {
    try {
      store = await caches.open(CACHE_NAME);
    } catch {
      store = null; // storage disabled (private mode, opaque origin): go without
    }
  }
  if (store) {
    const hit = await store.match(url).catch(() => undefined);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      signal?.throwIfAborted();
      if (!want || (await hexSHA256(bytes)) === want) {
        onProgress?.({ loaded: bytes.byteLength, total: bytes.byteLength, rate: 0, cached: true });
        return { bytes, fromCache: true };
      }
      await store.delete(url).catch(() => {});
    }
  }

  let resp;
  try {
    // Cache Storage keeps the file: keep the HTTP cache from holding a second copy.
    resp = await fetchFn(url, { signal, cache: store ? 'no-store' : 'default' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new WispError(`wisp: fetching ${url}: ${err.message}`, { code: 'http', cause: err });
  }
  if (!resp.ok) {
    throw new WispError(`wisp: fetching ${url}: HTTP ${resp.status} ${resp.statusText}`.trim(), { code: 'http' });
  }
  // With a Content-Encoding, Content-Length counts the encoded bytes.
  const length = resp.headers.get('Content-Encoding') ? NaN : Number(resp.headers.get('Content-Length'));
  const total = Number.isSafeInteger(length) && length > 0 ? length : 0;
  if (total > MAX_MODEL_BYTES) throw tooLarge(total);
  const bytes = await readBody(resp, total, signal, onProgress);
  if (want) {
    const got = await hexSHA256(bytes);
    if (got !== want) {
      throw new WispError(`wisp: ${url} is corrupt: its SHA-256 is ${got}, expected ${want}`, { code: 'sha256' });
    }
  }
  if (store) {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength) };
    // A full disk or a quota only costs the next visit a download.
    await store.put(url, new Response(bytes, { headers })).catch(() => {});
  }
  return { bytes, fromCache: false };
}

// readBody reads a response's body into one array, reporting progress.
async function readBody(resp, total, signal, onProgress) {
  const start = performance.now();
  let last = -Infinity;
  let buf;
  try {
    buf = new Uint8Array(total || 1 << 20);
  } catch (err) {
    throw tooLarge(total, err);
  }
  let loaded = 0;
  const report = (force) => {
    const now = performance.now();
    if (!onProgress || (!force && now - last < 50)) return;
    last = now;
    const secs = (now - start) / 1000;
    onProgress({ loaded, total, rate: secs > 0 ? loaded / secs : 0, cached: false });
  };
  report(true);
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.byteLength > buf.byteLength) {
        const size = Math.max(2 * buf.byteLength, loaded + value.byteLength);
        if (size > MAX_MODEL_BYTES) throw tooLarge(size);
        const bigger = new Uint8Array(size);
        bigger.set(buf.subarray(0, loaded));
        buf = bigger;
      }
      buf.set(value, loaded);
      loaded += value.byteLength;
      report(false);
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (err instanceof WispError || err.name === 'AbortError') throw err;
    if (err instanceof RangeError) throw tooLarge(loaded, err);
    throw new WispError(`wisp: downloading ${resp.url}: ${err.message}`, { code: 'http', cause: err });
  } finally {
    reader.releaseLock?.();
  }
  if (total && loaded !== total) {
    throw new WispError(`wisp: downloading ${resp.url}: got ${loaded} of ${total} bytes`, { code: 'http' });
  }
  report(true);
  return loaded === buf.byteLength ? buf : buf.slice(0, loaded);
}

/**
 * hexSHA256 returns the SHA-256 of bytes as lowercase hex.
 * @param {Uint8Array} bytes
 * @returns {Promise<string>}
 */
export async function hexSHA256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

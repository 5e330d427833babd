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
 * options.onProgress gets {loaded, total, rate, cached, retries} (bytes,
 * bytes, bytes per second; total is 0 when the server does not say;
 * retries counts the resumptions so far) as bytes arrive, at most every
 * 50 ms, before each resumption and once at the end. options.signal
 * aborts.
 *
 * A download cut mid-way resumes where it stopped, with a Range request,
 * after each of the waits in options.retryDelays (default RETRY_DELAYS_MS,
 * in ms); a server that ignores Range sends the file again from the start.
 *
 * With options.into, the bytes go straight where they are to be used:
 * once the file's size n is known, into(n) returns (or resolves to) an
 * array of n bytes to fill, such as the engine's buffer for the model
 * (Engine.reserve), and the result's bytes are that array; it returns
 * null, or the size stays unknown, and download allocates its own. It may
 * be called again with the same or another size (a cached copy that fails
 * its SHA-256, a file that changed between two resumptions); the array
 * must stay valid until download returns. A fresh download is written to
 * Cache Storage from that array a MiB at a time, so that with into the
 * file is held once.
 *
 * @param {string} url
 * @param {{cache?: boolean, sha256?: string, signal?: AbortSignal,
 *          onProgress?: (p: {loaded: number, total: number, rate: number, cached: boolean, retries: number}) => void,
 *          fetch?: typeof fetch, retryDelays?: readonly number[],
 *          into?: (n: number) => Uint8Array | null | Promise<Uint8Array | null>}} [options]
 * @returns {Promise<{bytes: Uint8Array, fromCache: boolean}>}
 */
export async function download(url, options = {}) {
  const { signal, onProgress, sha256 } = options;
  const useCache = options.cache !== false;
  const fetchFn = options.fetch ?? globalThis.fetch;
  const want = sha256 ? sha256.toLowerCase() : '';

  const into = options.into ?? (() => null);

  const store = useCache ? await openCache() : null;
  if (store) {
    const hit = await store.match(url).catch(() => undefined);
    if (hit) {
      const bytes = await readCached(hit, into);
      signal?.throwIfAborted();
      if (bytes && (!want || (await hexSHA256(bytes)) === want)) {
        onProgress?.({ loaded: bytes.byteLength, total: bytes.byteLength, rate: 0, cached: true, retries: 0 });
        return { bytes, fromCache: true };
      }
      await store.delete(url).catch(() => {});
    }
  }

  const bytes = await fetchBody(url, {
    fetchFn, signal, onProgress, retryDelays: options.retryDelays ?? RETRY_DELAYS_MS, into,
  });
  if (want) await checkSHA256(bytes, want, url);
  if (store) {
    // A full disk or a quota only costs the next visit a download.
    await store.put(url, new Response(slices(bytes), { headers: fileHeaders(bytes.byteLength) })).catch(() => {});
  }
  return { bytes, fromCache: false };
}

// slices streams bytes a MiB at a time: Cache Storage writes the file at
// its own pace, not from a whole second copy (new Response(bytes) copies
// all of it at once). Each MiB is a view of bytes, which nothing writes
// until download returns; only views of a SharedArrayBuffer (the threaded
// engine's memory), which Blink's body readers may refuse, are copies. Copies, even
// a MiB at a time, stayed garbage until the collector ran: in Chromium a
// download kept this way peaked at 1.35-1.38x the file, with views at
// 1.14-1.17x (make bench-memory, a 258 MiB file).
function slices(bytes) {
  const step = 1 << 20;
  const shared = typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer;
  let at = 0;
  return new ReadableStream({
    pull(ctl) {
      if (at >= bytes.byteLength) {
        ctl.close();
        return;
      }
      ctl.enqueue(shared ? bytes.slice(at, at + step) : bytes.subarray(at, at + step));
      at += step;
    },
  }, { highWaterMark: 1 });
}

// chunks yields the bytes of a body, each chunk a view valid until the
// next: from a byte stream (fetch's bodies in Chromium and Node) it reads
// into one reused MiB, so that a download of a gigabyte leaves no
// gigabyte of chunks behind for the garbage collector to find; from any
// other stream, its chunks as they come.
async function* chunks(body) {
  let byob = null;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    // not a byte stream
  }
  if (!byob) {
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock?.();
    }
  }
  let scratch = new ArrayBuffer(1 << 20);
  try {
    for (;;) {
      const { done, value } = await byob.read(new Uint8Array(scratch));
      if (done) return;
      yield value;
      scratch = value.buffer; // read gave it back, moved
    }
  } finally {
    byob.releaseLock?.();
  }
}

// fileHeaders are the headers of a model kept in Cache Storage: its size
// (when known) tells readCached and cachedModels how long it is.
function fileHeaders(size) {
  const h = { 'Content-Type': 'application/octet-stream' };
  if (size) h['Content-Length'] = String(size);
  return h;
}

// readCached reads a cached answer into the array into gives for its
// size (or its own), or returns null when it cannot be read whole.
async function readCached(hit, into) {
  try {
    const size = Number(hit.headers.get('Content-Length'));
    const buf = Number.isSafeInteger(size) && size > 0 ? await into(size) : null;
    if (!buf) return new Uint8Array(await hit.arrayBuffer());
    let at = 0;
    for await (const value of chunks(hit.body)) {
      if (at + value.byteLength > size) return null;
      buf.set(value, at);
      at += value.byteLength;
    }
    return at === size ? buf : null;
  } catch (err) {
    if (err instanceof WispError) throw err; // from into: the engine's (too large)
    return null; // an unreadable entry: fetch the file again
  }
}

/**
 * RETRY_DELAYS_MS are the waits before each resumption of a download cut
 * mid-way: four tries over about ten seconds, then the error.
 */
export const RETRY_DELAYS_MS = Object.freeze([250, 1000, 3000, 6000]);

// fetchBody downloads url into one array, reporting progress. When the
// connection fails mid-way (a network error, or a body that ends short of
// its Content-Length) it waits and asks for the rest with a Range
// request, once per delay in retryDelays; progress then counts the
// resumptions in retries. An answer to the range that is not the rest of
// the same file (a 200, another size or ETag) starts the file again.
async function fetchBody(url, { fetchFn, signal, onProgress, retryDelays, into }) {
  let loaded = 0;
  let total = 0;
  let retries = 0;
  const report = reporter(onProgress, () => ({ loaded, total, retries }));

  let resp = await get(url, fetchFn, signal, 0);
  if (!resp.ok) throw httpError(url, resp);
  total = contentLength(resp);
  if (total > MAX_MODEL_BYTES) throw tooLarge(total);
  const etag = resp.headers.get('ETag');
  // buf is into's array (fixed: it cannot grow) or download's own.
  let buf = null;
  let fixed = false;
  const allocate = async () => {
    buf = total ? await into(total) : null;
    fixed = !!buf;
    if (buf && buf.byteLength !== total) throw new Error(`into(${total}) gave ${buf.byteLength} bytes`);
    try {
      buf ??= new Uint8Array(total || 1 << 20);
    } catch (err) {
      throw tooLarge(total, err);
    }
  };
  await allocate();
  report(true);
  for (;;) {
    let cut;
    try {
      for await (const value of chunks(resp.body)) {
        if (loaded + value.byteLength > buf.byteLength) {
          if (fixed) throw new WispError(`wisp: downloading ${url}: the server sent more than the ${total} bytes it said`, { code: 'http' });
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
      if (!total || loaded === total) break;
      cut = new WispError(`wisp: downloading ${url}: got ${loaded} of ${total} bytes`, { code: 'http' });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof WispError || err.name === 'AbortError') throw err;
      if (err instanceof RangeError) throw tooLarge(loaded, err);
      cut = new WispError(`wisp: downloading ${url}: ${err.message}`, { code: 'http', cause: err });
    }
    // Cut mid-way: ask for the rest, with a few tries.
    for (;;) {
      if (retries >= retryDelays.length) {
        throw retries ? new WispError(`${cut.message} (after ${retries} resumptions)`, { code: 'http', cause: cut }) : cut;
      }
      retries++;
      report(true); // before the wait: the page can say it resumes
      await sleep(retryDelays[retries - 1], signal);
      try {
        resp = await get(url, fetchFn, signal, loaded);
      } catch (err) {
        if (!(err instanceof WispError)) throw err; // aborted
        cut = err; // still unreachable: try again
        continue;
      }
      if (resp.status === 206 && rest(resp, loaded, total, etag)) break;
      if (resp.status === 200 || resp.status === 206 || resp.status === 416) {
        // Not the rest of the same file: start again.
        await resp.body?.cancel().catch(() => {});
        resp = await get(url, fetchFn, signal, 0);
        if (!resp.ok) throw httpError(url, resp);
        const size = contentLength(resp);
        if (size > MAX_MODEL_BYTES) throw tooLarge(size);
        loaded = 0;
        if (size !== total || !fixed) {
          total = size;
          await allocate();
        }
        break;
      }
      throw httpError(url, resp);
    }
  }
  report(true);
  return loaded === buf.byteLength ? buf : buf.slice(0, loaded);
}

// reporter returns report(force), which gives onProgress the state that
// state() returns, with the rate since the reporter was made and cached
// false, at most every 50 ms unless forced.
function reporter(onProgress, state) {
  const start = performance.now();
  let last = -Infinity;
  return (force) => {
    const now = performance.now();
    if (!onProgress || (!force && now - last < 50)) return;
    last = now;
    const secs = (now - start) / 1000;
    const p = state();
    onProgress({ ...p, rate: secs > 0 ? p.loaded / secs : 0, cached: false });
  };
}

// checkSHA256 throws a WispError with code 'sha256' unless the SHA-256 of
// bytes is want (lower-case hex); name says whose bytes they are.
async function checkSHA256(bytes, want, name) {
  const got = await hexSHA256(bytes);
  if (got !== want) {
    throw new WispError(`wisp: ${name} is corrupt: its SHA-256 is ${got}, expected ${want}`, { code: 'sha256' });
  }
}

// get fetches url, from byte from on when from > 0. A network error is a
// WispError with code 'http'; an abort, the signal's reason.
async function get(url, fetchFn, signal, from) {
  const init = {
    signal,
    // Cache Storage is the one cache of models: the HTTP cache would hold
    // a second copy, or, with cache: false, one the page asked not to
    // keep; and a part of a cut answer that it kept would answer a
    // resumption with ranges of its own.
    cache: 'no-store',
  };
  if (from > 0) init.headers = { Range: `bytes=${from}-` };
  try {
    return await fetchFn(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new WispError(`wisp: fetching ${url}: ${err.message}`, { code: 'http', cause: err });
  }
}

// rest reports whether a 206 answer is the rest of the file from byte
// from: its range starts there, and its size and ETag are the first
// answer's.
function rest(resp, from, total, etag) {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(resp.headers.get('Content-Range') ?? '');
  if (!m || Number(m[1]) !== from || resp.headers.get('Content-Encoding')) return false;
  if (total && m[3] !== String(total)) return false;
  const tag = resp.headers.get('ETag');
  return !(etag && tag && tag !== etag);
}

// contentLength returns the length of an answer's body, or 0 when it is
// unknown (no header, or a Content-Encoding, when it counts encoded bytes).
function contentLength(resp) {
  const length = resp.headers.get('Content-Encoding') ? NaN : Number(resp.headers.get('Content-Length'));
  return Number.isSafeInteger(length) && length > 0 ? length : 0;
}

function httpError(url, resp) {
  resp.body?.cancel().catch(() => {});
  return new WispError(`wisp: fetching ${url}: HTTP ${resp.status} ${resp.statusText}`.trim(), { code: 'http' });
}

// sleep waits ms, or rejects with the signal's reason when it aborts.
function sleep(ms, signal) {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const done = () => { signal?.removeEventListener('abort', stop); resolve(); };
    const t = setTimeout(done, ms);
    const stop = () => { clearTimeout(t); reject(signal.reason); };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * readBlob returns the bytes of a local file (a File or a Blob, such as
 * one the visitor dropped on the page), as download does for a URL:
 * options.onProgress gets {loaded, total, rate, cached: false, retries: 0}
 * as it reads, options.sha256 is checked, options.signal aborts, and
 * options.into, as for download, gives the array to fill.
 *
 * @param {Blob} blob
 * @param {{sha256?: string, signal?: AbortSignal, onProgress?: (p: object) => void,
 *          into?: (n: number) => Uint8Array | null | Promise<Uint8Array | null>}} [options]
 * @returns {Promise<{bytes: Uint8Array, fromCache: boolean}>}
 */
export async function readBlob(blob, options = {}) {
  const { signal, onProgress, sha256 } = options;
  const name = blob.name || 'the file';
  const total = blob.size;
  if (total > MAX_MODEL_BYTES) throw tooLarge(total);
  let bytes = total ? await options.into?.(total) : null;
  try {
    bytes ??= new Uint8Array(total);
  } catch (err) {
    throw tooLarge(total, err);
  }
  let loaded = 0;
  const report = reporter(onProgress, () => ({ loaded, total, retries: 0 }));
  report(true);
  try {
    for await (const value of chunks(blob.stream())) {
      signal?.throwIfAborted();
      if (loaded + value.byteLength > total) throw new Error('it grew while it was read');
      bytes.set(value, loaded);
      loaded += value.byteLength;
      report(false);
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new WispError(`wisp: reading ${name}: ${err.message}`, { code: 'file', cause: err });
  }
  if (loaded !== total) throw new WispError(`wisp: reading ${name}: got ${loaded} of ${total} bytes`, { code: 'file' });
  report(true);
  if (sha256) await checkSHA256(bytes, sha256.toLowerCase(), name);
  return { bytes, fromCache: false };
}

/**
 * cachedModels lists the models that Cache Storage keeps, with their
 * sizes in bytes: [{url, size}] (none where there is no Cache Storage).
 * @returns {Promise<{url: string, size: number}[]>}
 */
export async function cachedModels() {
  const store = await openCache();
  if (!store) return [];
  const list = [];
  for (const req of await store.keys()) {
    const resp = await store.match(req);
    const size = Number(resp?.headers.get('Content-Length'));
    list.push({ url: req.url, size: Number.isSafeInteger(size) ? size : 0 });
  }
  return list;
}

/**
 * forgetModel drops the copy of url that Cache Storage keeps, and reports
 * whether there was one.
 * @param {string} url
 * @returns {Promise<boolean>}
 */
export async function forgetModel(url) {
  const store = await openCache();
  return store ? store.delete(url) : false;
}

/**
 * isCached reports whether Cache Storage holds a copy of url (false where
 * storage is disabled or missing).
 * @param {string} url
 * @returns {Promise<boolean>}
 */
export async function isCached(url) {
  const store = await openCache();
  return !!(store && (await store.match(url).catch(() => undefined)));
}

// openCache opens CACHE_NAME, or returns null where storage is disabled
// (private modes, an opaque origin) or missing (Node).
async function openCache() {
  if (!globalThis.caches) return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
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

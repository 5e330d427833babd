// worker.js: the dedicated module Worker in which wisp.js runs one engine,
// so that downloading, loading and generating never freeze the page.
//
// Messages from the page, each with an id that the answers repeat:
//
//	{type: 'load', id, url, wasmBase, cache, sha256}  or, for a file of
//	{type: 'load', id, file, wasmBase, sha256}        the visitor's, a Blob
//	    → {type: 'progress', id, loaded, total, rate, cached} ...
//	    → {type: 'loaded', id, info, fromCache, loadMs}
//	{type: 'generate', id, prompt, options}
//	    → {type: 'pieces', id, pieces, stats} ... → {type: 'done', id, stats}
//	{type: 'chat', id, messages, options}   the same for a conversation,
//	                      rendered with the model's chat template
//	{type: 'tokenize', id, text, bos}  → {type: 'result', id, value: ids}
//	{type: 'detokenize', id, ids}      → {type: 'result', id, value: text}
//	{type: 'reset', id}   drops the session's cache, after the generations
//	                      under way → {type: 'result', id}
//
// Generations run one after another on one session, which keeps the
// key/value cache of what a prompt shares with the last one: stats say
// how many of the prompt's tokens were reused and how many evaluated.
//	{type: 'abort', id}   aborts a load, or stops a generation (it then ends
//	                      with stats.reason 'aborted')
//
// Any request may be answered {type: 'error', id, error} instead. To unload
// the model, the page terminates the worker: that frees all its memory,
// which a wasm instance's memory otherwise never gives back.

import { createEngine, errorToJSON, HEADER_BYTES, ModelSink, WispError } from './engine.js';
import { download, isCached, readBlob } from './download.js';
import { ggufMetadata } from './gguf.js';

/**
 * The longest header the Worker reads before the download. Beyond it (a
 * vocabulary of many megabytes) it downloads the file, and the engine
 * checks the header then.
 */
const HEADER_CAP = 16 * 2 ** 20;

/** Longest run of steps between two looks at the message queue, in ms. */
const SLICE_MS = 16;

let engine = null; // this worker's one engine, once loaded
const jobs = new Map(); // id → {abort(): void} of the requests under way
let busy = Promise.resolve(); // generations run one after the other

// A MessageChannel yields to the event loop without setTimeout's clamping,
// so that an 'abort' message can arrive between two slices of steps.
const tick = new MessageChannel();
const ticks = [];
tick.port1.onmessage = () => ticks.shift()?.();
const yieldToEvents = () => new Promise((resolve) => { ticks.push(resolve); tick.port2.postMessage(null); });

self.onmessage = (e) => {
  const msg = e.data;
  switch (msg.type) {
    case 'load': answer(msg, () => load(msg)); break;
    case 'generate': case 'chat': answer(msg, () => generate(msg)); break;
    case 'tokenize': answer(msg, () => result(msg, () => Array.from(loaded().tokenize(String(msg.text), msg.bos !== false))));
      break;
    case 'detokenize': answer(msg, () => result(msg, () => loaded().detokenize(msg.ids))); break;
    case 'reset': answer(msg, () => { const run = busy.then(() => result(msg, () => loaded().reset())); busy = run.catch(() => {}); return run; });
      break;
    case 'abort': jobs.get(msg.id)?.abort(); break;
  }
};

// answer runs a request and turns its failure into an 'error' message.
async function answer(msg, run) {
  try {
    await run();
  } catch (err) {
    self.postMessage({ type: 'error', id: msg.id, error: errorToJSON(err) });
  } finally {
    jobs.delete(msg.id);
  }
}

// loaded returns the engine, or throws when no model is loaded.
function loaded() {
  if (!engine) throw new WispError('wisp: no model is loaded', { code: 'usage' });
  return engine;
}

// result answers a request with the value f returns.
function result({ id }, f) {
  self.postMessage({ type: 'result', id, value: f() });
}

async function load({ id, url, file, wasmBase, cache, sha256, threads: asked }) {
  if (engine) throw new WispError('wisp: this worker already holds a model', { code: 'usage' });
  const ctl = new AbortController();
  jobs.set(id, { abort: () => ctl.abort(new DOMException('the load was aborted', 'AbortError')) });
  const base = new URL(wasmBase);
  const { threads, reason: threadsReason } = chooseThreads(asked);
  // The threaded build imports a shared memory; its relaxed passes too.
  const start = (n) => {
    const wasm = (name) => fetch(new URL(n > 1 ? `${name}-shared.wasm` : `${name}.wasm`, base));
    return createEngine({
      engine: wasm('wisp'),
      kernels: wasm('kernels'),
      forward: fetch(new URL('forward.wasm', base)),
      // Where the browser lacks relaxed SIMD, or the file is missing, the
      // baseline kernels run and info.kernelsReason says why.
      relaxed: wasm('relaxed'),
      stderr: (s) => console.error(s),
      threads: n > 1 ? { count: n, module: fetch(new URL('threads.wasm', base)), spawn: spawnHelper } : undefined,
    });
  };
  // Instantiate while the model downloads. Threads never fail a load: where
  // the threaded build cannot start (a shared memory of 4 GiB refused, say),
  // the single-threaded one runs, and info.threadsReason says why.
  const starting = threads <= 1 ? start(1) : start(threads).catch(async (err) => {
    const eng = await start(1);
    eng.threads = { count: 1, reason: `the threaded engine did not start: ${err.message}` };
    return eng;
  });
  starting.catch(() => {}); // reported below, after the download's own errors
  // Before the download, the header: a model the engine cannot run or
  // hold is refused with the engine's error after a few KiB, not after
  // the whole file. A copy in Cache Storage costs no download.
  const onProgress = (p) => self.postMessage({ type: 'progress', id, ...p });
  // The file goes straight into the engine's buffer as it arrives: it is
  // held once, not downloaded into one array and copied into another.
  const sink = new ModelSink(starting);
  const into = sink.into;
  let got;
  try {
    if (file) {
      await checkHeader(new BlobPrefix(file), starting, ctl.signal);
      got = await readBlob(file, { sha256, signal: ctl.signal, onProgress, into });
    } else {
      if (!(cache && (await isCached(url)))) await checkHeader(new Prefix(url, ctl.signal), starting, ctl.signal);
      got = await download(url, { cache, sha256, signal: ctl.signal, onProgress, into });
    }
  } catch (err) {
    sink.free();
    throw err;
  }
  const eng = await starting;
  ctl.signal.throwIfAborted();
  const t0 = performance.now();
  const meta = ggufMetadata(sink.bytes(got)) ?? {};
  const info = await sink.load(got);
  engine = eng;
  const text = (key) => (typeof meta[key] === 'string' ? meta[key] : '');
  const extra = {
    // Which kernels run here (createEngine's KernelSet), not the engine's
    // own name for its kernel imports.
    kernels: eng.kernels.name,
    ...(eng.kernels.reason ? { kernelsReason: eng.kernels.reason } : {}),
    random: meta['wisp.random'] === true,
    description: text('general.description'),
    chatTemplate: text('tokenizer.chat_template'),
    memoryBytes: eng.memory.buffer.byteLength,
    threads: eng.threads.count,
    ...(eng.threads.reason || threadsReason ? { threadsReason: eng.threads.reason ?? threadsReason } : {}),
  };
  self.postMessage({
    type: 'loaded', id, info: { ...info, ...extra }, fromCache: got.fromCache,
    loadMs: performance.now() - t0,
  });
}

/** MAX_DEFAULT_THREADS caps the threads a load takes by default. */
const MAX_DEFAULT_THREADS = 8;

// chooseThreads returns how many threads a load runs on: those asked for
// (by default the cores the browser reports, at most MAX_DEFAULT_THREADS),
// or one where the page cannot share memory with Workers, and why fewer.
function chooseThreads(asked) {
  const n = Number.isFinite(asked) ? Math.max(1, Math.floor(asked)) : undefined;
  if (n === 1) return { threads: 1, reason: 'one thread was asked for' };
  if (!globalThis.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') {
    return { threads: 1, reason: 'the page is not cross-origin isolated (COOP/COEP headers), so it cannot share memory with Workers' };
  }
  const cores = globalThis.navigator?.hardwareConcurrency || 1;
  const threads = n ?? Math.min(cores, MAX_DEFAULT_THREADS);
  return threads > 1 ? { threads } : { threads: 1, reason: 'the browser reports one core' };
}

// spawnHelper starts a kernel thread (helper.js, beside this module). A
// Worker of another origin (an embed) starts from a blob that imports it.
function spawnHelper() {
  const url = new URL('./helper.js', import.meta.url);
  if (url.origin !== self.location.origin) {
    const blob = new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' });
    return new Worker(URL.createObjectURL(blob), { type: 'module', name: 'wisp-kernels' });
  }
  return new Worker(url, { type: 'module', name: 'wisp-kernels' });
}

// checkHeader reads the start of a file (src: a Prefix of one on the
// network or a BlobPrefix of a local one), from HEADER_BYTES on and
// growing geometrically while the header runs past them, and has the
// engine check it (Engine.check): it throws the error loading the file
// would throw. It returns without a verdict where it cannot tell (an
// answer it cannot use, a header longer than HEADER_CAP): the download
// then goes ahead, and the engine checks the whole file.
async function checkHeader(src, starting, signal) {
  try {
    for (let want = HEADER_BYTES; ;) {
      if (!(await src.readTo(want))) return;
      const eng = await starting;
      signal.throwIfAborted();
      const { need } = eng.check(src.bytes, src.size);
      if (!need || src.whole) return;
      want = Math.max(need, 2 * src.bytes.byteLength);
      if (src.size >= 0) want = Math.min(want, src.size);
      if (want > HEADER_CAP) return;
    }
  } finally {
    await src.close();
  }
}

// BlobPrefix is the start of a local file (a File or Blob), read as a
// Prefix is: bytes, the file's size, and whether bytes are the whole file.
class BlobPrefix {
  constructor(blob) {
    this.blob = blob;
    this.bytes = new Uint8Array(0);
    this.size = blob.size;
    this.whole = blob.size === 0;
  }

  async readTo(n) {
    try {
      this.bytes = new Uint8Array(await this.blob.slice(0, Math.min(n, this.size)).arrayBuffer());
    } catch (err) {
      throw new WispError(`wisp: reading ${this.blob.name ?? 'the file'}: ${err.message}`, { code: 'file', cause: err });
    }
    this.whole = this.bytes.byteLength >= this.size;
    return true;
  }

  async close() {}
}

// Prefix is the start of a file on the network: bytes, the file's size
// (-1 while unknown), and whether bytes are the whole file. From a server
// that ignores Range it reads the one answer's body only as far as asked.
class Prefix {
  constructor(url, signal) {
    this.url = url;
    this.signal = signal;
    this.bytes = new Uint8Array(0);
    this.size = -1;
    this.whole = false;
    this.reader = null; // the body of an answer that ignored the range, still open
    this.rest = null; // bytes of that body read but not yet used
  }

  // readTo reads until bytes holds n bytes or the whole file; it returns
  // false for an answer it cannot use, and throws download's error for an
  // HTTP error.
  async readTo(n) {
    if (this.reader) return this.readBody(n);
    const start = this.bytes.byteLength;
    let resp;
    try {
      // Cache Storage or the download keeps the file; not the HTTP cache.
      resp = await fetch(this.url, { signal: this.signal, cache: 'no-store', headers: { Range: `bytes=${start}-${n - 1}` } });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new WispError(`wisp: fetching ${this.url}: ${err.message}`, { code: 'http', cause: err });
    }
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(resp.headers.get('Content-Range') ?? '');
    const encoded = !!resp.headers.get('Content-Encoding');
    if (resp.status === 416 || (resp.status === 206 && (!range || encoded || Number(range[1]) !== start))) {
      // Past the end of an empty file, or not the range asked for: let
      // the download deal with the file.
      await resp.body?.cancel().catch(() => {});
      return false;
    }
    if (!resp.ok) {
      await resp.body?.cancel().catch(() => {});
      throw new WispError(`wisp: fetching ${this.url}: HTTP ${resp.status} ${resp.statusText}`.trim(), { code: 'http' });
    }
    this.reader = resp.body.getReader();
    if (resp.status === 206) {
      if (range[2] !== '*') this.size = Number(range[2]);
      const ok = await this.readBody(n);
      await this.close(); // the range is read
      return ok;
    }
    // The server ignored the range: its body is the file from the start,
    // to be read only as far as needed.
    this.bytes = new Uint8Array(0);
    const length = Number(resp.headers.get('Content-Length') ?? NaN); // counts encoded bytes when encoded
    if (!encoded && Number.isSafeInteger(length) && length >= 0) this.size = length;
    return this.readBody(n);
  }

  // readBody appends what the open body holds up to n bytes in all.
  async readBody(n) {
    const buf = new Uint8Array(n);
    buf.set(this.bytes);
    let got = this.bytes.byteLength;
    try {
      while (got < n) {
        // What the last read left over, first.
        const { done, value } = this.rest ? { done: false, value: this.rest } : await this.reader.read();
        this.rest = null;
        if (done) {
          this.reader = null;
          if (this.size < 0 || got >= this.size) {
            this.whole = true; // the body ended: that was the file
            this.size = got;
          }
          break;
        }
        const take = Math.min(value.byteLength, n - got);
        buf.set(value.subarray(0, take), got);
        got += take;
        if (take < value.byteLength) this.rest = value.subarray(take);
      }
    } catch (err) {
      if (this.signal.aborted) throw this.signal.reason;
      throw new WispError(`wisp: downloading ${this.url}: ${err.message}`, { code: 'http', cause: err });
    }
    this.bytes = buf.subarray(0, got);
    if (this.size >= 0 && got >= this.size) this.whole = true;
    return true;
  }

  // close cancels what is left of an open body.
  async close() {
    const r = this.reader;
    this.reader = this.rest = null;
    await r?.cancel().catch(() => {});
  }
}

async function generate({ id, prompt, messages, options }) {
  let stopped = false;
  jobs.set(id, { abort: () => { stopped = true; } });
  const run = busy.then(() => steps(id, messages ? { messages } : prompt, options, () => stopped));
  busy = run.catch(() => {});
  await run;
}

// steps runs one generation, in slices of at most SLICE_MS between which
// it posts the pieces so far and lets messages in.
async function steps(id, prompt, options, stopped) {
  if (!engine) throw new WispError('wisp: no model is loaded', { code: 'usage' });
  const t0 = performance.now();
  const stats = {
    promptTokens: 0, reusedTokens: 0, evaluatedTokens: 0, droppedMessages: 0, promptMs: 0, tokens: 0, decodeMs: 0,
    timeToFirstTokenMs: 0, tokensPerSecond: 0, promptTokensPerSecond: 0,
    reason: '', seed: options.seed,
  };
  if (stopped()) { // stopped while it waited for the one before
    stats.reason = 'aborted';
    self.postMessage({ type: 'done', id, stats });
    return;
  }
  let echo;
  if (prompt.messages) {
    engine.setOptions(options);
    const ids = engine.chatTokens(prompt.messages, { overflow: options.overflow });
    stats.droppedMessages = engine.droppedMessages;
    engine.prompt(ids, options);
    echo = '';
  } else {
    echo = engine.prompt(prompt, options);
  }
  stats.promptTokens = engine.promptTokens;
  stats.reusedTokens = engine.reusedTokens;
  stats.evaluatedTokens = engine.promptTokens - engine.reusedTokens;
  stats.promptMs = performance.now() - t0;
  stats.promptTokensPerSecond = rate(stats.evaluatedTokens, stats.promptMs);
  let pieces = options.echo && echo ? [echo] : [];
  let done = false;
  while (!done) {
    if (stopped()) {
      stats.reason = 'aborted';
      break;
    }
    const end = performance.now() + SLICE_MS;
    do {
      const s0 = performance.now();
      const step = engine.next();
      const s1 = performance.now();
      if (step.token >= 0) {
        stats.decodeMs += s1 - s0;
        stats.tokens++;
        if (stats.tokens === 1) stats.timeToFirstTokenMs = s1 - t0;
      }
      if (step.piece) pieces.push(step.piece);
      done = step.done;
      // Post the first token at once: time to first token is visible.
      if (stats.tokens === 1) break;
    } while (!done && performance.now() < end);
    stats.tokensPerSecond = rate(stats.tokens, stats.decodeMs);
    if (done) stats.reason = engine.doneReason;
    if (pieces.length || !done) {
      self.postMessage({ type: 'pieces', id, pieces, stats });
      pieces = [];
    }
    if (!done) await yieldToEvents();
  }
  self.postMessage({ type: 'done', id, stats });
}

function rate(n, ms) {
  return ms > 0 ? (n * 1000) / ms : 0;
}

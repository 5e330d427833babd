// wisp.js: wisp's JavaScript API for web pages. A model runs in its own
// dedicated Worker (worker.js), so the page never freezes:
//
//	import * as wisp from './wisp.js';
//	const model = await wisp.load('/models/default.gguf', {onProgress: console.log});
//	for await (const piece of model.generate('Once upon a time', {maxTokens: 100})) {
//	  out.append(piece);
//	}
//	model.unload();
//
// Without a browser (Node, tests), use engine.js and download.js directly.

import { WispError, errorFromJSON, noSIMDError, simdSupported } from './engine.js';
import { cachedModels, forgetModel } from './download.js';

export { WispError, simdSupported };

/**
 * DEFAULTS are the generation options that model.generate uses where the
 * caller gives none: option.Options' defaults, as `wisp run`'s flags have
 * them (test/options.test.js checks them against abi.js's OPTIONS), and
 * echo, the page's own. seed undefined means a random seed per generation
 * (stats.seed tells which).
 */
export const DEFAULTS = Object.freeze({
  maxTokens: 256, temperature: 1, topP: 0.9, topK: 0, minP: 0,
  repeatPenalty: 1, repeatLastN: 64, seed: undefined, stop: [], context: 0, echo: false,
});

/**
 * checkSupport throws a WispError (code 'no-simd') with a message for the
 * visitor when this browser cannot run wisp: it lacks WebAssembly SIMD128.
 */
export function checkSupport() {
  if (!simdSupported()) throw noSIMDError();
}

let nextId = 1; // ids of requests to workers, unique in the page

/**
 * load downloads a GGUF model (from Cache Storage when an earlier load
 * kept it there) and loads it into a new engine in a dedicated Worker.
 * The model may also be a File or Blob (a GGUF the visitor dropped on the
 * page or picked with <input type=file>): it is read in the Worker, with
 * no upload; cache does not apply to it.
 *
 * Options: onProgress({loaded, total, rate, cached, retries}) as bytes
 * arrive (retries counts the times a download cut mid-way resumed with a
 * Range request: it tries four times over about ten seconds);
 * signal, an AbortSignal that aborts the load (the promise rejects with an
 * AbortError); cache (default true), whether to use Cache Storage; sha256,
 * the file's expected SHA-256 in hex; base, the URL of the folder holding
 * worker.js and wasm/ (default: this file's folder; give it where a
 * bundle does not carry them, as esbuild's does not); wasmBase, the URL
 * of the folder holding wisp.wasm, kernels.wasm, forward.wasm and
 * relaxed.wasm (default: wasm/ in base).
 *
 * Before downloading a file (one not in Cache Storage), it reads the
 * file's header with Range requests, and refuses a model the engine cannot
 * run or hold (its architecture, a tensor type, a shape, its size) with the
 * engine's error, without downloading the rest.
 *
 * It rejects with a WispError whose code tells the problem: 'no-simd',
 * 'http' (a bad URL), 'file' (a local file that cannot be read),
 * 'too-large', 'sha256', 'engine' (not a model wisp can read), 'memory',
 * 'worker'.
 *
 * @param {string | URL | Blob} url
 * @param {object} [options]
 * @returns {Promise<Model>}
 */
export async function load(url, options = {}) {
  checkSupport();
  options.signal?.throwIfAborted();
  const page = globalThis.document?.baseURI ?? globalThis.location?.href;
  const file = typeof Blob !== 'undefined' && url instanceof Blob ? url : null;
  const abs = file ? '' : new URL(url, page).href;
  const base = assetBase(options.base, page);
  const wasmBase = new URL(options.wasmBase ?? './wasm/', options.wasmBase ? page : base);
  if (!wasmBase.pathname.endsWith('/')) wasmBase.pathname += '/';
  const client = new Client(startWorker(new URL('./worker.js', base)));
  const id = nextId++;
  const onAbort = () => client.abort(id, options.signal.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await client.request(
      file
        ? { type: 'load', id, file, wasmBase: wasmBase.href, sha256: options.sha256 }
        : { type: 'load', id, url: abs, wasmBase: wasmBase.href, cache: options.cache !== false, sha256: options.sha256 },
      (msg) => {
        if (msg.type === 'progress') {
          const { loaded, total, rate, cached, retries } = msg;
          options.onProgress?.({ loaded, total, rate, cached, retries });
        }
      });
    const source = file ? { url: '', fileName: file.name ?? '' } : { url: abs };
    return new Model(client, { ...res.info, ...source, fromCache: res.fromCache, loadMs: res.loadMs });
  } catch (err) {
    client.terminate(err);
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * cache manages the models that loads keep in Cache Storage (the
 * 'wisp-models-v1' cache of this origin): list() gives [{url, size}],
 * delete(url) drops one and says whether it was there, and estimate()
 * gives the browser's {usage, quota} for the origin in bytes (all
 * storage, not only models; zeros where the browser does not say).
 */
export const cache = Object.freeze({
  list: cachedModels,
  delete: (url) => forgetModel(new URL(url, globalThis.document?.baseURI ?? globalThis.location?.href).href),
  async estimate() {
    const e = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
    return { usage: e?.usage ?? 0, quota: e?.quota ?? 0 };
  },
});

// assetBase returns the folder that holds worker.js and wasm/: base
// (resolved against the page) when given, else this module's folder. A
// bundle that does not carry them (esbuild's) gives base.
function assetBase(base, page) {
  if (base === undefined) return new URL('./', import.meta.url);
  const u = new URL(base, page);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

// startWorker starts worker.js (at url) as a module Worker. A page of
// another origin (an embed) cannot start a Worker from that origin's URL
// directly: it starts one from a blob that imports it (which needs CORS
// there).
function startWorker(url) {
  if (globalThis.location && url.origin !== globalThis.location.origin) {
    const src = `import ${JSON.stringify(url.href)};`;
    const blob = new Blob([src], { type: 'text/javascript' });
    return new Worker(URL.createObjectURL(blob), { type: 'module', name: 'wisp' });
  }
  return new Worker(url, { type: 'module', name: 'wisp' });
}

// Client sends requests to a worker and routes its answers by id.
class Client {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map(); // id → {resolve, reject, onMessage}
    this.dead = null;
    worker.onmessage = (e) => this.receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault?.();
      this.terminate(new WispError(`wisp: the engine's worker failed: ${e.message || 'it could not start (see the console)'}`, { code: 'worker' }));
    };
    worker.onmessageerror = () => this.terminate(new WispError('wisp: a message from the worker could not be read', { code: 'worker' }));
  }

  request(msg, onMessage) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject, onMessage });
      this.worker.postMessage(msg);
    });
  }

  receive(msg) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'error') {
      this.pending.delete(msg.id);
      p.reject(errorFromJSON(msg.error));
    } else if (msg.type === 'loaded' || msg.type === 'done') {
      this.pending.delete(msg.id);
      p.onMessage?.(msg);
      p.resolve(msg);
    } else {
      p.onMessage?.(msg);
    }
  }

  // abort aborts a load: the worker stops at once, with the reason.
  abort(id, reason) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.reject(reason ?? new DOMException('aborted', 'AbortError'));
  }

  // stop asks the worker to stop a generation; it answers 'done'.
  stop(id) {
    if (!this.dead) this.worker.postMessage({ type: 'abort', id });
  }

  terminate(err) {
    if (this.dead) return;
    this.dead = err ?? new WispError('wisp: the model is unloaded', { code: 'closed' });
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}

/**
 * Model is a model loaded in its own Worker. It runs one generation at a
 * time: a generate call made while another runs starts when that one ends.
 */
export class Model {
  #client;

  constructor(client, info) {
    this.#client = client;
    /**
     * What the model is: architecture, name, params, fileSize,
     * contextLength, vocabSize, dim, hiddenDim, layers, heads, kvHeads,
     * headDim, f16, flushed, bos, eos (abi.Info); kernels, the kernel set
     * that runs ('wasm-simd128+relaxed' where the browser has relaxed
     * SIMD, else 'wasm-simd128' and kernelsReason says why); random
     * (weights marked random by `wisp synth`), description, chatTemplate
     * (the GGUF's tokenizer.chat_template, or ''), memoryBytes (the
     * engine's memory once loaded: the file, the session, the runtime), url (''
     * for a local file, which has fileName instead), fromCache, loadMs.
     */
    this.info = Object.freeze(info);
  }

  /**
   * generate starts generating a continuation of prompt and returns a
   * Generation: an async iterable of the text, piece by piece. Only the
   * continuation is yielded unless options.echo, which yields first the
   * prompt as the model prints it. Options (see DEFAULTS): maxTokens,
   * temperature, topP, topK, minP, repeatPenalty, repeatLastN, seed,
   * stop, context, echo, and signal, an AbortSignal that stops the
   * generation (the iteration then just ends, stats.reason 'aborted').
   * @param {string} prompt
   * @param {object} [options]
   * @returns {Generation}
   */
  generate(prompt, options = {}) {
    const opts = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined && k !== 'signal') opts[k] = v;
    if (opts.seed === undefined) opts.seed = crypto.getRandomValues(new Uint32Array(1))[0] || 1;
    return new Generation(this.#client, String(prompt), opts, options.signal);
  }

  /**
   * unload frees the model: it ends its Worker, and with it a generation
   * under way, whose iteration then throws.
   */
  unload() {
    this.#client.terminate();
  }
}

/**
 * Generation is one generation under way: an async iterable of text
 * pieces, with live stats (tokens, tokensPerSecond, timeToFirstTokenMs,
 * promptTokens, promptMs, promptTokensPerSecond, decodeMs, reason, seed),
 * the text so far, stop(), and result, a promise of the final stats.
 */
export class Generation {
  #client;
  #id = nextId++;
  #queue = [];
  #wake = null;
  #error = null;
  #finished = false;

  constructor(client, prompt, options, signal) {
    this.#client = client;
    /** Statistics so far; final once result resolves. */
    this.stats = { tokens: 0, tokensPerSecond: 0, timeToFirstTokenMs: 0, reason: '', seed: options.seed };
    /** The text generated so far (with the echo, if asked for). */
    this.text = '';
    const onAbort = () => this.stop();
    if (signal?.aborted) queueMicrotask(onAbort);
    signal?.addEventListener('abort', onAbort, { once: true });
    /** Resolves to the final stats when generation ends; rejects on error. */
    this.result = client.request({ type: 'generate', id: this.#id, prompt, options }, (msg) => {
      if (msg.pieces) {
        for (const p of msg.pieces) this.text += p;
        this.#queue.push(...msg.pieces);
      }
      this.stats = msg.stats;
      this.#wakeUp();
    }).then((msg) => msg.stats, (err) => {
      this.#error = err;
      throw err;
    }).finally(() => {
      this.#finished = true;
      signal?.removeEventListener('abort', onAbort);
      this.#wakeUp();
    });
    this.result.catch(() => {}); // the iteration reports it too
  }

  #wakeUp() {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** stop ends the generation early; the iteration ends after the pieces already made. */
  stop() {
    if (!this.#finished) this.#client.stop(this.#id);
  }

  async* [Symbol.asyncIterator]() {
    try {
      for (;;) {
        if (this.#queue.length) {
          yield this.#queue.shift();
        } else if (this.#error) {
          throw this.#error;
        } else if (this.#finished) {
          return;
        } else {
          await new Promise((resolve) => { this.#wake = resolve; });
        }
      }
    } finally {
      this.stop(); // a consumer that breaks out stops the generation
    }
  }
}

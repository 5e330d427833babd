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

// withDefaults returns the options of a generation: DEFAULTS, then the
// caller's, and a random seed when none is given.
function withDefaults(options) {
  const opts = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined && k !== 'signal') opts[k] = v;
  if (opts.seed === undefined) opts.seed = crypto.getRandomValues(new Uint32Array(1))[0] || 1;
  return opts;
}

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
 * relaxed.wasm (default: wasm/ in base); threads, how many threads split
 * the large matrix products (default: the cores the browser reports, at
 * most 8; one where the page is not cross-origin isolated, and
 * info.threadsReason says why; the results are the same at any number).
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
        ? { type: 'load', id, file, wasmBase: wasmBase.href, sha256: options.sha256, threads: options.threads }
        : { type: 'load', id, url: abs, wasmBase: wasmBase.href, cache: options.cache !== false, sha256: options.sha256, threads: options.threads },
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
    } else if (msg.type === 'loaded' || msg.type === 'done' || msg.type === 'result') {
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
    const opts = withDefaults(options);
    return new Generation(this.#client, { type: 'generate', prompt: String(prompt), options: opts }, opts, options.signal);
  }

  /**
   * chat renders a conversation ([{role, content}], roles system, user,
   * assistant, tool) with the model's chat template (its GGUF's
   * tokenizer.chat_template, or ChatML for a model without one) and
   * streams the assistant's reply, as generate streams a continuation.
   * Control tokens come from the template only: text a user types, such
   * as "<|im_end|>", stays text. The model keeps the key/value cache of the
   * conversation between calls: a next turn evaluates only its new tokens
   * (stats.reusedTokens, stats.evaluatedTokens). Options: generate's
   * (echo aside), and overflow, what a conversation longer than the
   * context gets: 'error' (the default; the iteration throws an error
   * that says the numbers) or 'drop-oldest' (the oldest turns after the
   * system prompt are left out; stats.droppedMessages counts them). The
   * reply is kept room for: maxTokens positions, at most half the context.
   * @param {{role: string, content: string}[]} messages
   * @param {object} [options]
   * @returns {Generation}
   */
  chat(messages, options = {}) {
    const opts = withDefaults(options);
    delete opts.echo;
    const msgs = Array.isArray(messages) ? messages.map((m) => ({ role: m?.role, content: m?.content })) : messages;
    return new Generation(this.#client, { type: 'chat', messages: msgs, options: opts }, opts, options.signal);
  }

  /**
   * tokenize encodes text as the model's token ids; with bos (default
   * true) BOS comes first when the model asks for it, as in a prompt.
   * Control tokens are not recognised: "<|im_end|>" is text.
   * @param {string} text
   * @param {{bos?: boolean}} [options]
   * @returns {Promise<number[]>}
   */
  async tokenize(text, { bos = true } = {}) {
    return (await this.#client.request({ type: 'tokenize', id: nextId++, text: String(text), bos })).value;
  }

  /**
   * detokenize decodes token ids into text (control tokens print nothing).
   * @param {number[] | Int32Array} ids
   * @returns {Promise<string>}
   */
  async detokenize(ids) {
    return (await this.#client.request({ type: 'detokenize', id: nextId++, ids: Array.from(ids) })).value;
  }

  /**
   * reset drops the key/value cache the model keeps between generations,
   * after those under way: the next evaluates its whole prompt.
   * @returns {Promise<void>}
   */
  async reset() {
    await this.#client.request({ type: 'reset', id: nextId++ });
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

  constructor(client, request, options, signal) {
    this.#client = client;
    /** Statistics so far; final once result resolves. */
    this.stats = { tokens: 0, tokensPerSecond: 0, timeToFirstTokenMs: 0, reason: '', seed: options.seed };
    /** The text generated so far (with the echo, if asked for). */
    this.text = '';
    const onAbort = () => this.stop();
    if (signal?.aborted) queueMicrotask(onAbort);
    signal?.addEventListener('abort', onAbort, { once: true });
    /** Resolves to the final stats when generation ends; rejects on error. */
    this.result = client.request({ ...request, id: this.#id }, (msg) => {
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

// The OpenAI finish_reason of each way a generation ends.
const finishReasons = { eos: 'stop', stop: 'stop', length: 'length', context: 'length', aborted: 'abort' };

/**
 * openai wraps a model in the shape of the OpenAI client's chat API, so
 * that code written for it (or for WebLLM) runs on wisp with one line
 * changed: openai(model).chat.completions.create({messages, stream,
 * max_tokens, temperature, top_p, stop, seed}) resolves to a
 * 'chat.completion' object, or with stream: true to an async iterable of
 * 'chat.completion.chunk' objects: the first has choices[0].delta.role,
 * the next the text in choices[0].delta.content, the last an empty delta,
 * choices[0].finish_reason ('stop', 'length' or 'abort') and usage
 * ({prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details:
 * {cached_tokens}}, the last counting the prompt's tokens the model's
 * cache kept from the last generation). Defaults are
 * OpenAI's: temperature 1, top_p 1, no limit on max_tokens but the
 * context. Options wisp has beyond those can be given too (top_k, min_p,
 * repeat_penalty, context, overflow). A second argument's signal aborts.
 * @param {Model} model
 */
export function openai(model) {
  const create = async (params = {}, { signal } = {}) => {
    if (!params || !Array.isArray(params.messages)) {
      throw new WispError('wisp: chat.completions.create needs messages, an array of {role, content}', { code: 'options' });
    }
    const n = params.n ?? 1;
    if (n !== 1) throw new WispError(`wisp: n = ${n}: wisp makes one choice per request`, { code: 'options' });
    const stop = params.stop == null ? [] : Array.isArray(params.stop) ? params.stop : [params.stop];
    const options = {
      maxTokens: params.max_tokens ?? params.max_completion_tokens ?? 0,
      temperature: params.temperature ?? 1,
      topP: params.top_p ?? 1,
      topK: params.top_k,
      minP: params.min_p,
      repeatPenalty: params.repeat_penalty,
      context: params.context,
      overflow: params.overflow,
      seed: params.seed ?? undefined,
      stop,
      signal,
    };
    // content may also be a list of text parts, as the API allows.
    const messages = params.messages.map((m) => ({
      role: m?.role,
      content: Array.isArray(m?.content) ? m.content.filter((p) => p?.type === 'text').map((p) => p.text).join('') : m?.content ?? '',
    }));
    const gen = model.chat(messages, options);
    const id = `chatcmpl-${crypto.getRandomValues(new Uint32Array(2)).join('')}`;
    const created = Math.floor(Date.now() / 1000);
    const name = model.info?.name || 'wisp';
    const usage = (s) => ({
      prompt_tokens: s.promptTokens ?? 0, completion_tokens: s.tokens ?? 0, total_tokens: (s.promptTokens ?? 0) + (s.tokens ?? 0),
      prompt_tokens_details: { cached_tokens: s.reusedTokens ?? 0 }, // kept from the last generation's cache
    });
    const finish = (s) => finishReasons[s.reason] ?? 'stop';
    if (!params.stream) {
      let content = '';
      for await (const piece of gen) content += piece;
      const stats = await gen.result;
      return {
        id, object: 'chat.completion', created, model: name,
        choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: finish(stats) }],
        usage: usage(stats),
      };
    }
    const chunk = (delta, finishReason, extra) => ({
      id, object: 'chat.completion.chunk', created, model: name,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...extra,
    });
    return {
      async* [Symbol.asyncIterator]() {
        yield chunk({ role: 'assistant', content: '' }, null);
        for await (const piece of gen) yield chunk({ content: piece }, null);
        const stats = await gen.result;
        yield chunk({}, finish(stats), { usage: usage(stats) });
      },
      /** Stops the generation: the stream ends with finish_reason 'abort'. */
      abort: () => gen.stop(),
    };
  };
  return Object.freeze({ chat: Object.freeze({ completions: Object.freeze({ create }) }) });
}

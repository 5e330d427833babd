// engine.js: instantiates wisp's engine module with its SIMD128 kernels and
// wraps its ABI (wisp/wasm/module) in a small synchronous class. It needs
// nothing of a browser: the Worker (worker.js) and Node's tests use it alike.
//
// Wiring, as wisp/wasm/host does it in wazero: the forwarding module
// (forward.wasm) is instantiated first as "simd" and exports a funcref
// table and one forwarding function per kernel; the engine (wisp.wasm) is
// instantiated against those and WASI; the kernels (kernels.wasm) import
// the engine's memory and the table, which they fill when instantiated;
// then the engine's _initialize runs.

import { ABI_VERSION, EXPORTS, OPTIONS, SHARED_MEMORY, Status } from './abi.js';
import { createWASI } from './wasi.js';

// The engine ABI this file speaks (abi.Version) and the status codes of its
// exports (abi.Status*), from abi.js.
export { ABI_VERSION, Status };

// The WispError code of each error status.
const statusCodes = { [Status.FAILED]: 'engine', [Status.USAGE]: 'usage', [Status.MEMORY]: 'memory', [Status.PANIC]: 'panic' };

/** The largest model a wasm32 engine can hold, with room for the rest. */
export const MAX_MODEL_BYTES = 4 * 2 ** 30 - 64 * 2 ** 20;

/**
 * WispError is every error of wisp's JavaScript: code says what kind
 * ('no-simd', 'http', 'too-large', 'sha256', 'engine', 'usage', 'memory',
 * 'panic', 'trap', 'worker', 'options', 'closed'); for an error of the
 * engine's ABI, op names the export and status its negative status, and
 * message is the engine's own text.
 */
export class WispError extends Error {
  constructor(message, { code = 'engine', op, status, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'WispError';
    this.code = code;
    if (op !== undefined) this.op = op;
    if (status !== undefined) this.status = status;
  }
}

/**
 * errorToJSON turns an error into a plain object that postMessage carries;
 * errorFromJSON turns it back.
 * @param {unknown} err
 */
export function errorToJSON(err) {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, code: err.code, op: err.op, status: err.status };
  }
  return { name: 'Error', message: String(err) };
}

/** errorFromJSON rebuilds an error that errorToJSON flattened. */
export function errorFromJSON(e) {
  if (e.name === 'AbortError') return new DOMException(e.message, 'AbortError');
  const err = new WispError(e.message, { code: e.code ?? 'engine', op: e.op, status: e.status });
  return err;
}

// A module with one function returning a v128 constant: validates only
// where WebAssembly SIMD (128-bit) is supported.
const simdProbe = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, // code: v128.const
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0x0b, // end
]);

/**
 * simdSupported reports whether this JavaScript engine runs WebAssembly
 * with SIMD128, which wisp's kernels need.
 * @returns {boolean}
 */
export function simdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(simdProbe);
  } catch {
    return false;
  }
}

/** noSIMDError is the error for a JavaScript engine without SIMD128. */
export function noSIMDError() {
  return new WispError(
    'This browser cannot run wisp: it lacks WebAssembly SIMD (128-bit), which every current ' +
    'Chrome, Edge, Firefox and Safari (16.4 or later) has. Update the browser, or turn ' +
    'WebAssembly SIMD back on if it was disabled.', { code: 'no-simd' });
}

/**
 * compile compiles a wasm module from a WebAssembly.Module (returned as
 * is), bytes, or a Response (or a promise of one), streaming where the
 * platform can.
 * @param {WebAssembly.Module | BufferSource | Response | Promise<Response>} source
 * @param {string} what the file's name, for errors
 * @returns {Promise<WebAssembly.Module>}
 */
export async function compile(source, what) {
  source = await source;
  if (source instanceof WebAssembly.Module) return source;
  try {
    if (typeof Response !== 'undefined' && source instanceof Response) {
      if (!source.ok) {
        // The URL where there is one: the threaded build's files have other names.
        throw new WispError(`wisp: fetching ${source.url || what}: HTTP ${source.status} ${source.statusText}`.trim(), { code: 'http' });
      }
      const type = source.headers.get('Content-Type') ?? '';
      if (WebAssembly.compileStreaming && type.startsWith('application/wasm')) {
        return await WebAssembly.compileStreaming(source);
      }
      source = await source.arrayBuffer();
    }
    return await WebAssembly.compile(source);
  } catch (err) {
    if (err instanceof WispError) throw err;
    throw new WispError(`wisp: compiling ${what}: ${err.message}`, { code: 'engine', cause: err });
  }
}

/**
 * ModelBuffer is the engine's buffer for one model file (Engine.reserve):
 * fill view() with the file's bytes, then load() it, or free() it.
 */
export class ModelBuffer {
  #engine;
  #addr;
  #n;
  #state = 'open';

  constructor(engine, addr, n) {
    this.#engine = engine;
    this.#addr = addr;
    this.#n = n;
  }

  /** The buffer's size in bytes. */
  get size() { return this.#n; }

  /**
   * view returns the buffer as bytes of the engine's memory. The view
   * stays valid until the next call into the engine (which may grow its
   * memory): take a new one after any.
   * @returns {Uint8Array}
   */
  view() {
    if (this.#state !== 'open') throw new WispError(`wisp: the model buffer is ${this.#state}`, { code: 'usage' });
    return this.#engine.bytes(this.#addr, this.#n);
  }

  /**
   * load loads the model from the filled buffer (wisp_load, which checks
   * the whole file) and returns its info (abi.Info); the engine then owns
   * the buffer. On an error the buffer is freed.
   * @returns {object}
   */
  load() {
    this.view(); // open still
    const eng = this.#engine;
    this.#state = 'loaded';
    try {
      eng.status('wisp_load', this.#addr, this.#n);
    } catch (err) {
      if (!eng.broken) eng.status('wisp_free', this.#addr); // the buffer is still ours
      this.#state = 'freed';
      throw refused(err) ? tooLarge(this.#n, err) : err;
    }
    eng.info = JSON.parse(eng.string('wisp_info_ptr', 'wisp_info_len'));
    return eng.info;
  }

  /** free gives the buffer back to the engine, unless it was loaded. */
  free() {
    if (this.#state !== 'open') return;
    this.#state = 'freed';
    if (!this.#engine.broken) this.#engine.status('wisp_free', this.#addr);
  }
}

/**
 * ModelSink puts a model file that download or readBlob fetches straight
 * into an engine's buffer (Engine.reserve), so that the file is held once:
 * pass sink.into as their options.into, then sink.load(got) with what they
 * returned. engine is the Engine, or a promise of it (the Worker starts
 * the engine while the download begins).
 */
export class ModelSink {
  #engine;
  #buf = null;
  #view = null; // the array into last gave

  constructor(engine) {
    this.#engine = engine;
    this.into = this.into.bind(this);
  }

  /**
   * into returns the engine's buffer for a file of n bytes, reserving it
   * (again, if an earlier answer had another size).
   * @param {number} n
   * @returns {Promise<Uint8Array>}
   */
  async into(n) {
    const eng = await this.#engine;
    if (this.#buf?.size !== n) {
      this.free();
      this.#buf = eng.reserve(n);
    }
    this.#view = this.#buf.view();
    return this.#view;
  }

  /**
   * bytes returns the file: the engine's buffer when got.bytes is the
   * array into gave, else got.bytes (where the size was not known
   * beforehand, the bytes are download's own).
   * @param {{bytes: Uint8Array}} got
   * @returns {Uint8Array}
   */
  bytes(got) {
    return this.#inEngine(got) ? this.#buf.view() : got.bytes;
  }

  /**
   * load loads the model from the engine's buffer, or copies got.bytes into
   * the engine where into was not used, and returns the model's info.
   * @param {{bytes: Uint8Array}} got
   * @returns {Promise<object>}
   */
  async load(got) {
    const eng = await this.#engine;
    if (this.#inEngine(got)) return this.#buf.load();
    this.free();
    return eng.load(got.bytes);
  }

  /** free gives a reserved buffer back (a failed or abandoned download). */
  free() {
    this.#buf?.free();
    this.#buf = null;
  }

  #inEngine(got) {
    return this.#buf !== null && got.bytes === this.#view;
  }
}

/**
 * createEngine instantiates the engine and its kernels and initialises
 * the engine. Each module is given as compile takes it.
 *
 * options.stderr receives what the engine writes to its standard error
 * (the Go runtime's fatal errors); options.memoryLimitMiB tells the
 * engine how far its memory may grow (default 4096).
 *
 * The threaded build (wisp-shared.wasm with kernels-shared.wasm) imports
 * its memory, shared, as SHARED_MEMORY describes: options.memory gives
 * it (a WebAssembly.Memory that other workers' kernels share), or a new
 * one is made.
 *
 * options.threads ({count, module, spawn, minWork}) splits the large
 * matrix products among count threads, by rows, with the same results as
 * one: module is threads.wasm, spawn() starts a Worker running helper.js
 * (a page's Worker or Node's worker_threads), minWork is the multiply-adds
 * per thread below which a product stays on this thread. It needs the
 * threaded build; where the threads cannot start, the engine runs on one
 * and engine.threads ({count, reason}) says why. engine.close() stops them.
 *
 * options.relaxed is relaxed.wasm (relaxed-shared.wasm for the threaded build), the relaxed-SIMD passes of the
 * quantized matrix-vector products (optional): where this JavaScript
 * engine validates it and its known-answer check passes, it replaces
 * kernels.wasm's matmul_q (and hands it what it does not speed up);
 * anywhere else the baseline kernels run, and engine.kernels says why.
 *
 * @param {{engine: any, kernels: any, forward: any, relaxed?: any, memory?: WebAssembly.Memory,
 *          stderr?: (s: string) => void, memoryLimitMiB?: number,
 *          threads?: {count: number, module: any, spawn: () => any, minWork?: number}}} options
 * @returns {Promise<Engine>}
 */
export async function createEngine(options) {
  if (!simdSupported()) throw noSIMDError();
  const [engineMod, kernelsMod, forwardMod, relaxed] = await Promise.all([
    compile(options.engine, 'wisp.wasm'),
    compile(options.kernels, 'kernels.wasm'),
    compile(options.forward, 'forward.wasm'),
    compileRelaxed(options.relaxed),
  ]);
  const stderr = new Head(options.stderr);
  const wasiNames = WebAssembly.Module.imports(engineMod)
    .filter((i) => i.module === 'wasi_snapshot_preview1').map((i) => i.name);
  const wasi = createWASI({ stderr: (s) => stderr.write(s), imports: wasiNames });
  const sharedImport = WebAssembly.Module.imports(engineMod)
    .some((i) => i.kind === 'memory' && i.module === SHARED_MEMORY.module && i.name === SHARED_MEMORY.name);
  let instance;
  let kernelSet;
  let forwardTable;
  let kernelExports;
  try {
    const forward = await WebAssembly.instantiate(forwardMod, {});
    const shared = sharedImport ? { [SHARED_MEMORY.module]: { [SHARED_MEMORY.name]: options.memory ?? sharedMemory() } } : {};
    instance = await WebAssembly.instantiate(engineMod, {
      wasi_snapshot_preview1: wasi.imports,
      simd: forward.exports,
      ...shared,
    });
    wasi.setMemory(instance.exports.memory);
    const kernels = await WebAssembly.instantiate(kernelsMod, {
      engine: { memory: instance.exports.memory },
      simd: { table: forward.exports.table },
      ...shared,
    });
    forwardTable = forward.exports.table;
    kernelExports = kernels.exports;
    kernelSet = await installRelaxed(relaxed, instance.exports.memory, forward.exports.table, kernels);
  } catch (err) {
    throw new WispError(`wisp: instantiating the engine: ${err.message}`, { code: 'engine', cause: err });
  }
  const engine = new Engine(instance, stderr);
  engine.kernels = kernelSet;
  engine.call('_initialize');
  const version = engine.call('wisp_abi_version');
  if (version !== ABI_VERSION) {
    throw new WispError(`wisp: the engine speaks ABI version ${version}, this page ${ABI_VERSION}: reload it`, { code: 'engine' });
  }
  if (options.memoryLimitMiB) engine.status('wisp_memory_limit', options.memoryLimitMiB >>> 0);
  engine.threads = { count: 1 };
  const want = Math.min(Math.max(1, Math.floor(options.threads?.count ?? 1)), MAX_THREADS);
  if (want > 1) {
    if (!sharedImport) {
      engine.threads.reason = 'the engine module has no shared memory (the threaded build is wisp-shared.wasm)';
    } else {
      try {
        engine.threads = await startThreads(engine, want, options.threads, {
          forward: forwardMod, kernels: kernelsMod, relaxed: kernelSet.relaxed ? relaxed.module : null,
          table: forwardTable, kernelExports,
        });
      } catch (err) {
        engine.threads = { count: 1, reason: `starting ${want - 1} kernel threads: ${err.message}` };
      }
    }
  }
  return engine;
}

/** MAX_THREADS is the most threads createEngine starts. */
export const MAX_THREADS = 64;

/** HELPER_START_MS is how long a helper Worker may take to start. */
const HELPER_START_MS = 10000;

/**
 * startThreads starts count-1 helper Workers (options.spawn() makes each;
 * each runs helper.js), each with its own kernels on the engine's shared
 * memory, and installs threads.wasm's dispatchers (options.module) in the
 * forwarding table, which split the large matrix products among them and
 * this thread by rows. It returns the engine's ThreadSet; it throws when a
 * helper cannot start, having stopped the others (the products then stay
 * on this thread).
 */
async function startThreads(engine, count, options, mods) {
  if (typeof options.spawn !== 'function') throw new Error('no spawn function to start Workers');
  const module = await compile(options.module, 'threads.wasm');
  const memory = engine.memory;
  const k = mods.kernelExports;
  // matmul_q as this thread runs it (relaxed.wasm's, or the baseline),
  // before threads.wasm's element segment replaces the entry.
  const matmulQ = mods.table.get(MATMUL_Q);
  const main = await WebAssembly.instantiate(module, {
    env: { memory },
    simd: { table: mods.table },
    kernels: { matmul_f16: k.matmul_f16, matmul_f32: k.matmul_f32, matmul_bf16: k.matmul_bf16, matmul_q: matmulQ },
  });
  const ctrl = engine.alloc(128);
  const helpers = [];
  try {
    const ready = [];
    for (let id = 1; id < count; id++) {
      const w = options.spawn();
      helpers.push(w);
      ready.push(new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`kernel thread ${id} did not start within ${HELPER_START_MS} ms`)), HELPER_START_MS);
        listen(w, 'message', (msg) => {
          if (msg?.type === 'ready') { clearTimeout(timer); resolve(); }
          if (msg?.type === 'error') { clearTimeout(timer); reject(new Error(msg.message)); }
        });
        listen(w, 'error', (err) => { clearTimeout(timer); reject(new Error(`kernel thread ${id}: ${err?.message ?? err}`)); });
      }));
      w.postMessage({ memory, forward: mods.forward, kernels: mods.kernels, relaxed: mods.relaxed, threads: module, ctrl, id });
    }
    await Promise.all(ready);
  } catch (err) {
    for (const w of helpers) w.terminate();
    throw err;
  }
  main.exports.setup(ctrl, count - 1, options.minWork ?? 65536);
  return { count, stop: main.exports.stop, helpers };
}

// listen adds a listener to a Worker of the browser or of Node.
function listen(w, type, f) {
  if (typeof w.addEventListener === 'function') w.addEventListener(type, (e) => f(type === 'message' ? e.data : e));
  else w.on(type, f);
}

/**
 * sharedMemory makes the shared memory that the threaded build imports
 * (SHARED_MEMORY's limits). It needs SharedArrayBuffer: in a browser, a
 * cross-origin isolated page.
 * @returns {WebAssembly.Memory}
 */
export function sharedMemory() {
  return new WebAssembly.Memory({ initial: SHARED_MEMORY.initial, maximum: SHARED_MEMORY.maximum, shared: true });
}

/**
 * KernelSet says which kernels an engine runs: name is 'wasm-simd128+relaxed'
 * when relaxed.wasm's passes run the quantized matrix-vector products and
 * 'wasm-simd128' when only the baseline kernels run; then reason says why
 * (no relaxed.wasm given, the JavaScript engine lacks relaxed SIMD, its
 * check failed).
 * @typedef {{name: string, relaxed: boolean, reason?: string}} KernelSet
 */

/** MATMUL_Q is matmul_q's entry in forward.wasm's table (its ABI). */
const MATMUL_Q = 13;

/**
 * compileRelaxed compiles relaxed.wasm, given as compile takes it (or
 * nothing), where WebAssembly.validate accepts it. It never throws: it
 * returns {module} or {reason} for the baseline.
 */
async function compileRelaxed(source) {
  try {
    source = await source;
    if (source == null) return { reason: 'no relaxed.wasm was given' };
    if (source instanceof WebAssembly.Module) return { module: source };
    if (typeof Response !== 'undefined' && source instanceof Response) {
      if (!source.ok) return { reason: `fetching ${source.url || 'relaxed.wasm'}: HTTP ${source.status}` };
      source = await source.arrayBuffer();
    }
    if (!WebAssembly.validate(source)) return { reason: 'this JavaScript engine lacks WebAssembly relaxed SIMD' };
    return { module: await WebAssembly.compile(source) };
  } catch (err) {
    return { reason: `relaxed.wasm: ${err.message}` };
  }
}

/**
 * installRelaxed instantiates relaxed.wasm after kernels.wasm, which
 * points table entry MATMUL_Q at relaxed.wasm's matmul_q, and runs its
 * known-answer check; if that fails, the entry goes back to kernels.wasm's.
 * It returns the KernelSet that runs.
 */
async function installRelaxed(relaxed, memory, table, kernels) {
  const baseline = (reason) => ({ name: 'wasm-simd128', relaxed: false, reason });
  if (!relaxed.module) return baseline(relaxed.reason);
  try {
    const r = await WebAssembly.instantiate(relaxed.module, {
      engine: { memory }, env: { memory }, simd: { table }, kernels: { matmul_q: kernels.exports.matmul_q },
    });
    if (r.exports.check() === 1) return { name: 'wasm-simd128+relaxed', relaxed: true };
    table.set(MATMUL_Q, kernels.exports.matmul_q);
    return baseline('this JavaScript engine\'s relaxed dot product fails relaxed.wasm\'s check');
  } catch (err) {
    table.set(MATMUL_Q, kernels.exports.matmul_q);
    return baseline(`instantiating relaxed.wasm: ${err.message}`);
  }
}

// Head keeps the first KiB written to the engine's stderr since the last
// reset, and passes everything on: a fatal error says what went wrong
// first, then dumps every goroutine.
class Head {
  constructor(sink) { this.sink = sink; this.text = ''; }
  write(s) {
    this.sink?.(s);
    if (this.text.length < 1024) this.text += s.slice(0, 1024 - this.text.length);
  }
  reset() { this.text = ''; }
  toString() {
    const i = this.text.indexOf('\ngoroutine ');
    return (i >= 0 ? this.text.slice(0, i) : this.text).trim();
  }
}

/**
 * engineOptions checks generation options against OPTIONS (their kinds and
 * ranges, as option.Options defines them) and returns the engine's JSON
 * document for them; keys it does not know are ignored, and undefined or
 * null values take the engine's zero value.
 * @param {object} opts
 * @returns {string}
 */
export function engineOptions(opts = {}) {
  const out = {};
  for (const { name, kind, min = -Infinity, max = Infinity } of OPTIONS) {
    const v = opts[name];
    if (v === undefined || v === null) continue;
    const bad = (what) => new WispError(`wisp: option ${name} must be ${what}, not ${JSON.stringify(v)}`, { code: 'options' });
    if (kind === 'strings') {
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw bad('an array of non-empty strings');
      if (v.length) out[name] = v;
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('a finite number');
    if (kind === 'int' && !Number.isSafeInteger(v)) throw bad('an integer');
    if (!(v >= min && v <= max)) {
      const range = `${min === -Infinity ? '(-∞' : `[${min}`}, ${max === Infinity ? '∞)' : `${max}]`}`;
      throw new WispError(`wisp: option ${name} = ${v} is out of range ${range}`, { code: 'options' });
    }
    if (v !== 0) out[name] = v;
  }
  return JSON.stringify(out);
}

/**
 * chatRequest checks a conversation and returns the engine's JSON document
 * for it (abi.ChatRequest): messages of a role and a string content (other
 * fields are ignored), the generation prompt, the overflow policy.
 * @param {{role: string, content: string}[]} messages
 * @param {boolean} addGenerationPrompt
 * @param {string} [overflow] 'error' (default) or 'drop-oldest'
 * @returns {string}
 */
export function chatRequest(messages, addGenerationPrompt = true, overflow) {
  if (!Array.isArray(messages)) throw new WispError('wisp: messages must be an array of {role, content}', { code: 'options' });
  const msgs = messages.map((m, i) => {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new WispError(`wisp: message ${i} must have a string role and a string content, not ${JSON.stringify(m)}`, { code: 'options' });
    }
    return { role: m.role, content: m.content };
  });
  if (overflow !== undefined && overflow !== 'error' && overflow !== 'drop-oldest') {
    throw new WispError(`wisp: overflow must be 'error' or 'drop-oldest', not ${JSON.stringify(overflow)}`, { code: 'options' });
  }
  return JSON.stringify({ messages: msgs, addGenerationPrompt: !!addGenerationPrompt, ...(overflow ? { overflow } : {}) });
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Engine is one instance of the engine module: at most one model, at most
 * one generation. Every method is synchronous and runs on the caller's
 * thread; errors are WispErrors. After a trap (the Go runtime's fatal
 * error, such as memory exhausted) the instance is unusable and every
 * call throws that error again.
 */
export class Engine {
  /** @param {WebAssembly.Instance} instance @param {Head} stderr */
  constructor(instance, stderr) {
    for (const name of EXPORTS) {
      if (typeof instance.exports[name] !== 'function') {
        throw new WispError(`wisp: the engine module does not export ${name}: is it wisp.wasm, of this page's version?`, { code: 'engine' });
      }
    }
    this.exports = instance.exports;
    this.stderr = stderr;
    this.broken = null;
    /** The loaded model's abi.Info, or null. */
    this.info = null;
    /** Tokens in the last prompt. */
    this.promptTokens = 0;
    /** Tokens of the last prompt that the session's cache already held (not evaluated again). */
    this.reusedTokens = 0;
    /** Messages the last chatTokens dropped to fit the context. */
    this.droppedMessages = 0;
    /** The token the last next() sampled, or -1. */
    this.token = -1;
  }

  /**
   * close stops the engine's kernel threads, if it has any (the engine
   * then must not be called again).
   */
  close() {
    const t = this.threads;
    if (!t?.helpers) return;
    this.threads = { count: 1, reason: 'closed' };
    try { t.stop(); } catch { /* a trapped engine */ }
    for (const w of t.helpers) w.terminate();
    if (!this.broken) this.broken = new WispError('wisp: the engine is closed', { code: 'closed' });
  }

  /** memory is the engine's linear memory; take views of it again after every call. */
  get memory() { return this.exports.memory; }

  /**
   * call calls an export and returns its result; a trap makes the
   * instance unusable.
   * @param {string} name
   * @param {...number} args
   */
  call(name, ...args) {
    if (this.broken) throw this.broken;
    this.stderr.reset();
    try {
      return this.exports[name](...args);
    } catch (err) {
      const head = this.stderr.toString();
      const msg = head ? `${head.replaceAll('\n', '; ')} (${err.message})` : err.message;
      this.broken = new WispError(`wisp: ${name} trapped, the engine is unusable: ${msg}`, { code: 'trap', op: name, cause: err });
      throw this.broken;
    }
  }

  /**
   * status calls an export that returns a status and throws the engine's
   * error for a negative one.
   * @returns {number} the status, 0 or 1
   */
  status(name, ...args) {
    const st = this.call(name, ...args) | 0;
    if (st < 0) throw this.errorOf(name, st);
    return st;
  }

  /** errorOf returns the engine's error after a failed call of export name. */
  errorOf(name, st) {
    const msg = this.string('wisp_error_ptr', 'wisp_error_len') || `status ${st}`;
    return new WispError(msg, { code: statusCodes[st] ?? 'engine', op: name, status: st });
  }

  /** bytes returns a fresh view of n bytes of memory at addr. */
  bytes(addr, n) {
    return new Uint8Array(this.memory.buffer, addr >>> 0, n >>> 0);
  }

  /** string decodes the UTF-8 text that a ptr/len pair of exports describes. */
  string(ptrName, lenName) {
    const p = this.call(ptrName) >>> 0;
    const n = this.call(lenName) >>> 0;
    if (!n) return '';
    const b = this.bytes(p, n);
    // Browsers decode no view of a shared memory (the threaded build's).
    return utf8Decoder.decode(b.buffer instanceof ArrayBuffer ? b : b.slice());
  }

  /**
   * alloc allocates n bytes in the engine and returns their address.
   * @param {number} n
   */
  alloc(n) {
    const addr = this.call('wisp_alloc', n >>> 0) >>> 0;
    if (addr === 0) throw this.errorOf('wisp_alloc', this.call('wisp_error_status') | 0);
    return addr;
  }

  /**
   * with copies data into a fresh buffer of the engine, calls f with its
   * address, and frees it. Empty data needs no buffer: f gets 0.
   * @template T
   * @param {Uint8Array} data
   * @param {(addr: number) => T} f
   * @returns {T}
   */
  with(data, f) {
    if (data.byteLength === 0) return f(0);
    const addr = this.alloc(data.byteLength);
    this.bytes(addr, data.byteLength).set(data);
    try {
      return f(addr);
    } finally {
      if (!this.broken) this.status('wisp_free', addr);
    }
  }

  /**
   * load copies a GGUF model file into the engine, once, and loads it
   * there; the bytes may be reused afterwards. (To write the file into
   * the engine as it arrives, with no copy outside it, see reserve.)
   * @param {Uint8Array} data
   * @returns {object} the model's info (abi.Info)
   */
  load(data) {
    if (this.info) throw new WispError('wisp: a model is already loaded; unload it first', { code: 'usage' });
    const n = data.byteLength;
    if (n === 0) throw new WispError('wisp: the model file is empty', { code: 'engine' });
    if (n > MAX_MODEL_BYTES) throw tooLarge(n);
    // The header first, as the Worker does before it downloads a file: a
    // model the engine cannot run or hold is refused with the same error.
    for (let len = Math.min(n, HEADER_BYTES); ;) {
      const { need } = this.check(data.subarray(0, len), n);
      if (!need) break;
      len = Math.min(n, Math.max(need, 2 * len));
    }
    const buf = this.reserve(n);
    buf.view().set(data);
    return buf.load();
  }

  /**
   * reserve allocates the engine's buffer for a model file of n bytes,
   * for the caller to fill (a download writes each chunk there as it
   * arrives) and then load: the file is held once, inside the engine.
   * A model too large for the engine's memory is a WispError with code
   * 'too-large'.
   * @param {number} n
   * @returns {ModelBuffer}
   */
  reserve(n) {
    if (this.info) throw new WispError('wisp: a model is already loaded; unload it first', { code: 'usage' });
    if (n <= 0) throw new WispError('wisp: the model file is empty', { code: 'engine' });
    if (n > MAX_MODEL_BYTES) throw tooLarge(n);
    try {
      return new ModelBuffer(this, this.alloc(n), n);
    } catch (err) {
      throw refused(err) ? tooLarge(n, err) : err;
    }
  }

  /**
   * check checks prefix, the first bytes of a GGUF model file of size
   * bytes (-1 when the size is not known), as load would check the whole
   * file, without loading anything (wisp_check): the architecture, the
   * tokenizer and every tensor's type and shape from the header; from the
   * size, whether the file holds every tensor and fits in the engine's
   * memory beside a short session. It throws the error load would throw
   * for the file, and returns {need: 0} when the model can be loaded as far
   * as that tells, or {need: N} when prefix ends inside the header, which
   * takes at least N bytes: call again with at least that many.
   * @param {Uint8Array} prefix
   * @param {number} size
   * @returns {{need: number}}
   */
  check(prefix, size) {
    if (this.info) throw new WispError('wisp: a model is already loaded; unload it first', { code: 'usage' });
    if (size > MAX_MODEL_BYTES) throw tooLarge(size);
    try {
      const need = this.with(prefix, (addr) => this.status('wisp_check', addr, prefix.byteLength, BigInt(size)));
      return { need };
    } catch (err) {
      throw refused(err) ? tooLarge(size, err) : err;
    }
  }

  /** unload drops the model, its session and its memory inside the engine. */
  unload() {
    this.status('wisp_unload');
    this.info = null;
  }

  /**
   * tokenize encodes text as token ids; with bos, BOS comes first when the
   * model asks for it, as in a prompt.
   * @param {string} text
   * @param {boolean} [bos]
   * @returns {Int32Array}
   */
  tokenize(text, bos = true) {
    const data = utf8.encode(text);
    return this.with(data, (addr) => {
      this.status('wisp_tokenize', addr, data.byteLength, bos ? 1 : 0);
      return this.#tokens();
    });
  }

  /**
   * prompt starts a generation: it sets the options (see engineOptions),
   * tokenizes the text (BOS first when the model asks for it) or takes the
   * token ids as they are, evaluates them, and returns the echo: the prompt
   * as the model prints it.
   * @param {string | Int32Array | number[]} prompt
   * @param {object} [options]
   * @returns {string}
   */
  prompt(prompt, options = {}) {
    this.setOptions(options);
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, true) : Int32Array.from(prompt);
    this.token = -1;
    this.promptTokens = ids.length;
    this.reusedTokens = 0;
    const raw = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    this.with(raw, (addr) => this.status('wisp_prompt_tokens', addr, ids.length));
    this.reusedTokens = this.call('wisp_reused') | 0;
    return this.string('wisp_piece_ptr', 'wisp_piece_len');
  }

  /**
   * setOptions sets the generation options of the next prompts and chats
   * (wisp_options; see engineOptions).
   * @param {object} [options]
   */
  setOptions(options = {}) {
    const js = utf8.encode(engineOptions(options));
    this.with(js, (addr) => this.status('wisp_options', addr, js.byteLength));
  }

  /**
   * chatTokens renders a conversation with the model's chat template
   * (ChatML for a model without one) into prompt tokens (wisp_chat): the
   * template's text with control tokens recognised, the messages' as
   * plain text. It fits the conversation in the context of the options
   * last set, keeping room for the reply (maxTokens, at most half the
   * context): overflow 'error' (the default) throws an error that says
   * the numbers, 'drop-oldest' drops the oldest turns after the system
   * prompt (droppedMessages says how many).
   * @param {{role: string, content: string}[]} messages
   * @param {{addGenerationPrompt?: boolean, overflow?: string}} [options]
   * @returns {Int32Array}
   */
  chatTokens(messages, { addGenerationPrompt = true, overflow } = {}) {
    const js = utf8.encode(chatRequest(messages, addGenerationPrompt, overflow));
    return this.with(js, (addr) => {
      this.droppedMessages = this.status('wisp_chat', addr, js.byteLength);
      return this.#tokens();
    });
  }

  /**
   * chat renders the conversation (chatTokens, with options.overflow),
   * evaluates it on the session, which keeps the cache of what it shares
   * with the last prompt (reusedTokens says how much), and yields the
   * reply piece by piece, as generate does; it returns why it ended.
   * @param {{role: string, content: string}[]} messages
   * @param {object} [options]
   * @returns {Generator<string, string>}
   */
  * chat(messages, options = {}) {
    this.setOptions(options);
    const ids = this.chatTokens(messages, options);
    return yield* this.generate(ids, { ...options, echo: false });
  }

  /**
   * detokenize decodes token ids into text (control tokens print nothing;
   * bytes that are not UTF-8 become U+FFFD).
   * @param {Int32Array | number[]} ids
   * @returns {string}
   */
  detokenize(ids) {
    const a = Int32Array.from(ids);
    const raw = new Uint8Array(a.buffer);
    this.with(raw, (addr) => this.status('wisp_detokenize', addr, a.length));
    return this.string('wisp_text_ptr', 'wisp_text_len');
  }

  /** reset drops the session and its cache: the next prompt evaluates every token. */
  reset() {
    this.status('wisp_reset');
    this.reusedTokens = 0;
  }

  // #tokens reads the ids that wisp_tokens_ptr and wisp_tokens_len give.
  #tokens() {
    const p = this.call('wisp_tokens_ptr') >>> 0;
    const n = this.call('wisp_tokens_len') >>> 0;
    const ids = new Int32Array(n);
    if (n) new Uint8Array(ids.buffer).set(this.bytes(p, 4 * n));
    return ids;
  }

  /**
   * next samples one token (wisp_step; engine.Session.Next in Go) and
   * returns its text (possibly empty), whether generation has ended, and
   * the token (-1 when it sampled none).
   * @returns {{piece: string, done: boolean, token: number}}
   */
  next() {
    const st = this.status('wisp_step');
    const piece = this.string('wisp_piece_ptr', 'wisp_piece_len');
    this.token = this.call('wisp_token') | 0;
    return { piece, done: st === Status.DONE, token: this.token };
  }

  /** doneReason says why generation ended ("eos", "stop", "length", "context"), or "". */
  get doneReason() {
    return this.string('wisp_done_ptr', 'wisp_done_len');
  }

  /**
   * generate evaluates the prompt and yields the text of the continuation
   * piece by piece (with options.echo, the echo first); it returns why
   * generation ended.
   * @param {string | Int32Array | number[]} prompt
   * @param {object} [options]
   * @returns {Generator<string, string>}
   */
  * generate(prompt, options = {}) {
    const echo = this.prompt(prompt, options);
    if (options.echo && echo) yield echo;
    for (;;) {
      const { piece, done } = this.next();
      if (piece) yield piece;
      if (done) return this.doneReason;
    }
  }
}

/**
 * HEADER_BYTES is how much of a model file to check first: the header of
 * most files fits, while a large vocabulary can take megabytes.
 */
export const HEADER_BYTES = 64 * 1024;

// refused reports whether an error is memory refused (by the engine's
// check, or by the browser when the engine grows): the model is then too
// large for this engine.
function refused(err) {
  return err.code === 'memory' || (err.code === 'trap' && /out of memory/.test(err.message));
}

/** tooLarge is the error for a model that cannot fit in wasm32 memory. */
export function tooLarge(n, cause) {
  const gib = (x) => (x / 2 ** 30).toFixed(2);
  return new WispError(
    `wisp: the model is ${n >= 0 ? `${gib(n)} GiB, ` : ''}too large for the engine's memory ` +
    `(at most ${gib(MAX_MODEL_BYTES)} GiB in wasm32, less where the browser grants less)` +
    (cause ? `: ${cause.message}` : ''), { code: 'too-large', cause });
}

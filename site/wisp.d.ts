// Types of wisp.js, wisp's JavaScript API for web pages.

import type { EngineOptions } from './abi.js';

export type { EngineOptions };

/** Download progress, in bytes and bytes per second. */
export interface Progress {
  loaded: number;
  /** The file's size, or 0 when the server does not say. */
  total: number;
  /** Bytes per second since the download started (0 from the cache). */
  rate: number;
  /** Whether the bytes came from Cache Storage, with no network. */
  cached: boolean;
  /** How many times the download, cut mid-way, resumed with a Range request. */
  retries: number;
}

export interface LoadOptions {
  onProgress?: (p: Progress) => void;
  /** Aborts the load: the promise rejects with an AbortError. */
  signal?: AbortSignal;
  /** Keep the file in Cache Storage and load it from there next time (default true). */
  cache?: boolean;
  /** The file's expected SHA-256, in hex; a mismatch is a WispError with code 'sha256'. */
  sha256?: string;
  /** The folder holding worker.js and wasm/ (default: wisp.js's folder); give it when a bundle does not carry them. */
  base?: string | URL;
  /** The folder holding wisp.wasm, kernels.wasm, forward.wasm and relaxed.wasm (default: wasm/ in base). */
  wasmBase?: string | URL;
}

/** What a loaded model is (the engine's abi.Info, and what the page adds). */
export interface ModelInfo {
  architecture: string;
  name: string;
  params: number;
  fileSize: number;
  contextLength: number;
  vocabSize: number;
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  f16: boolean;
  /** The file's tensors counted by type, such as {Q4_K: 12, Q6_K: 3, F32: 9}. */
  tensorTypes: Record<string, number>;
  flushed: number;
  bos: number;
  eos: number;
  /**
   * The kernel set that runs: 'wasm-simd128+relaxed' where the browser has
   * WebAssembly relaxed SIMD (relaxed.wasm's quantized matrix-vector
   * products), else 'wasm-simd128', and kernelsReason says why.
   */
  kernels: string;
  kernelsReason?: string;
  /** Whether the file is marked as random weights (wisp synth). */
  random: boolean;
  description: string;
  /** The file's chat template (tokenizer.chat_template, Jinja), or ''. */
  chatTemplate: string;
  /** The engine's memory once the model is loaded, in bytes: the file, the session's cache, the runtime. */
  memoryBytes: number;
  /** The model's URL ('' for a local file). */
  url: string;
  /** The name of a local file (a File given to load). */
  fileName?: string;
  fromCache: boolean;
  loadMs: number;
}

/**
 * Options of generate: the engine's (EngineOptions, generated from
 * wisp/engine/option.Options into abi.d.ts), and the page's own.
 */
export interface GenerateOptions extends EngineOptions {
  /** Yield the prompt, as the model prints it, before the continuation (default false). */
  echo?: boolean;
  /** Stops the generation; the iteration then ends with stats.reason 'aborted'. */
  signal?: AbortSignal;
}

export interface Stats {
  promptTokens: number;
  promptMs: number;
  promptTokensPerSecond: number;
  /** Tokens sampled so far. */
  tokens: number;
  /** Time spent sampling them, in ms. */
  decodeMs: number;
  tokensPerSecond: number;
  /** From the request to the first token sampled, prompt included, in ms. */
  timeToFirstTokenMs: number;
  /** Why generation ended: 'eos', 'stop', 'length', 'context', 'aborted'; '' while it goes on. */
  reason: string;
  seed: number;
}

/** One generation under way: an async iterable of text pieces. */
export interface Generation extends AsyncIterable<string> {
  /** Statistics so far, final once result resolves. */
  readonly stats: Stats;
  /** The text so far. */
  readonly text: string;
  /** The final stats; rejects with the generation's error. */
  readonly result: Promise<Stats>;
  /** Ends the generation early. */
  stop(): void;
}

export interface Model {
  readonly info: Readonly<ModelInfo>;
  /** Starts generating; one generation runs at a time, the next waits. */
  generate(prompt: string, options?: GenerateOptions): Generation;
  /** Ends the model's Worker and frees its memory. */
  unload(): void;
}

/**
 * A WispError's code: 'no-simd', 'http', 'file', 'too-large', 'sha256', 'engine',
 * 'usage', 'memory', 'panic', 'trap', 'worker', 'options', 'closed'.
 */
export class WispError extends Error {
  code: string;
  /** The engine export that failed, for the engine's errors. */
  op?: string;
  /** Its negative status. */
  status?: number;
}

/** Defaults of generate's options (mirroring `wisp run`'s flags). */
export const DEFAULTS: Readonly<Required<Omit<GenerateOptions, 'signal' | 'seed'>> & { seed: undefined }>;

/**
 * Downloads a GGUF model (or reads a local File or Blob, with no upload)
 * and loads it into an engine in a dedicated Worker.
 */
export function load(model: string | URL | Blob, options?: LoadOptions): Promise<Model>;

/** The models that loads keep in Cache Storage. */
export const cache: {
  /** The cached models and their sizes in bytes. */
  list(): Promise<{ url: string; size: number }[]>;
  /** Drops a cached model; resolves to whether it was cached. */
  delete(url: string | URL): Promise<boolean>;
  /** The origin's storage use and quota in bytes (0 where the browser does not say). */
  estimate(): Promise<{ usage: number; quota: number }>;
};

/** Whether this browser runs WebAssembly SIMD128, which wisp needs. */
export function simdSupported(): boolean;

/** Throws a WispError with code 'no-simd' and a message for the visitor when wisp cannot run here. */
export function checkSupport(): void;

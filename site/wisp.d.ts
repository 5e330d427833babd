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
  /**
   * How many threads split the large matrix products by rows (the text and
   * logits are the same at any number): by default the cores the browser
   * reports, at most 8. A page that is not cross-origin isolated (COOP and
   * COEP headers) runs on one; info.threads and threadsReason say so.
   */
  threads?: number;
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
  /** How many threads split the matrix products (helper Workers and the engine's own). */
  threads: number;
  /** Why fewer threads run than were asked for (or than the default), when they do. */
  threadsReason?: string;
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
  /** Tokens in the prompt (the rendered conversation, for chat). */
  promptTokens: number;
  /** Tokens of the prompt the model's cache already held from the last generation, not evaluated again. */
  reusedTokens: number;
  /** Tokens of the prompt evaluated: promptTokens − reusedTokens. */
  evaluatedTokens: number;
  /** Messages a chat with overflow 'drop-oldest' left out to fit the context. */
  droppedMessages: number;
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

/** One message of a conversation. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

/** Options of chat: generate's but echo, and what an overlong conversation gets. */
export interface ChatOptions extends Omit<GenerateOptions, 'echo'> {
  /**
   * A conversation that, with room for the reply (maxTokens, at most half
   * the context), does not fit in the context: 'error' (default) throws an
   * error that says the numbers; 'drop-oldest' leaves out the oldest turns
   * after the system prompt.
   */
  overflow?: 'error' | 'drop-oldest';
}

export interface Model {
  readonly info: Readonly<ModelInfo>;
  /**
   * Starts generating; one generation runs at a time, the next waits. The
   * key/value cache of the prompt's common prefix with the last one is kept.
   */
  generate(prompt: string, options?: GenerateOptions): Generation;
  /**
   * Renders the conversation with the model's chat template (ChatML for a
   * model without one) and streams the reply. Text in messages never
   * becomes control tokens. A next turn evaluates only its new tokens.
   */
  chat(messages: ChatMessage[], options?: ChatOptions): Generation;
  /** The token ids of text (BOS first when the model asks for it, unless bos is false). */
  tokenize(text: string, options?: { bos?: boolean }): Promise<number[]>;
  /** The text of token ids (control tokens print nothing). */
  detokenize(ids: ArrayLike<number>): Promise<string>;
  /** Drops the key/value cache kept between generations. */
  reset(): Promise<void>;
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

/** The parameters of openai(model).chat.completions.create, as OpenAI's API names them. */
export interface ChatCompletionCreateParams {
  messages: { role: string; content: string | { type: string; text?: string }[] }[];
  stream?: boolean;
  /** Default: until the context is full. */
  max_tokens?: number;
  max_completion_tokens?: number;
  /** Default 1. */
  temperature?: number;
  /** Default 1. */
  top_p?: number;
  stop?: string | string[] | null;
  seed?: number | null;
  /** Only 1. */
  n?: number;
  /** wisp's own: */
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  context?: number;
  overflow?: 'error' | 'drop-oldest';
  model?: string;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** The prompt's tokens kept in the model's cache from the last generation, not evaluated again. */
  prompt_tokens_details: { cached_tokens: number };
}

/** 'stop' (an end token or a stop string), 'length' (max_tokens or the context), 'abort'. */
export type FinishReason = 'stop' | 'length' | 'abort';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; logprobs: null; finish_reason: FinishReason }[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; logprobs: null; finish_reason: FinishReason | null }[];
  /** On the last chunk. */
  usage?: CompletionUsage;
}

export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk> {
  /** Stops the generation: the last chunk has finish_reason 'abort'. */
  abort(): void;
}

/** The OpenAI client's chat API, on a wisp model. */
export interface OpenAICompatible {
  chat: {
    completions: {
      create(params: ChatCompletionCreateParams & { stream: true }, options?: { signal?: AbortSignal }): Promise<ChatCompletionStream>;
      create(params: ChatCompletionCreateParams & { stream?: false | null }, options?: { signal?: AbortSignal }): Promise<ChatCompletion>;
      create(params: ChatCompletionCreateParams, options?: { signal?: AbortSignal }): Promise<ChatCompletion | ChatCompletionStream>;
    };
  };
}

/** Wraps a model in the OpenAI client's chat.completions.create. */
export function openai(model: Model): OpenAICompatible;

// worker.js: the dedicated module Worker in which wisp.js runs one engine,
// so that downloading, loading and generating never freeze the page.
//
// Messages from the page, each with an id that the answers repeat:
//
//	{type: 'load', id, url, wasmBase, cache, sha256}
//	    → {type: 'progress', id, loaded, total, rate, cached} ...
//	    → {type: 'loaded', id, info, fromCache, loadMs}
//	{type: 'generate', id, prompt, options}
//	    → {type: 'pieces', id, pieces, stats} ... → {type: 'done', id, stats}
//	{type: 'abort', id}   aborts a load, or stops a generation (it then ends
//	                      with stats.reason 'aborted')
//
// Any request may be answered {type: 'error', id, error} instead. To unload
// the model, the page terminates the worker: that frees all its memory,
// which a wasm instance's memory otherwise never gives back.

import { createEngine, errorToJSON, WispError } from './engine.js';
import { download } from './download.js';
import { ggufMetadata } from './gguf.js';

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
    case 'generate': answer(msg, () => generate(msg)); break;
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

async function load({ id, url, wasmBase, cache, sha256 }) {
  if (engine) throw new WispError('wisp: this worker already holds a model', { code: 'usage' });
  const ctl = new AbortController();
  jobs.set(id, { abort: () => ctl.abort(new DOMException('the load was aborted', 'AbortError')) });
  const base = new URL(wasmBase);
  // Instantiate while the model downloads.
  const starting = createEngine({
    engine: fetch(new URL('wisp.wasm', base)),
    kernels: fetch(new URL('kernels.wasm', base)),
    forward: fetch(new URL('forward.wasm', base)),
    stderr: (s) => console.error(s),
  });
  starting.catch(() => {}); // reported below, after the download's own errors
  const file = await download(url, {
    cache, sha256, signal: ctl.signal,
    onProgress: (p) => self.postMessage({ type: 'progress', id, ...p }),
  });
  const eng = await starting;
  ctl.signal.throwIfAborted();
  const t0 = performance.now();
  const meta = ggufMetadata(file.bytes) ?? {};
  const info = eng.load(file.bytes);
  engine = eng;
  const extra = {
    random: meta['wisp.random'] === true,
    description: typeof meta['general.description'] === 'string' ? meta['general.description'] : '',
  };
  self.postMessage({
    type: 'loaded', id, info: { ...info, ...extra }, fromCache: file.fromCache,
    loadMs: performance.now() - t0,
  });
}

async function generate({ id, prompt, options }) {
  let stopped = false;
  jobs.set(id, { abort: () => { stopped = true; } });
  const run = busy.then(() => steps(id, prompt, options, () => stopped));
  busy = run.catch(() => {});
  await run;
}

// steps runs one generation, in slices of at most SLICE_MS between which
// it posts the pieces so far and lets messages in.
async function steps(id, prompt, options, stopped) {
  if (!engine) throw new WispError('wisp: no model is loaded', { code: 'usage' });
  const t0 = performance.now();
  const stats = {
    promptTokens: 0, promptMs: 0, tokens: 0, decodeMs: 0,
    timeToFirstTokenMs: 0, tokensPerSecond: 0, promptTokensPerSecond: 0,
    reason: '', seed: options.seed,
  };
  if (stopped()) { // stopped while it waited for the one before
    stats.reason = 'aborted';
    self.postMessage({ type: 'done', id, stats });
    return;
  }
  const echo = engine.prompt(prompt, options);
  stats.promptTokens = engine.promptTokens;
  stats.promptMs = performance.now() - t0;
  stats.promptTokensPerSecond = rate(stats.promptTokens, stats.promptMs);
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
      const step = engine.step();
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

// node.bench.js: the Node.js runner of make bench (tools/bench). It speaks
// the runners' line protocol: one JSON request per line on stdin, one JSON
// answer per line on stdout, so that tools/bench can interleave its runs
// with the other runtimes' and a noisy machine slows them all alike.
//
// The first line configures it, and is answered {"node", "v8"}:
//
//	{"wasmDir": ".../site/wasm", "model": "x.gguf", "promptIds": [...],
//	 "warmupIds": [...], "maxTokens": 128, "warmupTokens": 16,
//	 "runWarmupTokens": 2, "context": 256, "warmupMs": 1500,
//	 "decodeCapMs": 30000, "threads": 1}   (to measure a model)
//	{"wasmDir": ..., "readWasm": ".../read.wasm"}   (to measure the ceiling)
//
// Then, for a model:
//
//	{"op": "warmup"} → {"coldLoadMs"}: a first load, and short generations
//	    for at least warmupMs (V8 first runs wasm in its baseline tier)
//	{"op": "run"}    → {"loadMs", "prefill", "decode", "promptTokens",
//	    "tokens", "reason", "threads"}: a load, one short generation (the warm-up
//	    prompt and runWarmupTokens tokens), then the measured prompt and
//	    greedy decoding, which stops early (reason "time cap") once it has
//	    taken decodeCapMs; rates in tokens per second
//
// and for the ceiling {"op": "ceiling", "spec": {...}} → ceiling.js's
// answer. At the end of stdin it writes {"peakRSS", "wasmMemory"}: the
// process's high-water mark (VmHWM) and the largest engine memory, in
// bytes. A
// failed request is answered {"error"}. Run it with --expose-gc: each run
// drops the last engine and collects it, so that the peak is one model's.
//
// At threads above 1 the engine is the threaded build (wisp-shared.wasm,
// kernels-shared.wasm, threads.wasm) with threads-1 worker_threads running
// helper.js, as site/node.js's load({threads}) makes it; at one, the plain
// build, as load makes it by default. "threads" in a run's answer is how
// many ran (engine.threads.count).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { Worker } from 'node:worker_threads';

import { createEngine } from '../engine.js';
import { ceiling } from './ceiling.js';

/**
 * generate evaluates the prompt ids and steps until the engine stops or
 * the decoding has taken capMs; it returns the milliseconds of each phase
 * and the tokens generated.
 */
function generate(engine, ids, maxTokens, context, capMs = Infinity) {
  const t0 = performance.now();
  engine.prompt(Int32Array.from(ids), { temperature: 0, maxTokens, context });
  const t1 = performance.now();
  let tokens = 0;
  let reason = '';
  for (;;) {
    const step = engine.next();
    if (step.token >= 0) tokens++;
    if (step.done) {
      reason = engine.doneReason;
      break;
    }
    if (performance.now() - t1 >= capMs) {
      reason = 'time cap';
      break;
    }
  }
  const t2 = performance.now();
  return { promptMs: t1 - t0, decodeMs: t2 - t1, tokens, reason };
}

/**
 * peakRSS returns the process's peak resident set size in bytes: VmHWM on
 * Linux (ru_maxrss starts from the parent's peak at fork, so a child of a
 * large parent would report the parent's), else maxRSS (KiB everywhere).
 */
async function peakRSS() {
  try {
    const m = (await readFile('/proc/self/status', 'utf8')).match(/^VmHWM:\s+(\d+) kB/m);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Runner answers the requests for one model. */
class Runner {
  constructor(cfg) {
    this.cfg = cfg;
    this.wasmMemory = 0;
  }

  /**
   * load reads the files, instantiates an engine (the threaded build with
   * its helpers at cfg.threads above 1) and loads the model.
   */
  async load() {
    const { cfg } = this;
    const wasm = (name) => readFile(path.join(cfg.wasmDir, name));
    const threads = Math.max(1, cfg.threads ?? 1);
    const build = (name) => wasm(threads > 1 ? `${name}-shared.wasm` : `${name}.wasm`);
    const t0 = performance.now();
    const [bytes, engineWasm, kernels, forward, threadsWasm] = await Promise.all([
      readFile(cfg.model), build('wisp'), build('kernels'), wasm('forward.wasm'), threads > 1 ? wasm('threads.wasm') : null]);
    const engine = await createEngine({
      engine: engineWasm, kernels, forward,
      threads: threads > 1 ? { count: threads, module: threadsWasm, spawn: spawnHelper } : undefined,
    });
    if (engine.threads.count !== threads) {
      engine.close();
      throw new Error(`${threads} threads asked for, ${engine.threads.count} started: ${engine.threads.reason}`);
    }
    engine.load(bytes);
    return { engine, loadMs: performance.now() - t0 };
  }

  /** done records the engine's memory, stops its threads and lets it be collected. */
  done(engine) {
    this.wasmMemory = Math.max(this.wasmMemory, engine.memory.buffer.byteLength);
    engine.close();
    globalThis.gc?.();
  }

  async warmup() {
    const { cfg } = this;
    const { engine, loadMs } = await this.load();
    const w0 = performance.now();
    do generate(engine, cfg.warmupIds, cfg.warmupTokens, cfg.context);
    while (performance.now() - w0 < cfg.warmupMs);
    this.done(engine);
    return { coldLoadMs: loadMs };
  }

  async run() {
    const { cfg } = this;
    const { engine, loadMs } = await this.load();
    generate(engine, cfg.warmupIds, cfg.runWarmupTokens, cfg.context);
    // The engine keeps its cache between prompts, and the warm-up's prompt
    // begins the measured one: without a reset it would evaluate only the rest.
    engine.reset();
    const g = generate(engine, cfg.promptIds, cfg.maxTokens, cfg.context, cfg.decodeCapMs);
    const threads = engine.threads.count;
    this.done(engine);
    return {
      loadMs, prefill: (cfg.promptIds.length * 1000) / g.promptMs, decode: (g.tokens * 1000) / g.decodeMs,
      promptTokens: cfg.promptIds.length, tokens: g.tokens, reason: g.reason, threads,
    };
  }

  async ceiling(spec) {
    const { cfg } = this;
    const [read, kernels, forward] = await Promise.all([
      readFile(cfg.readWasm), readFile(path.join(cfg.wasmDir, 'kernels.wasm')), readFile(path.join(cfg.wasmDir, 'forward.wasm'))]);
    return ceiling({ read, kernels, forward }, spec);
  }
}

// spawnHelper starts a kernel thread (helper.js) that does not keep the
// process alive, as site/node.js does.
function spawnHelper() {
  const w = new Worker(new URL('../helper.js', import.meta.url));
  w.unref();
  return w;
}

const send = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
let runner = null;
for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  try {
    const req = JSON.parse(line);
    if (!runner) {
      runner = new Runner(req);
      send({ node: process.version, v8: process.versions.v8 });
    } else if (req.op === 'warmup') {
      send(await runner.warmup());
    } else if (req.op === 'run') {
      send(await runner.run());
    } else if (req.op === 'ceiling') {
      send(await runner.ceiling(req.spec));
    } else {
      send({ error: `node.bench.js: unknown op ${JSON.stringify(req.op)}` });
    }
  } catch (err) {
    send({ error: `node.bench.js: ${err.message}` });
  }
}
send({ peakRSS: await peakRSS(), wasmMemory: runner?.wasmMemory ?? 0 });

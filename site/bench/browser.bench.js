// browser.bench.js: the Chromium runner of make bench (tools/bench). It
// speaks the runners' line protocol (see node.bench.js): one JSON request
// per line on stdin, one JSON answer per line on stdout, progress on
// stderr.
//
// It serves site/ and the models with `wisp serve --isolate` (COOP/COEP,
// so that wllama may start threads) behind a proxy that forbids caching,
// so that every load downloads the model and the wasm again, and launches
// headless Chromium (test/helpers.js). Each job gets a browser context of
// its own, hence a renderer process of its own, whose largest resident set
// while the job runs is the job's peak memory: the page and its workers.
// The job's renderer is the one whose CPU time grows most while the job
// runs (Chromium keeps a spare renderer ready, so the newest is not always
// the page's). In bench/bench.html it measures
//
//   - wisp through its real API: wisp.load (the Worker, worker.js) and
//     model.generate, the rates being those the Worker reports;
//   - @wllama/wllama from node_modules (CPU only, n_threads threads), the
//     rates being those llama.cpp reports (timings.prompt_per_second and
//     timings.predicted_per_second), in one of two modes: "best", its
//     plain createCompletion with n_batch 512 (its fastest), or "chat",
//     streamed token by token with per-token timings as a chat page
//     streams a reply;
//   - the ceiling (ceiling.js): read bandwidth and matvec GFLOP/s.
//
// A job loads its model once, as a page does, and warms up until its
// decode rate settles (settle: V8 runs new wasm in a baseline tier first);
// its runs then generate on that loaded model.
//
// The first line configures it, {"models": DIR, "context": 256,
// "warmupMs": 1500}, and is answered {"chromium", "wllama",
// "baselineRSS"} (the resident set of a renderer with an empty page).
// Then:
//
//	{"op": "ceiling", "spec": {...}} → ceiling.js's answer
//	{"op": "open", "job": {"id", "engine": "wisp" | "wllama", "mode",
//	  "nBatch", "file", "threads", "prompt", "maxTokens", "decodeCapMs",
//	  "alone"}}
//	    → {"coldLoadMs", "warmups"}: a new context, the load and the
//	    warm-up; a job "alone" (the honesty check's reference: wllama on
//	    its own) gets a browser launched for it with that one page,
//	    closed with the job, and its runs are not sampled for memory
//	{"op": "run", "id"} → {"loadMs", "prefill", "decode", "promptTokens",
//	    "tokens", "reason", "threads", "libllama"}: the measured prompt and
//	    decoding on the loaded model, stopped early (reason "time cap")
//	    once the decoding has taken decodeCapMs (wisp, and wllama's chat
//	    mode: a plain completion cannot be stopped)
//	{"op": "close", "id"} → {"peakRSS"}: the largest resident set of the
//	    job's renderer while it ran, in bytes (0 where /proc cannot tell)
//
// A failed request is answered {"error"}. At the end of stdin it closes
// the browser and the server.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';

import { launch, site, root, wispCommand } from '../test/helpers.js';

const wllamaDir = path.join(site, 'node_modules', '@wllama', 'wllama');

/** log writes a line of progress to stderr. */
const log = (...a) => process.stderr.write(`browser.bench: ${a.join(' ')}\n`);

/**
 * serveIsolated starts `wisp serve --isolate` for site/ and the models,
 * and in front of it a proxy that sends every response with
 * Cache-Control: no-store and without validators. It returns the proxy's
 * URL and close().
 */
async function serveIsolated(models) {
  const [cmd, ...pre] = wispCommand();
  const child = spawn(cmd, [...pre, 'serve', '--isolate', '--site', site, '--models', models, '--addr', '127.0.0.1:0'], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, // its own process group: go run's child too
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const upstream = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`wisp serve did not start: ${stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/(127\.0\.0\.1):(\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve({ host: m[1], port: Number(m[2]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`wisp serve exited with ${code}: ${stderr}`)));
  });
  const proxy = http.createServer((req, res) => {
    const headers = { ...req.headers };
    delete headers['if-none-match'];
    delete headers['if-modified-since'];
    const up = http.request({ ...upstream, method: req.method, path: req.url, headers }, (ur) => {
      const h = { ...ur.headers, 'cache-control': 'no-store' };
      delete h.etag;
      delete h['last-modified'];
      res.writeHead(ur.statusCode, h);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}/`,
    async close() {
      proxy.closeAllConnections?.();
      await new Promise((resolve) => proxy.close(resolve));
      if (child.exitCode === null) process.kill(-child.pid, 'SIGINT');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}

/** cpuTimes returns the CPU seconds each of the browser's renderers has used. */
async function cpuTimes(cdp) {
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  return new Map(processInfo.filter((p) => p.type === 'renderer').map((p) => [p.id, p.cpuTime]));
}

/**
 * resident returns a process's resident set in bytes, the larger of VmRSS
 * and VmHWM, or 0 where /proc cannot tell.
 */
async function resident(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    let most = 0;
    for (const m of status.matchAll(/^(?:VmRSS|VmHWM):\s+(\d+) kB/gm)) most = Math.max(most, Number(m[1]) * 1024);
    return most;
  } catch {
    return 0;
  }
}

/** WARM_TOKENS is what each warm-up generation of a job decodes. */
const WARM_TOKENS = 32;
/** MAX_WARM_MS bounds a job's warm-up. */
const MAX_WARM_MS = 12_000;

/** SAMPLE_MS is how often busiest samples the renderers' memory. */
const SAMPLE_MS = 25;

/**
 * busiest runs f and returns its result, the renderer whose CPU time grew
 * most meanwhile (0 if none did; known, if given) and that renderer's
 * largest resident set while f ran. The memory is sampled every `every` ms
 * (SAMPLE_MS: VmHWM alone will not do, as Chromium resets it now and then
 * through /proc/PID/clear_refs), or with every 0 only before and after f.
 */
async function busiest(cdp, f, known = 0, every = SAMPLE_MS) {
  // A job's renderer, once known (its open found it), is the only one
  // sampled: reading every renderer's status 40 times a second costs the
  // bench's process CPU time that the job's own run may be short of.
  const before = known ? new Map([[known, 0]]) : await cpuTimes(cdp);
  const most = new Map();
  const sample = async () => {
    for (const pid of before.keys()) most.set(pid, Math.max(most.get(pid) ?? 0, await resident(pid)));
  };
  let sampling = sample();
  let busy = true;
  sampling.finally(() => { busy = false; });
  // A tick that finds the last sample still running skips.
  const timer = every > 0 && setInterval(() => {
    if (busy) return;
    busy = true;
    sampling = sample().finally(() => { busy = false; });
  }, every);
  let result;
  try {
    result = await f();
  } finally {
    if (timer) clearInterval(timer);
    await sampling;
  }
  await sample();
  if (known) return { result, pid: known, peak: most.get(known) ?? 0 };
  let pid = 0;
  let grew = 0;
  for (const [id, t] of await cpuTimes(cdp)) {
    const d = t - (before.get(id) ?? 0);
    if (d > grew) {
      grew = d;
      pid = id;
    }
  }
  return { result, pid, peak: most.get(pid) ?? 0 };
}

/**
 * openPage opens bench/bench.html in a new browser context and returns
 * the context and the page, and the job's peak memory so far (none).
 */
async function openPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error') log('console:', m.text().slice(0, 300)); });
  await page.goto(`${url}bench/bench.html`);
  return { context, page, peak: 0 };
}

// spin runs in the page: it keeps the renderer busy for ms milliseconds,
// so that busiest finds it.
function spin(ms) {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
}

// openWisp runs in the page: it loads the model through wisp.js (the
// Worker) once and warms up with short generations of the measured
// prompt (settle), keeping the model for runWisp.
async function openWisp({ url, prompt, warmupTokens, context, threads, warmMs, maxWarmMs }) {
  const wisp = await import('/wisp.js');
  const t0 = performance.now();
  // threads always given: the page is cross-origin isolated, where
  // wisp.load would otherwise take every core.
  const model = await wisp.load(url, { cache: false, threads });
  const loadMs = performance.now() - t0;
  if (model.info.threads !== threads) {
    model.unload();
    throw new Error(`${threads} threads asked for, ${model.info.threads} started: ${model.info.threadsReason}`);
  }
  globalThis.benchJob = { model, loadMs };
  const warm = await globalThis.settle(async () => {
    await model.reset(); // the whole prompt each time, as a first visit evaluates it
    const gen = model.generate(prompt, { temperature: 0, maxTokens: warmupTokens, context });
    for await (const _ of gen);
    return (await gen.result).tokensPerSecond;
  }, warmMs, maxWarmMs);
  return { loadMs, warm };
}

// runWisp runs in the page: one greedy generation on the loaded model,
// with the rates its Worker measured.
async function runWisp({ prompt, maxTokens, context, decodeCapMs }) {
  const { model, loadMs } = globalThis.benchJob;
  // The model keeps its cache between generations: without a reset the
  // warm-up's would serve all but the last token of the prompt.
  await model.reset();
  const gen = model.generate(prompt, { temperature: 0, maxTokens, context });
  let first = 0;
  let capped = false;
  for await (const _ of gen) {
    // The Worker posts the first token at once, then slices of 16 ms.
    if (!first && gen.stats.tokens > 0) first = performance.now();
    if (first && !capped && performance.now() - first >= decodeCapMs) {
      capped = true;
      gen.stop();
    }
  }
  const s = await gen.result;
  return {
    loadMs, prefill: s.promptTokensPerSecond, decode: s.tokensPerSecond,
    promptTokens: s.evaluatedTokens, tokens: s.tokens, reason: capped ? 'time cap' : s.reason, threads: model.info.threads,
  };
}

// closeJob runs in the page: it frees the job's model.
async function closeJob() {
  const j = globalThis.benchJob;
  globalThis.benchJob = null;
  if (j?.model) j.model.unload();
  if (j?.w) {
    await j.w.exit();
    await j.w.cacheManager.clear();
  }
}

// openWllama runs in the page: it loads the model with wllama once (CPU
// only, n_threads threads; n_batch and n_ubatch nBatch unless 0, its
// defaults then) and warms up as openWisp does, in the job's mode, keeping
// it for runWllama. wllama always downloads a model into its cache (the
// origin private file system) and loads it from there, reusing a copy it
// finds: the cache is emptied before the load, so that it downloads, as
// wisp's load does.
async function openWllama({ url, prompt, warmupTokens, context, threads, nBatch, mode, warmMs, maxWarmMs }) {
  const { Wllama } = await import('/node_modules/@wllama/wllama/esm/index.js');
  const quiet = { debug() {}, log() {}, warn() {}, error: (...a) => console.error(...a) };
  const w = new Wllama({ default: '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm' },
    { suppressNativeLog: true, logger: quiet });
  await w.cacheManager.clear();
  const params = { n_threads: threads, n_ctx: context, n_parallel: 1, n_gpu_layers: 0, useCache: false };
  if (nBatch > 0) Object.assign(params, { n_batch: nBatch, n_ubatch: nBatch });
  const t0 = performance.now();
  await w.loadModelFromUrl(url, params);
  const loadMs = performance.now() - t0;
  globalThis.benchJob = { w, loadMs, Wllama };
  const warm = await globalThis.settle(async () => {
    const r = await globalThis.wllamaComplete({ prompt, maxTokens: warmupTokens, mode, decodeCapMs: Infinity });
    return r.t.predicted_per_second;
  }, warmMs, maxWarmMs);
  return { loadMs, warm };
}

// installHelpers runs in the page: it installs settle and wllamaComplete
// (page.evaluate sends a function's own source only).
//
// settle: see below. wllamaComplete: one
// greedy completion on the loaded wllama, in the job's mode: "best" is
// its plain createCompletion (not streamed), "chat" streams the tokens
// with per-token timings through onData, as a chat page would; the
// decoding of a streamed one stops once it has taken decodeCapMs.
function installHelpers() {
  globalThis.settle = settle;
  globalThis.wllamaComplete = async ({ prompt, maxTokens, mode, decodeCapMs }) => {
    const { w } = globalThis.benchJob;
    const opts = { temperature: 0, ignore_eos: true, cache_prompt: false, prompt, max_tokens: maxTokens };
    if (mode !== 'chat') {
      const res = await w.createCompletion(opts);
      return { t: res.timings, reason: res.choices?.[0]?.finish_reason || '' };
    }
    const ctl = new AbortController();
    let t = null;
    let reason = '';
    let first = 0;
    try {
      await w.createCompletion({
        ...opts, stream: true, timings_per_token: true, abortSignal: ctl.signal,
        onData: (chunk) => {
          if (chunk.timings) t = chunk.timings;
          reason = chunk.choices?.[0]?.finish_reason || reason;
          if (!first && t?.predicted_n > 0) first = performance.now();
          if (first && performance.now() - first >= decodeCapMs) ctl.abort();
        },
      });
    } catch (err) {
      if (!ctl.signal.aborted) throw err;
      reason = 'time cap';
    }
    if (!t) throw new Error('wllama reported no timings');
    return { t, reason };
  };
  // settle runs in the page: it calls gen() (one warm-up generation, which
  // returns its decode rate) for at least warmMs and at least twice, then
  // on while the last rate is more than 5 % above the one before (V8 tiers
  // the wasm up while it runs: the first generations after a load run
  // slower code), for at most maxMs.
  async function settle(gen, warmMs, maxMs) {
    const w0 = performance.now();
    let last = 0;
    for (let n = 1; ; n++) {
      const rate = await gen();
      const grew = rate > last * 1.05;
      last = rate;
      const t = performance.now() - w0;
      if (t >= maxMs || (n >= 2 && t >= warmMs && !grew)) return n;
    }
  }
}

// runWllama runs in the page: one measured completion on the loaded
// wllama, with llama.cpp's own timings.
async function runWllama({ prompt, maxTokens, mode, decodeCapMs }) {
  const { w, loadMs, Wllama } = globalThis.benchJob;
  const { t, reason } = await globalThis.wllamaComplete({ prompt, maxTokens, mode, decodeCapMs });
  return {
    loadMs, prefill: t.prompt_per_second, decode: t.predicted_per_second,
    promptTokens: t.prompt_n, tokens: t.predicted_n, reason,
    threads: w.getNumThreads(), libllama: Wllama.getLibllamaVersion?.() ?? '',
  };
}

// runCeiling runs in the page: ceiling.js with the site's kernels.
async function runCeiling(spec) {
  const { ceiling } = await import('/bench/ceiling.js');
  const get = async (u) => (await fetch(u)).arrayBuffer();
  const [read, kernels, forward] = await Promise.all([get('/bench/read.wasm'), get('/wasm/kernels.wasm'), get('/wasm/forward.wasm')]);
  return ceiling({ read, kernels, forward }, spec);
}

/** Bench answers the requests, holding the browser and the open jobs. */
class Bench {
  constructor(cfg, browser, cdp, url) {
    Object.assign(this, { cfg, browser, cdp, url });
    this.jobs = new Map(); // id → {job, arg, context, page, peak, run}
  }

  async ceiling(spec) {
    const { context, page } = await openPage(this.browser, this.url);
    try {
      return await page.evaluate(runCeiling, spec);
    } finally {
      await context.close();
    }
  }

  // open opens a job: a page in a new context of the bench's browser, or
  // for a job alone (the honesty check's reference) in a browser launched
  // for it with that one page, whose runs are not sampled (busiest).
  async open(job) {
    if (this.jobs.has(job.id)) throw new Error(`job ${job.id} is already open`);
    const own = job.alone ? await launch() : null;
    let p;
    try {
      p = await openPage(own ?? this.browser, this.url);
    } catch (err) {
      await own?.close();
      throw err;
    }
    const arg = { ...job, url: `/models/${job.file}`, context: this.cfg.context, warmupTokens: WARM_TOKENS };
    const wisp = job.engine === 'wisp';
    const j = { job, arg, ...p, own, run: wisp ? runWisp : runWllama };
    this.jobs.set(job.id, j);
    await j.page.evaluate(installHelpers);
    const { result: r, peak } = await this.watch(j, () => j.page.evaluate(wisp ? openWisp : openWllama,
      { ...arg, warmMs: this.cfg.warmupMs, maxWarmMs: MAX_WARM_MS }));
    j.peak = Math.max(j.peak, peak);
    log(`${job.id}: load ${r.loadMs.toFixed(0)} ms, warmed up in ${r.warm} generations`);
    return { coldLoadMs: r.loadMs, warmups: r.warm };
  }

  // watch runs f for job j, sampling its renderer's memory (busiest)
  // every `every` ms, but for a job alone, which runs as wllama would on
  // its own.
  async watch(j, f, every = SAMPLE_MS) {
    if (j.own) return { result: await f(), peak: 0 };
    const r = await busiest(this.cdp, f, j.pid ?? 0, every);
    j.pid ||= r.pid;
    return r;
  }

  job(id) {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no open job ${id}`);
    return j;
  }

  async run(id) {
    const j = this.job(id);
    // A measured run's memory is sampled only before and after it: reading
    // the renderer's /proc status every 25 ms while it decoded cut wisp's
    // decode of stories15M's quantized files in Chromium to a quarter (286
    // against 725-1132 tok/s, make bench of 2026-12-03), once the bench had
    // opened a two-thread row. The peak is the load's, sampled in open.
    const { result: r, peak } = await this.watch(j, () => j.page.evaluate(j.run, j.arg), 0);
    j.peak = Math.max(j.peak, peak);
    log(`${id}: load ${r.loadMs.toFixed(0)} ms, prefill ${r.prefill.toFixed(1)} tok/s,`,
      `decode ${r.decode.toFixed(1)} tok/s (${r.promptTokens} + ${r.tokens} tokens, ${r.threads} thread(s))`);
    return r;
  }

  async close(id) {
    const j = this.job(id);
    this.jobs.delete(id);
    await j.page.evaluate(closeJob).catch((err) => log(`${id}: closing: ${err.message}`));
    await j.context.close();
    await j.own?.close();
    return { peakRSS: j.peak };
  }
}

const send = (msg) => process.stdout.write(`${JSON.stringify(msg)}\n`);
// cleanup closes the browser and the server once, however the run ends.
let cleanup = async () => {};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
const first = await lines.next();
if (first.done) process.exit(0);
const cfg = JSON.parse(first.value);
const srv = await serveIsolated(cfg.models);
let browser;
cleanup = async () => {
  cleanup = async () => {};
  await browser?.close().catch(() => {});
  await srv.close();
};
try {
  browser = await launch();
  const cdp = await browser.newBrowserCDPSession();
  const bench = new Bench(cfg, browser, cdp, srv.url);
  const pkg = JSON.parse(await readFile(path.join(wllamaDir, 'package.json'), 'utf8'));
  const empty = await openPage(browser, srv.url);
  const { peak: baselineRSS } = await busiest(cdp, () => empty.page.evaluate(spin, 300));
  await empty.context.close();
  send({ chromium: browser.version(), wllama: pkg.version, baselineRSS });
  for (;;) {
    const { value: line, done } = await lines.next();
    if (done) break;
    if (!line.trim()) continue;
    try {
      const req = JSON.parse(line);
      switch (req.op) {
        case 'ceiling': send(await bench.ceiling(req.spec)); break;
        case 'open': send(await bench.open(req.job)); break;
        case 'run': send(await bench.run(req.id)); break;
        case 'close': send(await bench.close(req.id)); break;
        default: send({ error: `browser.bench.js: unknown op ${JSON.stringify(req.op)}` });
      }
    } catch (err) {
      const msg = String(err?.message ?? err).split('\n')[0];
      log('error:', msg);
      send({ error: `browser.bench.js: ${msg}` });
    }
  }
} finally {
  await cleanup();
}

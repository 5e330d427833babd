// memory.bench.js: the peak memory of Chromium's renderer while wisp.load
// loads a SmolLM2-135M-shaped F16 model (270 MB), in each way a page
// loads one: downloaded with no cache, downloaded and kept in Cache
// Storage, and read back from there. It prints a table: the peak of the
// resident memory of the browser's renderer processes (the page and its
// Worker) over what they held before the load, against the file's size.
// A tiny model's load gives the fixed part (the Worker, the compiled
// engine, the Go runtime), which the last column leaves out.
// Run it with make bench-memory (node --test bench/memory.bench.js).
//
// The profile is persistent, as a visitor's is: a fresh incognito one
// (Playwright's newPage on launch) keeps Cache Storage in memory and
// refuses entries of 256 MB and more.

import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { CHROMIUM, defaultModel, serve, wisp } from '../test/helpers.js';

// renderersRSS sums the resident memory of the renderer processes that
// descend from this process (the browser it launched), in bytes.
async function renderersRSS() {
  let sum = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!(await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('--type=renderer')) continue;
      if (!(await descends(Number(pid)))) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
      if (m) sum += Number(m[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  return sum;
}

async function descends(pid) {
  for (let p = pid, i = 0; p > 1 && i < 64; i++) {
    if (p === process.pid) return true;
    p = Number(/PPid:\s+(\d+)/.exec(await readFile(`/proc/${p}/status`, 'utf8'))[1]);
  }
  return false;
}

test('renderer memory while a model loads', { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'wisp-memory-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await copyFile(defaultModel, path.join(models, 'tiny.gguf'));
  await wisp(['synth', '--shape', 'smollm2-135m', '--type', 'f16', '-o', path.join(models, 'm135.gguf')]);
  const size = (await stat(path.join(models, 'm135.gguf'))).size;
  const srv = await serve(models);
  t.after(() => srv.close());
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}README.md`);

  // peakOfLoad loads a model in the page, sampling the renderers' memory
  // every 10 ms, and returns the peak over the memory before.
  async function peakOfLoad(model, cache) {
    await new Promise((resolve) => setTimeout(resolve, 500)); // the last Worker's memory goes
    const before = await renderersRSS();
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await renderersRSS());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const fromCache = await page.evaluate(async ([m, c]) => {
      const wisp = await import('./wisp.js');
      const model = await wisp.load(`models/${m}`, { cache: c });
      const cached = model.info.fromCache;
      await new Promise((resolve) => setTimeout(resolve, 200));
      model.unload();
      return cached;
    }, [model, cache]);
    sampling = false;
    await sampler;
    return { over: peak - before, fromCache };
  }

  const fixed = (await peakOfLoad('tiny.gguf', false)).over;
  const mib = (n) => (n / 2 ** 20).toFixed(0);
  const rows = [];
  for (const [how, cache] of [['downloaded, no cache', false], ['downloaded and kept in Cache Storage', true], ['from Cache Storage', true]]) {
    const { over, fromCache } = await peakOfLoad('m135.gguf', cache);
    if (how === 'from Cache Storage' && !fromCache) throw new Error('the model did not come from Cache Storage');
    rows.push(`| ${how} | ${mib(over)} | ${(over / size).toFixed(2)}× | ${((over - fixed) / size).toFixed(2)}× |`);
  }
  console.log(`\nChromium renderer memory during wisp.load of a ${mib(size)} MiB SmolLM2-135M-shaped F16 file ` +
    `(peak resident memory over the page's before the load; the fixed part, from a ${mib((await stat(defaultModel)).size)} MiB model's load, is ${mib(fixed)} MiB):\n\n` +
    '| load | peak over before, MiB | ÷ file | ÷ file, less the fixed part |\n| --- | ---: | ---: | ---: |\n' +
    rows.join('\n') + '\n');
});

// chromium.bench.js: tokens per second in headless Chromium next to native,
// for the default model and a random TinyStories-15M-shaped one. It prints a
// table. Run it with make bench-site (node --test bench/chromium.bench.js).

import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { defaultModel, launch, serve, wisp } from '../test/helpers.js';

test('tokens per second in Chromium and natively', { timeout: 600_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'wisp-bench-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await copyFile(defaultModel, path.join(models, 'default.gguf'));
  await wisp(['synth', '--shape', 'stories15M', '-o', path.join(models, 's15.gguf')]);
  const srv = await serve(models);
  t.after(() => srv.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${srv.url}embed.html#bench`);
  const rows = [];
  for (const name of ['default.gguf', 's15.gguf']) {
    let nativeRate = 0;
    for (let i = 0; i < 3; i++) {
      const { stderr } = await wisp(['run', '-m', path.join(models, name), '-t', '0', '-n', '128']);
      nativeRate = Math.max(nativeRate, Number(stderr.match(/decode \d+ tokens, ([\d.]+) tok\/s/)[1]));
    }
    const res = await page.evaluate(async (url) => {
      const wisp = await import('./wisp.js');
      const m = await wisp.load(url, { cache: false });
      // V8 first runs wasm in its baseline tier: warm up before timing.
      for await (const _ of m.generate('', { temperature: 0, maxTokens: 64 }));
      const runs = [];
      for (let i = 0; i < 3; i++) {
        const gen = m.generate('', { temperature: 0, maxTokens: 128 });
        for await (const _ of gen);
        runs.push(await gen.result);
      }
      m.unload();
      return runs;
    }, `models/${name}`);
    const best = res.reduce((a, b) => (b.tokensPerSecond > a.tokensPerSecond ? b : a));
    assert.ok(best.tokens > 0);
    rows.push({
      model: name, tokens: best.tokens,
      chromium: best.tokensPerSecond.toFixed(1), native: nativeRate.toFixed(1),
      ratio: (best.tokensPerSecond / nativeRate).toFixed(2),
      firstTokenMs: best.timeToFirstTokenMs.toFixed(1),
    });
  }
  console.log('decode tokens/s, greedy, 128 tokens after BOS (best of 3; Chromium after a warm-up):');
  console.table(rows);
});

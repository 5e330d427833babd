// threads.test.js: the matrix products split among kernel threads (Node's
// worker_threads running helper.js on the threaded build's shared memory)
// give the same logits, to the bit, as one thread; a helper that dies makes
// the next generation fail, never hang.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { load } from '../node.js';
import { launch, root, serve, site } from './helpers.js';

// logitsOf runs a prompt and a few greedy steps and returns every step's
// logits, copied.
function logitsOf(engine, prompt) {
  const vocab = engine.info.vocabSize;
  const out = [];
  const take = () => {
    const p = engine.call('wisp_logits_ptr') >>> 0;
    out.push(new Float32Array(engine.memory.buffer.slice(p, p + 4 * vocab)));
  };
  engine.prompt(prompt, { temperature: 0, maxTokens: 8, seed: 1 });
  take();
  for (;;) {
    const { done } = engine.next();
    if (done) break;
    take();
  }
  return out;
}

function sameBits(got, want, what) {
  assert.equal(got.length, want.length, `${what}: steps`);
  for (let s = 0; s < want.length; s++) {
    const a = new Uint32Array(got[s].buffer);
    const b = new Uint32Array(want[s].buffer);
    for (let i = 0; i < b.length; i++) {
      if (a[i] !== b[i]) assert.fail(`${what}: step ${s}, logit ${i}: ${got[s][i]}, ${want[s][i]} on one thread`);
    }
  }
}

const prompt = 'And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided';

describe('kernel threads in Node', () => {
  for (const file of ['default.gguf', 'default-f16.gguf']) {
    test(`${file}: the logits at 2 and 3 threads are one thread's`, async () => {
      const bytes = await readFile(path.join(site, '..', 'models', file));
      const one = await load(bytes);
      assert.equal(one.threads.count, 1);
      const want = logitsOf(one, prompt);
      for (const threads of [2, 3]) {
        for (const minWork of [1, undefined]) {
          const eng = await load(bytes, { threads, minWork });
          try {
            assert.equal(eng.threads.count, threads, eng.threads.reason);
            sameBits(logitsOf(eng, prompt), want, `${threads} threads, minWork ${minWork}`);
          } finally {
            eng.close();
          }
        }
      }
    });
  }

  test('a helper that dies leaves the generation to the others or fails it, never hangs', { timeout: 30000 }, async () => {
    const bytes = await readFile(path.join(site, '..', 'models', 'default-f16.gguf'));
    const one = await load(bytes);
    const want = logitsOf(one, 'In the beginning');
    const eng = await load(bytes, { threads: 2, minWork: 1 });
    try {
      assert.equal(eng.threads.count, 2, eng.threads.reason);
      sameBits(logitsOf(eng, 'In the beginning'), want, 'before');
      await eng.threads.helpers[0].terminate();
      // A helper that dies between chunks leaves its share to the engine's
      // thread (the same bits); one that dies in a chunk makes the
      // dispatcher trap after 2 s without progress.
      const t0 = performance.now();
      let got;
      try {
        got = logitsOf(eng, 'In the beginning');
      } catch (err) {
        assert.equal(err.code, 'trap', err.message);
      }
      if (got) sameBits(got, want, 'after');
      assert.ok(performance.now() - t0 < 10000, 'the generation took too long');
    } finally {
      eng.close();
    }
  });
});

// generateIn loads a model with wisp.load in the page (the engine in its
// Worker, the helpers Workers of that Worker) and generates greedily.
async function generateIn(page, url, threads) {
  return page.evaluate(async ({ url, threads }) => {
    const wisp = await import('./wisp.js');
    const m = await wisp.load(url, { threads, cache: false });
    try {
      const g = m.generate('And God said', { temperature: 0, maxTokens: 40 });
      await g.result;
      return { text: g.text, threads: m.info.threads, reason: m.info.threadsReason ?? '', template: m.info.chatTemplate, description: m.info.description };
    } finally {
      m.unload();
    }
  }, { url, threads });
}

describe('kernel threads in Chromium', { timeout: 300_000 }, () => {
  let isolated;
  let plain;
  let browser;
  before(async () => {
    [isolated, plain, browser] = await Promise.all([
      serve(path.join(root, 'models'), ['--isolate']), serve(path.join(root, 'models')), launch(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await isolated?.close();
    await plain?.close();
  });

  for (const file of ['default.gguf', 'default-f16.gguf']) {
    test(`${file}: an isolated page generates the same text at 1, 2 and 3 threads`, async () => {
      const page = await browser.newPage();
      await page.goto(`${isolated.url}embed.html`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      const want = await generateIn(page, `/models/${file}`, 1);
      assert.equal(want.threads, 1);
      assert.ok(want.text.length > 20, want.text);
      for (const threads of [2, 3]) {
        const got = await generateIn(page, `/models/${file}`, threads);
        assert.equal(got.threads, threads, got.reason);
        assert.equal(got.text, want.text, `${threads} threads`);
        // The file's metadata, read from the shared memory, too.
        assert.equal(got.description, want.description);
        assert.equal(got.template, want.template);
      }
      await page.close();
    });
  }

  // Threads never fail a load: where the threaded build cannot start
  // (missing here; a shared memory the browser refuses, elsewhere), the
  // engine or the Worker falls back to one thread and says why.
  for (const { missing, reason } of [
    { missing: 'threads.wasm', reason: /starting 1 kernel threads: .*threads\.wasm: HTTP 404/ },
    { missing: 'wisp-shared.wasm', reason: /the threaded engine did not start: .*wisp-shared\.wasm/ },
  ]) {
    test(`without ${missing}, two threads give way to one, which says why and generates`, async () => {
      const ctx = await browser.newContext();
      await ctx.route((u) => u.pathname.endsWith(`/${missing}`), (r) => r.fulfill({ status: 404, body: 'not here' }));
      const page = await ctx.newPage();
      await page.goto(`${isolated.url}embed.html`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      const want = await generateIn(page, '/models/default.gguf', 1);
      const got = await generateIn(page, '/models/default.gguf', 2);
      assert.equal(got.threads, 1);
      assert.match(got.reason, reason);
      assert.equal(got.text, want.text);
      await ctx.close();
    });
  }

  test('a page without isolation runs on one thread, says why, and generates', async () => {
    const page = await browser.newPage();
    await page.goto(`${plain.url}embed.html`);
    const got = await generateIn(page, '/models/default.gguf', undefined);
    assert.equal(got.threads, 1);
    assert.match(got.reason, /cross-origin isolated/);
    assert.ok(got.text.length > 20, got.text);
    await page.close();
  });
});

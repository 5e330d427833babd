// threads.test.js: the matrix products split among kernel threads (Node's
// worker_threads running helper.js on the threaded build's shared memory)
// give the same logits, to the bit, as one thread; a helper that dies makes
// the next generation fail, never hang.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { load } from '../node.js';
import { site } from './helpers.js';

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

  test('a helper that dies makes the next generation fail, not hang', { timeout: 30000 }, async () => {
    const bytes = await readFile(path.join(site, '..', 'models', 'default-f16.gguf'));
    const eng = await load(bytes, { threads: 2, minWork: 1 });
    try {
      assert.equal(eng.threads.count, 2, eng.threads.reason);
      logitsOf(eng, 'In the beginning');
      await eng.threads.helpers[0].terminate();
      const t0 = performance.now();
      assert.throws(() => logitsOf(eng, 'In the beginning'), (err) => err.code === 'trap');
      assert.ok(performance.now() - t0 < 10000, 'the failure took too long');
    } finally {
      eng.close();
    }
  });
});

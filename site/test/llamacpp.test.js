// llamacpp.test.js: what wisp writes, llama.cpp reads. The default model
// (trained, pruned and distilled by wisp's tools, shipped as Q4_0), an F16
// copy of it and a copy pruned again are loaded by @wllama/wllama,
// llama.cpp compiled to wasm, in headless Chromium. The F16 copy and the
// pruned one (F32: prune widens quantized weights) must continue a prompt
// greedily with the very text `wisp run` prints; the Q4_0 model with its
// first quantizedTokens tokens. The two engines round a product's input to
// 8 bits each its own way, so on 4-bit weights a near tie can go either
// way; token by token against native llama.cpp, wisp's greedy choice is
// llama.cpp's at every one of 200 positions (tools/retype's
// TestLlamaCppContinuesWispFiles). A copy pruned with --per-layer (widths
// that differ from block to block, as llama.cpp's per-layer arrays) is one
// llama.cpp's llama loader refuses, as wisp prune --help says: if a
// llama.cpp release starts to load it, the test fails and the help must
// change.

import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { defaultModel, launch, missing, nativeText, serve, wisp } from './helpers.js';

const prompt = 'And God said';
const tokens = 48;
const quantizedTokens = 4;

/**
 * complete runs in the page: it loads url with wllama (one thread, CPU)
 * and returns its greedy continuation of prompt and how many tokens that
 * took, or the error that stopped it.
 */
async function complete({ url, prompt, tokens }) {
  const { Wllama } = await import('/node_modules/@wllama/wllama/esm/index.js');
  const quiet = { debug() {}, log() {}, warn() {}, error() {} };
  const w = new Wllama({ default: '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm' },
    { suppressNativeLog: true, logger: quiet });
  try {
    await w.loadModelFromUrl(url, { n_threads: 1, n_ctx: 256, n_gpu_layers: 0, useCache: false });
    const r = await w.createCompletion({ prompt, max_tokens: tokens, temperature: 0, cache_prompt: false });
    return { text: r.choices[0].text, predicted: r.usage?.completion_tokens ?? -1 };
  } catch (err) {
    return { error: String(err?.message ?? err) };
  } finally {
    await w.exit().catch(() => {});
    await w.cacheManager.clear().catch(() => {});
  }
}

describe('llama.cpp (wllama) reads what wisp writes', { skip: missing() !== '' }, () => {
  let dir;
  let models;
  let srv;
  let browser;
  let page;
  let perLayerLog; // what wisp prune --per-layer printed

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-llamacpp-'));
    models = path.join(dir, 'models');
    await mkdir(models);
    await copyFile(defaultModel, path.join(models, 'default.gguf'));
    await wisp(['convert', '--type', 'f16', '-o', path.join(models, 'default-f16.gguf'), defaultModel]);
    // Calibration text for the pruning: the model's own writing.
    const calib = path.join(dir, 'calib.txt');
    const { stdout } = await wisp(['run', '-m', defaultModel, '-n', '256', '-t', '1', '--seed', '3', '-q']);
    await writeFile(calib, stdout);
    await wisp(['prune', '-m', defaultModel, '--calib', calib, '--params', '0.8', '--no-eval', '-o', path.join(models, 'pruned.gguf')]);
    const per = await wisp(['prune', '-m', defaultModel, '--calib', calib, '--params', '0.8', '--per-layer', '--no-eval',
      '-o', path.join(models, 'per-layer.gguf')]);
    perLayerLog = per.stdout + per.stderr;
    [srv, browser] = await Promise.all([serve(models), launch()]);
    page = await browser.newPage();
    await page.goto(`${srv.url}bench/bench.html`);
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // wisp's greedy text of a file: the prompt and k tokens. wisp run -n
  // counts positions: the prompt's, BOS included (wisp tokenize leaves it
  // out), then one printed token per position after the prompt's last,
  // and one more.
  const wispText = async (file, k) => {
    const n = (await wisp(['tokenize', '-m', file, '--', prompt])).stdout.trim().split(/\s+/).length + 1;
    return nativeText(file, { prompt, positions: n + k - 1 });
  };

  for (const name of ['default-f16.gguf', 'pruned.gguf']) {
    test(`${name}: llama.cpp's greedy text is wisp's`, async () => {
      const want = await wispText(path.join(models, name), tokens);
      const got = await page.evaluate(complete, { url: `${srv.url}models/${name}`, prompt, tokens });
      assert.equal(got.error, undefined, `llama.cpp failed on ${name}`);
      // Both stop at the end-of-sequence token, should the model write it.
      assert.ok(got.predicted > 0 && got.predicted <= tokens, `llama.cpp decoded ${got.predicted} tokens`);
      assert.equal(prompt + got.text + '\n', want);
    });
  }

  test(`default.gguf (Q4_0): llama.cpp's greedy text starts with wisp's first ${quantizedTokens} tokens`, async () => {
    const want = (await wispText(path.join(models, 'default.gguf'), quantizedTokens)).replace(/\n$/, '');
    const got = await page.evaluate(complete, { url: `${srv.url}models/default.gguf`, prompt, tokens });
    assert.equal(got.error, undefined, 'llama.cpp failed on default.gguf');
    assert.ok(got.predicted > quantizedTokens && got.predicted <= tokens, `llama.cpp decoded ${got.predicted} tokens`);
    assert.ok((prompt + got.text).startsWith(want), `llama.cpp wrote ${JSON.stringify(got.text)}, wisp ${JSON.stringify(want)}`);
  });

  test('per-layer.gguf: wisp runs it, llama.cpp refuses it', async () => {
    // The blocks really differ in width (else the file has no arrays).
    const widths = (label) => {
      const m = perLayerLog.match(new RegExp(`${label}\\s+\\[([\\d ]+)\\]`));
      assert.ok(m, `wisp prune printed no ${label}: ${perLayerLog}`);
      return m[1].trim().split(/\s+/).map(Number);
    };
    const differ = (v) => new Set(v).size > 1;
    assert.ok(differ(widths('neurons per block')) || differ(widths('groups per block')), perLayerLog);
    const file = path.join(models, 'per-layer.gguf');
    const text = await nativeText(file, { prompt, positions: 32 });
    assert.ok(text.startsWith(prompt) && text.length > prompt.length + 8, text);
    const got = await page.evaluate(complete, { url: `${srv.url}models/per-layer.gguf`, prompt, tokens });
    assert.ok(got.error, `llama.cpp loaded a per-layer model and wrote ${JSON.stringify(got.text)}: update wisp prune --help`);
    // The failure is the model's, not the harness's: a uniform model
    // still runs right after it.
    const ok = await page.evaluate(complete, { url: `${srv.url}models/pruned.gguf`, prompt, tokens: 4 });
    assert.equal(ok.error, undefined, 'llama.cpp failed on pruned.gguf after per-layer.gguf');
  });
});

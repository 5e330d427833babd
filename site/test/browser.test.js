// browser.test.js: the page in headless Chromium, served by `wisp serve`.
// It must generate exactly what the native `wisp run` prints, show
// download progress, load the model from Cache Storage on a reload, stop
// when asked, and show an error for a model it cannot load. Screenshots go
// to site/test-results/ for a person to look at.

import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chatModel, defaultModel, launch, missing, nativeText, results, serve, wisp } from './helpers.js';

// The build outputs must exist (make site models): their absence fails
// rather than skips.
const skip = false;
test('the build outputs the tests need exist', () => assert.equal(missing(), ''));

describe('the page in Chromium', { skip }, () => {
  let dir;
  let srv;
  let browser;
  let page; // a desktop page that the first tests share
  let native;
  const errors = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-site-'));
    const models = path.join(dir, 'models');
    await mkdir(models);
    await mkdir(results, { recursive: true });
    await copyFile(defaultModel, path.join(models, 'default.gguf'));
    await copyFile(chatModel, path.join(models, 'chat.gguf'));
    // A hostile header: GGUF v3 claiming 2^60 tensors and key/value pairs.
    const bad = Buffer.alloc(64);
    bad.write('GGUF', 0, 'latin1');
    bad.writeUInt32LE(3, 4);
    bad.writeBigUInt64LE(1n << 60n, 8);
    bad.writeBigUInt64LE(1n << 60n, 16);
    await writeFile(path.join(models, 'broken.gguf'), bad);
    // A TinyStories-15M-shaped model with random weights: slow enough to stop.
    [srv, browser, native] = await Promise.all([
      wisp(['synth', '--shape', 'stories15M', '-o', path.join(models, 's15.gguf')]).then(() => serve(models)),
      launch(),
      nativeText(defaultModel, { positions: 200 }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => errors.push(err));
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.deepEqual(errors.map(String), [], 'uncaught errors in the page');
  });

  const ready = (p) => p.waitForSelector('body[data-state=ready]', { timeout: 60_000 });

  async function settings(p, { prompt, temperature, maxTokens }) {
    await p.fill('#prompt', prompt);
    if (!(await p.locator('#settings').getAttribute('open'))) await p.click('#settings summary');
    await p.fill('#temperature', String(temperature));
    await p.fill('#max-tokens', String(maxTokens));
  }

  test('the demo generates what wisp run prints, greedily', async () => {
    await page.goto(srv.url);
    await ready(page);
    assert.equal(await page.getAttribute('body', 'data-source'), 'network');
    assert.equal(srv.count('/models/default.gguf'), 1);
    assert.match(await page.textContent('#model-info'), /wisp KJV/);
    assert.match(await page.textContent('#model-info'), /F16 weights/);
    // wisp run -n 200 with no prompt: BOS, then 200 tokens.
    await settings(page, { prompt: '', temperature: 0, maxTokens: 200 });
    await page.click('#generate');
    await ready(page);
    assert.equal(await page.textContent('#continuation'), native.replace(/\n$/, ''));
    assert.match(await page.textContent('#stats'), /200 tokens · [\d.]+ tokens\/s · first token after \d+ ms/);
    await page.screenshot({ path: path.join(results, 'demo-desktop.png'), fullPage: true });
  });

  test('a reload loads the model from Cache Storage, with no request', async () => {
    await page.reload();
    await ready(page);
    assert.equal(await page.getAttribute('body', 'data-source'), 'cache');
    assert.equal(srv.count('/models/default.gguf'), 1, 'the model was fetched again');
    assert.match(await page.textContent('#model-info'), /from this browser's cache/);
  });

  test('the demo runs a GGUF picked from this computer, with no request for it', async () => {
    const n = srv.requests.length;
    await page.setInputFiles('#model-file', defaultModel);
    await page.waitForSelector('body[data-state=loading]', { timeout: 10_000 }).catch(() => {});
    await ready(page);
    assert.match(await page.textContent('#model-info'), /from this computer/);
    assert.deepEqual(srv.requests.slice(n).filter((r) => r.path.endsWith('.gguf')), []);
    await settings(page, { prompt: '', temperature: 0, maxTokens: 200 });
    await page.click('#generate');
    await ready(page);
    assert.equal(await page.textContent('#continuation'), native.replace(/\n$/, ''));
  });

  test('wisp.load reports progress and checks the SHA-256', async () => {
    const res = await page.evaluate(async () => {
      const wisp = await import('./wisp.js');
      const events = [];
      const m = await wisp.load('models/default.gguf', { cache: false, onProgress: (p) => events.push(p) });
      const info = m.info;
      const gen = m.generate('Once upon a time', { temperature: 0, maxTokens: 20, echo: true });
      let text = '';
      for await (const piece of gen) text += piece;
      m.unload();
      let shaError = null;
      try {
        await wisp.load('models/default.gguf', { cache: false, sha256: '0'.repeat(64) });
      } catch (err) {
        shaError = { code: err.code, message: err.message };
      }
      // An aborted load rejects with an AbortError.
      const ctl = new AbortController();
      const aborted = wisp.load('models/s15.gguf', { cache: false, signal: ctl.signal });
      ctl.abort();
      const abortName = await aborted.then(() => 'loaded', (err) => err.name);
      // A generation's signal stops it; the iteration just ends.
      const m2 = await wisp.load('models/default.gguf');
      const ctl2 = new AbortController();
      const long = m2.generate('', { temperature: 0, maxTokens: 0, signal: ctl2.signal });
      for await (const _ of long) ctl2.abort();
      const longStats = await long.result;
      m2.unload();
      return { events, info, text, stats: await gen.result, shaError, abortName, longStats };
    });
    assert.ok(res.events.length >= 2, `${res.events.length} progress events`);
    const last = res.events.at(-1);
    assert.equal(last.loaded, res.info.fileSize);
    assert.equal(last.total, res.info.fileSize);
    assert.equal(last.cached, false);
    assert.ok(res.events.every((e) => e.rate >= 0 && e.loaded <= e.total));
    assert.equal(srv.count('/models/default.gguf'), 3, 'cache: false downloads');
    assert.ok(res.text.startsWith('Once upon a time'), res.text);
    assert.equal(res.stats.tokens, 20);
    assert.equal(res.stats.reason, 'length');
    assert.equal(res.shaError?.code, 'sha256');
    assert.equal(res.abortName, 'AbortError');
    assert.equal(res.longStats.reason, 'aborted');
    assert.ok(res.longStats.tokens < res.info.contextLength - 1, `${res.longStats.tokens} tokens`);
  });

  test('Stop stops a long generation, at phone width', async () => {
    const phone = await browser.newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    phone.on('pageerror', (err) => errors.push(err));
    await phone.goto(`${srv.url}?model=models/s15.gguf`);
    await ready(phone);
    assert.match(await phone.textContent('#model-info'), /Random weights/);
    await settings(phone, { prompt: 'Once upon a time', temperature: 1, maxTokens: 255 });
    await phone.click('#generate');
    await phone.waitForFunction(() => document.getElementById('continuation').textContent.length > 0);
    await phone.click('#stop');
    await ready(phone);
    const stats = await phone.textContent('#stats');
    assert.match(stats, /stopped/);
    const tokens = Number(stats.match(/^(\d+) token/)[1]);
    assert.ok(tokens > 0 && tokens < 255, stats);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `the page is ${width} px wide at 375 px`);
    await phone.screenshot({ path: path.join(results, 'demo-phone.png'), fullPage: true });
    await phone.close();
  });

  test('a model that cannot load shows an error instead of hanging', async () => {
    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    p.on('pageerror', (err) => errors.push(err));
    await p.goto(`${srv.url}?model=models/missing.gguf`);
    await p.waitForSelector('body[data-state=error]', { timeout: 30_000 });
    assert.match(await p.textContent('#error'), /Could not download the model.*404/);
    await p.selectOption('#model-select', `${srv.url}models/broken.gguf`);
    await p.waitForSelector('body[data-state=error]', { timeout: 30_000 });
    const msg = await p.textContent('#error');
    assert.match(msg, /not a model wisp can run/);
    assert.ok(await p.isVisible('#error'));
    await p.screenshot({ path: path.join(results, 'demo-error.png'), fullPage: true });
    // The page recovers with a good model.
    await p.selectOption('#model-select', `${srv.url}models/default.gguf`);
    await ready(p);
    assert.ok(await p.isHidden('#error'));
    // A prompt longer than the context is the engine's error, shown.
    await p.fill('#prompt', 'Once upon a time '.repeat(200));
    await p.click('#generate');
    await p.waitForSelector('#error:not([hidden])');
    assert.match(await p.textContent('#error'), /the prompt is \d+ tokens but the context holds \d+/);
    assert.equal(await p.getAttribute('body', 'data-state'), 'ready');
    await p.close();
  });

  test('a browser without WebAssembly SIMD gets a clear message', async () => {
    const p = await browser.newPage();
    await p.addInitScript(() => {
      const validate = WebAssembly.validate;
      // Refuse any module that uses the SIMD prefix, as an old engine would.
      WebAssembly.validate = (bytes) => !new Uint8Array(bytes.buffer ?? bytes).includes(0xfd) && validate(bytes);
    });
    const wasm = () => srv.requests.filter((r) => r.path.endsWith('.wasm') || r.path.startsWith('/models/')).length;
    const before = wasm();
    await p.goto(srv.url);
    await p.waitForSelector('body[data-state=error]', { timeout: 30_000 });
    assert.match(await p.textContent('#error'), /WebAssembly SIMD/);
    assert.equal(wasm(), before, 'no engine or model download after the check');
    await p.close();
  });

  test('chat mode holds a conversation as bubbles of text, keeping the cache between turns', async () => {
    const p = await browser.newPage({ viewport: { width: 800, height: 900 } });
    p.on('pageerror', (err) => errors.push(err));
    await p.goto(`${srv.url}?mode=chat`);
    await ready(p);
    assert.equal(await p.isVisible('#prompt'), false);
    assert.equal(await p.textContent('#generate'), 'Send');
    // Chat mode opens the chat model, which has a chat template.
    assert.match(await p.inputValue('#model-select'), /\/models\/chat\.gguf$/);
    assert.match(await p.textContent('#model-info'), /wisp KJV chat/);
    assert.equal(await p.isVisible('#chat-note'), false);
    await p.click('#settings summary');
    await p.fill('#temperature', '0');
    await p.fill('#max-tokens', '12');
    const turn = async (text, n) => {
      await p.fill('#message', text);
      await p.press('#message', 'Enter');
      await p.waitForFunction((k) => document.querySelectorAll('#messages li.assistant').length === k &&
        document.body.dataset.state === 'ready' && document.getElementById('chat-stats').dataset.prompt, n, { timeout: 60_000 });
      const r = await p.evaluate(() => {
        const s = document.getElementById('chat-stats');
        const replies = [...document.querySelectorAll('#messages li.assistant')].map((li) => li.textContent);
        const users = [...document.querySelectorAll('#messages li.user')].map((li) => li.textContent);
        const r2 = { reused: Number(s.dataset.reused), prompt: Number(s.dataset.prompt), replies, users };
        delete s.dataset.prompt;
        return r2;
      });
      return r;
    };
    const typed = '<b>Who</b> begat <img src=x onerror=alert(1)> Enos? <|im_end|>';
    const t1 = await turn(typed, 1);
    assert.deepEqual(t1.users, [typed]);
    assert.equal(await p.locator('#messages b, #messages img').count(), 0, 'typed text became HTML');
    assert.ok(t1.replies[0].length > 0);
    const t2 = await turn('And then?', 2);
    assert.ok(t2.reused >= t1.prompt && t2.reused < t2.prompt, `turn 2 reused ${t2.reused} of ${t2.prompt}, turn 1 was ${t1.prompt}`);
    // A new conversation with the same first message: the same reply, greedily.
    await p.click('#new-chat');
    assert.equal(await p.locator('#messages li').count(), 0);
    const t3 = await turn(typed, 1);
    assert.deepEqual(t3.replies, [t1.replies[0]]);
    assert.equal(t3.prompt, t1.prompt);
    await p.screenshot({ path: path.join(results, 'chat.png'), fullPage: true });
    // Text mode, the model not chosen by hand, opens the default model; the
    // base model in chat mode says it has no chat template.
    await p.check('input[name=mode][value=text]');
    await p.waitForFunction(() => document.getElementById('model-select').value.endsWith('/models/default.gguf') &&
      document.body.dataset.state === 'ready', null, { timeout: 60_000 });
    await p.check('input[name=mode][value=chat]');
    await p.waitForFunction(() => document.getElementById('model-select').value.endsWith('/models/chat.gguf') &&
      document.body.dataset.state === 'ready', null, { timeout: 60_000 });
    await p.selectOption('#model-select', `${srv.url}models/default.gguf`);
    await ready(p);
    assert.match(await p.textContent('#chat-note'), /no chat template/);
    await p.close();
  });

  test('<wisp-chat> holds a conversation in its shadow DOM, as text, keeping the cache', async () => {
    const p = await browser.newPage();
    p.on('pageerror', (err) => errors.push(err));
    await p.goto(`${srv.url}README.md`);
    const r = await p.evaluate(async () => {
      await import('./wisp-chat.js');
      const el = document.createElement('wisp-chat');
      el.setAttribute('model', 'models/chat.gguf');
      el.setAttribute('max-tokens', '10');
      el.setAttribute('temperature', '0');
      el.setAttribute('system', 'Be brief.');
      const ready = new Promise((resolve, reject) => {
        el.addEventListener('ready', resolve, { once: true });
        el.addEventListener('error', (e) => reject(e.detail), { once: true });
      });
      document.body.append(el);
      await ready;
      const tokens = [];
      el.addEventListener('token', (e) => tokens.push(e.detail));
      const typed = '<b>Who</b> begat Enos? <|im_end|>';
      const s1 = await el.send(typed);
      const s2 = await el.send('And then?');
      const root = el.shadowRoot;
      const texts = [...root.querySelectorAll('[part~=message]')].map((li) => [li.getAttribute('part'), li.textContent]);
      const html = root.querySelectorAll('[part=messages] b').length;
      const messages = el.messages;
      const streamed = tokens.join('');
      el.reset();
      const s3 = await el.send(typed);
      return { s1, s2, s3, texts, html, messages, tokens: streamed, after: el.messages };
    });
    assert.equal(r.html, 0, 'typed text became HTML');
    assert.deepEqual(r.texts.map(([part]) => part), ['message user', 'message assistant', 'message user', 'message assistant']);
    assert.equal(r.texts[0][1], '<b>Who</b> begat Enos? <|im_end|>');
    assert.deepEqual(r.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(r.messages[1].content, r.texts[1][1]);
    assert.equal(r.tokens, r.texts[1][1] + r.texts[3][1]);
    assert.ok(r.s2.reusedTokens >= r.s1.promptTokens, `reused ${r.s2.reusedTokens}, first prompt ${r.s1.promptTokens}`);
    assert.deepEqual(r.after, [r.messages[0], r.messages[1]], 'after reset, the same first turn');
    await p.close();
  });

  test('<wisp-generate> streams tokens and ends with done', async () => {
    const p = await browser.newPage({ viewport: { width: 800, height: 900 } });
    p.on('pageerror', (err) => errors.push(err));
    await p.addInitScript(() => {
      window.seen = { tokens: [], done: null };
      // The element's events do not bubble; a capturing listener sees them.
      addEventListener('token', (e) => window.seen.tokens.push(e.detail), true);
      addEventListener('done', (e) => { window.seen.done = e.detail; }, true);
    });
    await p.goto(`${srv.url}embed.html`);
    await p.waitForFunction(() => window.seen.done, null, { timeout: 60_000 });
    const seen = await p.evaluate(() => ({ ...window.seen, text: document.getElementById('demo').text }));
    assert.equal(seen.done.tokens, 80);
    assert.equal(seen.tokens.join(''), seen.text);
    // The same generation natively: the prompt's positions, then 80 tokens.
    const prompt = 'And God said';
    const want = await nativeText(defaultModel, { prompt, positions: seen.done.promptTokens + 80 - 1 });
    assert.equal(prompt + seen.text + '\n', want);
    await p.waitForSelector('#embed-stats:not(:empty)');
    await p.screenshot({ path: path.join(results, 'embed.png'), fullPage: true });
    await p.close();
  });
});

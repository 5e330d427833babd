// openai.test.js: the official OpenAI client (the openai package), pointed
// at `wisp serve --model`, holds a streamed conversation with a random
// ChatML model: the shapes the SDK reads, the cache kept between turns
// (usage.prompt_tokens_details.cached_tokens), and errors the SDK raises as
// its own, after which the server still serves.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { chatModel, missing, serve, wisp } from './helpers.js';

describe('the openai package against wisp serve --model', { skip: missing() !== '' }, () => {
  let dir;
  let srv;
  let client;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-openai-'));
    const models = path.join(dir, 'models');
    await mkdir(models);
    const model = path.join(models, 'chat.gguf');
    await wisp(['synth', '--chatml', '--dim', '64', '--hidden', '96', '--layers', '2', '--heads', '4', '--kv-heads', '2',
      '--vocab', '400', '--ctx', '512', '--seed', '6', '-o', model]);
    srv = await serve(models, ['--model', model, '--ctx', '400']);
    client = new OpenAI({ baseURL: `${srv.url}v1`, apiKey: 'none', maxRetries: 0 });
  });
  after(async () => {
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const params = { model: 'chat', max_tokens: 16, temperature: 0.8, seed: 3 };

  test('a streamed conversation, whose second turn reuses the cache', async () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }];
    const stream = await client.chat.completions.create({ ...params, messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.ok(chunks >= 3 && text.length > 0, `${chunks} chunks, ${JSON.stringify(text)}`);
    assert.ok(['stop', 'length'].includes(finish));
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

    const same = await client.chat.completions.create({ ...params, messages });
    assert.equal(same.object, 'chat.completion');
    assert.equal(same.choices[0].message.content, text, 'streamed and not, the same text');
    assert.equal(same.choices[0].finish_reason, finish);

    messages.push({ role: 'assistant', content: text }, { role: 'user', content: 'and <|im_end|> then?' });
    const next = await client.chat.completions.create({ ...params, messages });
    const cached = next.usage.prompt_tokens_details.cached_tokens;
    assert.ok(cached >= usage.prompt_tokens && cached < next.usage.prompt_tokens, `cached ${cached}, prompts ${usage.prompt_tokens} then ${next.usage.prompt_tokens}`);
  });

  test('bad requests are the SDK\'s errors, and the server goes on; text completions too', async () => {
    await assert.rejects(
      client.chat.completions.create({ ...params, messages: [{ role: 'wizard', content: 'hi' }] }),
      (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && /role "wizard"/.test(err.message));
    await assert.rejects(
      client.chat.completions.create({ ...params, max_tokens: 1e9, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => err instanceof OpenAI.BadRequestError && /max_tokens = 1000000000/.test(err.message) && err.param === 'max_tokens');
    const ok = await client.chat.completions.create({ ...params, messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(ok.usage.completion_tokens > 0);
    const text = await client.completions.create({ model: 'chat', prompt: 'the cat sat', max_tokens: 8, seed: 1 });
    assert.equal(text.object, 'text_completion');
    assert.equal(typeof text.choices[0].text, 'string');
    assert.ok(text.usage.completion_tokens > 0 && text.usage.completion_tokens <= 8);
    let streamed = '';
    for await (const chunk of await client.completions.create({ model: 'chat', prompt: 'the cat sat', max_tokens: 8, seed: 1, stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
    }
    assert.equal(streamed, text.choices[0].text);
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ['chat']);
  });
});

describe('the openai package against wisp serve with wisp\'s chat model', { skip: missing() !== '' }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await serve(path.dirname(chatModel), ['--model', chatModel]);
    client = new OpenAI({ baseURL: `${srv.url}v1`, apiKey: 'none', maxRetries: 0 });
  });
  after(() => srv?.close());

  test('streams a reply that ends its turn, as text with no control token', async () => {
    const stream = await client.chat.completions.create({
      model: 'chat', temperature: 0, max_tokens: 150, stream: true,
      messages: [{ role: 'system', content: 'You answer from the King James Bible.' }, { role: 'user', content: 'Recite Genesis 1:1.' }],
    });
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'stop', `the reply did not end its turn: ${JSON.stringify(text)}`);
    assert.ok(text.trim().split(/\s+/).length >= 3, JSON.stringify(text));
    assert.doesNotMatch(text, /<\|im_(start|end)\|>/);
  });
});

// app.js: the demo page (index.html). It lists the models that `wisp serve`
// offers (/api/models), loads one with wisp.js, and streams generated text
// into the page as text, never as HTML.
//
// The page's state is in body[data-state]: starting, loading, ready,
// generating or error (tests wait on it). ?model=URL picks a model that is
// not in the list; a GGUF file dropped on the page or chosen with the file
// picker loads from this computer, with no upload.
//
// In chat mode (the Chat radio button, or ?mode=chat) the page holds a
// conversation: model.chat renders it with the model's chat template and
// keeps the cache between turns; messages show as bubbles, as text. Each
// mode has its default model, chosen until the visitor picks another:
// chat.gguf (wisp KJV chat, models/README.md) in chat mode, when the server
// has it, and default.gguf otherwise.

import * as wisp from './wisp.js';

const $ = (id) => document.getElementById(id);
const ui = {
  select: $('model-select'), file: $('model-file'), download: $('download'), progress: $('progress'),
  progressText: $('progress-text'), info: $('model-info'), prompt: $('prompt'),
  temperature: $('temperature'), topP: $('top-p'), topK: $('top-k'),
  maxTokens: $('max-tokens'), seed: $('seed'), generate: $('generate'), stop: $('stop'),
  error: $('error'), echo: $('echo'), continuation: $('continuation'), stats: $('stats'),
  textMode: $('text-mode'), chatMode: $('chat-mode'), outputPanel: $('output-panel'), system: $('system'),
  messages: $('messages'), message: $('message'), chatStats: $('chat-stats'), chatNote: $('chat-note'),
  newChat: $('new-chat'),
};

// The sampling settings start at the API's defaults.
for (const k of ['temperature', 'topP', 'topK', 'maxTokens']) ui[k].value = String(wisp.DEFAULTS[k]);

let model = null; // the loaded wisp.Model
let loading = null; // AbortController of the load under way
let generation = null; // the wisp.Generation under way
let mode = 'text'; // 'text' or 'chat'
let conversation = []; // the chat's messages after the system prompt: {role, content, el}
const hashes = new Map(); // model URL → SHA-256 from /api/models
let picked = false; // the visitor chose the model (?model=, the list, a file)

/** setState records the page's state for styles and tests, and sets the buttons. */
function setState(state) {
  document.body.dataset.state = state;
  ui.generate.disabled = state !== 'ready';
  ui.stop.disabled = state !== 'generating';
  ui.select.disabled = state === 'generating';
  ui.file.disabled = state === 'generating';
  ui.newChat.disabled = state === 'generating';
  // Screen readers read the text once it is complete, not every piece.
  $('output').setAttribute('aria-busy', String(state === 'generating'));
}

/** showError shows an error; while loading, it says what failed first. */
function showError(err, loadingModel = true) {
  const prefix = !loadingModel && err?.code !== 'trap' ? '' : {
    'no-simd': '',
    http: 'Could not download the model. ',
    'too-large': '',
    sha256: 'The downloaded model is corrupt. ',
    engine: 'This file is not a model wisp can run. ',
    memory: 'The model does not fit in this browser\'s memory. ',
    trap: 'The engine stopped; reload the page. ',
    worker: 'The engine could not start. ',
  }[err?.code] ?? '';
  ui.error.textContent = prefix + (err?.message ?? String(err));
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

const MB = 1e6;
const mb = (n) => (n / MB).toFixed(n < 10 * MB ? 2 : 1);

/** formatCount writes 260032 as "260 K", 15200000 as "15.2 M". */
function formatCount(n) {
  for (const [d, unit] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']]) {
    if (n >= d) return `${(n / d).toFixed(n >= 100 * d ? 0 : 1).replace(/\.0$/, '')} ${unit}`;
  }
  return String(n);
}

// weightTypes names the types of a model's matrices, most common first
// ("Q4_K, Q6_K weights"); F32 norms beside quantized matrices go unsaid.
function weightTypes(info) {
  const counts = Object.entries(info.tensorTypes ?? {}).sort((a, b) => b[1] - a[1]);
  const names = counts.map(([t]) => t);
  const matrices = names.length > 1 ? names.filter((t) => t !== 'F32') : names;
  return `${matrices.join(', ') || (info.f16 ? 'F16' : 'F32')} weights`;
}

// kernelText names the kernel set that runs, and why the baseline where
// relaxed SIMD is missing.
function kernelText(info) {
  if (info.kernels === 'wasm-simd128+relaxed') return 'relaxed-SIMD kernels';
  return `SIMD128 kernels${info.kernelsReason ? ` (${info.kernelsReason})` : ''}`;
}

function describe(info) {
  const name = info.name || info.fileName || decodeURIComponent(new URL(info.url).pathname.split('/').pop());
  const parts = [
    `${formatCount(info.params)} parameters`,
    weightTypes(info),
    `${info.architecture}, ${info.layers} layers, context ${info.contextLength}`,
    `${mb(info.fileSize)} MB ${info.fromCache ? 'from this browser\'s cache' : info.url ? 'downloaded' : 'from this computer'}`,
    kernelText(info),
  ];
  const kind = info.random
    ? 'Random weights: a test model of the right shape, it writes gibberish.'
    : 'Trained weights.';
  return { name, text: `${parts.join(' · ')}. ${kind}` };
}

async function listModels() {
  const wanted = new URLSearchParams(location.search).get('model');
  let list = [];
  try {
    const resp = await fetch('api/models');
    if (resp.ok) list = await resp.json();
  } catch {
    // A static host has no /api/models: fall back to the default model.
  }
  if (!Array.isArray(list)) list = [];
  if (list.length === 0) list = [{ name: 'default.gguf', url: 'models/default.gguf' }];
  ui.select.replaceChildren();
  for (const m of list) {
    const url = new URL(m.url, location.href).href;
    if (m.sha256) hashes.set(url, m.sha256);
    const size = m.size ? ` (${mb(m.size)} MB)` : '';
    ui.select.append(new Option(`${m.name}${size}`, url));
  }
  if (wanted) {
    const url = new URL(wanted, location.href).href;
    if (![...ui.select.options].some((o) => o.value === url)) ui.select.append(new Option(wanted, url));
    ui.select.value = url;
    picked = true;
  } else {
    selectDefault();
  }
}

/** selectDefault selects the mode's default model, reporting whether the selection changed. */
function selectDefault() {
  const names = mode === 'chat' ? ['/chat.gguf', '/default.gguf'] : ['/default.gguf'];
  for (const name of names) {
    const def = [...ui.select.options].find((o) => o.value.endsWith(name));
    if (def) {
      const changed = ui.select.value !== def.value;
      ui.select.value = def.value;
      return changed;
    }
  }
  return false;
}

function loadSelected() {
  if (ui.select.value) return loadModel(ui.select.value);
}

/** loadModel loads a model from a URL or a local File, replacing the one loaded. */
async function loadModel(source) {
  loading?.abort();
  generation?.stop();
  model?.unload();
  model = null;
  const url = typeof source === 'string' ? source : '';
  const ctl = new AbortController();
  loading = ctl;
  clearError();
  setState('loading');
  ui.info.textContent = url ? 'Downloading the model…' : `Reading ${source.name}…`;
  ui.download.hidden = false;
  ui.progress.removeAttribute('value'); // indeterminate until bytes arrive
  ui.progressText.textContent = 'Connecting…';
  try {
    const m = await wisp.load(source, {
      signal: ctl.signal,
      // crypto.subtle exists only in secure contexts (https, localhost).
      sha256: globalThis.crypto?.subtle ? hashes.get(url) : undefined,
      onProgress: ({ loaded, total, rate, cached, retries }) => {
        if (total) {
          ui.progress.max = total;
          ui.progress.value = loaded;
        }
        if (total && loaded === total) ui.info.textContent = 'Starting the engine…';
        ui.progressText.textContent = cached
          ? `${mb(loaded)} MB from this browser's cache`
          : !url ? `${mb(loaded)} / ${mb(total)} MB read`
          : `${mb(loaded)}${total ? ` / ${mb(total)}` : ''} MB · ${(rate / MB).toFixed(1)} MB/s` +
            (retries ? ` · connection lost, resumed ${retries}×` : '');
      },
    });
    if (loading !== ctl) return m.unload();
    model = m;
    const { name, text } = describe(m.info);
    ui.info.replaceChildren(Object.assign(document.createElement('strong'), { textContent: name }), ` — ${text}`);
    document.body.dataset.source = m.info.fromCache ? 'cache' : 'network';
    newConversation();
    ui.chatNote.hidden = !!m.info.chatTemplate;
    ui.chatNote.textContent = m.info.chatTemplate ? '' : 'This model has no chat template: the conversation is written in ChatML, which a base model such as this one merely continues.';
    ui.download.hidden = true;
    setState('ready');
  } catch (err) {
    if (loading !== ctl || err.name === 'AbortError') return;
    ui.download.hidden = true;
    ui.info.textContent = 'No model loaded.';
    showError(err);
    setState('error');
  } finally {
    if (loading === ctl) loading = null;
  }
}

/** setMode shows the text or the chat controls. */
function setMode(m) {
  mode = m === 'chat' ? 'chat' : 'text';
  for (const r of document.querySelectorAll('input[name=mode]')) r.checked = r.value === mode;
  ui.textMode.hidden = mode !== 'text';
  ui.outputPanel.hidden = mode !== 'text';
  ui.chatMode.hidden = mode !== 'chat';
  ui.newChat.hidden = mode !== 'chat';
  ui.generate.textContent = mode === 'chat' ? 'Send' : 'Generate';
  document.body.dataset.mode = mode;
}

/** bubble adds a message to the conversation's list, as text. */
function bubble(role, text) {
  const li = document.createElement('li');
  li.className = `bubble ${role}`;
  li.textContent = text; // never HTML
  ui.messages.append(li);
  li.scrollIntoView?.({ block: 'nearest' });
  return li;
}

function newConversation() {
  conversation = [];
  ui.messages.replaceChildren();
  ui.chatStats.textContent = '';
}

function showChatStats(s, final, greedy) {
  const parts = [`${s.tokens} token${s.tokens === 1 ? '' : 's'}`];
  if (s.tokensPerSecond) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`);
  if (final) {
    parts.push(`conversation ${s.promptTokens} tokens, ${s.reusedTokens} of them already in the cache`);
    if (s.droppedMessages) parts.push(`${s.droppedMessages} oldest message${s.droppedMessages === 1 ? '' : 's'} left out to fit the context`);
    const why = { length: 'max tokens reached', context: 'the context is full', aborted: 'stopped' }[s.reason];
    if (why) parts.push(why);
    if (!greedy) parts.push(`seed ${s.seed}`);
    ui.chatStats.dataset.reused = String(s.reusedTokens);
    ui.chatStats.dataset.prompt = String(s.promptTokens);
  }
  ui.chatStats.textContent = parts.join(' · ');
}

/** send sends the message box's text and streams the reply into a bubble. */
async function send() {
  const text = ui.message.value;
  if (!model || !text.trim()) return;
  clearError();
  const options = readOptions();
  const system = ui.system.value.trim();
  const user = { role: 'user', content: text, el: bubble('user', text) };
  conversation.push(user);
  ui.message.value = '';
  const reply = bubble('assistant', '');
  const node = document.createTextNode('');
  reply.append(node);
  const messages = [...(system ? [{ role: 'system', content: system }] : []), ...conversation.map(({ role, content }) => ({ role, content }))];
  ui.chatStats.textContent = 'Reading the conversation…';
  setState('generating');
  // A conversation that outgrows the context loses its oldest turns.
  const gen = model.chat(messages, { ...options, overflow: 'drop-oldest' });
  generation = gen;
  try {
    for await (const piece of gen) {
      node.appendData(piece); // as text: model output is never HTML
      showChatStats(gen.stats, false);
    }
    const stats = await gen.result;
    for (const m of conversation.splice(0, stats.droppedMessages)) m.el.classList.add('dropped');
    conversation.push({ role: 'assistant', content: gen.text, el: reply });
    showChatStats(stats, true, options.temperature === 0);
    setState('ready');
  } catch (err) {
    conversation.pop();
    user.el.classList.add('failed');
    reply.remove();
    showError(err, false);
    setState(model ? 'ready' : 'error');
  } finally {
    if (generation === gen) generation = null;
  }
}

function number(input, fallback) {
  const v = input.valueAsNumber;
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

function showStats(s, final, greedy) {
  const parts = [`${s.tokens} token${s.tokens === 1 ? '' : 's'}`];
  if (s.tokensPerSecond) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`);
  if (s.timeToFirstTokenMs) parts.push(`first token after ${s.timeToFirstTokenMs.toFixed(0)} ms`);
  if (final) {
    parts.push(`prompt ${s.promptTokens} token${s.promptTokens === 1 ? '' : 's'}`);
    const why = { eos: 'the model ended the text', length: 'max tokens reached', context: 'the context is full', stop: 'a stop string', aborted: 'stopped' }[s.reason];
    if (why) parts.push(why);
    if (!greedy) parts.push(`seed ${s.seed}`);
  }
  ui.stats.textContent = parts.join(' · ');
}

/** readOptions reads the sampling settings. */
function readOptions() {
  const d = wisp.DEFAULTS; // an empty or invalid field takes the API's default
  return {
    temperature: number(ui.temperature, d.temperature),
    topP: number(ui.topP, d.topP),
    topK: Math.floor(number(ui.topK, d.topK)),
    maxTokens: Math.max(1, Math.floor(number(ui.maxTokens, d.maxTokens))),
    seed: ui.seed.value ? Math.floor(number(ui.seed, 1)) || 1 : undefined,
  };
}

async function generate() {
  if (mode === 'chat') return send();
  if (!model) return;
  clearError();
  const prompt = ui.prompt.value;
  const options = readOptions();
  const { temperature } = options;
  ui.echo.textContent = prompt;
  const text = document.createTextNode('');
  ui.continuation.replaceChildren(text);
  ui.stats.textContent = 'Reading the prompt…';
  setState('generating');
  const gen = model.generate(prompt, options);
  generation = gen;
  try {
    for await (const piece of gen) {
      text.appendData(piece); // as text: model output is never HTML
      showStats(gen.stats, false);
    }
    showStats(await gen.result, true, temperature === 0);
    setState('ready');
  } catch (err) {
    showError(err, false);
    setState(model ? 'ready' : 'error');
  } finally {
    if (generation === gen) generation = null;
  }
}

async function main() {
  ui.generate.addEventListener('click', generate);
  ui.stop.addEventListener('click', () => generation?.stop());
  ui.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !ui.generate.disabled) generate();
  });
  ui.message.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!ui.generate.disabled) send();
    }
  });
  ui.newChat.addEventListener('click', newConversation);
  for (const r of document.querySelectorAll('input[name=mode]')) {
    r.addEventListener('change', () => {
      setMode(r.value);
      // Until the visitor picks a model, each mode opens its own.
      if (!picked && document.body.dataset.state !== 'generating' && selectDefault()) loadSelected();
    });
  }
  setMode(new URLSearchParams(location.search).get('mode'));
  ui.select.addEventListener('change', () => { picked = true; loadSelected(); });
  ui.file.addEventListener('change', () => { if (ui.file.files[0]) { picked = true; loadModel(ui.file.files[0]); } });
  // A GGUF dropped anywhere on the page loads as if picked.
  document.addEventListener('dragover', (e) => { if (e.dataTransfer?.types.includes('Files')) e.preventDefault(); });
  document.addEventListener('drop', (e) => {
    const f = e.dataTransfer?.files[0];
    if (!f) return;
    e.preventDefault();
    if (document.body.dataset.state !== 'generating') { picked = true; loadModel(f); }
  });
  try {
    wisp.checkSupport();
  } catch (err) {
    showError(err);
    ui.info.textContent = 'No model can load in this browser.';
    setState('error');
    ui.select.disabled = true;
    ui.file.disabled = true;
    return;
  }
  await listModels();
  await loadSelected();
}

main();

// wisp-generate.js: the <wisp-generate> custom element, which writes a
// continuation of its prompt into the page with a model that runs in the
// visitor's browser:
//
//	<script type="module" src="https://example.org/wisp/wisp-generate.js"></script>
//	<wisp-generate model="/models/default.gguf" prompt="And God said" max-tokens="100"></wisp-generate>
//	<style>wisp-generate::part(text) { font-family: serif; }</style>
//
// Attributes: model (the GGUF file's URL), prompt, max-tokens, temperature,
// seed. It generates when it is connected and again when an attribute
// changes; generate() and stop() do it by hand. Events: 'token' (detail:
// the text piece), 'done' (detail: the stats, see wisp.js), 'error'
// (detail: the error). Parts: status, progress, output, prompt, text.
// Elements with the same model URL share one loaded model (modelFor; the
// <wisp-chat> element of wisp-chat.js shares it too).

import * as wisp from './wisp.js';

const models = new Map(); // model URL → Promise<wisp.Model>, shared by the elements

const template = `
<style>
  :host { display: block; }
  [part=output] { white-space: pre-wrap; overflow-wrap: anywhere; }
  [part=prompt] { font-weight: 600; }
  [part=status] { font-size: 0.85em; opacity: 0.75; }
  [part=status]:empty, progress[hidden] { display: none; }
  progress { width: 100%; }
</style>
<div part="output"><span part="prompt"></span><span part="text"></span></div>
<progress part="progress" hidden></progress>
<div part="status" role="status"></div>`;

/**
 * modelFor returns the model at url, loading it the first time; a load
 * that fails is forgotten, so that the next element tries again.
 * @param {string} url
 * @param {(p: object) => void} onProgress
 */
export function modelFor(url, onProgress) {
  const abs = new URL(url, document.baseURI).href;
  let p = models.get(abs);
  if (!p) {
    p = wisp.load(abs, { onProgress: (e) => p.listeners.forEach((f) => f(e)) });
    p.listeners = new Set();
    p.catch(() => models.delete(abs));
    models.set(abs, p);
  }
  p.listeners.add(onProgress);
  return p.finally(() => p.listeners.delete(onProgress));
}

/**
 * WispGenerate is the <wisp-generate> element.
 */
export class WispGenerate extends HTMLElement {
  static observedAttributes = ['model', 'prompt', 'max-tokens', 'temperature', 'seed'];

  #generation = null;
  #run = 0; // bumps for each generation, so that a stale one stops writing
  #scheduled = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = template; // fixed markup; model text only ever goes in as text
    this.parts = {
      prompt: root.querySelector('[part=prompt]'),
      text: root.querySelector('[part=text]'),
      progress: root.querySelector('progress'),
      status: root.querySelector('[part=status]'),
    };
  }

  connectedCallback() { this.#schedule(); }

  disconnectedCallback() { this.stop(); }

  attributeChangedCallback() {
    if (this.isConnected) this.#schedule();
  }

  // Attributes set one after the other start one generation.
  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.isConnected) this.generate();
    });
  }

  /** The text generated so far (without the prompt). */
  get text() { return this.parts.text.textContent; }

  /** stop ends the generation under way, if any. */
  stop() {
    this.#run++;
    this.#generation?.stop();
    this.#generation = null;
  }

  /** generate (re)starts generating from the attributes; it resolves when done. */
  async generate() {
    this.stop();
    const run = this.#run;
    const url = this.getAttribute('model');
    if (!url) return;
    const prompt = this.getAttribute('prompt') ?? '';
    const num = (name) => {
      const v = this.getAttribute(name);
      return v === null || v.trim() === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const { prompt: promptEl, text, progress, status } = this.parts;
    promptEl.textContent = prompt;
    text.textContent = '';
    status.textContent = 'Loading the model…';
    try {
      const model = await modelFor(url, ({ loaded, total }) => {
        if (run !== this.#run) return;
        progress.hidden = false;
        if (total) {
          progress.max = total;
          progress.value = loaded;
        }
      });
      progress.hidden = true;
      if (run !== this.#run) return;
      status.textContent = '';
      const gen = model.generate(prompt, {
        maxTokens: num('max-tokens'), temperature: num('temperature'), seed: num('seed'),
      });
      this.#generation = gen;
      for await (const piece of gen) {
        if (run !== this.#run) return;
        text.append(piece);
        this.dispatchEvent(new CustomEvent('token', { detail: piece }));
      }
      const stats = await gen.result;
      if (run !== this.#run) return;
      this.dispatchEvent(new CustomEvent('done', { detail: stats }));
    } catch (err) {
      progress.hidden = true;
      if (run !== this.#run) return;
      status.textContent = err.message;
      this.dispatchEvent(new CustomEvent('error', { detail: err }));
    } finally {
      if (run === this.#run) this.#generation = null;
    }
  }
}

if (!customElements.get('wisp-generate')) customElements.define('wisp-generate', WispGenerate);

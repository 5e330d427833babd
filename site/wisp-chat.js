// wisp-chat.js: the <wisp-chat> custom element, a conversation with a model
// that runs in the visitor's browser:
//
//	<script type="module" src="https://example.org/wisp/wisp-chat.js"></script>
//	<wisp-chat model="/models/chat.gguf" system="Answer briefly." max-tokens="200"></wisp-chat>
//	<style>wisp-chat::part(user) { background: navy; color: white; }</style>
//
// The visitor types a message and presses Enter (or Send); the reply
// streams into the conversation. Messages are rendered with the model's
// chat template (model.chat): what anyone types stays text, in the page and
// for the model, and the model keeps its cache between turns.
//
// Attributes: model (the GGUF file's URL), system (the system prompt),
// max-tokens, temperature, seed, placeholder. Methods: send(text) (resolves
// to the reply's stats), stop(), reset() (a new conversation), and
// messages (a copy of the conversation, [{role, content}]). Events: 'token'
// (detail: the piece), 'done' (detail: the stats, with reusedTokens),
// 'error' (detail: the error). Parts: messages, message, user, assistant,
// form, input, send, stop, progress, status. Elements with the same model
// URL share one loaded model, with <wisp-generate>.

import { modelFor } from './wisp-generate.js';

const template = `
<style>
  :host { display: block; }
  [part=messages] { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 0.5em; }
  [part~=message] { max-width: 85%; padding: 0.4em 0.7em; border-radius: 0.8em; white-space: pre-wrap; overflow-wrap: anywhere; border: 1px solid #8884; }
  [part~=user] { align-self: flex-end; }
  [part~=assistant] { align-self: flex-start; }
  [part~=assistant]:empty::after { content: "…"; opacity: 0.6; }
  [part=form] { display: flex; gap: 0.5em; margin-top: 0.75em; }
  [part=input] { flex: 1; font: inherit; }
  [part=status] { font-size: 0.85em; opacity: 0.75; }
  [part=status]:empty, progress[hidden] { display: none; }
  progress { width: 100%; }
</style>
<ol part="messages" aria-live="polite"></ol>
<form part="form">
  <textarea part="input" rows="2" aria-label="Message"></textarea>
  <button part="send" type="submit" disabled>Send</button>
  <button part="stop" type="button" disabled>Stop</button>
</form>
<progress part="progress" hidden></progress>
<div part="status" role="status"></div>`;

/** WispChat is the <wisp-chat> element. */
export class WispChat extends HTMLElement {
  static observedAttributes = ['model', 'placeholder'];

  #model = null; // Promise<wisp.Model> of the model attribute
  #conversation = []; // {role, content}
  #generation = null;
  #run = 0; // bumps on reset, so that a stale reply stops writing

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = template; // fixed markup; messages only ever go in as text
    const $ = (p) => root.querySelector(`[part~=${p}]`);
    this.parts = { messages: $('messages'), form: $('form'), input: $('input'), send: $('send'), stop: $('stop'), progress: $('progress'), status: $('status') };
    this.parts.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#sendInput();
    });
    this.parts.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.#sendInput();
      }
    });
    this.parts.stop.addEventListener('click', () => this.stop());
  }

  connectedCallback() { this.#load(); }

  disconnectedCallback() { this.stop(); }

  attributeChangedCallback(name) {
    if (name === 'placeholder') this.parts.input.placeholder = this.getAttribute('placeholder') ?? '';
    if (name === 'model' && this.isConnected) this.#load();
  }

  /** A copy of the conversation so far, [{role, content}], without the system prompt. */
  get messages() { return this.#conversation.map(({ role, content }) => ({ role, content })); }

  #load() {
    const url = this.getAttribute('model');
    if (!url) return;
    const { progress, status, send } = this.parts;
    status.textContent = 'Loading the model…';
    send.disabled = true;
    const p = modelFor(url, ({ loaded, total }) => {
      progress.hidden = false;
      if (total) {
        progress.max = total;
        progress.value = loaded;
      }
    });
    this.#model = p;
    p.then(() => {
      if (this.#model !== p) return;
      progress.hidden = true;
      status.textContent = '';
      send.disabled = !!this.#generation;
      this.dispatchEvent(new CustomEvent('ready'));
    }, (err) => {
      if (this.#model !== p) return;
      progress.hidden = true;
      status.textContent = err.message;
      this.dispatchEvent(new CustomEvent('error', { detail: err }));
    });
    p.catch(() => {});
  }

  #sendInput() {
    const text = this.parts.input.value;
    if (!text.trim() || this.#generation || this.parts.send.disabled) return;
    this.parts.input.value = '';
    this.send(text).catch(() => {}); // reported by the 'error' event
  }

  #bubble(role, text) {
    const li = document.createElement('li');
    li.setAttribute('part', `message ${role}`);
    li.textContent = text; // never HTML
    this.parts.messages.append(li);
    li.scrollIntoView?.({ block: 'nearest' });
    return li;
  }

  /**
   * send adds a user message and streams the reply into the conversation;
   * it resolves to the reply's stats. One reply at a time.
   * @param {string} text
   */
  async send(text) {
    if (!this.#model) throw new Error('wisp-chat: no model attribute');
    if (this.#generation) throw new Error('wisp-chat: a reply is under way');
    const run = this.#run;
    const { status, send, stop } = this.parts;
    const model = await this.#model;
    const user = { role: 'user', content: String(text), el: this.#bubble('user', String(text)) };
    this.#conversation.push(user);
    const reply = this.#bubble('assistant', '');
    const system = this.getAttribute('system');
    const num = (name) => {
      const v = this.getAttribute(name);
      return v === null || v.trim() === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...this.messages];
    const gen = model.chat(messages, {
      maxTokens: num('max-tokens'), temperature: num('temperature'), seed: num('seed'), overflow: 'drop-oldest',
    });
    this.#generation = gen;
    send.disabled = true;
    stop.disabled = false;
    status.textContent = '';
    try {
      for await (const piece of gen) {
        if (run !== this.#run) return gen.result;
        reply.append(piece);
        this.dispatchEvent(new CustomEvent('token', { detail: piece }));
      }
      const stats = await gen.result;
      if (run !== this.#run) return stats;
      // Messages the context no longer holds leave the conversation.
      for (const m of this.#conversation.splice(0, stats.droppedMessages)) m.el.style.opacity = '0.5';
      this.#conversation.push({ role: 'assistant', content: gen.text, el: reply });
      this.dispatchEvent(new CustomEvent('done', { detail: stats }));
      return stats;
    } catch (err) {
      if (run === this.#run) {
        this.#conversation.pop();
        reply.remove();
        status.textContent = err.message;
        this.dispatchEvent(new CustomEvent('error', { detail: err }));
      }
      throw err;
    } finally {
      if (this.#generation === gen) this.#generation = null;
      send.disabled = false;
      stop.disabled = true;
    }
  }

  /** stop ends the reply under way; what it wrote stays in the conversation. */
  stop() { this.#generation?.stop(); }

  /** reset starts a new conversation. */
  reset() {
    this.#run++;
    this.stop();
    this.#generation = null;
    this.#conversation = [];
    this.parts.messages.replaceChildren();
    this.parts.status.textContent = '';
  }
}

if (!customElements.get('wisp-chat')) customElements.define('wisp-chat', WispChat);

// node.js: wisp in Node (the package's "node" entry). It instantiates the
// engine from the wasm files beside this module and loads a model from a
// path, a file: or http(s): URL, or bytes:
//
//	import { load } from 'wisp/node';
//	const model = await load('models/default.gguf');
//	for (const piece of model.generate('And God said', { maxTokens: 50, temperature: 0 })) {
//	  process.stdout.write(piece);
//	}
//
// The model is an Engine (engine.js): generate yields the text piece by
// piece, synchronously, on this thread.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { createEngine } from './engine.js';
import { download } from './download.js';

export { createEngine, Engine, WispError } from './engine.js';
export { download } from './download.js';

/**
 * load instantiates an engine and loads the model into it. model is a
 * file path, a URL (file:, http: or https:; a download resumes when cut),
 * or the file's bytes. Options: stderr, memoryLimitMiB (as createEngine
 * takes them), sha256 and onProgress (as download takes them, for a URL).
 *
 * @param {string | URL | Uint8Array} model
 * @param {{stderr?: (s: string) => void, memoryLimitMiB?: number, sha256?: string,
 *          onProgress?: (p: object) => void}} [options]
 * @returns {Promise<import('./engine.js').Engine>}
 */
export async function load(model, options = {}) {
  const wasm = (name) => readFile(new URL(`./wasm/${name}`, import.meta.url));
  const engine = await createEngine({
    engine: wasm('wisp.wasm'), kernels: wasm('kernels.wasm'), forward: wasm('forward.wasm'), relaxed: wasm('relaxed.wasm'),
    stderr: options.stderr, memoryLimitMiB: options.memoryLimitMiB,
  });
  if (model instanceof Uint8Array) {
    engine.load(model);
    return engine;
  }
  const url = model instanceof URL ? model : URL.canParse?.(model) && /^(https?|file):/.test(model) ? new URL(model) : null;
  if (url && url.protocol !== 'file:') {
    let buf = null;
    const got = await download(url.href, {
      sha256: options.sha256, onProgress: options.onProgress,
      into: (n) => { buf ??= engine.reserve(n); return buf.size === n ? buf.view() : null; },
    });
    if (buf && got.bytes.buffer === engine.memory.buffer) buf.load();
    else {
      buf?.free();
      engine.load(got.bytes);
    }
    return engine;
  }
  engine.load(await readFile(url ? fileURLToPath(url) : model));
  return engine;
}

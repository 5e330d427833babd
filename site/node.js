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
import { Worker } from 'node:worker_threads';

import { createEngine, ModelSink } from './engine.js';
import { download } from './download.js';

export { createEngine, Engine, WispError } from './engine.js';
export { download } from './download.js';

/**
 * load instantiates an engine and loads the model into it. model is a
 * file path, a URL (file:, http: or https:; a download resumes when cut),
 * or the file's bytes. Options: stderr, memoryLimitMiB (as createEngine
 * takes them), sha256 and onProgress (as download takes them, for a URL),
 * threads: how many threads split the matrix products (default 1; the
 * results are the same at any number), the others worker_threads running
 * helper.js on the threaded build's shared memory; engine.threads says how
 * many run, and why fewer. Call engine.close() to stop them.
 *
 * @param {string | URL | Uint8Array} model
 * @param {{stderr?: (s: string) => void, memoryLimitMiB?: number, sha256?: string,
 *          onProgress?: (p: object) => void, threads?: number}} [options]
 * @returns {Promise<import('./engine.js').Engine>}
 */
export async function load(model, options = {}) {
  const wasm = (name) => readFile(new URL(`./wasm/${name}`, import.meta.url));
  const threaded = (options.threads ?? 1) > 1;
  const shared = (name) => wasm(threaded ? `${name}-shared.wasm` : `${name}.wasm`);
  const engine = await createEngine({
    engine: shared('wisp'), kernels: shared('kernels'), forward: wasm('forward.wasm'), relaxed: shared('relaxed'),
    stderr: options.stderr, memoryLimitMiB: options.memoryLimitMiB,
    threads: threaded ? { count: options.threads, module: wasm('threads.wasm'), spawn: spawnHelper, minWork: options.minWork } : undefined,
  });
  if (model instanceof Uint8Array) {
    engine.load(model);
    return engine;
  }
  const url = model instanceof URL ? model : URL.canParse?.(model) && /^(https?|file):/.test(model) ? new URL(model) : null;
  if (url && url.protocol !== 'file:') {
    const sink = new ModelSink(engine);
    try {
      await sink.load(await download(url.href, { sha256: options.sha256, onProgress: options.onProgress, into: sink.into }));
    } catch (err) {
      sink.free();
      throw err;
    }
    return engine;
  }
  engine.load(await readFile(url ? fileURLToPath(url) : model));
  return engine;
}

// spawnHelper starts a kernel thread (helper.js) that does not keep the
// process alive.
function spawnHelper() {
  const w = new Worker(new URL('./helper.js', import.meta.url));
  w.unref();
  return w;
}

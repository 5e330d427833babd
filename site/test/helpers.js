// helpers.js: what the site's tests share: the repository's paths, the
// native `wisp` command, `wisp serve` behind a proxy that counts requests,
// and headless Chromium. (node --test also runs this file: it has no tests.)

import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** site is the site folder; root the repository's. */
export const site = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const root = path.resolve(site, '..');
export const defaultModel = path.join(root, 'models', 'default.gguf');
export const chatModel = path.join(root, 'models', 'chat.gguf'); // wisp KJV chat, models/README.md
export const results = path.join(site, 'test-results');

/** CHROMIUM is the browser the tests drive: Debian's, or $CHROMIUM. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * missing names the build outputs the tests need and do not find (make
 * site models builds them), or returns ''.
 */
export function missing() {
  const need = ['site/wasm/wisp.wasm', 'site/wasm/kernels.wasm', 'site/wasm/forward.wasm', 'models/default.gguf'];
  const gone = need.filter((f) => !existsSync(path.join(root, f)));
  return gone.length ? `${gone.join(', ')} missing: run make site models first` : '';
}

/** wispCommand returns the argv prefix that runs the native wisp command. */
export function wispCommand() {
  const bin = path.join(root, 'bin', 'wisp');
  return existsSync(bin) ? [bin] : ['go', 'run', './tools/wisp'];
}

/**
 * wisp runs the native command with args in the repository's root and
 * returns its stdout and stderr.
 * @param {string[]} args
 */
export async function wisp(args) {
  const [cmd, ...pre] = wispCommand();
  const { stdout, stderr } = await promisify(execFile)(cmd, [...pre, ...args], { cwd: root, maxBuffer: 1 << 26 });
  return { stdout, stderr };
}

/**
 * nativeText returns what `wisp run -t 0 -n N -q` prints for a model and a
 * prompt: the echo, the continuation, then "\n".
 */
export async function nativeText(model, { prompt = '', positions = 200 } = {}) {
  const args = ['run', '-m', model, '-t', '0', '-n', String(positions), '-q'];
  if (prompt) args.push('-p', prompt);
  return (await wisp(args)).stdout;
}

/**
 * serve starts `wisp serve` for site/ (or another folder of pages) and a
 * models folder, and in front of it a proxy that records every request
 * (method, path, range); it returns the proxy's URL, the records, and
 * close(). args are more flags of wisp serve (such as --model).
 * @param {string} models
 * @param {string[]} [args]
 * @param {string} [pages]
 */
export async function serve(models, args = [], pages = site) {
  const [cmd, ...pre] = wispCommand();
  const child = spawn(cmd, [...pre, 'serve', '--site', pages, '--models', models, '--addr', '127.0.0.1:0', ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, // its own process group: go run's child too
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const upstream = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`wisp serve did not start: ${stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/(127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`wisp serve exited with ${code}: ${stderr}`)));
  });
  const [host, port] = upstream.split(':');
  const requests = [];
  const proxy = http.createServer((req, res) => {
    requests.push({ method: req.method, path: req.url, range: req.headers.range });
    const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${proxy.address().port}/`;
  return {
    url,
    requests,
    /**
     * count returns how many GET requests asked for the whole of the path
     * (not those for a range of it, such as a model's header).
     */
    count: (p) => requests.filter((r) => r.method === 'GET' && r.path === p && !r.range).length,
    async close() {
      proxy.closeAllConnections?.();
      await new Promise((resolve) => proxy.close(resolve));
      if (child.exitCode === null) process.kill(-child.pid, 'SIGINT');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    },
  };
}

/** launch starts headless Chromium with a fresh profile, as CI runs it. */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM)`);
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

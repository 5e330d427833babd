// package.test.js: the npm package as a web developer gets it. make
// package writes dist/npm; this test packs it with npm pack, installs the
// tarball into an empty folder (no Go, no make, no checkout beside it),
// and generates from it (a) in a three-line page served by a static
// server, (b) in a page bundled with esbuild, and (c) in Node. Each must
// print what the native `wisp run` prints.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { defaultModel, launch, nativeText, root, serve, site } from './helpers.js';

const run = promisify(execFile);
const pkg = path.join(root, 'dist', 'npm');
const skip = false;
test('the package folder exists', () => assert.ok(existsSync(path.join(pkg, 'package.json')), 'dist/npm is missing: run make package first'));

describe('the npm package', { skip }, () => {
  let dir; // the empty project that installs the tarball
  let want; // what wisp run prints for 40 greedy positions
  let srv;
  let browser;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wisp-package-'));
    const packed = path.join(dir, 'packed');
    await mkdir(packed);
    const { stdout } = await run('npm', ['pack', '--pack-destination', packed, '--json'], { cwd: pkg });
    const [{ filename }] = JSON.parse(stdout);
    const app = path.join(dir, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--offline', path.join(packed, filename)], { cwd: app });
    await mkdir(path.join(dir, 'models'));
    await copyFile(defaultModel, path.join(dir, 'models', 'default.gguf'));
    want = (await nativeText(defaultModel, { positions: 40 })).replace(/\n$/, '');
    [srv, browser] = await Promise.all([serve(path.join(dir, 'models'), [], app), launch()]);
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // textOf opens a page of the app and waits for the text it generates
  // (window.text) or its error (window.error).
  async function textOf(page) {
    const p = await browser.newPage();
    const errors = [];
    p.on('pageerror', (err) => errors.push(String(err)));
    await p.goto(new URL(page, srv.url).href);
    await p.waitForFunction(() => window.text !== undefined || window.error !== undefined, null, { timeout: 60_000 });
    const got = await p.evaluate(() => window.error ?? window.text);
    await p.close();
    assert.deepEqual(errors, []);
    return got;
  }

  const generate = `
  const m = await wisp.load('/models/default.gguf', { cache: false, BASE });
  let t = '';
  for await (const piece of m.generate('', { temperature: 0, maxTokens: 40 })) t += piece;
  window.text = t;`;

  test('it holds the modules, the types and the wasm files, and nothing of the repository', async () => {
    const files = (await readdir(path.join(dir, 'app', 'node_modules', 'wisp'), { recursive: true })).sort();
    for (const f of ['package.json', 'README.md', 'wisp.js', 'wisp.d.ts', 'worker.js', 'node.js', 'wisp-generate.js', 'wisp-chat.js', 'engine.js',
      path.join('wasm', 'wisp.wasm'), path.join('wasm', 'kernels.wasm'), path.join('wasm', 'forward.wasm')]) {
      assert.ok(files.includes(f), `${f} is not in the package: ${files}`);
    }
    assert.deepEqual(files.filter((f) => /test|bench|node_modules|\.go$|app\.js$|index\.html$/.test(f)), []);
  });

  test('(a) a three-line page on a static server generates', async () => {
    await writeFile(path.join(dir, 'app', 'index.html'), '<!doctype html><script type="module">\n' +
      `import * as wisp from './node_modules/wisp/wisp.js';\ntry {${generate.replace(', BASE', '')}\n} catch (e) { window.error = String(e); }\n</script>\n`);
    assert.equal(await textOf('index.html'), want);
  });

  test('(b) a page bundled with esbuild generates, with the package folder beside the bundle', async () => {
    const app = path.join(dir, 'app');
    await writeFile(path.join(app, 'main.js'), `import * as wisp from 'wisp';\ntry {${generate.replace('BASE', "base: '/out/wisp/'")}\n} catch (e) { window.error = String(e); }\n`);
    await run(path.join(site, 'node_modules', '.bin', 'esbuild'), ['main.js', '--bundle', '--format=esm', '--outfile=out/app.js'], { cwd: app });
    await cp(path.join(app, 'node_modules', 'wisp'), path.join(app, 'out', 'wisp'), { recursive: true });
    await writeFile(path.join(app, 'out', 'index.html'), '<!doctype html><script type="module" src="app.js"></script>\n');
    assert.equal(await textOf('out/index.html'), want);
  });

  test('(c) Node generates with wisp/node', async () => {
    const src = "import { load } from 'wisp/node';\n" +
      `const m = await load(${JSON.stringify(path.join(dir, 'models', 'default.gguf'))});\n` +
      "let t = ''; for (const p of m.generate('', { temperature: 0, maxTokens: 40 })) t += p; process.stdout.write(t);\n";
    await writeFile(path.join(dir, 'app', 'node-run.mjs'), src);
    const { stdout } = await run(process.execPath, ['node-run.mjs'], { cwd: path.join(dir, 'app') });
    assert.equal(stdout, want);
  });
});

// options.test.js: the page's generation options against the engine's.
// abi.js's OPTIONS and abi.d.ts's EngineOptions are generated from
// wisp/engine/option.Options (make abi); wisp.js's DEFAULTS is written by
// hand and must name the same options with the same defaults, and
// wisp.d.ts's GenerateOptions must add only the page's own to them.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { OPTIONS } from '../abi.js';
import { engineOptions } from '../engine.js';
import { DEFAULTS } from '../wisp.js';
import { site } from './helpers.js';

// Options of the page alone, which the engine never sees.
const pageOnly = { echo: 'boolean', signal: 'AbortSignal' };

test('DEFAULTS has every engine option, with its default', () => {
  const names = OPTIONS.map((o) => o.name);
  assert.deepEqual(Object.keys(DEFAULTS).filter((k) => !(k in pageOnly)).sort(), [...names].sort(),
    'wisp.js DEFAULTS and option.Options name different options');
  for (const o of OPTIONS) {
    assert.deepEqual(DEFAULTS[o.name], o.default ?? undefined, `DEFAULTS.${o.name} differs from option.Options' default`);
  }
});

test("wisp.d.ts's GenerateOptions is abi.d.ts's EngineOptions and the page's own", async () => {
  const members = (file, iface) => {
    const body = file.match(new RegExp(`export interface ${iface}[^{]*\\{([^}]*)\\}`))[1];
    return Object.fromEntries([...body.matchAll(/^\s*(\w+)\?: ([^;]+);/gm)].map((m) => [m[1], m[2]]));
  };
  const wisp = await readFile(path.join(site, 'wisp.d.ts'), 'utf8');
  assert.match(wisp, /export interface GenerateOptions extends EngineOptions \{/);
  assert.deepEqual(members(wisp, 'GenerateOptions'), pageOnly);
  const abi = await readFile(path.join(site, 'abi.d.ts'), 'utf8');
  const want = {};
  for (const o of OPTIONS) want[o.name] = o.kind === 'strings' ? 'string[]' : 'number';
  assert.deepEqual(members(abi, 'EngineOptions'), want);
});

test('engineOptions refuses what the engine would, with code options', () => {
  for (const { name, kind, min, max } of OPTIONS) {
    if (kind === 'strings') {
      assert.throws(() => engineOptions({ [name]: [''] }), { code: 'options' });
      assert.throws(() => engineOptions({ [name]: 'x' }), { code: 'options' });
      continue;
    }
    if (min !== undefined) assert.throws(() => engineOptions({ [name]: min - 1 }), { code: 'options', message: new RegExp(`option ${name} = ${min - 1} is out of range`) });
    if (max !== undefined) assert.throws(() => engineOptions({ [name]: max + 1 }), { code: 'options' });
    if (kind === 'int') assert.throws(() => engineOptions({ [name]: 1.5 }), { code: 'options' });
    assert.throws(() => engineOptions({ [name]: NaN }), { code: 'options' });
    assert.throws(() => engineOptions({ [name]: '1' }), { code: 'options' });
  }
  assert.equal(engineOptions({ temperature: 0, topK: 40, stop: ['\n'], echo: true }), '{"topK":40,"stop":["\\n"]}');
});

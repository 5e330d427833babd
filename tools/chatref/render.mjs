// Reference renderings of the chat templates in testdata/chat/templates by
// @huggingface/jinja (the Jinja renderer transformers.js uses for
// apply_chat_template), for engine/chat's tests.
//
//   node tools/chatref/render.mjs [-jinja DIR] [-data DIR] [-out DIR]
//
// -jinja is where npm installed @huggingface/jinja (default build/chatref,
// see `make chat-fixtures`); -data holds templates/*.jinja and
// conversations.json (default testdata/chat); -out receives one
// <template>.json per template (default <data>/fixtures).
//
// Every conversation is rendered with add_generation_prompt false and true,
// with the template's bos_token and eos_token, and with tools and documents
// null, the variables Python's apply_chat_template passes. A render that
// throws (raise_exception) records its message as "error".
//
// Where @huggingface/jinja is known to differ from Python's Jinja2 (which
// is what Hugging Face's apply_chat_template runs), the fixture keeps what
// @huggingface/jinja printed and engine/chat's test lists the Python
// answer beside it (see pythonDiffers in engine/chat/fixtures_test.go).

import { readFileSync, writeFileSync, readdirSync, mkdirSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const opts = { jinja: join(root, "build", "chatref"), data: join(root, "testdata", "chat"), out: "" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--?/, "");
  if (!(k in opts) || i + 1 >= argv.length) {
    console.error(`usage: node render.mjs [-jinja DIR] [-data DIR] [-out DIR] (bad argument ${argv[i]})`);
    process.exit(2);
  }
  opts[k] = resolve(argv[++i]);
}
if (!opts.out) opts.out = join(opts.data, "fixtures");

const pkgDir = join(opts.jinja, "node_modules", "@huggingface", "jinja");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const { Template } = await import(pathToFileURL(join(pkgDir, "dist", "index.js")).href);

const table = JSON.parse(readFileSync(join(opts.data, "conversations.json"), "utf8"));
mkdirSync(opts.out, { recursive: true });

const names = readdirSync(join(opts.data, "templates"))
  .filter((f) => f.endsWith(".jinja"))
  .map((f) => f.slice(0, -".jinja".length))
  .sort();
for (const name of names) {
  const src = readFileSync(join(opts.data, "templates", name + ".jinja"), "utf8");
  const tokens = table.templates[name];
  if (!tokens) throw new Error(`conversations.json has no bos_token/eos_token for template ${name}`);
  const tmpl = new Template(src);
  const cases = [];
  for (const conv of table.conversations) {
    for (const agp of [false, true]) {
      const c = { conversation: conv.name, add_generation_prompt: agp };
      try {
        c.output = tmpl.render({
          messages: conv.messages,
          add_generation_prompt: agp,
          bos_token: tokens.bos_token,
          eos_token: tokens.eos_token,
          tools: null,
          documents: null,
        });
      } catch (e) {
        c.error = String(e.message ?? e);
      }
      cases.push(c);
    }
  }
  const fixture = {
    template: name,
    renderer: `${pkg.name} ${pkg.version}`,
    bos_token: tokens.bos_token,
    eos_token: tokens.eos_token,
    cases,
  };
  writeFileSync(join(opts.out, name + ".json"), JSON.stringify(fixture, null, 2) + "\n");
}
console.log(`rendered ${names.length} templates x ${table.conversations.length * 2} cases into ${opts.out}`);

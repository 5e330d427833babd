// Command npmpkg writes wisp's npm package (make package): the page API,
// the element, the Worker, the Node entry, their types and the engine and
// kernel wasm files, in one folder that `npm pack` turns into a tarball.
//
//	go run ./tools/npmpkg -site site -out dist/npm
//
// The JavaScript files are those the entries (wisp.js, wisp-generate.js,
// node.js, and worker.js, which wisp.js starts by URL) import, followed
// transitively, so that a module added to site/ is packed once an entry
// uses it; the types are wisp.d.ts and what it imports.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Version is the package's version.
const Version = "0.1.0"

// entries are the modules a user reaches: the page API, the elements, the
// Node entry, and the Worker that the page API starts by URL.
var entries = []string{"wisp.js", "wisp-generate.js", "wisp-chat.js", "node.js", "worker.js", "wisp.d.ts"}

// relative matches a relative module specifier in an import or export
// statement, or a module that a new URL(…, import.meta.url) names.
var relative = regexp.MustCompile(`(?:from|import)\s*\(?\s*'(\./[^']+)'|new URL\('(\./[^']+\.js)', import\.meta\.url\)`)

func main() {
	site := flag.String("site", "site", "the site folder, with wasm/ made by make site")
	out := flag.String("out", "dist/npm", "the package folder to write (replaced)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./tools/npmpkg [-site DIR] [-out DIR]\n\n%s\n\n", "Writes wisp's npm package: run npm pack in -out to make the tarball.")
		flag.PrintDefaults()
	}
	flag.Parse()
	files, err := Files(*site)
	if err == nil {
		err = Write(*site, *out, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "npmpkg:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s: %d files, wisp %s\n", *out, len(files)+2, Version)
}

// Files returns the package's files from site, relative to it: the
// modules the entries reach, their types, and the wasm files.
func Files(site string) ([]string, error) {
	seen := map[string]bool{}
	todo := slices.Clone(entries)
	for len(todo) > 0 {
		f := todo[0]
		todo = todo[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		src, err := os.ReadFile(filepath.Join(site, f))
		if err != nil {
			return nil, err
		}
		for _, m := range relative.FindAllStringSubmatch(string(src), -1) {
			dep := m[1] + m[2]
			name := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), dep)))
			if strings.HasSuffix(f, ".d.ts") && !strings.HasSuffix(name, ".d.ts") {
				name = strings.TrimSuffix(name, ".js") + ".d.ts"
			}
			if strings.HasPrefix(name, "..") {
				return nil, fmt.Errorf("%s imports %s, outside the site folder", f, dep)
			}
			todo = append(todo, name)
		}
	}
	wasm, err := filepath.Glob(filepath.Join(site, "wasm", "*.wasm"))
	if err != nil {
		return nil, err
	}
	for _, need := range []string{"wisp.wasm", "kernels.wasm", "forward.wasm"} {
		if !slices.Contains(wasm, filepath.Join(site, "wasm", need)) {
			return nil, fmt.Errorf("%s is missing: run make site first", filepath.Join(site, "wasm", need))
		}
	}
	files := make([]string, 0, len(seen)+len(wasm))
	for f := range seen {
		files = append(files, f)
	}
	for _, w := range wasm {
		files = append(files, "wasm/"+filepath.Base(w))
	}
	slices.Sort(files)
	return files, nil
}

// Manifest returns the package.json of the package holding files.
func Manifest(files []string) ([]byte, error) {
	m := map[string]any{
		"name":        "wisp",
		"version":     Version,
		"description": "Small language models in a web page, on the visitor's own CPU: a Go engine in WebAssembly with SIMD128 kernels, reading GGUF files.",
		"type":        "module",
		"main":        "./wisp.js",
		"types":       "./wisp.d.ts",
		"exports": map[string]any{
			".":              map[string]string{"types": "./wisp.d.ts", "default": "./wisp.js"},
			"./element":      "./wisp-generate.js",
			"./chat-element": "./wisp-chat.js",
			"./engine":       "./engine.js",
			"./node":         "./node.js",
			"./worker.js":    "./worker.js",
			"./wasm/*":       "./wasm/*",
			"./package.json": "./package.json",
		},
		"sideEffects": []string{"./wisp-generate.js", "./wisp-chat.js"},
		"files":       append(slices.Clone(files), "README.md"),
		"keywords":    []string{"llm", "gguf", "webassembly", "wasm", "simd", "language-model", "browser"},
		"engines":     map[string]string{"node": ">=20"},
	}
	return json.MarshalIndent(m, "", "  ")
}

// readme is the package's README.md.
const readme = `# wisp

Small language models that run in a web page, on the visitor's own CPU: a Go
transformer engine compiled to WebAssembly with SIMD128 kernels, reading GGUF
files (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).

    npm install wisp

In a page, served by any static server (the Worker and the wasm files are
found beside wisp.js, so a CDN path works too):

    <script type="module">
      import * as wisp from './node_modules/wisp/wisp.js';
      const model = await wisp.load('/models/default.gguf');
      for await (const piece of model.generate('And God said', { maxTokens: 50 })) document.body.append(piece);
    </script>

or the elements: import 'wisp/element', then
<wisp-generate model="/models/default.gguf" prompt="And God said"></wisp-generate>;
import 'wisp/chat-element' for <wisp-chat>.

Through a bundler: the Worker (worker.js and the modules it imports) and the
wasm files are loaded by URL from wisp.js's folder, which a bundle does not
carry. Copy the package's folder next to the bundle and say where it is:
wisp.load(url, { base: '/wisp/' }) (tested with esbuild).

In Node:

    import { load } from 'wisp/node';
    const model = await load('models/default.gguf');
    for (const piece of model.generate('And God said', { maxTokens: 50, temperature: 0 })) process.stdout.write(piece);
`

// Write replaces out with the package: files copied from site, the
// manifest and the README.
func Write(site, out string, files []string) error {
	if out == "" || out == "/" || out == "." {
		return errors.New("refusing to replace " + out)
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(site, f))
		if err != nil {
			return err
		}
		dst := filepath.Join(out, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	manifest, err := Manifest(files)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "package.json"), append(manifest, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "README.md"), []byte(readme), fs.FileMode(0o644))
}

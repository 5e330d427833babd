package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeSite writes a site folder of the given files (name → source).
func writeSite(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFilesFollowsImports(t *testing.T) {
	dir := writeSite(t, map[string]string{
		"wisp.js":          "import { a } from './engine.js';\nexport { b } from './download.js';\nconst w = new URL('./worker.js', import.meta.url);",
		"wisp-generate.js": "import * as wisp from './wisp.js';",
		"wisp-chat.js":     "import * as wisp from './wisp.js';",
		"node.js":          "import { readFile } from 'node:fs/promises';\nimport { createEngine } from './engine.js';",
		"worker.js":        "import { x } from './engine.js';\nimport { g } from './gguf.js';",
		"engine.js":        "import { ABI_VERSION } from './abi.js';",
		"download.js":      "import { e } from './engine.js';",
		"gguf.js":          "",
		"abi.js":           "",
		"wisp.d.ts":        "import type { EngineOptions } from './abi.js';",
		"abi.d.ts":         "",
		"app.js":           "import * as wisp from './wisp.js';", // the demo: not reached from an entry
		"wasm/wisp.wasm":   "", "wasm/kernels.wasm": "", "wasm/forward.wasm": "", "wasm/relaxed.wasm": "",
	})
	got, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"abi.d.ts", "abi.js", "download.js", "engine.js", "gguf.js", "node.js",
		"wasm/forward.wasm", "wasm/kernels.wasm", "wasm/relaxed.wasm", "wasm/wisp.wasm",
		"wisp-chat.js", "wisp-generate.js", "wisp.d.ts", "wisp.js", "worker.js"}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q\nwant    %q", got, want)
	}
}

func TestFilesErrors(t *testing.T) {
	base := map[string]string{
		"wisp.js": "", "wisp-generate.js": "", "wisp-chat.js": "", "node.js": "", "worker.js": "", "wisp.d.ts": "",
		"wasm/wisp.wasm": "", "wasm/kernels.wasm": "", "wasm/forward.wasm": "",
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]string)
	}{
		{"a missing wasm file", func(m map[string]string) { delete(m, "wasm/kernels.wasm") }},
		{"an import of a file that is not there", func(m map[string]string) { m["wisp.js"] = "import './gone.js';" }},
		{"an import from outside the site", func(m map[string]string) { m["wisp.js"] = "import { x } from './../tools/x.js';" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			tc.edit(m)
			if _, err := Files(writeSite(t, m)); err == nil {
				t.Error("no error")
			}
		})
	}
}

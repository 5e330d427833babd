package backend_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"wisp/engine/option"
	"wisp/wasm/backend"
	"wisp/wasm/host"
)

// TestRuntimesAgree drives the default model natively and in wazero through
// the same calls and checks that they print the same bytes, sample the
// same number of tokens and end for the same reason.
func TestRuntimesAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module")
	}
	ctx := context.Background()
	data, err := os.ReadFile("../../models/default.gguf")
	if err != nil {
		t.Fatal(err)
	}
	wasm := moduleBytes(t)
	type result struct {
		text      string
		generated int
		done      string
	}
	run := func(m backend.Model, prompt string, o option.Options) result {
		ids, err := m.Tokenize(prompt)
		if err != nil {
			t.Fatal(err)
		}
		echo, err := m.PromptTokens(ids, o)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(echo)
		for {
			piece, err := m.Next()
			b.WriteString(piece)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return result{b.String(), m.Generated(), m.Done()}
	}
	cases := []struct {
		prompt string
		opt    option.Options
	}{
		{"And God said", option.Options{Context: 64, MaxTokens: 40}},
		{"In the beginning", option.Options{Temperature: 0.8, TopP: 0.9, Seed: 42, MaxTokens: 60, Stop: []string{"LORD"}}},
		{"", option.Options{Context: 24, Temperature: 1, TopK: 40, RepeatPenalty: 1.1, Seed: 7}},
	}
	var got [2][]result
	for i, rt := range backend.Runtimes {
		m, err := backend.Open(ctx, backend.Config{Runtime: rt, Wasm: wasm}, data)
		if err != nil {
			t.Fatal(err)
		}
		if m.ContextLen() <= 0 {
			t.Errorf("%s: ContextLen = %d", rt, m.ContextLen())
		}
		for _, c := range cases {
			got[i] = append(got[i], run(m, c.prompt, c.opt))
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}
	for i := range cases {
		n, w := got[0][i], got[1][i]
		if n != w {
			t.Errorf("case %d: native %+v\nwazero %+v", i, n, w)
		}
		if n.generated == 0 || n.done == "" {
			t.Errorf("case %d: generated %d tokens, done %q", i, n.generated, n.done)
		}
	}
	if _, err := backend.Open(ctx, backend.Config{Runtime: "jvm"}, data); err == nil {
		t.Error("Open of an unknown runtime succeeded")
	}
}

// moduleBytes builds the engine's wasm module (host.BuildModule) into the
// test's temporary folder and returns its bytes.
func moduleBytes(t *testing.T) []byte {
	t.Helper()
	path, err := host.BuildModule(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/internal/sharedfiles"
)

func wisp(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func shared(t *testing.T, name string) string {
	t.Helper()
	p, err := sharedfiles.Path(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunKnownGood checks that wisp run prints llama2.c's output for
// stories260K, from the checkpoint directly and from its F32 GGUF.
func TestRunKnownGood(t *testing.T) {
	want, err := sharedfiles.KnownGood()
	if err != nil {
		t.Fatal(err)
	}
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	gg := filepath.Join(t.TempDir(), "stories260K.gguf")
	if code, _, stderr := wisp(t, "convert", "--type", "f32", "-o", gg, "-z", tok, bin); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"run", "-m", bin, "-z", tok, "-t", "0", "-n", "200"},
		{"run", bin, "-z", tok, "-t", "0", "-n", "200"}, // the model as a positional argument
		{"run", "-m", gg, "-t", "0", "-n", "200"},
	} {
		code, stdout, stderr := wisp(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if stdout != want {
			t.Errorf("%v:\ngot  %q\nwant %q", args, stdout, want)
		}
		if !strings.Contains(stderr, "tok/s") {
			t.Errorf("%v: no timings on stderr: %q", args, stderr)
		}
	}
}

// TestRunPromptEcho checks that the prompt is echoed and counted in -n.
func TestRunPromptEcho(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	code, stdout, stderr := wisp(t, "run", "-m", bin, "-z", tok, "-t", "0", "-n", "10", "-p", "Once upon a time", "-q")
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.HasPrefix(stdout, "Once upon a time") || !strings.HasSuffix(stdout, "\n") {
		t.Errorf("stdout %q: want the prompt echoed and a final newline", stdout)
	}
	if stderr != "" {
		t.Errorf("-q printed %q", stderr)
	}
	// BOS + 5 prompt tokens leave 10-6+1 = 5 tokens to generate.
	m, err := loadModel(bin, tok)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := m.Tokenizer.Encode(strings.TrimSuffix(stdout, "\n"))
	if len(ids) != 10 {
		t.Errorf("%q is %d tokens, want 10 (9 positions after BOS plus the last sampled)", stdout, len(ids))
	}
}

func TestRunSampledIsSeeded(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	run := func(seed string) string {
		code, stdout, stderr := wisp(t, "run", "-m", bin, "-z", tok, "-n", "60", "--seed", seed, "-q")
		if code != 0 {
			t.Fatal(stderr)
		}
		return stdout
	}
	if a, b := run("7"), run("7"); a != b {
		t.Errorf("the same seed gave %q and %q", a, b)
	}
}

func TestTokenizeVectors(t *testing.T) {
	code, stdout, stderr := wisp(t, "tokenize", "-m", shared(t, "tokenizers/ggml-vocab-llama-spm.gguf"), "--", "Hello world")
	if code != 0 {
		t.Fatal(stderr)
	}
	if got, want := stdout, "15043 3186\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	code, stdout, _ = wisp(t, "tokenize", "-m", shared(t, "tokenizers/ggml-vocab-llama-spm.gguf"), "--bos", "--", "Hello world")
	if code != 0 || stdout != "1 15043 3186\n" {
		t.Errorf("--bos: exit %d, %q", code, stdout)
	}
}

func TestConvertF16Loads(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	code, _, stderr := wisp(t, "convert", "-o", out, "-z", shared(t, "models/tok512.bin"), shared(t, "models/stories260K.bin"))
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stderr, "flushed") {
		t.Errorf("no f16 report: %q", stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Embedding.F16 == nil {
		t.Error("the default type is not f16")
	}
}

// TestErrors checks that misuse gives a message saying what to do and a
// non-zero exit, never a panic.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.gguf")
	os.WriteFile(garbage, []byte("GGUF\x03\x00\x00\x00garbage"), 0o644)
	notgguf := filepath.Join(dir, "x.bin")
	os.WriteFile(notgguf, []byte("hello"), 0o644)
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"run"}, 1, "-m MODEL"},
		{[]string{"run", "-m", filepath.Join(dir, "missing.gguf")}, 1, "no such file"},
		{[]string{"run", "-m", garbage}, 1, "gguf"},
		{[]string{"run", "-m", notgguf}, 1, "-z tokenizer.bin"},
		{[]string{"run", "-m", bin, "-z", tok, "-p", strings.Repeat("once upon a time ", 50), "-n", "20"}, 1, "-n allows 20 positions"},
		{[]string{"run", "-m", bin, "-z", tok, "-p", "bad \xff utf-8"}, 1, "UTF-8"},
		{[]string{"run", "-m", bin, "-z", tok, "-t", "-1"}, 1, "temperature"},
		{[]string{"run", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"convert", "-o", filepath.Join(dir, "o.gguf"), "--type", "q4", "-z", tok, bin}, 1, "choose one of f32, f16, bf16, q8_0"},
		{[]string{"convert", "-o", filepath.Join(dir, "o.gguf"), bin}, 1, "-z"},
		{[]string{"tokenize", "-m", garbage, "--", "hi"}, 1, "gguf"},
	} {
		code, _, stderr := wisp(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("wisp %q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range commands() {
		code, _, stderr := wisp(t, cmd.name, "--help")
		if code != 0 || !strings.Contains(stderr, "Usage: wisp "+cmd.name) || !strings.Contains(stderr, "Flags:") {
			t.Errorf("wisp %s --help: exit %d, %q", cmd.name, code, stderr)
		}
	}
}

func TestSynth(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.gguf")
	code, _, stderr := wisp(t, "synth", "-o", out, "--dim", "32", "--hidden", "40", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--vocab", "300", "--type", "f32")
	if code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := wisp(t, "run", "-m", out, "-n", "8", "-t", "0", "-q")
	if code != 0 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("run on a synth model: exit %d, %q, %s", code, stdout, stderr)
	}
	if code, _, stderr := wisp(t, "synth", "-o", out, "--shape", "nope"); code != 1 || !strings.Contains(stderr, "stories15M") {
		t.Errorf("unknown shape: exit %d, %q", code, stderr)
	}
}

// TestRunWazero checks that the wasm module in wazero prints the same bytes
// as the native engine, greedy and sampled.
func TestRunWazero(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	for _, args := range [][]string{
		{"-t", "0", "-n", "200"},
		{"-t", "0.9", "--top-p", "0.8", "--seed", "11", "-n", "120", "-p", "Lily saw a cat"},
		{"-t", "1", "--top-k", "20", "--min-p", "0.05", "--repeat-penalty", "1.2", "--seed", "3", "-n", "80", "--stop", "."},
	} {
		base := append([]string{"run", "-q", "-m", bin, "-z", tok}, args...)
		code, native, stderr := wisp(t, base...)
		if code != 0 {
			t.Fatalf("native %v: %s", args, stderr)
		}
		code, wz, stderr := wisp(t, append(base, "--runtime", "wazero")...)
		if code != 0 {
			t.Fatalf("wazero %v: %s", args, stderr)
		}
		if wz != native {
			t.Errorf("%v: wazero printed\n%q\nnative printed\n%q", args, wz, native)
		}
	}
}

func TestEval(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	dir := t.TempDir()
	f16 := filepath.Join(dir, "f16.gguf")
	if code, _, stderr := wisp(t, "convert", "-o", f16, "-z", tok, bin); code != 0 {
		t.Fatal(stderr)
	}
	text := filepath.Join(dir, "text.txt")
	os.WriteFile(text, []byte("Once upon a time, there was a little girl named Lily. She loved to play outside."), 0o644)
	code, stdout, stderr := wisp(t, "eval", "-m", f16, "--text", text)
	if code != 0 || !strings.Contains(stdout, "perplexity") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = wisp(t, "eval", "-m", f16, "--ref", bin, "-z", tok, "--text", text, "--json", "--greedy", "50")
	if code != 0 {
		t.Fatal(stderr)
	}
	st, err := os.Stat(f16)
	if err != nil {
		t.Fatal(err)
	}
	// stories260K's parameters as wisp counts them: every weight, norms included.
	for _, key := range []string{`"kl"`, `"top1"`, `"perplexityB"`, `"greedyPrefix": 50`, `"params": 260032`, fmt.Sprintf(`"fileBytes": %d`, st.Size())} {
		if !strings.Contains(stdout, key) {
			t.Errorf("--json output lacks %s: %s", key, stdout)
		}
	}
}

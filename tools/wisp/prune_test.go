package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/internal/sharedfiles"
)

// pruneFiles writes a calibration text and an empty file to dir.
func pruneFiles(t *testing.T, dir string) (calib, empty string) {
	t.Helper()
	story, err := sharedfiles.KnownGood()
	if err != nil {
		t.Fatal(err)
	}
	calib = filepath.Join(dir, "calib.txt")
	empty = filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(calib, []byte(strings.Repeat(story, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte(" \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return calib, empty
}

// TestPrune prunes stories260K with a budget and with fractions, checks the
// report and the file, and runs the result natively and in wazero.
func TestPrune(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	dir := t.TempDir()
	calib, _ := pruneFiles(t, dir)
	out := filepath.Join(dir, "p.gguf")
	code, stdout, stderr := wisp(t, "prune", "-m", bin, "-z", tok, "-o", out, "--calib", calib, "--params", "0.75", "--greedy", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"plan: keep 5 of 5 blocks, 3 of 4 key/value groups (6 of 8 heads) and 120 of 172 feed-forward neurons per block",
		"194752 of 260032 parameters (74.9%)",
		"scored by wanda on ",
		"parameters           260032 → 194752 (74.9%)",
		"compared on          the last 0.1 of the calibration text",
		"mean KL(orig‖pruned)",
		"top-1 agreement",
		"greedy prefix shared",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if method, _ := f.String("wisp.prune.method"); method != "wanda" {
		t.Errorf("wisp.prune.method %q", method)
	}
	if n, _ := f.Uint("llama.feed_forward_length"); n != 120 {
		t.Errorf("feed_forward_length %d, want 120", n)
	}
	run := []string{"run", "-q", "-m", out, "-t", "0", "-n", "60"}
	code, native, stderr := wisp(t, run...)
	if code != 0 || len(native) < 20 {
		t.Fatalf("run the pruned model: exit %d, %q, %s", code, native, stderr)
	}
	code, wz, stderr := wisp(t, append(run, "--runtime", "wazero")...)
	if code != 0 || wz != native {
		t.Errorf("wazero: exit %d, %q (%s); native %q", code, wz, stderr, native)
	}

	// Fractions, magnitude, a separate text to compare on.
	code, stdout, stderr = wisp(t, "prune", "-m", bin, "-z", tok, "-o", out, "--method", "magnitude",
		"--ffn", "0.5", "--heads", "0.5", "--layers", "0.8", "--eval", calib, "--greedy", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"keep 4 of 5 blocks, 2 of 4 key/value groups (4 of 8 heads) and 86 of 172", "scored by magnitude\n", "blocks kept", "compared on          " + calib} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := loadModel(out, ""); err != nil {
		t.Error(err)
	}
	code, stdout, _ = wisp(t, "prune", "-m", bin, "-z", tok, "-o", out, "--method", "magnitude", "--ffn", "0.9", "--no-eval")
	if code != 0 || strings.Contains(stdout, "KL") {
		t.Errorf("--no-eval: exit %d, %s", code, stdout)
	}
}

// TestPrunePerLayer prunes stories260K per layer to a budget, checks the
// report and the file, runs the result natively and in wazero, and checks
// that distil and prune refuse it clearly.
func TestPrunePerLayer(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	dir := t.TempDir()
	calib, _ := pruneFiles(t, dir)
	out := filepath.Join(dir, "p.gguf")
	code, stdout, stderr := wisp(t, "prune", "-m", bin, "-z", tok, "-o", out, "--calib", calib, "--params", "0.75", "--greedy", "20", "--per-layer")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"plan: keep 5 of 5 blocks, 15 of 20 key/value groups and 600 of 860 feed-forward neurons in all, shared out between blocks by score",
		"neurons per block    [",
		"groups per block     [",
		"mean KL(orig‖pruned)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Bool("wisp.prune.per_layer"); err != nil || !v {
		t.Errorf("wisp.prune.per_layer = %v, %v", v, err)
	}
	ffn, err := f.Int32s("llama.feed_forward_length")
	if err != nil || len(ffn) != 5 {
		t.Fatalf("feed_forward_length %v, %v: want an array of 5 widths", ffn, err)
	}
	after, _ := f.Uint("wisp.prune.params_after")
	if after > 195024 || after+3*64 <= 195024 { // 75 % of 260032
		t.Errorf("%d parameters for a budget of 195024", after)
	}
	run := []string{"run", "-q", "-m", out, "-t", "0", "-n", "60"}
	code, native, stderr := wisp(t, run...)
	if code != 0 || len(native) < 20 {
		t.Fatalf("run the pruned model: exit %d, %q, %s", code, native, stderr)
	}
	code, wz, stderr := wisp(t, append(run, "--runtime", "wazero")...)
	if code != 0 || wz != native {
		t.Errorf("wazero: exit %d, %q (%s); native %q", code, wz, stderr, native)
	}

	var o, e bytes.Buffer
	err = distilCmd([]string{"--teacher", out, "--student", out, "--text", calib, "-o", filepath.Join(dir, "d.gguf"), "--steps", "1"}, &o, &e)
	if err == nil || !strings.Contains(err.Error(), "blocks differ in width") {
		t.Errorf("distil of a per-layer student: %v", err)
	}
	code, _, stderr = wisp(t, "prune", "-m", out, "-o", filepath.Join(dir, "q.gguf"), "--method", "magnitude", "--ffn", "0.5")
	if code != 1 || !strings.Contains(stderr, "blocks differ in width") {
		t.Errorf("prune of a per-layer model: exit %d, %s", code, stderr)
	}
	code, _, stderr = wisp(t, "prune", "-h")
	if !strings.Contains(stderr, "--per-layer") || !strings.Contains(stderr, "reject the file") {
		t.Errorf("prune -h does not document --per-layer: %s", stderr)
	}
}

// TestPruneErrors checks that bad targets and inputs are reported clearly.
func TestPruneErrors(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	dir := t.TempDir()
	calib, empty := pruneFiles(t, dir)
	out := filepath.Join(dir, "p.gguf")
	base := []string{"prune", "-m", bin, "-z", tok, "-o", out}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"prune", "-m", bin}, 2, "Usage: wisp prune"},
		{[]string{"--calib", calib}, 1, "no target"},
		{[]string{"--calib", calib, "--ffn", "0"}, 1, "--ffn 0: a fraction to keep must be in (0, 1]"},
		{[]string{"--calib", calib, "--heads", "1.5"}, 1, "--heads 1.5: a fraction to keep must be in (0, 1]"},
		{[]string{"--calib", calib, "--layers", "-1"}, 1, "--layers -1"},
		{[]string{"--calib", calib, "--params", "0"}, 1, "--params \"0\""},
		{[]string{"--calib", calib, "--params", "lots"}, 1, "--params \"lots\""},
		{[]string{"--calib", calib, "--params", "1e9"}, 1, "budget of 1000000000 parameters is more than the model's 260032"},
		{[]string{"--calib", calib, "--bytes", "100"}, 1, "less than the"},
		{[]string{"--calib", calib, "--bytes", "0"}, 1, "--bytes 0"},
		{[]string{"--calib", calib, "--params", "0.5", "--bytes", "500000"}, 1, "not both"},
		{[]string{"--calib", calib, "--params", "0.5", "--ffn", "0.5"}, 1, "not both"},
		{[]string{"--calib", calib, "--params", "0.5", "--method", "sparsegpt"}, 1, `--method "sparsegpt": choose wanda or magnitude`},
		{[]string{"--calib", empty, "--params", "0.5"}, 1, "the calibration text is empty"},
		{[]string{"--params", "0.5"}, 1, "--calib TEXT is needed"},
		{[]string{"--calib", filepath.Join(dir, "missing.txt"), "--params", "0.5"}, 1, "no such file"},
		{[]string{"--calib", calib, "--params", "0.5", "--holdout", "1"}, 1, "--holdout 1"},
	} {
		args := c.args
		if args[0] != "prune" {
			args = append(append([]string(nil), base...), args...)
		}
		code, _, stderr := wisp(t, args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("wisp %q: exit %d, stderr %q; want exit %d and %q", args, code, stderr, c.code, c.want)
		}
	}
}

// TestPruneQuantized prunes a Q4_K_M file (stories260K, whose rows make it
// Q5_0, Q8_0 and F16): the matrices are widened to F32 exactly, said so,
// and the pruned model is F32, loads, and converts back to q4_k_m; wisp
// eval reads the quantized file too.
func TestPruneQuantized(t *testing.T) {
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	dir := t.TempDir()
	calib, _ := pruneFiles(t, dir)
	q, out, back := filepath.Join(dir, "q.gguf"), filepath.Join(dir, "p.gguf"), filepath.Join(dir, "pq.gguf")
	if code, _, stderr := wisp(t, "convert", "--type", "q4_k_m", "-o", q, "-z", tok, bin); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := wisp(t, "prune", "-m", q, "-o", out, "--calib", calib, "--params", "0.75", "--greedy", "20")
	if code != 0 || !strings.Contains(stderr, "widened to F32") || !strings.Contains(stdout, "top-1 agreement") {
		t.Fatalf("exit %d: %s\n%s", code, stdout, stderr)
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range f.Tensors {
		if tn.Type != gguf.F32 {
			t.Errorf("%s is %v in the pruned file", tn.Name, tn.Type)
		}
	}
	if code, _, stderr := wisp(t, "convert", "--type", "q4_k_m", "-o", back, out); code != 0 {
		t.Fatal(stderr)
	}
	if code, stdout, stderr := wisp(t, "eval", "-m", back, "--text", calib, "--ref", q); code != 0 || !strings.Contains(stdout, "perplexity") {
		t.Fatalf("eval: exit %d: %s %s", code, stdout, stderr)
	}
}

package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wisp/engine/gguf"
)

// trainText is a small repetitive text for command tests.
var trainText = strings.Repeat("And God said, Let there be light: and there was light.\nAnd God saw the light, that it was good.\nAnd the evening and the morning were the first day.\n", 30)

// tinyTrain is the shape and schedule of a model that trains in a second.
var tinyTrain = []string{"--vocab", "300", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--hidden", "64",
	"--ctx", "32", "--batch", "8", "--steps", "60", "--warmup", "5", "--lr", "2e-2", "--eval-every", "20", "--ckpt-every", "20", "--threads", "2"}

// runTrain runs wisp train (called directly: main.go registers it).
func runTrain(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if err := trainCmd(args, &o, &e); err != nil {
		t.Fatalf("wisp train %v: %v\n%s", args, err, e.String())
	}
	return o.String(), e.String()
}

func readTestGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := readGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTrainCommand trains a tiny model, checks its metadata and progress
// output, and runs it natively and in wazero.
func TestTrainCommand(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(trainText), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "m.gguf")
	args := append([]string{"--text", text, "-o", out}, tinyTrain...)
	stdout, stderr := runTrain(t, args...)
	t.Logf("stderr:\n%s", stderr)
	for _, want := range []string{"tokenizer:", "held-out loss", "step 60/60 loss", "tok/s", "left", "checkpoint", "wrote " + out} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if !strings.HasPrefix(stdout, out+": 60 steps") {
		t.Errorf("stdout %q", stdout)
	}

	f := readTestGGUF(t, out)
	u := func(key string) uint64 {
		v, err := f.Uint(key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if u("wisp.train.steps") != 60 || u("wisp.train.tokens") != 60*8*32 {
		t.Errorf("steps %d, tokens %d", u("wisp.train.steps"), u("wisp.train.tokens"))
	}
	sum, _ := f.String("wisp.train.corpus_sha256")
	if want := fmt.Sprintf("%x", sha256.Sum256([]byte(trainText))); sum != want {
		t.Errorf("corpus_sha256 %q, want %q", sum, want)
	}
	if cmd, _ := f.String("wisp.train.command"); !strings.HasPrefix(cmd, "wisp train --text ") {
		t.Errorf("command %q", cmd)
	}
	for _, key := range []string{"wisp.train.train_loss", "wisp.train.eval_loss"} {
		if l, err := f.Float(key); err != nil || !(l > 0 && l < 3) {
			t.Errorf("%s = %g, %v: want a loss well below ln(300)", key, l, err)
		}
	}
	if _, ok := f.Tensor("adam.m.token_embd.weight"); ok {
		t.Error("the model holds optimizer state")
	}

	var gens []string
	for _, rt := range []string{"native", "wazero"} {
		code, gen, stderr := wisp(t, "run", "-q", "-m", out, "-t", "0", "-n", "24", "-p", "And God", "--runtime", rt)
		if code != 0 {
			t.Fatalf("run --runtime %s: %s", rt, stderr)
		}
		t.Logf("%s: %q", rt, gen)
		if !strings.HasPrefix(gen, "And God") || len(gen) < 12 {
			t.Errorf("run --runtime %s printed %q", rt, gen)
		}
		gens = append(gens, gen)
	}
	if gens[0] != gens[1] {
		t.Errorf("native and wazero generate different text")
	}
}

// TestTrainResumeCommand checks that --resume from the checkpoint of step
// 40 ends with the same model, to the bit, as the run that went on.
func TestTrainResumeCommand(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(trainText), 0o644); err != nil {
		t.Fatal(err)
	}
	a, ck := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "a.ckpt")
	runTrain(t, append([]string{"--text", text, "-o", a, "--ckpt", ck}, tinyTrain...)...)
	f := readTestGGUF(t, ck)
	if s, _ := f.Uint("wisp.ckpt.step"); s != 40 {
		t.Fatalf("the last checkpoint is of step %d, want 40", s)
	}
	b := filepath.Join(dir, "b.gguf")
	_, stderr := runTrain(t, "--text", text, "-o", b, "--resume", ck, "--threads", "1")
	if !strings.Contains(stderr, "resumed "+ck+" at step 40 of 60") {
		t.Errorf("stderr:\n%s", stderr)
	}
	fa, fb := readTestGGUF(t, a), readTestGGUF(t, b)
	for i := range fa.Tensors {
		ta := &fa.Tensors[i]
		tb, ok := fb.Tensor(ta.Name)
		if !ok || !bytes.Equal(ta.Data, tb.Data) {
			t.Errorf("tensor %s differs after resuming", ta.Name)
		}
	}
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Errorf("%d tensors, resumed %d", len(fa.Tensors), len(fb.Tensors))
	}
	la, _ := fa.Float("wisp.train.train_loss")
	lb, _ := fb.Float("wisp.train.train_loss")
	ca, _ := fa.String("wisp.train.command")
	cb, _ := fb.String("wisp.train.command")
	if ca != cb {
		t.Errorf("resumed run records command %q, want the first run's %q", cb, ca)
	}
	if la != lb {
		t.Errorf("final training loss %g, resumed %g", la, lb)
	}
}

func TestTrainErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(trainText), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--text", filepath.Join(dir, "missing.txt")}, "no such file"},
		{[]string{"--text", text, "--train", text}, "not both"},
		{[]string{"--text", text, "--vocab", "10"}, "vocabulary size"},
		{[]string{"--text", text, "--vocab", "280", "--dim", "30", "--heads", "4"}, "train:"},
		{[]string{"--text", text, "--vocab", "280", "--dim", "16", "--heads", "2", "--hidden", "16", "--layers", "1", "--ctx", "100000"}, "train:"},
		{[]string{"--text", text, "--resume", filepath.Join(dir, "missing.ckpt")}, "no such file"},
	} {
		var o, e bytes.Buffer
		err := trainCmd(append(tt.args, "-o", filepath.Join(dir, "x.gguf")), &o, &e)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
	if err := trainCmd(nil, &bytes.Buffer{}, &bytes.Buffer{}); err != errUsage {
		t.Errorf("no flags: %v, want errUsage", err)
	}
}

// TestDistilCommand prunes a trained model and distils the teacher back
// into it, over the text and over the teacher's own samples: the student's
// KL divergence from the teacher must fall, and the result must load.
func TestDistilCommand(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(trainText), 0o644); err != nil {
		t.Fatal(err)
	}
	teacher := filepath.Join(dir, "teacher.gguf")
	runTrain(t, append([]string{"--text", text, "-o", teacher}, tinyTrain...)...)
	pruned := filepath.Join(dir, "pruned.gguf")
	if code, _, stderr := wisp(t, "prune", "-m", teacher, "-o", pruned, "--calib", text, "--ffn", "0.5", "--heads", "0.5", "--no-eval"); code != 0 {
		t.Fatalf("prune: %s", stderr)
	}
	for _, extra := range [][]string{nil, {"--sample-tokens", "3000"}} {
		out := filepath.Join(dir, "student.gguf")
		args := append([]string{"--teacher", teacher, "--student", pruned, "--text", text, "-o", out,
			"--ctx", "32", "--batch", "8", "--steps", "30", "--warmup", "3", "--lr", "5e-3", "--eval-every", "0", "--ckpt-every", "0",
			"--temperature", "2", "--alpha", "0.3"}, extra...)
		var o, e bytes.Buffer
		if err := distilCmd(args, &o, &e); err != nil {
			t.Fatalf("distil %v: %v\n%s", extra, err, e.String())
		}
		var kls []float64
		for _, line := range strings.Split(e.String(), "\n") {
			if i := strings.Index(line, "KL(teacher‖student) "); i >= 0 {
				var kl float64
				fmt.Sscan(line[i+len("KL(teacher‖student) "):], &kl)
				kls = append(kls, kl)
			}
		}
		t.Logf("%v: KL on held-out text %v", extra, kls)
		if len(kls) != 2 || !(kls[1] < 0.7*kls[0]) {
			t.Errorf("%v: held-out KL %v, want two evaluations, the last well below the first\n%s", extra, kls, e.String())
		}
		f := readTestGGUF(t, out)
		if kl, err := f.Float("wisp.distil.eval_kl"); err != nil || math.Abs(kl-kls[len(kls)-1]) > 1e-3 {
			t.Errorf("wisp.distil.eval_kl = %g, %v", kl, err)
		}
		if _, err := loadModel(out, ""); err != nil {
			t.Error(err)
		}
	}
}

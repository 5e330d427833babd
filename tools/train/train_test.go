package train

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/engine/tokenizer"
)

// smokeText is a small repetitive text a tiny model learns in a few dozen
// steps.
var smokeText = strings.Repeat("the cat sat on the mat. the dog ran to the sun. a bird sang in the tree. ", 40)

var smokeConfig = Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, Tied: true}

func smokeOptions() Options {
	return Options{SeqLen: 32, Batch: 4, Accum: 2, Steps: 80, LR: 2e-2, MinLR: 2e-3, Warmup: 5,
		WeightDecay: 0.1, Clip: 1, Seed: 7, BOS: 1, Threads: 2}
}

// encode tokenizes text with v.
func encode(t testing.TB, v *tokenizer.Vocab, text string) []int32 {
	t.Helper()
	tok, err := tokenizer.New(*v)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// TestTrainSmoke trains a tiny model on a repetitive text: the loss must
// fall well below its starting point, held-out loss too, and the result
// must load in the engine and generate what the training forward pass
// predicts.
func TestTrainSmoke(t *testing.T) {
	v := testVocab(t, smokeConfig.Vocab)
	data := encode(t, v, smokeText)
	m, err := New(smokeConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, data, smokeOptions())
	if err != nil {
		t.Fatal(err)
	}
	held := encode(t, v, "the dog sat on the mat. a cat ran to the tree. the bird sang in the sun.")
	before, err := tr.Evaluate(held, 0)
	if err != nil {
		t.Fatal(err)
	}
	var first, last Stats
	for i := range tr.Options().Steps {
		s, err := tr.Step()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = s
		}
		last = s
	}
	after, err := tr.Evaluate(held, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("training loss %.3f → %.3f; held-out %.3f → %.3f (perplexity %.1f → %.1f, %d tokens)",
		first.Loss, last.Loss, before.Loss, after.Loss, before.Perplexity, after.Perplexity, after.Tokens)
	if math.Abs(first.Loss-math.Log(float64(smokeConfig.Vocab))) > 0.5 {
		t.Errorf("first loss %.3f, want about ln(vocab) = %.3f", first.Loss, math.Log(float64(smokeConfig.Vocab)))
	}
	if last.Loss > 0.4*first.Loss {
		t.Errorf("loss fell from %.3f only to %.3f", first.Loss, last.Loss)
	}
	if after.Loss > 0.5*before.Loss {
		t.Errorf("held-out loss fell from %.3f only to %.3f", before.Loss, after.Loss)
	}
	if want := int64(80 * 4 * 2 * 32); last.Tokens != want {
		t.Errorf("%d tokens seen, want %d", last.Tokens, want)
	}

	// The engine loads the result and generates, greedily, the tokens the
	// training forward pass ranks first.
	em := load(t, m, v)
	s, err := em.NewSession(option.Options{MaxTokens: 24})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Prompt("the cat")
	if err != nil {
		t.Fatal(err)
	}
	rest, err := s.Rest()
	if err != nil {
		t.Fatal(err)
	}
	out += rest
	t.Logf("engine, greedy: %q", out)
	ids := s.Tokens()
	for i := len(ids) - 24; i < len(ids); i++ {
		logits, err := m.Logits(ids[:i], 2)
		if err != nil {
			t.Fatal(err)
		}
		last := logits[(i-1)*smokeConfig.Vocab:]
		best := 0
		for j, z := range last {
			if z > last[best] {
				best = j
			}
		}
		if best != ids[i] {
			t.Fatalf("token %d: the engine chose %d, the training forward pass ranks %d first", i, ids[i], best)
		}
	}
}

// TestResumeIsExact checks that a run stopped at a checkpoint and resumed
// (with another number of threads) takes the same steps, to the bit, as
// one that was never interrupted, and that the checkpoint loads as a model.
func TestResumeIsExact(t *testing.T) {
	v := testVocab(t, smokeConfig.Vocab)
	data := encode(t, v, smokeText)
	opt := smokeOptions()
	opt.Steps = 10
	run := func(tr *Trainer, n int) []float64 {
		var losses []float64
		for range n {
			s, err := tr.Step()
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, s.Loss)
		}
		return losses
	}
	m1, _ := New(smokeConfig, 3)
	a, err := NewTrainer(m1, data, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := run(a, 10)

	m2, _ := New(smokeConfig, 3)
	b, err := NewTrainer(m2, data, opt)
	if err != nil {
		t.Fatal(err)
	}
	got := run(b, 4)
	cb, err := b.Checkpoint(v, "ckpt")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := cb.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.FromGGUF(f); err != nil {
		t.Errorf("the engine does not load the checkpoint: %v", err)
	}
	c, err := Resume(f, data, ResumeOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.StepsDone() != 4 || c.Tokens() != b.Tokens() {
		t.Errorf("resumed at step %d with %d tokens, want 4 and %d", c.StepsDone(), c.Tokens(), b.Tokens())
	}
	got = append(got, run(c, 6)...)
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Errorf("step %d: loss %.17g, uninterrupted %.17g", i+1, got[i], want[i])
		}
	}
	if !equalBits(c.Model().Params, a.Model().Params) {
		t.Error("the resumed run ends with other weights")
	}

	// A checkpoint resumes only on its own data.
	if _, err := Resume(f, data[1:], ResumeOptions{}); err == nil {
		t.Error("resumed on other data")
	}
}

// TestEvaluateMatchesLogits checks Evaluate's windows and loss against a
// direct computation from the model's logits.
func TestEvaluateMatchesLogits(t *testing.T) {
	c := Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, Vocab: 40, ContextLen: 16}
	m := randomModel(t, c, 4)
	data := make([]int32, 200)
	for i := range data {
		data[i] = int32((i*7 + i/3) % 40)
	}
	for _, bos := range []int{1, -1} {
		opt := Options{SeqLen: 8, Batch: 3, Steps: 1, LR: 1e-3, BOS: bos, Threads: 2}
		tr, err := NewTrainer(m, data, opt)
		if err != nil {
			t.Fatal(err)
		}
		held := data[:45]
		for _, maxTokens := range []int{0, 20} {
			e, err := tr.Evaluate(held, maxTokens)
			if err != nil {
				t.Fatal(err)
			}
			// Direct: windows of 8 positions over held.
			var sum float64
			n := 0
			for start := 0; ; start += 8 {
				var in, tg []int
				for i := range 8 {
					if bos >= 0 {
						if start+i >= len(held) {
							break
						}
						if i == 0 {
							in = append(in, bos)
						} else {
							in = append(in, int(held[start+i-1]))
						}
						tg = append(tg, int(held[start+i]))
					} else {
						if start+i+1 >= len(held) {
							break
						}
						in = append(in, int(held[start+i]))
						tg = append(tg, int(held[start+i+1]))
					}
				}
				if len(in) == 0 {
					break
				}
				logits, err := m.Logits(in, 1)
				if err != nil {
					t.Fatal(err)
				}
				for i, y := range tg {
					if maxTokens > 0 && n == maxTokens {
						break
					}
					z := logits[i*c.Vocab : (i+1)*c.Vocab]
					sum += logSumExp(z, 1) - float64(z[y])
					n++
				}
			}
			if e.Tokens != n || math.Abs(e.Loss-sum/float64(n)) > 1e-5 {
				t.Errorf("BOS %d, max %d: Evaluate %d tokens, loss %.6f; direct %d tokens, loss %.6f", bos, maxTokens, e.Tokens, e.Loss, n, sum/float64(n))
			}
		}
	}
}

// TestResumeErrors checks that damaged checkpoints and files that are not
// llama models give errors, not panics.
func TestResumeErrors(t *testing.T) {
	v := testVocab(t, smokeConfig.Vocab)
	data := encode(t, v, smokeText)
	m, _ := New(smokeConfig, 1)
	tr, err := NewTrainer(m, data, smokeOptions())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(b *gguf.Builder)
		want   string
	}{
		{"not a checkpoint", nil, "not a checkpoint"},
		{"step of the wrong type", func(b *gguf.Builder) { b.Set(ckpt+"step", "three") }, "wisp.ckpt.step"},
		{"bad random state", func(b *gguf.Builder) { b.Set(ckpt+"rng", []uint8{1, 2, 3}) }, "random state"},
		{"random state of the wrong type", func(b *gguf.Builder) { b.Set(ckpt+"rng", "x") }, "wisp.ckpt.rng"},
		{"steps past the run", func(b *gguf.Builder) { b.Set(ckpt+"step", uint64(1000)) }, "more than the run's"},
		{"absurd batch", func(b *gguf.Builder) { b.Set(ckpt+"batch", uint32(1<<30)) }, "batch"},
		{"zero learning rate", func(b *gguf.Builder) { b.Set(ckpt+"lr", 0.0) }, "learning rate"},
		{"BOS out of range", func(b *gguf.Builder) { b.Set(ckpt+"bos", int32(5000)) }, "BOS"},
		{"distilling", func(b *gguf.Builder) { b.Set(ckpt+"distil", true) }, "distilling"},
		{"qwen2", func(b *gguf.Builder) { b.Set("general.architecture", "qwen2") }, "llama models only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *gguf.Builder
			if tt.change == nil {
				b, err = m.Builder(v, "x")
			} else {
				b, err = tr.Checkpoint(v, "x")
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(b)
			}
			_, err := Resume(parse(t, b), data, ResumeOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}

	// A checkpoint missing an optimizer tensor.
	b := gguf.NewBuilder()
	full := parse(t, must(tr.Checkpoint(v, "x")))
	for _, kv := range full.KV {
		b.Set(kv.Key, kv.Value)
	}
	for _, ts := range full.Tensors {
		if ts.Name != "adam.v.output_norm.weight" {
			if err := b.AddTensor(ts.Name, ts.Type, ts.Dims, ts.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := Resume(parse(t, b), data, ResumeOptions{}); err == nil || !strings.Contains(err.Error(), "adam.v.output_norm.weight") {
		t.Errorf("missing moment: error %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

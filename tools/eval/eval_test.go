package eval

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/llama2c"
	"wisp/internal/synth"
)

func stories(t *testing.T, typ gguf.TensorType) *engine.Model {
	t.Helper()
	b, err := llama2c.Stories260K(typ)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const text = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. Lily's mom said, "Let's go home." Lily was sad, but she went home with her mom and had a nap.`

// naiveNLL scores text one token at a time, each window from BOS, with the
// log-softmax written out separately.
func naiveNLL(t *testing.T, m *engine.Model, text string, window int) (float64, int) {
	ids, err := m.Tokenizer.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	var nll float64
	n := 0
	for start := 0; start < len(ids); start += window - 1 {
		st, err := m.NewState(window)
		if err != nil {
			t.Fatal(err)
		}
		chunk := append([]int{m.Tokenizer.BOS()}, ids[start:min(len(ids), start+window-1)]...)
		for i := 0; i+1 < len(chunk); i++ {
			logits, err := st.Forward(chunk[i : i+1])
			if err != nil {
				t.Fatal(err)
			}
			var z float64
			for _, l := range logits {
				z += math.Exp(float64(l))
			}
			nll -= float64(logits[chunk[i+1]]) - math.Log(z)
			n++
		}
	}
	return nll / float64(n), n
}

func TestPerplexity(t *testing.T) {
	m := stories(t, gguf.F32)
	for _, window := range []int{2, 7, 33, 64, 512} {
		r, err := Perplexity(m, text, Options{Window: window})
		if err != nil {
			t.Fatal(err)
		}
		want, n := naiveNLL(t, m, text, window)
		if r.Tokens != n || math.Abs(r.NLL-want) > 1e-9*math.Max(1, want) {
			t.Errorf("window %d: NLL %v over %d tokens, want %v over %d", window, r.NLL, r.Tokens, want, n)
		}
		if math.Abs(r.Perplexity-math.Exp(r.NLL)) > 1e-9 {
			t.Errorf("window %d: perplexity %v is not exp(%v)", window, r.Perplexity, r.NLL)
		}
	}
}

func TestCompare(t *testing.T) {
	a, b := stories(t, gguf.F32), stories(t, gguf.F16)
	self, err := Compare(a, a, text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if self.KL != 0 || self.Top1 != 1 || self.NLLB != self.NLL {
		t.Errorf("a model against itself: KL %v, top-1 %v, NLL %v vs %v", self.KL, self.Top1, self.NLL, self.NLLB)
	}
	r, err := Compare(a, b, text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !(r.KL > 0 && r.KL < 1e-3) || r.Top1 < 0.95 {
		t.Errorf("F32 vs F16: KL %v, top-1 %v; want a small positive KL and high agreement", r.KL, r.Top1)
	}
	n, err := GreedyPrefix(a, a, "Once", 50)
	if err != nil || n != 50 {
		t.Errorf("greedy prefix with itself: %d, %v", n, err)
	}
}

func TestCompareDifferentModels(t *testing.T) {
	a := stories(t, gguf.F32)
	shape := synth.Shapes()["stories260K"]
	bb, err := synth.Build(shape, synth.Options{Type: gguf.F32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	bb.WriteTo(&buf)
	rnd, err := engine.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// A random vocabulary differs from stories260K's.
	if _, err := Compare(a, rnd, text, Options{}); err == nil || !strings.Contains(err.Error(), "same tokenizer") {
		t.Errorf("models with different tokenizers: %v", err)
	}
}

func TestErrorsAndProgress(t *testing.T) {
	m := stories(t, gguf.F32)
	if _, err := Perplexity(m, "", Options{}); err == nil {
		t.Error("empty text accepted")
	}
	if _, err := Perplexity(m, text, Options{Window: 1}); err == nil {
		t.Error("window 1 accepted")
	}
	if _, err := Perplexity(m, text, Options{Window: 513}); err == nil {
		t.Error("a window beyond the context accepted")
	}
	if _, err := Perplexity(m, "bad \xff", Options{}); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	var calls, last, total int
	r, err := Perplexity(m, text, Options{Window: 20, MaxTokens: 40, Progress: func(d, n int) { calls++; last, total = d, n }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tokens != 40 || last != 40 || total != 40 || calls < 3 {
		t.Errorf("MaxTokens 40, window 20: scored %d, progress %d calls ending %d/%d", r.Tokens, calls, last, total)
	}
}

// TestSamples checks that Samples writes one line per text, that text i is
// the one seed+i gives alone, and that the texts differ.
func TestSamples(t *testing.T) {
	m := stories(t, gguf.F32)
	opt := func(seed uint64) option.Options {
		return option.Options{Context: 64, Temperature: 1, Seed: seed}
	}
	all, err := Samples(m, 3, opt(10))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), all)
	}
	for i, line := range lines {
		one, err := Samples(m, 1, opt(10+uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if one != line+"\n" {
			t.Errorf("text %d is %q; seed %d alone gives %q", i, line, 10+i, one)
		}
	}
	if lines[0] == lines[1] || lines[1] == lines[2] {
		t.Errorf("texts repeat: %q", lines)
	}
}

package engine_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
)

// fresh runs a new session on ids and returns its echo, its text, and the
// logits after the prompt.
func fresh(t *testing.T, m *engine.Model, ids []int, opt option.Options) (echo, text string, logits []float32) {
	t.Helper()
	s, err := m.NewSession(opt)
	if err != nil {
		t.Fatal(err)
	}
	if echo, err = s.PromptTokens(ids); err != nil {
		t.Fatal(err)
	}
	logits = slices.Clone(s.Logits())
	if text, err = s.Rest(); err != nil {
		t.Fatal(err)
	}
	return echo, text, logits
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestRepromptKeepsTheCache: a session reused for a request that starts
// with what it has evaluated evaluates only the rest, and gives the echo,
// the logits (bit for bit) and the text of a new session on the whole
// request, also when the sampler is seeded and penalises repeats.
func TestRepromptKeepsTheCache(t *testing.T) {
	shape := synth.Shape{Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 256, RopeBase: 10000, Tied: true}
	m := randomModel(t, shape, gguf.F16)
	opt := option.Options{Context: 200, MaxTokens: 12, Temperature: 0.9, TopK: 20, RepeatPenalty: 1.2, Seed: 5, Stop: []string{"zz"}}
	ids1, err := m.Tokenize(strings.Repeat("the cat sat on a mat ", 3))
	if err != nil {
		t.Fatal(err)
	}
	const batch = 32 // smaller than MaxBatch, so that the prompt takes several
	if len(ids1) <= batch {
		t.Fatalf("prompt of %d tokens: want more than a batch", len(ids1))
	}
	s, err := m.NewSession(opt)
	if err != nil {
		t.Fatal(err)
	}
	s.SetBatch(batch)
	if _, err := s.PromptTokens(ids1); err != nil {
		t.Fatal(err)
	}
	if s.Reused() != 0 || s.Evaluated() != len(ids1) {
		t.Errorf("first prompt: reused %d, evaluated %d, want 0 and %d", s.Reused(), s.Evaluated(), len(ids1))
	}
	if _, err := s.Rest(); err != nil {
		t.Fatal(err)
	}
	gen := s.Generated()
	more, err := m.Tokenizer.Encode(strings.Repeat(" and then the dog ran", 2))
	if err != nil {
		t.Fatal(err)
	}
	// The last sampled token is not evaluated yet: the cache holds the
	// prompt and all but it.
	cached := len(ids1) + gen - 1
	cases := []struct {
		name   string
		ids    []int
		reused int
	}{
		{"the conversation goes on", append(slices.Clone(s.Tokens()), more...), cached},
		{"the same prompt again", slices.Clone(ids1), len(ids1) - 1},
		{"a shorter prefix, then other tokens", append(slices.Clone(ids1[:10]), more...), 10},
		{"it goes on after the shorter prefix", append(append(slices.Clone(ids1[:10]), more...), more...), -1},
		{"nothing in common", more, 0},
	}
	for _, c := range cases {
		if c.reused < 0 {
			// The cache holds the last request and what was generated,
			// but the last sampled token.
			have := s.Tokens()[:len(s.Tokens())-1]
			for c.reused = 0; c.reused < len(have) && have[c.reused] == c.ids[c.reused]; c.reused++ {
			}
			if c.reused < 10+len(more) {
				t.Fatalf("%s: only %d tokens in common", c.name, c.reused)
			}
		}
		o := opt
		o.Seed++
		echo, err := s.Reprompt(c.ids, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Reused() != c.reused || s.Evaluated() != len(c.ids)-c.reused {
			t.Errorf("%s: reused %d, evaluated %d; want %d and %d", c.name, s.Reused(), s.Evaluated(), c.reused, len(c.ids)-c.reused)
		}
		logits := slices.Clone(s.Logits())
		text, err := s.Rest()
		if err != nil {
			t.Fatal(err)
		}
		wantEcho, wantText, wantLogits := fresh(t, m, c.ids, o)
		if echo != wantEcho || text != wantText {
			t.Errorf("%s: echo %q text %q\nnew session: echo %q text %q", c.name, echo, text, wantEcho, wantText)
		}
		if !sameBits(logits, wantLogits) {
			t.Errorf("%s: the logits after the prompt differ from a new session's", c.name)
		}
		if s.Generated() == 0 || s.Done() == "" {
			t.Errorf("%s: generated %d, done %q", c.name, s.Generated(), s.Done())
		}
	}
	if _, err := s.Reprompt(ids1, option.Options{Context: 100}); err == nil || !strings.Contains(err.Error(), "context of 100") {
		t.Errorf("Reprompt with another context: %v", err)
	}
	if _, err := s.Reprompt(make([]int, 201), opt); err == nil || !strings.Contains(err.Error(), "201 tokens") {
		t.Errorf("Reprompt longer than the context: %v", err)
	}
	if _, err := s.Reprompt(nil, opt); err == nil {
		t.Error("empty Reprompt accepted")
	}
	if _, err := s.Reprompt([]int{1, 300}, opt); err == nil {
		t.Error("a token outside the vocabulary accepted")
	}
	// After errors, the session still works.
	if _, err := s.Reprompt(ids1, opt); err != nil {
		t.Fatal(err)
	}
	if text, _ := s.Rest(); text == "" && s.Generated() == 0 {
		t.Error("no text after errors")
	}
}

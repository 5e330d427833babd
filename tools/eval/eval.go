// Package eval measures what a model knows of a text, and how far two models
// agree: perplexity, mean KL divergence, top-1 agreement and the longest
// greedy continuation they share. It is what "wisp eval" prints, and how the
// cost of fp16, pruning and distillation is reported.
package eval

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"wisp/engine"
	"wisp/engine/option"
)

// Options configures an evaluation.
type Options struct {
	// Window is the number of tokens evaluated together, BOS included; the
	// text is cut into windows of this size, each starting afresh from BOS.
	// 0 means min(512, the model's context length).
	Window int
	// MaxTokens caps the number of tokens of the text used; 0 uses all.
	MaxTokens int
	// Progress, if set, is called after each batch with the tokens scored
	// so far and the total.
	Progress func(done, total int)
}

// Result is what an evaluation found. Perplexity fields describe model A;
// the comparison fields are zero when only one model was evaluated.
type Result struct {
	Tokens     int     `json:"tokens"`     // tokens scored (predicted)
	NLL        float64 `json:"nll"`        // mean negative log-likelihood, nats per token
	Perplexity float64 `json:"perplexity"` // exp(NLL)
	// Of model B against model A, over the same positions:
	NLLB        float64 `json:"nllB,omitempty"`
	PerplexityB float64 `json:"perplexityB,omitempty"`
	KL          float64 `json:"kl,omitempty"`       // mean KL(A‖B), nats
	Top1        float64 `json:"top1,omitempty"`     // fraction of positions where both rank the same token first
	Prefix      int     `json:"greedyPrefix"`       // tokens of greedy continuation shared (when asked)
	PrefixOf    int     `json:"greedyPrefixOf"`     // out of how many
	Compared    bool    `json:"compared,omitempty"` // whether B was evaluated
}

// Perplexity scores model m on text.
func Perplexity(m *engine.Model, text string, opt Options) (Result, error) {
	return run(m, nil, text, opt)
}

// Compare scores both models on text and measures how far B's predictions
// are from A's. The models must share their tokenizer.
func Compare(a, b *engine.Model, text string, opt Options) (Result, error) {
	if err := sameVocab(a, b); err != nil {
		return Result{}, err
	}
	return run(a, b, text, opt)
}

func sameVocab(a, b *engine.Model) error {
	ta, tb := a.Tokenizer.Vocab(), b.Tokenizer.Vocab()
	if len(ta.Tokens) != len(tb.Tokens) || a.VocabSize != b.VocabSize {
		return fmt.Errorf("eval: the models have vocabularies of %d and %d tokens; comparing needs the same tokenizer", len(ta.Tokens), len(tb.Tokens))
	}
	for i := range ta.Tokens {
		if ta.Tokens[i] != tb.Tokens[i] {
			return fmt.Errorf("eval: the models' token %d differs (%q, %q); comparing needs the same tokenizer", i, ta.Tokens[i], tb.Tokens[i])
		}
	}
	return nil
}

func run(a, b *engine.Model, text string, opt Options) (Result, error) {
	var r Result
	ids, err := a.Tokenizer.Encode(text)
	if err != nil {
		return r, fmt.Errorf("eval: %w", err)
	}
	if opt.MaxTokens > 0 && len(ids) > opt.MaxTokens {
		ids = ids[:opt.MaxTokens]
	}
	if len(ids) == 0 {
		return r, errors.New("eval: the text has no tokens")
	}
	window := opt.Window
	ctx := a.ContextLen
	if b != nil {
		ctx = min(ctx, b.ContextLen)
	}
	if window <= 0 {
		window = min(512, ctx)
	}
	if window < 2 || window > ctx {
		return r, fmt.Errorf("eval: window of %d tokens must be in [2, %d] (the context length)", window, ctx)
	}
	bos := a.Tokenizer.BOS()
	if bos < 0 {
		return r, errors.New("eval: the tokenizer has no BOS token to start each window from")
	}
	sa, err := a.NewState(window)
	if err != nil {
		return r, err
	}
	var sb *engine.State
	if b != nil {
		if sb, err = b.NewState(window); err != nil {
			return r, err
		}
	}
	var nllA, nllB, kl float64
	agree := 0
	total := len(ids)
	done := 0
	for start := 0; start < len(ids); start += window - 1 {
		// A window: BOS, then up to window-1 tokens of text, each predicted
		// from everything before it in the window.
		chunk := append([]int{bos}, ids[start:min(len(ids), start+window-1)]...)
		sa.Reset()
		if sb != nil {
			sb.Reset()
		}
		for i := 0; i+1 < len(chunk); i += engine.MaxBatch {
			in := chunk[i:min(len(chunk)-1, i+engine.MaxBatch)]
			la, err := sa.ForwardAll(in)
			if err != nil {
				return r, err
			}
			var lb []float32
			if sb != nil {
				if lb, err = sb.ForwardAll(in); err != nil {
					return r, err
				}
			}
			v := a.VocabSize
			for t := range in {
				next := chunk[i+t+1]
				pa := logSoftmax(la[t*v : (t+1)*v])
				nllA -= pa[next]
				if lb != nil {
					pb := logSoftmax(lb[t*v : (t+1)*v])
					nllB -= pb[next]
					kl += klDiv(pa, pb)
					if argmax(pa) == argmax(pb) {
						agree++
					}
				}
			}
			done += len(in)
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
	}
	r.Tokens = done
	n := float64(done)
	r.NLL = nllA / n
	r.Perplexity = math.Exp(r.NLL)
	if b != nil {
		r.Compared = true
		r.NLLB = nllB / n
		r.PerplexityB = math.Exp(r.NLLB)
		r.KL = kl / n
		r.Top1 = float64(agree) / n
	}
	return r, nil
}

// logSoftmax returns log p for the logits, in float64.
func logSoftmax(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, x := range logits {
		m = max(m, float64(x))
	}
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(logits))
	for i, x := range logits {
		out[i] = float64(x) - lse
	}
	return out
}

// klDiv returns KL(P‖Q) from log-probabilities.
func klDiv(lp, lq []float64) float64 {
	var kl float64
	for i, a := range lp {
		if p := math.Exp(a); p > 0 {
			kl += p * (a - lq[i])
		}
	}
	return max(kl, 0)
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// GreedyPrefix generates up to n tokens greedily from prompt with both
// models and returns how many leading tokens they share.
func GreedyPrefix(a, b *engine.Model, prompt string, n int) (int, error) {
	if err := sameVocab(a, b); err != nil {
		return 0, err
	}
	gen := func(m *engine.Model) ([]int, error) {
		ids, err := m.Tokenize(prompt)
		if err != nil {
			return nil, err
		}
		ctx := min(m.ContextLen, len(ids)+n)
		if len(ids) >= ctx {
			return nil, fmt.Errorf("eval: the prompt is %d tokens, no room to generate in a context of %d", len(ids), m.ContextLen)
		}
		s, err := m.NewSession(option.Options{Context: ctx, MaxTokens: n})
		if err != nil {
			return nil, err
		}
		if _, err := s.PromptTokens(ids); err != nil {
			return nil, err
		}
		for {
			_, err := s.Next()
			if errors.Is(err, io.EOF) {
				return s.Tokens()[len(ids):], nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	ta, err := gen(a)
	if err != nil {
		return 0, err
	}
	tb, err := gen(b)
	if err != nil {
		return 0, err
	}
	k := 0
	for k < len(ta) && k < len(tb) && ta[k] == tb[k] {
		k++
	}
	return k, nil
}

// Samples generates n texts from BOS, text i sampled with the options'
// seed plus i, each to the end-of-text token or the session's end, one per
// line: held-out text drawn from a model itself, as make prune-table and
// the pruning tests use it.
func Samples(m *engine.Model, n int, opt option.Options) (string, error) {
	var b strings.Builder
	seed := opt.Seed
	for i := range n {
		opt.Seed = seed + uint64(i)
		s, err := m.NewSession(opt)
		if err != nil {
			return "", err
		}
		if _, err := s.Prompt(""); err != nil {
			return "", err
		}
		text, err := s.Rest()
		if err != nil {
			return "", err
		}
		b.WriteString(text + "\n")
	}
	return b.String(), nil
}

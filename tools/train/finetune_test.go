package train

import (
	"math"
	"slices"
	"testing"
)

// TestGrowVocab checks the rows GrowVocab adds: every other weight is
// kept, the logits of the old tokens do not change, the new rows sit near
// the mean row and differ from one another, and the noise follows the
// seed.
func TestGrowVocab(t *testing.T) {
	for _, tied := range []bool{true, false} {
		c := Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, Vocab: 40, ContextLen: 16, Tied: tied}
		m := randomModel(t, c, 3)
		g, err := m.GrowVocab(2, 1)
		if err != nil {
			t.Fatal(err)
		}
		if g.Config.Vocab != 42 || len(g.Params) != int(g.Config.Params()) {
			t.Fatalf("tied %v: grown to %d tokens, %d parameters", tied, g.Config.Vocab, len(g.Params))
		}
		old := m.Config.tensors()
		for i, ti := range g.Config.tensors() {
			o := old[i]
			was := m.Params[o.off : o.off+o.rows*o.cols]
			now := g.Params[ti.off : ti.off+ti.rows*ti.cols]
			if !slices.Equal(now[:len(was)], was) {
				t.Errorf("tied %v: %s changed", tied, ti.name)
			}
			if ti.rows == o.rows {
				continue
			}
			d := ti.cols
			for j := range d {
				var mean float64
				for r := range o.rows {
					mean += float64(was[r*d+j])
				}
				mean /= float64(o.rows)
				for r := o.rows; r < ti.rows; r++ {
					if math.Abs(float64(now[r*d+j])-mean) > 0.05 {
						t.Errorf("tied %v: %s row %d[%d] = %g, far from the mean %g", tied, ti.name, r, j, now[r*d+j], mean)
					}
				}
			}
			if slices.Equal(now[o.rows*d:(o.rows+1)*d], now[(o.rows+1)*d:]) {
				t.Errorf("tied %v: %s: the new rows are alike", tied, ti.name)
			}
		}
		tokens := []int{1, 5, 7, 39}
		a, err := m.Logits(tokens, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.Logits(tokens, 1)
		if err != nil {
			t.Fatal(err)
		}
		for p := range tokens {
			if !slices.Equal(a[p*40:(p+1)*40], b[p*42:p*42+40]) {
				t.Errorf("tied %v: position %d: the old tokens' logits changed", tied, p)
			}
		}
		if g2, _ := m.GrowVocab(2, 1); !slices.Equal(g2.Params, g.Params) {
			t.Errorf("tied %v: the same seed grew different rows", tied)
		}
		if g3, _ := m.GrowVocab(2, 2); slices.Equal(g3.Params, g.Params) {
			t.Errorf("tied %v: another seed grew the same rows", tied)
		}
	}
	m := randomModel(t, Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, Vocab: 40, ContextLen: 16}, 3)
	for _, n := range []int{0, -1, maxVocab} {
		if _, err := m.GrowVocab(n, 1); err == nil {
			t.Errorf("growing by %d tokens: no error", n)
		}
	}
}

// TestEvaluateUnscored checks that Evaluate scores only the targets of a
// stream that are not marked Unscored, reading the others as input.
func TestEvaluateUnscored(t *testing.T) {
	c := Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, Vocab: 40, ContextLen: 16}
	m := randomModel(t, c, 4)
	data := make([]int32, 45)
	for i := range data {
		data[i] = int32((i*7 + i/3) % 40)
	}
	marked := slices.Clone(data)
	for i := range marked {
		if i%5 < 3 { // three of every five are context only
			marked[i] = Unscored(marked[i])
		}
	}
	for _, bos := range []int{1, -1} {
		tr, err := NewTrainer(m, marked, Options{SeqLen: 8, Batch: 3, Steps: 1, LR: 1e-3, BOS: bos, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, maxTokens := range []int{0, 7} {
			e, err := tr.Evaluate(marked, maxTokens)
			if err != nil {
				t.Fatal(err)
			}
			// Direct: windows of 8 over the plain stream, scoring the
			// targets at positions not marked.
			var sum float64
			n := 0
			first := 0
			if bos < 0 {
				first = 1
			}
			for start := 0; start+first < len(data); start += 8 {
				var in []int
				var at []int // stream index of each target
				for i := range 8 {
					if bos >= 0 {
						if start+i >= len(data) {
							break
						}
						if i == 0 {
							in = append(in, bos)
						} else {
							in = append(in, int(data[start+i-1]))
						}
						at = append(at, start+i)
					} else {
						if start+i+1 >= len(data) {
							break
						}
						in = append(in, int(data[start+i]))
						at = append(at, start+i+1)
					}
				}
				logits, err := m.Logits(in, 1)
				if err != nil {
					t.Fatal(err)
				}
				for i, k := range at {
					if marked[k] < 0 || (maxTokens > 0 && n == maxTokens) {
						continue
					}
					z := logits[i*c.Vocab : (i+1)*c.Vocab]
					sum += logSumExp(z, 1) - float64(z[data[k]])
					n++
				}
			}
			if e.Tokens != n || math.Abs(e.Loss-sum/float64(n)) > 1e-5 {
				t.Errorf("BOS %d, max %d: Evaluate %d tokens, loss %.6f; direct %d tokens, loss %.6f", bos, maxTokens, e.Tokens, e.Loss, n, sum/float64(n))
			}
		}
	}
}

// TestTrainUnscored trains on a stream of questions (random, context only)
// and answers (determined by the question, scored): the answers' loss
// must fall near zero, and a stream with nothing scored still steps.
func TestTrainUnscored(t *testing.T) {
	c := Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, Vocab: 40, ContextLen: 32, Tied: true}
	var data []int32
	for i := range 400 {
		q := int32(3 + (i*13+i/7)%10)
		data = append(data, Unscored(q), q+20)
	}
	m, err := New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{SeqLen: 16, Batch: 4, Steps: 80, LR: 1e-2, MinLR: 1e-3, Warmup: 5, Clip: 1, Seed: 1, BOS: 1, Threads: 2}
	tr, err := NewTrainer(m, data, o)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := tr.Evaluate(data, 0)
	for range o.Steps {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := tr.Evaluate(data, 0)
	t.Logf("answers' loss %.3f → %.3f over %d tokens", before.Loss, after.Loss, after.Tokens)
	if after.Tokens != 400 || !(after.Loss < 0.2) || !(before.Loss > 3) {
		t.Errorf("answers' loss %.3f → %.3f over %d tokens: want 400 tokens, from above 3 to below 0.2", before.Loss, after.Loss, after.Tokens)
	}
	silent := make([]int32, 100)
	for i := range silent {
		silent[i] = Unscored(int32(i % 40))
	}
	tr, err = NewTrainer(m, silent, o)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := tr.Step(); err != nil || s.Loss != 0 || s.GradNorm != 0 {
		t.Errorf("a step with nothing scored: %+v, %v", s, err)
	}
	if _, err := tr.Evaluate(silent, 0); err == nil {
		t.Error("evaluating a stream with nothing scored: no error")
	}
	bad := []int32{5, Unscored(40), 6}
	if _, err := NewTrainer(m, append(bad, data...), o); err == nil {
		t.Error("an unscored token outside the vocabulary: no error")
	}
}

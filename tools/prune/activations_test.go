package prune

import (
	"math"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/llama2c"
)

// TestActivations checks the statistics against values computed here from
// the weights alone.
func TestActivations(t *testing.T) {
	data, err := llama2c.Stories260K(gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	prompt := []int{1, 403, 407, 261, 378, 274, 260, 426}
	st, err := m.NewState(16)
	if err != nil {
		t.Fatal(err)
	}
	a := newActivations(&m.Config)
	st.Observe(a)
	if _, err := st.Forward(prompt[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Forward(prompt[3:]); err != nil {
		t.Fatal(err)
	}
	if a.tokens != len(prompt) {
		t.Errorf("tokens %d, want %d", a.tokens, len(prompt))
	}
	// Layer 0's attention input is RMSNorm(embedding) · attn_norm, which
	// needs nothing but the weights.
	emb := make([]float32, m.Dim)
	sq := make([]float64, m.Dim)
	for _, tok := range prompt {
		m.Embedding.Row(emb, tok)
		var ss float64
		for _, v := range emb {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(m.Dim)+float64(m.NormEps))
		for j, v := range emb {
			x := float64(v) * inv * float64(m.Blocks[0].AttnNorm[j])
			sq[j] += x * x
		}
	}
	for j := range sq {
		if d := math.Abs(a.attnIn[0][j] - sq[j]); d > 1e-4*(1+sq[j]) {
			t.Fatalf("attnIn[0][%d] = %v, want %v", j, a.attnIn[0][j], sq[j])
		}
	}
	for l := range m.Layers {
		if inf := a.influence[l] / float64(a.tokens); !(inf > 0 && inf < 2) {
			t.Errorf("block %d influence %v outside (0, 2)", l, inf)
		}
		for name, v := range map[string][]float64{"attnOut": a.attnOut[l], "ffnIn": a.ffnIn[l], "ffnHidden": a.ffnHidden[l]} {
			var s float64
			for _, x := range v {
				s += x
			}
			if !(s > 0) {
				t.Errorf("block %d %s sums to %v", l, name, s)
			}
		}
	}
}

// TestInfluence checks 1 - cos on rows whose angle is known.
func TestInfluence(t *testing.T) {
	var sum float64
	before := []float32{1, 0, 3, 4}
	after := []float32{0, 2, 3, 4} // orthogonal, then the same
	addInfluence(&sum, before, after, 2)
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("influence %v, want 1", sum)
	}
}

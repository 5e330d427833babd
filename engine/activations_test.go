package engine_test

import (
	"math"
	"testing"

	"wisp/engine/gguf"
)

// TestActivations checks the recorded statistics against values computed
// here, and that recording leaves the logits unchanged to the bit.
func TestActivations(t *testing.T) {
	m := loadStories(t, gguf.F32)
	prompt := []int{1, 403, 407, 261, 378, 274, 260, 426}

	plain, err := m.NewState(16)
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Forward(prompt)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]float32(nil), want...)

	st, err := m.NewState(16)
	if err != nil {
		t.Fatal(err)
	}
	a := m.NewActivations()
	st.Record(a)
	got, err := st.Forward(prompt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("recording changed logit %d: %v, want %v", i, got[i], want[i])
		}
	}
	if a.Tokens != len(prompt) {
		t.Errorf("Tokens %d, want %d", a.Tokens, len(prompt))
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
		if d := math.Abs(a.AttnIn[0][j] - sq[j]); d > 1e-4*(1+sq[j]) {
			t.Fatalf("AttnIn[0][%d] = %v, want %v", j, a.AttnIn[0][j], sq[j])
		}
	}
	for l := range m.Layers {
		if inf := a.Influence[l] / float64(a.Tokens); !(inf > 0 && inf < 2) {
			t.Errorf("block %d influence %v outside (0, 2)", l, inf)
		}
		for name, v := range map[string][]float64{"AttnOut": a.AttnOut[l], "FFNIn": a.FFNIn[l], "FFNHidden": a.FFNHidden[l]} {
			var s float64
			for _, x := range v {
				s += x
			}
			if !(s > 0) {
				t.Errorf("block %d %s sums to %v", l, name, s)
			}
		}
	}
	st.Record(nil)
	st.Forward([]int{300})
	if a.Tokens != len(prompt) {
		t.Error("recording went on after Record(nil)")
	}
}

package engine_test

import (
	"math"
	"slices"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
)

// seen is one call of an Observer.
type seen struct {
	layer int
	at    engine.Probe
	n     int
	width int
	first float32 // x[0], to catch a wrong buffer
}

// recorder keeps every call it sees.
type recorder struct{ calls []seen }

func (r *recorder) Observe(layer int, at engine.Probe, x []float32, n int) {
	r.calls = append(r.calls, seen{layer, at, n, len(x) / n, x[0]})
}

// TestObserve checks that an Observer sees every probe of every block in
// the forward pass's order, with the widths the probes name, and that
// observing leaves the logits unchanged to the bit.
func TestObserve(t *testing.T) {
	m := loadStories(t, gguf.F32)
	prompt := []int{1, 403, 407, 261, 378}

	plain, err := m.NewState(16)
	if err != nil {
		t.Fatal(err)
	}
	want, err := plain.Forward(prompt)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)

	st, err := m.NewState(16)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	st.Observe(r)
	got, err := st.Forward(prompt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("observing changed logit %d: %v, want %v", i, got[i], want[i])
		}
	}

	var calls []seen
	for l := range m.Layers {
		for _, p := range []struct {
			at    engine.Probe
			width int
		}{
			{engine.BlockInput, m.Dim}, {engine.AttnInput, m.Dim}, {engine.AttnOutput, m.QDimOf(l)},
			{engine.FFNInput, m.Dim}, {engine.FFNHidden, m.HiddenOf(l)}, {engine.BlockOutput, m.Dim},
		} {
			calls = append(calls, seen{layer: l, at: p.at, n: len(prompt), width: p.width})
		}
	}
	if len(r.calls) != len(calls) {
		t.Fatalf("%d calls, want %d", len(r.calls), len(calls))
	}
	for i, c := range r.calls {
		w := calls[i]
		if c.layer != w.layer || c.at != w.at || c.n != w.n || c.width != w.width {
			t.Errorf("call %d: layer %d %v, %d rows of %d; want layer %d %v, %d rows of %d",
				i, c.layer, c.at, c.n, c.width, w.layer, w.at, w.n, w.width)
		}
	}
	// Block 0's input is the token embeddings; each block's output is the
	// next block's input.
	emb := make([]float32, m.Dim)
	m.Embedding.Row(emb, prompt[0])
	if r.calls[0].first != emb[0] {
		t.Errorf("block 0's input starts %v, want the embedding's %v", r.calls[0].first, emb[0])
	}
	for i := 5; i+1 < len(r.calls); i += 6 {
		if r.calls[i].first != r.calls[i+1].first {
			t.Errorf("block %d's output starts %v, the next block's input %v", r.calls[i].layer, r.calls[i].first, r.calls[i+1].first)
		}
	}

	st.Observe(nil)
	if _, err := st.Forward([]int{300}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != len(calls) {
		t.Error("the observer was called after Observe(nil)")
	}
}

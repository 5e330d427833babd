package engine_test

import (
	"math"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// TestThreadsBitIdentical checks that splitting the matrix products among
// goroutines leaves every logit the same to the bit, at 2 and 3 threads
// (uneven splits), for prefill (several vectors), ForwardAll and decode,
// on shapes whose matrices have odd row counts.
func TestThreadsBitIdentical(t *testing.T) {
	// odd: every width odd but the head size (F16 has no block size);
	// blocks: widths that quantized blocks of 256 divide, an odd vocabulary.
	odd := synth.Shape{Arch: "qwen2", Dim: 100, HiddenDim: 171, Layers: 2, Heads: 5, KVHeads: 1, Vocab: 1001, ContextLen: 64, RopeBase: 10000, Tied: true}
	blocks := synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 768, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 1003, ContextLen: 64, RopeBase: 10000}
	cases := []struct {
		shape synth.Shape
		typ   gguf.TensorType
	}{
		{odd, gguf.F16},
		{odd, gguf.F32},
		{blocks, gguf.Q4_K},
		{blocks, gguf.Q8_0},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			m := randomModel(t, c.shape, c.typ)
			run := func(threads int, all bool) []float32 {
				m.Threads = threads
				s, err := m.NewState(0)
				if err != nil {
					t.Fatal(err)
				}
				if all {
					engine.SplitAll(s)
				}
				var out []float32
				logits, err := s.Forward(ids(13, m.VocabSize, 1)) // prefill: 13 vectors
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, logits...)
				logits, err = s.ForwardAll(ids(3, m.VocabSize, 2))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, logits...)
				for i := range 5 { // decode: one vector
					logits, err := s.Forward(ids(1, m.VocabSize, uint64(3+i)))
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, logits...)
				}
				return out
			}
			want := run(1, false)
			for _, threads := range []int{2, 3} {
				for _, all := range []bool{true, false} {
					got := run(threads, all)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%d threads (split all %v): logit %d is %v, %v on one thread", threads, all, i, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// ids returns n token ids below vocab, from a seed.
func ids(n, vocab int, seed uint64) []int {
	out := make([]int, n)
	x := seed*2654435761 + 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[i] = int(x % uint64(vocab))
	}
	return out
}

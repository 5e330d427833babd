package engine_test

import (
	"encoding/binary"
	"math"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// TestF16FiniteKernel checks the choice of F16 kernel at load: every matrix
// of finite halves takes simd.MatMulF16Finite (F16C natively), a matrix
// holding one half of exponent 31 keeps simd.MatMulF16, and the logits of
// prefill and decode are the same to the bit whichever kernel runs, so that
// native and wasm still agree (F16 widens such a half to a finite number,
// F16C to an infinity or NaN).
func TestF16FiniteKernel(t *testing.T) {
	shape := synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, RopeBase: 10000}
	logits := func(m *engine.Model) []float32 {
		t.Helper()
		s, err := m.NewState(0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Forward(ids(9, m.VocabSize, 1))
		if err != nil {
			t.Fatal(err)
		}
		all := append([]float32(nil), out...)
		for i := range 3 {
			out, err := s.Forward(ids(1, m.VocabSize, uint64(2+i)))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out...)
		}
		return all
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: logit %d = %v, with MatMulF16 everywhere %v", what, i, got[i], want[i])
			}
		}
	}
	for _, poke := range []bool{false, true} {
		buf, err := synth.Bytes(shape, synth.Options{Type: gguf.F16, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if poke {
			f, err := gguf.Parse(buf)
			if err != nil {
				t.Fatal(err)
			}
			wq, ok := f.Tensor("blk.1.attn_q.weight")
			if !ok {
				t.Fatal("no blk.1.attn_q.weight")
			}
			binary.LittleEndian.PutUint16(wq.Data[2*70:], 0x7c12) // a NaN to F16C, 2^16·(1+18/1024) to F16
		}
		m, err := engine.Load(buf)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range m.Blocks {
			for name, mat := range map[string]*engine.Matrix{"wq": &b.Wq, "wk": &b.Wk, "down": &b.Down} {
				if want := !(poke && i == 1 && name == "wq"); mat.F16Finite() != want {
					t.Errorf("poke %v: block %d %s: F16Finite %v, want %v", poke, i, name, mat.F16Finite(), want)
				}
			}
		}
		got := logits(m)
		for _, v := range got {
			if v != v || math.IsInf(float64(v), 0) {
				t.Fatalf("poke %v: a logit is %v", poke, v)
			}
		}
		m.SetF16Finite(false)
		same("as loaded", got, logits(m))
	}
}

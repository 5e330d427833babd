package quant

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"wisp/engine/gguf"
)

// TestEncodeError stores Gaussian weights as every type and bounds the
// round trip's relative RMSE: what each format costs, as measured (with a
// small margin), so that a worse quantizer fails. The comparison with
// llama.cpp's own quantizer is in tools/retype (TestAgainstLlamaCpp).
func TestEncodeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 256*256)
	for i := range v {
		v[i] = float32(rng.NormFloat64()) * 0.02
	}
	bound := map[gguf.TensorType]float64{ // relative RMSE, %
		gguf.F32: 0, gguf.F16: 0.03, gguf.BF16: 0.2, gguf.Q8_0: 0.56, gguf.Q6_K: 1.85,
		gguf.Q5_K: 3.7, gguf.Q5_1: 3.9, gguf.Q5_0: 4.4, gguf.Q4_K: 7.3, gguf.Q4_1: 8.0, gguf.Q4_0: 8.8,
	}
	for _, typ := range StorableTypes {
		b, st, err := Encode(typ, 256, v)
		if err != nil {
			t.Fatal(err)
		}
		if size, _ := gguf.TensorSize(typ, []uint64{256, 256}); uint64(len(b)) != size || st.Bytes != int64(size) {
			t.Errorf("%v: %d bytes, want %d", typ, len(b), size)
		}
		back, err := Decode(typ, b, len(v))
		if err != nil {
			t.Fatal(err)
		}
		var se, sr float64
		for i := range v {
			se += math.Pow(float64(back[i]-v[i]), 2)
			sr += math.Pow(float64(v[i]), 2)
		}
		rel := 100 * math.Sqrt(se/sr)
		if math.Abs(rel-100*st.RelRMSE()) > 1e-9 {
			t.Errorf("%v: stats say %.4f %%, the decoded values %.4f %%", typ, 100*st.RelRMSE(), rel)
		}
		if rel > bound[typ] {
			t.Errorf("%v: relative RMSE %.4f %%, more than %.4f %%", typ, rel, bound[typ])
		}
	}
}

// TestEncodeRefuses: values that cannot be stored, and rows that are not
// whole blocks, are errors that say so.
func TestEncodeRefuses(t *testing.T) {
	v := make([]float32, 64)
	v[33] = float32(math.Inf(1))
	if _, _, err := Encode(gguf.Q4_0, 32, v); err == nil || !strings.Contains(err.Error(), "value 33") {
		t.Errorf("Inf: %v", err)
	}
	if _, _, err := Encode(gguf.Q4_K, 64, make([]float32, 64)); err == nil || !strings.Contains(err.Error(), "blocks of 256") {
		t.Errorf("rows of 64 as Q4_K: %v", err)
	}
	big := []float32{1e30}
	big = append(big, make([]float32, 31)...)
	if _, _, err := Encode(gguf.Q8_0, 32, big); err == nil {
		t.Error("a block whose scale overflows a half was stored")
	}
	if _, _, err := Encode(gguf.TensorType(99), 32, make([]float32, 32)); err == nil {
		t.Error("an unknown type was stored")
	}
}

// TestBF16 checks the rounding against its definition: the nearest
// bfloat16, ties to even, NaN kept a NaN.
func TestBF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1 << 20 {
		u := rng.Uint32()
		f := math.Float32frombits(u)
		got := BF16(f)
		if math.IsNaN(float64(f)) {
			if g := math.Float32frombits(uint32(got) << 16); !math.IsNaN(float64(g)) {
				t.Fatalf("BF16(NaN %#x) = %#x, not a NaN", u, got)
			}
			continue
		}
		lo := uint16(u >> 16)
		a, b := float64(math.Float32frombits(uint32(lo)<<16)), float64(math.Float32frombits(uint32(lo+1)<<16))
		if (lo+1)&0x7fff == 0x7f80 { // the next step is infinity: 2^128 for rounding
			b = math.Copysign(math.Ldexp(1, 128), a)
		}
		want := lo
		if d0, d1 := math.Abs(float64(f)-a), math.Abs(b-float64(f)); d1 < d0 || (d1 == d0 && lo&1 == 1) {
			want = lo + 1
		}
		if got != want {
			t.Fatalf("BF16(%#x) = %#x, want %#x", u, got, want)
		}
	}
}

package simd_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"wisp/simd"
)

// randomBlocks returns rows×cols weights of format q: random bytes with
// the scales set to sane halves (2^-7 times a random factor in [1, 2)).
func randomBlocks(rng *rand.Rand, q simd.QType, rows, cols int) []byte {
	w := make([]byte, rows*q.RowBytes(cols))
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	setHalf := func(b []byte) { b[0], b[1] = byte(rng.Uint32()), 0x20|byte(rng.IntN(4)) }
	for o := 0; o < len(w); o += q.BlockBytes() {
		if q == simd.Q6_K {
			setHalf(w[o+208:])
			continue
		}
		setHalf(w[o:])
		if q == simd.Q4_1 || q == simd.Q5_1 || q == simd.Q4_K || q == simd.Q5_K {
			setHalf(w[o+2:])
		}
	}
	return w
}

// TestMatMulQMatchesDefinition checks every quantized product against its
// definition computed in float64: the dequantized weights (simd.Dequantize,
// which the llama.cpp fixtures check) times the dequantized activations
// (q·d), to within float32 rounding of the sum of the terms' magnitudes.
func TestMatMulQMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, q := range simd.QTypes() {
		for _, sz := range []struct{ rows, blocks, n int }{{1, 1, 1}, {3, 2, 1}, {7, 1, 3}, {17, 3, 5}, {5, 2, 9}} {
			rows, cols, n := sz.rows, sz.blocks*q.BlockLen(), sz.n
			t.Run(fmt.Sprintf("%v/%dx%dx%d", q, rows, cols, n), func(t *testing.T) {
				w := randomBlocks(rng, q, rows, cols)
				x := make([]float32, n*cols)
				for i := range x {
					x[i] = float32(rng.NormFloat64() * math.Exp(rng.NormFloat64()))
				}
				var a simd.Q8
				simd.QuantizeQ8(&a, x, n, cols)
				out := make([]float32, n*rows)
				simd.MatMulQ(out, q, w, &a, rows, cols, n)
				wf := make([]float32, rows*cols)
				simd.Dequantize(q, wf, w)
				for tk := range n {
					for r := range rows {
						var s, mag float64
						for c := range cols {
							xv := float64(a.Q[tk*cols+c]) * float64(a.D[(tk*cols+c)/32])
							s += float64(wf[r*cols+c]) * xv
							mag += math.Abs(float64(wf[r*cols+c]) * xv)
						}
						got := float64(out[tk*rows+r])
						if d := math.Abs(got - s); d > 1e-6*mag {
							t.Errorf("vector %d row %d: %g, definition %g (|terms| %g)", tk, r, got, s, mag)
						}
					}
				}
			})
		}
	}
}

// TestQuantizeQ8 checks the activation blocks against their definition.
func TestQuantizeQ8(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	cases := []struct {
		name string
		x    []float32
	}{
		{"ramp", ramp(32, func(i int) float32 { return float32(i-16) / 3 })},
		{"zeros", make([]float32, 64)},
		{"one large", ramp(32, func(i int) float32 { return map[bool]float32{true: 1e30, false: 1e-3}[i == 5] })},
		{"tiny", ramp(32, func(i int) float32 { return float32(i) * 1e-40 })},
		{"inf", ramp(32, func(i int) float32 { return map[bool]float32{true: inf, false: 1}[i == 7] })},
		{"nan", ramp(32, func(i int) float32 { return map[bool]float32{true: nan, false: 1}[i == 9] })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a simd.Q8
			simd.QuantizeQ8(&a, c.x, 1, len(c.x))
			for b := range len(c.x) / 32 {
				xb := c.x[32*b : 32*b+32]
				var amax float32
				bad := false
				for _, v := range xb {
					bad = bad || v != v
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				d := amax / 127
				if bad {
					if a.D[b] == a.D[b] {
						t.Errorf("block %d holds a NaN but d = %g", b, a.D[b])
					}
				} else if math.Float32bits(a.D[b]) != math.Float32bits(d) {
					t.Errorf("block %d: d = %g, want %g", b, a.D[b], d)
				}
				var sum int32
				for i, v := range xb {
					want := int32(0)
					if d >= 0x1p-126 && !math.IsInf(float64(d), 0) && v == v {
						want = int32(math.RoundToEven(float64(v * (1 / d))))
					}
					if int32(a.Q[32*b+i]) != want {
						t.Errorf("block %d value %d (%g): q = %d, want %d", b, i, v, a.Q[32*b+i], want)
					}
					sum += want
				}
				if a.Sum[b] != sum {
					t.Errorf("block %d: sum %d, want %d", b, a.Sum[b], sum)
				}
			}
		})
	}
}

func ramp(n int, f func(int) float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

// ExampleMatMulQ multiplies a vector by a matrix of Q8_0 weights.
func ExampleMatMulQ() {
	// One row of 32 weights: scale 1/64 (0x2400 as a half), quants 0..31.
	w := []byte{0x00, 0x24}
	for i := range 32 {
		w = append(w, byte(i))
	}
	// Activations that 8 bits hold exactly (the block's largest is 127).
	x := make([]float32, 32)
	x[1], x[31] = 1, 127 // (1·1 + 31·127)/64
	var a simd.Q8
	simd.QuantizeQ8(&a, x, 1, 32)
	out := make([]float32, 1)
	simd.MatMulQ(out, simd.Q8_0, w, &a, 1, 32, 1)
	fmt.Println(out[0])
	// Output: 61.53125
}

package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAPIMatchesGoKernels requires the functions of the API (on amd64 the
// AVX2 assembly, elsewhere the Go kernels themselves) to equal the Go
// kernels bit for bit, over odd sizes, unaligned offsets, every matrix
// shape class (rows and vectors not multiples of four, columns not
// multiples of eight) and random data, halves of every finite value.
func TestAPIMatchesGoKernels(t *testing.T) {
	t.Logf("kernels: %s", Kernels())
	rng := rand.New(rand.NewPCG(3, 4))
	randF32 := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3)))
		}
		return v
	}
	randF16 := func(n int) []uint16 {
		v := make([]uint16, n)
		for i := range v {
			for {
				h := uint16(rng.Uint32())
				if h&0x7c00 != 0x7c00 { // finite
					v[i] = h
					break
				}
			}
		}
		return v
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d = %v (%#x), Go kernel %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	for _, cols := range []int{1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 288, 4095} {
		for _, rows := range []int{1, 2, 3, 4, 5, 7, 9} {
			for _, n := range []int{1, 2, 3, 4, 5, 9} {
				for _, off := range []int{0, 1, 3} {
					w16 := randF16(rows*cols + off)[off:]
					w32 := randF32(rows*cols + off)[off:]
					x := randF32(n*cols + off)[off:]
					got, want := make([]float32, n*rows), make([]float32, n*rows)
					MatMulF16(got, w16, x, rows, cols, n)
					goMatMulF16(want, w16, x, rows, cols, n)
					same("MatMulF16", got, want)
					MatMulF32(got, w32, x, rows, cols, n)
					goMatMulF32(want, w32, x, rows, cols, n)
					same("MatMulF32", got, want)
				}
			}
		}
		for _, off := range []int{0, 1, 2, 3} {
			a, b := randF32(cols + off)[off:], randF32(cols + off)[off:]
			if got, want := Dot(a, b), goDot(a, b); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("Dot over %d at offset %d: %v, Go kernel %v", cols, off, got, want)
			}
		}
	}
}

//go:build amd64 && !purego

package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// These tests hold MatMulQ's AVX2 kernels to goMatMulQ bit for bit, NaNs
// included: the kernels run the same float steps in the same order as the
// Go definition, on the same hardware, so even the bits of a NaN must
// agree. (kernels.wasm is held to the same definition, a NaN matching any
// NaN, by wasm_quant_test.go.)

// sameBitsExact fails unless got and want agree to the bit.
func sameBitsExact(tb testing.TB, what string, got, want []float32) {
	tb.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			tb.Fatalf("%s: [%d] = %v (%#08x), Go definition %v (%#08x)", what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// checkMatMulQ compares MatMulQ with goMatMulQ on one problem, the weights
// and the output offset by skew bytes and floats from their allocations.
func checkMatMulQ(t *testing.T, what string, q QType, w []byte, a *Q8, rows, cols, n, skew int) {
	t.Helper()
	wb := make([]byte, len(w)+skew)[skew:]
	copy(wb, w)
	want := make([]float32, n*rows)
	for i := range want {
		want[i] = float32(i) // each must be overwritten
	}
	goMatMulQ(want, q, wb, a, rows, cols, n)
	got := make([]float32, n*rows+skew+1)[skew:]
	for i := range got {
		got[i] = -float32(i)
	}
	MatMulQ(got, q, wb, a, rows, cols, n)
	sameBitsExact(t, what, got[:n*rows], want)
	if g := got[n*rows]; g != -float32(n*rows) {
		t.Fatalf("%s: MatMulQ wrote past the output: %v", what, g)
	}
}

// TestNativeMatMulQ covers odd rows (not multiples of the eight of a pass),
// several blocks, several vectors and unaligned slices, with moderate
// scales, any finite scales and sane activations including zeros, huge and
// tiny (subnormal-d) blocks.
func TestNativeMatMulQ(t *testing.T) {
	t.Logf("kernels: %s", Kernels())
	r := rand.New(rand.NewPCG(41, 42))
	for _, q := range QTypes() {
		seed := 0
		for _, rows := range []int{1, 3, 4, 5, 7, 8, 9, 17, 33} {
			for _, nb := range []int{1, 3, 7} {
				cols := nb * q.BlockLen()
				for _, n := range []int{1, 2, 3, 4, 5, 8, 9, 17, 33} {
					seed++
					sane := seed%3 != 0
					w := quantWeights(r, q, rows, cols, sane, false)
					var a Q8
					QuantizeQ8(&a, quantVectors(r, n, cols, false), n, cols)
					what := fmt.Sprintf("%v rows=%d cols=%d n=%d sane=%v", q, rows, cols, n, sane)
					checkMatMulQ(t, what, q, w, &a, rows, cols, n, seed%4)
				}
			}
		}
	}
}

// TestNativeMatMulQWild lets scales be infinities and NaNs (which F16
// widens to large finite numbers) and activations hold NaNs and
// infinities (which make NaN blocks), whose bits must agree too.
func TestNativeMatMulQWild(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, q := range QTypes() {
		for i, sz := range []struct{ rows, blocks, n int }{{5, 2, 1}, {7, 1, 3}, {17, 3, 1}, {9, 2, 6}, {16, 4, 2}, {11, 5, 1}} {
			cols := sz.blocks * q.BlockLen()
			for rep := range 4 {
				w := quantWeights(r, q, sz.rows, cols, false, true)
				var a Q8
				QuantizeQ8(&a, quantVectors(r, sz.n, cols, true), sz.n, cols)
				what := fmt.Sprintf("wild %v rows=%d cols=%d n=%d rep=%d", q, sz.rows, cols, sz.n, rep)
				checkMatMulQ(t, what, q, w, &a, sz.rows, cols, sz.n, (i+rep)%4)
			}
		}
	}
}

// TestNativeMatMulQLarge covers long rows, many passes and several panels
// of passes (4096 columns and 3 vectors).
func TestNativeMatMulQLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, q := range QTypes() {
		for i, sz := range []struct{ rows, cols, n int }{{67, 768, 1}, {41, 4096, 1}, {13, 8192, 2}, {70, 1024, 9}, {29, 2048, 17}, {67, 4096, 3}} {
			w := quantWeights(r, q, sz.rows, sz.cols, i%2 == 0, false)
			var a Q8
			QuantizeQ8(&a, quantVectors(r, sz.n, sz.cols, false), sz.n, sz.cols)
			what := fmt.Sprintf("%v rows=%d cols=%d n=%d", q, sz.rows, sz.cols, sz.n)
			checkMatMulQ(t, what, q, w, &a, sz.rows, sz.cols, sz.n, i%4)
		}
	}
}

// TestNativeMatMulQMinus128 builds a Q8 by hand with -128s, which
// QuantizeQ8 never makes and the kernels' sign tricks do not take: the
// product must still be the Go definition's.
func TestNativeMatMulQMinus128(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, q := range QTypes() {
		rows, cols, n := 9, 2*q.BlockLen(), 2
		var a Q8
		QuantizeQ8(&a, quantVectors(r, n, cols, false), n, cols)
		for i := range a.Q {
			if r.IntN(3) == 0 {
				a.Q[i] = -128
			}
		}
		w := quantWeights(r, q, rows, cols, true, false)
		checkMatMulQ(t, fmt.Sprintf("%v with -128", q), q, w, &a, rows, cols, n, 1)
	}
}

// TestNativeMatMulQAllocs requires MatMulQ not to allocate: the engine's
// memory estimate (engine.StateBytes) counts on it.
func TestNativeMatMulQAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	for _, q := range QTypes() {
		rows, cols := 19, 2*q.BlockLen()
		w := quantWeights(r, q, rows, cols, true, false)
		for _, n := range []int{1, 3} {
			var a Q8
			QuantizeQ8(&a, quantVectors(r, n, cols, false), n, cols)
			out := make([]float32, n*rows)
			if allocs := testing.AllocsPerRun(10, func() { MatMulQ(out, q, w, &a, rows, cols, n) }); allocs != 0 {
				t.Errorf("%v n=%d: %v allocations", q, n, allocs)
			}
		}
	}
}

// TestF16CWidening compares F16C's VCVTPH2PS with F16, the widening every
// kernel (and kernels.wasm) uses, over all 65536 halves. They agree to the
// bit on every finite half, subnormals included; on the 2048 halves with
// exponent 31, VCVTPH2PS makes infinities and NaNs where F16 makes finite
// numbers (±2^16·(1+m/1024)), so MatMulF16 keeps the integer widening
// (with VCVTPH2PS, a model holding such halves would give other logits
// natively than in wasm) and MatMulF16Finite, which widens with VCVTPH2PS,
// takes only weights that F16Finite accepts.
func TestF16CWidening(t *testing.T) {
	if !avx2 { // every CPU with AVX2 has F16C (x/sys/cpu does not say)
		t.Skip("no AVX2")
	}
	var src [8]uint16
	var dst [8]float32
	differ := 0
	for h0 := 0; h0 < 1<<16; h0 += 8 {
		for i := range src {
			src[i] = uint16(h0 + i)
		}
		widenF16C(&dst, &src)
		for i, h := range src {
			want := F16(h)
			finite := h&0x7c00 != 0x7c00
			same := math.Float32bits(dst[i]) == math.Float32bits(want)
			if finite && !same {
				t.Fatalf("half %#04x: VCVTPH2PS %v (%#08x), F16 %v (%#08x)", h, dst[i], math.Float32bits(dst[i]), want, math.Float32bits(want))
			}
			if !finite {
				if same || !(math.IsInf(float64(dst[i]), 0) || dst[i] != dst[i]) {
					t.Fatalf("half %#04x: VCVTPH2PS %v, F16 %v: expected an infinity or NaN against a finite number", h, dst[i], want)
				}
				differ++
			}
		}
	}
	t.Logf("VCVTPH2PS and F16 differ on %d halves (exponent 31), agree on the others", differ)
}

// TestNativeQuantizeQ8 holds QuantizeQ8 (natively, AVX2 on finite blocks
// and goQuantizeQ8 on the others) to goQuantizeQ8 bit for bit, over blocks
// of every kind of quantBlock: ordinary, huge, tiny (d subnormal or at
// 2^-126), zeros, NaNs, infinities, ties and mixed magnitudes.
func TestNativeQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, nb := range []int{1, 2, 3, 5, 8, 33, 100} {
		for seed := range 12 {
			var x []float32
			for b := range nb {
				kind := (b + seed) % quantKinds
				if seed >= 9 {
					kind = r.IntN(quantKinds)
				}
				x = append(x, quantBlock(r, kind)...)
			}
			off := seed % 4
			xs := make([]float32, len(x)+off)[off:]
			copy(xs, x)
			var got, want Q8
			QuantizeQ8(&got, xs, 1, len(xs))
			want.Resize(1, len(xs))
			goQuantizeQ8(&want, xs)
			what := fmt.Sprintf("QuantizeQ8 blocks=%d seed=%d", nb, seed)
			for i, v := range want.Q {
				if got.Q[i] != v {
					t.Fatalf("%s: q[%d] = %d, want %d", what, i, got.Q[i], v)
				}
			}
			sameBitsExact(t, what+" d", got.D, want.D)
			sameBitsExact(t, what+" s", got.S, want.S)
			for i, v := range want.Sum {
				if got.Sum[i] != v {
					t.Fatalf("%s: sum[%d] = %d, want %d", what, i, got.Sum[i], v)
				}
			}
		}
	}
}

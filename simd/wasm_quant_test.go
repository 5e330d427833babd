package simd

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// These tests hold kernels.wasm's quantize_q8, matmul_q and matmul_bf16 to
// their Go definitions (goQuantizeQ8, goMatMulQ, goMatMulBF16) bit for bit,
// a NaN matching any NaN: the order of operations fixes every value, but
// WebAssembly leaves the bits of a NaN result open.

func (k *wasmKernels) putBytes(tb testing.TB, b []byte, skew int) uint32 {
	tb.Helper()
	addr := k.alloc(tb, uint32(len(b)), uint32(skew))
	k.mem.Write(addr, b)
	return addr
}

func (k *wasmKernels) putI32(tb testing.TB, v []int32, skew int) uint32 {
	tb.Helper()
	addr := k.alloc(tb, uint32(4*len(v)), uint32(4*skew))
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	k.mem.Write(addr, b)
	return addr
}

func (k *wasmKernels) readBytes(addr uint32, n int) []byte {
	b, _ := k.mem.Read(addr, uint32(n))
	return append([]byte(nil), b...)
}

func (k *wasmKernels) readI32(addr uint32, n int) []int32 {
	b, _ := k.mem.Read(addr, uint32(4*n))
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// wasmQ8 is a Q8 in wasm memory: the addresses of its four slices.
type wasmQ8 struct{ q, d, s, sum uint32 }

// putQ8 writes a at skews that vary with seed: Q by 0..15 bytes, the others
// by 0..3 words.
func (k *wasmKernels) putQ8(tb testing.TB, a *Q8, seed int) wasmQ8 {
	tb.Helper()
	q := make([]byte, len(a.Q))
	for i, v := range a.Q {
		q[i] = byte(v)
	}
	return wasmQ8{
		q:   k.putBytes(tb, q, seed%16),
		d:   k.putF32(tb, a.D, seed%4),
		s:   k.putF32(tb, a.S, (seed+1)%4),
		sum: k.putI32(tb, a.Sum, (seed+2)%4),
	}
}

// sameBitsNaN is sameBits with every NaN equal to every NaN.
func sameBitsNaN(tb testing.TB, what string, got, want []float32) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			tb.Fatalf("%s: [%d] = %v (%#08x), want %v (%#08x)", what, i,
				g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
}

// quantBlock returns 32 activations of one of several kinds: ordinary
// values, huge ones, tiny ones (d subnormal or at the edge), zeros, NaN,
// infinities, exact ties of x·id, and one large value among tiny ones.
func quantBlock(r *rand.Rand, kind int) []float32 {
	x := randF32(r, 32)
	inf := float32(math.Inf(1))
	switch kind {
	case 0: // ordinary
	case 1: // huge, up to MaxFloat32
		for i := range x {
			x[i] = float32(math.Copysign(math.Ldexp(1+r.Float64(), 100+r.IntN(28)), r.NormFloat64()))
		}
		if r.IntN(2) == 0 {
			x[r.IntN(32)] = -math.MaxFloat32
		}
	case 2: // tiny: d subnormal, at 2^-126 or just above or below
		edge := float32(127 * 0x1p-126)
		for i := range x {
			x[i] = float32(math.Copysign(float64(edge)*r.Float64(), r.NormFloat64()))
		}
		switch r.IntN(4) {
		case 0:
			x[r.IntN(32)] = edge
		case 1:
			x[r.IntN(32)] = -math.Nextafter32(edge, 0)
		case 2:
			x[r.IntN(32)] = math.Nextafter32(edge, 1)
		default:
			for i := range x {
				x[i] = float32(r.IntN(1000)-500) * 0x1p-149
			}
		}
	case 3: // zeros of both signs
		for i := range x {
			x[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
		}
	case 4: // a NaN
		x[r.IntN(32)] = float32(math.NaN())
	case 5: // infinities
		x[r.IntN(32)] = inf
		if r.IntN(2) == 0 {
			x[r.IntN(32)] = -inf
		}
	case 6: // ties: amax 127 makes id 1 and every x·id a half-integer
		for i := range x {
			x[i] = float32(r.IntN(253)-126) + 0.5
		}
		x[r.IntN(32)] = 127 * float32(r.IntN(2)*2-1)
	case 7: // one large value among tiny ones
		for i := range x {
			x[i] = float32(r.NormFloat64() * 1e-30)
		}
		x[r.IntN(32)] = float32(r.NormFloat64() * 1e20)
	case 8: // all alike
		v := float32(r.NormFloat64() * 100)
		for i := range x {
			x[i] = v
		}
	}
	return x
}

const quantKinds = 9

// quantVectors returns n·cols activations, mostly ordinary blocks and
// every so often one of the other kinds (NaN and infinities only if wild).
func quantVectors(r *rand.Rand, n, cols int, wild bool) []float32 {
	x := make([]float32, 0, n*cols)
	for range n * cols / 32 {
		kind := 0
		if r.IntN(3) == 0 {
			kind = r.IntN(quantKinds)
			if !wild && (kind == 4 || kind == 5) {
				kind = 0
			}
		}
		x = append(x, quantBlock(r, kind)...)
	}
	return x
}

func TestWasmQuantizeQ8(t *testing.T) {
	k := newWasmKernels(t, 16)
	r := rand.New(rand.NewPCG(21, 22))
	for _, nb := range []int{1, 2, 3, 5, 8, 33} {
		for seed := range 8 {
			k.reset()
			var x []float32
			for b := range nb {
				x = append(x, quantBlock(r, (b+seed)%quantKinds)...)
			}
			var want Q8
			want.Resize(1, len(x))
			goQuantizeQ8(&want, x)

			px := k.putF32(t, x, seed%4)
			pq := k.putQ8(t, &Q8{Q: make([]int8, len(x)), D: make([]float32, nb), S: make([]float32, nb), Sum: make([]int32, nb)}, seed+3)
			k.call(t, false, "quantize_q8", pq.q, pq.d, pq.s, pq.sum, px, nb)
			what := fmt.Sprintf("quantize_q8 blocks=%d seed=%d", nb, seed)
			got := k.readBytes(pq.q, len(x))
			for i, v := range want.Q {
				if int8(got[i]) != v {
					b := i / 32
					t.Fatalf("%s: q[%d] = %d, want %d (block %v)", what, i, int8(got[i]), v, x[32*b:32*b+32])
				}
			}
			sameBitsNaN(t, what+" d", k.readF32(pq.d, nb), want.D)
			sameBitsNaN(t, what+" s", k.readF32(pq.s, nb), want.S)
			if got, want := fmt.Sprint(k.readI32(pq.sum, nb)), fmt.Sprint(want.Sum); got != want {
				t.Fatalf("%s: sums %s, want %s", what, got, want)
			}
			k.checkGuards(t, what)
		}
	}
}

// halfFields returns the offsets of a block's f16 fields in format q.
func halfFields(q QType) []int {
	switch q {
	case Q6_K:
		return []int{208}
	case Q4_1, Q5_1, Q4_K, Q5_K:
		return []int{0, 2}
	}
	return []int{0}
}

// quantWeights returns rows×cols weights of format q: random bytes, with
// the f16 fields finite (their exponent below 31) unless wild, which lets
// one field in 8 be an infinity or a NaN. With sane set, the scales are
// moderate (2^-9 to 2^-6) as in real models; otherwise any finite half.
func quantWeights(r *rand.Rand, q QType, rows, cols int, sane, wild bool) []byte {
	w := make([]byte, rows*q.RowBytes(cols))
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for o := 0; o < len(w); o += q.BlockBytes() {
		for _, f := range halfFields(q) {
			h := uint16(r.Uint32())
			switch {
			case wild && r.IntN(8) == 0:
				h |= 0x7c00
			case sane:
				h = h&0x83ff | uint16(6+r.IntN(4))<<10
			case h&0x7c00 == 0x7c00:
				h &^= 0x4000
			}
			binary.LittleEndian.PutUint16(w[o+f:], h)
		}
	}
	return w
}

// runMatMulQ compares matmul_q with goMatMulQ on one problem.
func runMatMulQ(t *testing.T, k *wasmKernels, what string, q QType, w []byte, a *Q8, rows, cols, n, seed int) {
	t.Helper()
	k.reset()
	want := make([]float32, n*rows)
	for i := range want {
		want[i] = float32(i) // goMatMulQ must overwrite every value
	}
	goMatMulQ(want, q, w, a, rows, cols, n)
	pw := k.putBytes(t, w, (seed*7)%16)
	px := k.putQ8(t, a, seed)
	pout := k.putF32(t, make([]float32, n*rows), (seed+3)%4)
	k.call(t, false, "matmul_q", pout, pw, px.q, px.d, px.s, px.sum, rows, cols, n, int(q))
	sameBitsNaN(t, what, k.readF32(pout, n*rows), want)
	k.checkGuards(t, what)
}

func TestWasmMatMulQ(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(23, 24))
	for _, q := range QTypes() {
		blocks := []int{1, 2, 3, 5}
		if q.BlockLen() == 256 {
			blocks = []int{1, 2, 3}
		}
		seed := 0
		for _, rows := range []int{0, 1, 3, 5, 7, 17} {
			for _, nb := range blocks {
				cols := nb * q.BlockLen()
				for n := 1; n <= 9; n++ {
					seed++
					sane := seed%3 != 0
					w := quantWeights(r, q, rows, cols, sane, false)
					var a Q8
					QuantizeQ8(&a, quantVectors(r, n, cols, false), n, cols)
					what := fmt.Sprintf("matmul_q %v rows=%d cols=%d n=%d sane=%v", q, rows, cols, n, sane)
					runMatMulQ(t, k, what, q, w, &a, rows, cols, n, seed)
				}
			}
		}
	}
}

// TestWasmMatMulQWild lets scales be infinities and NaNs and activations
// hold NaNs and infinities.
func TestWasmMatMulQWild(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(25, 26))
	for _, q := range QTypes() {
		for i, sz := range []struct{ rows, blocks, n int }{{5, 2, 1}, {7, 1, 3}, {17, 3, 1}, {6, 2, 6}, {9, 4, 9}} {
			cols := sz.blocks * q.BlockLen()
			w := quantWeights(r, q, sz.rows, cols, false, true)
			var a Q8
			QuantizeQ8(&a, quantVectors(r, sz.n, cols, true), sz.n, cols)
			what := fmt.Sprintf("matmul_q wild %v rows=%d cols=%d n=%d", q, sz.rows, cols, sz.n)
			runMatMulQ(t, k, what, q, w, &a, sz.rows, cols, sz.n, i)
		}
	}
}

// TestWasmMatMulQLarge covers many passes and groups of vectors.
func TestWasmMatMulQLarge(t *testing.T) {
	k := newWasmKernels(t, 128)
	r := rand.New(rand.NewPCG(27, 28))
	for _, q := range QTypes() {
		for i, sz := range []struct{ rows, cols, n int }{{67, 768, 1}, {130, 512, 1}, {67, 768, 16}, {13, 1024, 18}, {64, 256, 2}} {
			w := quantWeights(r, q, sz.rows, sz.cols, true, false)
			var a Q8
			QuantizeQ8(&a, quantVectors(r, sz.n, sz.cols, false), sz.n, sz.cols)
			what := fmt.Sprintf("matmul_q %v rows=%d cols=%d n=%d", q, sz.rows, sz.cols, sz.n)
			runMatMulQ(t, k, what, q, w, &a, sz.rows, sz.cols, sz.n, i)
		}
	}
}

// randBF16 returns n bfloat16 values of every kind: mostly the high halves
// of randF32's values, some random bit patterns (subnormals, infinities
// and NaNs among them) if wild.
func randBF16(r *rand.Rand, n int, wild bool) []uint16 {
	v := make([]uint16, n)
	f := randF32(r, n)
	for i := range v {
		v[i] = uint16(math.Float32bits(f[i]) >> 16)
		if wild && r.IntN(16) == 0 {
			v[i] = uint16(r.Uint32())
		}
	}
	return v
}

func TestWasmMatMulBF16(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(29, 30))
	for _, rows := range []int{1, 2, 3, 4, 5, 7, 9, 17} {
		for n := 1; n <= 9; n++ {
			for ci, cols := range mmCols {
				k.reset()
				sw, sx, so := (rows+ci)%8, (n+ci)%4, (rows+n)%4
				x := randF32(r, n*cols)
				if (rows+n+ci)%4 == 0 {
					withBig(r, x)
				}
				w := randBF16(r, rows*cols, ci%3 == 0)
				want := make([]float32, n*rows)
				px := k.putF32(t, x, sx)
				pw := k.putF16(t, w, sw)
				pout := k.putF32(t, make([]float32, n*rows), so)
				what := fmt.Sprintf("matmul_bf16 rows=%d cols=%d n=%d", rows, cols, n)
				goMatMulBF16(want, w, x, rows, cols, n)
				k.call(t, false, "matmul_bf16", pout, pw, px, rows, cols, n)
				sameBitsNaN(t, what, k.readF32(pout, n*rows), want)
				k.checkGuards(t, what)
			}
		}
	}
	for _, tc := range []struct{ rows, cols, n int }{{67, 768, 1}, {67, 768, 16}, {13, 771, 18}, {9, 2100, 1}} {
		k.reset()
		x := randF32(r, tc.n*tc.cols)
		w := randBF16(r, tc.rows*tc.cols, false)
		want := make([]float32, tc.n*tc.rows)
		px, pw := k.putF32(t, x, 1), k.putF16(t, w, 3)
		pout := k.putF32(t, want, 2)
		goMatMulBF16(want, w, x, tc.rows, tc.cols, tc.n)
		k.call(t, false, "matmul_bf16", pout, pw, px, tc.rows, tc.cols, tc.n)
		sameBitsNaN(t, fmt.Sprintf("matmul_bf16 %+v", tc), k.readF32(pout, len(want)), want)
		k.checkGuards(t, "matmul_bf16 large")
	}
}

// qBytes returns q's bytes.
func qBytes(q []int8) []byte {
	b := make([]byte, len(q))
	for i, v := range q {
		b[i] = byte(v)
	}
	return b
}

// TestWasmMatMulQExtreme holds the kernels to the largest integer sums the
// formats allow: every weight byte one pattern (all bits set, none, the
// top bit, ...), so that quants and scales sit at their ends, against
// activations whose quants are all +127, all -127 or alternate, where a
// kernel that scales its partial sums could overflow.
func TestWasmMatMulQExtreme(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(31, 32))
	fills := []byte{0x00, 0xff, 0x80, 0x7f, 0x88, 0xf0, 0x0f, 0x55, 0xaa}
	xs := map[string]func(i int) float32{
		"+127": func(int) float32 { return 1 },
		"-127": func(int) float32 { return -1 },
		"±127": func(i int) float32 { return float32(1 - 2*(i&1)) },
		"∓127": func(i int) float32 { return float32(1 - 2*(i>>4&1)) },
	}
	seed := 0
	for _, q := range QTypes() {
		for _, fill := range fills {
			for xname, xf := range xs {
				for _, sz := range []struct{ rows, blocks, n int }{{5, 2, 1}, {9, 1, 1}, {4, 3, 5}} {
					seed++
					cols := sz.blocks * q.BlockLen()
					w := make([]byte, sz.rows*q.RowBytes(cols))
					for i := range w {
						w[i] = fill
					}
					for o := 0; o < len(w); o += q.BlockBytes() {
						for _, f := range halfFields(q) {
							binary.LittleEndian.PutUint16(w[o+f:], uint16(0x83ff&r.Uint32())|uint16(6+r.IntN(4))<<10)
						}
					}
					x := make([]float32, sz.n*cols)
					for i := range x {
						x[i] = xf(i)
					}
					var a Q8
					QuantizeQ8(&a, x, sz.n, cols)
					what := fmt.Sprintf("matmul_q %v fill=%#02x x=%s rows=%d cols=%d n=%d", q, fill, xname, sz.rows, cols, sz.n)
					runMatMulQ(t, k, what, q, w, &a, sz.rows, cols, sz.n, seed)
				}
			}
		}
	}
}

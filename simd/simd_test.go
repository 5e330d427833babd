package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

// These tests hold the Go kernels, through the exported API, against
// independent float64 definitions, and check the exact properties the
// package promises. The wasm tests then hold the SIMD128 kernels to the Go
// kernels bit for bit.

// u is the unit roundoff of float32.
const u = 0x1p-24

var refSizes = []int{0, 1, 3, 7, 15, 16, 17, 31, 33, 4095}

// sub returns a copy of v placed at offset off of a longer slice, so that the
// kernels see sub-slices that do not start at an allocation.
func sub[T any](v []T, off int) []T {
	s := make([]T, off+len(v)+3)
	copy(s[off:], v)
	return s[off : off+len(v)]
}

// sumBound is the error bound of a canonical float32 sum of n terms whose
// magnitudes add up to abs, including the rounding of each product.
func sumBound(n int, abs float64) float64 {
	return 2 * (float64(n)/8 + 12) * u * abs
}

func near(tb testing.TB, what string, got float32, want, tol float64) {
	tb.Helper()
	if d := math.Abs(float64(got) - want); !(d <= tol) {
		tb.Fatalf("%s = %v, want %v ± %g (off by %g)", what, got, want, tol, d)
	}
}

func half(h uint16) float64 { return float64(float16.Frombits(h).Float32()) }

func TestMatMulReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ rows, cols, n int }{
		{0, 5, 1}, {3, 0, 2}, {1, 1, 1}, {3, 7, 1}, {7, 15, 2}, {5, 16, 3},
		{4, 17, 4}, {9, 31, 5}, {2, 33, 9}, {3, 4095, 1}, {2, 4095, 5},
	} {
		for _, off := range []int{0, 1, 2, 3} {
			x := sub(randF32(r, tc.n*tc.cols), off)
			wh := sub(randF16(r, tc.rows*tc.cols, true), (off+1)%4)
			wf := sub(randF32(r, tc.rows*tc.cols), (off+2)%4)
			oh := sub(make([]float32, tc.n*tc.rows), off)
			of := sub(make([]float32, tc.n*tc.rows), off)
			MatMulF16(oh, wh, x, tc.rows, tc.cols, tc.n)
			MatMulF32(of, wf, x, tc.rows, tc.cols, tc.n)
			for v := 0; v < tc.n; v++ {
				for row := 0; row < tc.rows; row++ {
					var sh, ah, sf, af float64
					for c := 0; c < tc.cols; c++ {
						xv := float64(x[v*tc.cols+c])
						th := half(wh[row*tc.cols+c]) * xv
						tf := float64(wf[row*tc.cols+c]) * xv
						sh, ah = sh+th, ah+math.Abs(th)
						sf, af = sf+tf, af+math.Abs(tf)
					}
					what := fmt.Sprintf("%+v off=%d: out[%d][%d]", tc, off, v, row)
					near(t, "MatMulF16 "+what, oh[v*tc.rows+row], sh, sumBound(tc.cols, ah))
					near(t, "MatMulF32 "+what, of[v*tc.rows+row], sf, sumBound(tc.cols, af))
				}
			}
		}
	}
}

// TestMatMulBatch checks that a vector's result does not depend on how many
// vectors are multiplied together.
func TestMatMulBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for rows := 1; rows <= 9; rows++ {
		for _, cols := range []int{1, 7, 8, 9, 17, 64, 65} {
			for n := 2; n <= 9; n++ {
				x := randF32(r, n*cols)
				wh := randF16(r, rows*cols, true)
				wf := randF32(r, rows*cols)
				bh := make([]float32, n*rows)
				bf := make([]float32, n*rows)
				MatMulF16(bh, wh, x, rows, cols, n)
				MatMulF32(bf, wf, x, rows, cols, n)
				one := make([]float32, rows)
				for v := 0; v < n; v++ {
					what := fmt.Sprintf("rows=%d cols=%d n=%d vector %d", rows, cols, n, v)
					xv := x[v*cols : (v+1)*cols]
					MatMulF16(one, wh, xv, rows, cols, 1)
					sameBits(t, "MatMulF16 "+what, bh[v*rows:(v+1)*rows], one)
					MatMulF32(one, wf, xv, rows, cols, 1)
					sameBits(t, "MatMulF32 "+what, bf[v*rows:(v+1)*rows], one)
				}
			}
		}
	}
}

func TestDotReference(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range refSizes {
		for _, off := range []int{0, 1, 2, 3} {
			a, b := sub(randF32(r, n), off), sub(randF32(r, n+2), (off+1)%4)
			got := Dot(a, b)
			var s, abs float64
			for i := range a {
				p := float64(a[i]) * float64(b[i])
				s, abs = s+p, abs+math.Abs(p)
			}
			near(t, fmt.Sprintf("Dot n=%d off=%d", n, off), got, s, sumBound(n, abs))
			if n == 0 {
				continue
			}
			// Dot is a row of MatMulF32.
			out := make([]float32, 1)
			MatMulF32(out, a, b, 1, n, 1)
			sameBits(t, fmt.Sprintf("Dot n=%d as MatMulF32", n), []float32{got}, out)
		}
	}
}

func TestElementwiseReference(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, n := range refSizes {
		for _, off := range []int{0, 1, 2, 3} {
			name := func(f string) string { return fmt.Sprintf("%s n=%d off=%d", f, n, off) }
			x, y0 := sub(randF32(r, n), off), randF32(r, n)
			a := randF32(r, 1)[0]

			y := sub(append([]float32(nil), y0...), (off+1)%4)
			Axpy(y, a, x)
			for i := range y {
				p := float64(a) * float64(x[i])
				near(t, name("Axpy"), y[i], float64(y0[i])+p, 2*u*(math.Abs(float64(y0[i]))+math.Abs(p)))
			}

			y = sub(append([]float32(nil), y0...), (off+2)%4)
			Add(y, x)
			for i := range y {
				near(t, name("Add"), y[i], float64(y0[i])+float64(x[i]), u*math.Abs(float64(y0[i])+float64(x[i])))
			}

			g0, b := randRange(r, n, -20, 20), randF32(r, n)
			g := sub(append([]float32(nil), g0...), off)
			SiLUMul(g, b)
			for i := range g {
				v := float64(g0[i])
				want := v / (1 + math.Exp(-v)) * float64(b[i])
				near(t, name("SiLUMul"), g[i], want, 2e-6*math.Abs(want)+1e-38)
			}

			h := randF16(r, n, true)
			w0 := sub(make([]float32, n), off)
			WidenF16(w0, h)
			for i := range h {
				if want := float16.Frombits(h[i]).Float32(); math.Float32bits(w0[i]) != math.Float32bits(want) {
					t.Fatalf("%s: WidenF16(%#04x) = %v, want %v", name("WidenF16"), h[i], w0[i], want)
				}
			}
		}
	}
}

func TestRMSNormReference(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	const eps = 1e-5
	for _, n := range refSizes[1:] {
		for _, off := range []int{0, 1, 2, 3} {
			x0 := randF32(r, n)
			x, w := sub(x0, off), sub(randF32(r, n), (off+3)%4)
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			inv := 1 / math.Sqrt(ss/float64(n)+float64(float32(eps)))
			check := func(what string, out []float32) {
				for i := range x0 {
					want := float64(w[i]) * float64(x0[i]) * inv
					near(t, fmt.Sprintf("%s n=%d off=%d [%d]", what, n, off, i), out[i], want,
						(float64(n)/8+20)*u*math.Abs(want)+1e-44)
				}
			}
			out := make([]float32, n)
			RMSNorm(out, x, w, eps)
			check("RMSNorm", out)
			RMSNorm(x, x, w, eps) // in place
			check("RMSNorm in place", x)
		}
	}
}

func TestSoftmaxReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range refSizes[1:] {
		for _, off := range []int{0, 1, 2, 3} {
			x0 := randRange(r, n, -20, 20)
			x := sub(append([]float32(nil), x0...), off)
			Softmax(x)
			m := math.Inf(-1)
			for _, v := range x0 {
				m = math.Max(m, float64(v))
			}
			var s float64
			for _, v := range x0 {
				s += math.Exp(float64(v) - m)
			}
			var total float64
			for i, v := range x0 {
				d := float64(v) - m
				want := math.Exp(d) / s
				tol := (1e-6+math.Abs(d)*u+(float64(n)/8+12)*u)*want + 1e-37
				near(t, fmt.Sprintf("Softmax n=%d off=%d [%d]", n, off, i), x[i], want, tol)
				total += float64(x[i])
			}
			near(t, fmt.Sprintf("Softmax n=%d total", n), float32(total), 1, 1e-5)
		}
	}
}

func TestRopeReference(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, hd := range []int{2, 4, 6, 8, 64} {
		for _, heads := range []int{1, 3} {
			for _, neox := range []bool{false, true} {
				x0 := randF32(r, heads*hd)
				cos, sin := randRange(r, hd/2, -1, 1), randRange(r, hd/2, -1, 1)
				x := sub(append([]float32(nil), x0...), 1)
				Rope(x, sub(cos, 2), sub(sin, 3), hd, neox)
				for h := 0; h < heads; h++ {
					for i := 0; i < hd/2; i++ {
						j, k := h*hd+2*i, h*hd+2*i+1
						if neox {
							j, k = h*hd+i, h*hd+i+hd/2
						}
						a, b := float64(x0[j]), float64(x0[k])
						c, s := float64(cos[i]), float64(sin[i])
						what := fmt.Sprintf("Rope headDim=%d heads=%d neox=%v pair %d", hd, heads, neox, i)
						near(t, what, x[j], a*c-b*s, 2*u*(math.Abs(a*c)+math.Abs(b*s)))
						near(t, what, x[k], a*s+b*c, 2*u*(math.Abs(a*s)+math.Abs(b*c)))
					}
				}
			}
		}
	}
}

// TestF16 compares F16 with float16's conversion for every finite half.
func TestF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if h&0x7c00 == 0x7c00 {
			continue // infinities and NaNs are not supported
		}
		if got, want := F16(h), float16.Frombits(h).Float32(); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("F16(%#04x) = %v (%#08x), want %v (%#08x)", h, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

// TestExp sweeps Exp densely over [-87, 88].
func TestExp(t *testing.T) {
	const steps = 1 << 21
	for i := 0; i <= steps; i++ {
		x := float32(-87 + 175*float64(i)/steps)
		want := math.Exp(float64(x))
		if got := Exp(x); !(math.Abs(float64(got)-want) <= 4e-7*want) {
			t.Fatalf("Exp(%v) = %v, want %v (relative error %.3g)", x, got, want, math.Abs(float64(got)-want)/want)
		}
	}
	// The clamps.
	for _, tc := range []struct{ x, at float32 }{
		{-1000, -87}, {-87.5, -87}, {88.5, 88}, {float32(math.Inf(1)), 88}, {float32(math.Inf(-1)), -87},
	} {
		if got, want := Exp(tc.x), Exp(tc.at); got != want {
			t.Errorf("Exp(%v) = %v, want Exp(%v) = %v", tc.x, got, tc.at, want)
		}
	}
}

// TestF16Finite puts each half with exponent 31 (and a finite one, for
// contrast) at every position of slices of every length to 19 at four
// alignments, around the uint64 words F16Finite reads, and requires it to
// say so exactly when such a half is there.
func TestF16Finite(t *testing.T) {
	if !F16Finite(nil) {
		t.Error("F16Finite(nil) = false")
	}
	for _, bad := range []uint16{0x7c00, 0xfc00, 0x7c01, 0x7fff, 0xfe00, 0xffff} {
		for n := 1; n <= 19; n++ {
			for off := range 4 {
				for at := range n {
					w := make([]uint16, n+off)[off:]
					for i := range w {
						w[i] = uint16(0x7bff - i) // finite, the largest first
					}
					if !F16Finite(w) {
						t.Fatalf("length %d, offset %d: finite halves refused", n, off)
					}
					w[at] = bad
					if F16Finite(w) {
						t.Fatalf("length %d, offset %d: %#04x at %d not seen", n, off, bad, at)
					}
				}
			}
		}
	}
	all := make([]uint16, 1<<16)
	for h := range all {
		all[h] = uint16(h)
	}
	for h := range all {
		finite := h&0x7c00 != 0x7c00
		if got := F16Finite(all[h : h+1]); got != finite {
			t.Fatalf("F16Finite([%#04x]) = %v", h, got)
		}
	}
}

// TestFlushF16 flushes every half.
func TestFlushF16(t *testing.T) {
	for _, off := range []int{0, 1, 3} {
		all := make([]uint16, 1<<16)
		for i := range all {
			all[i] = uint16(i)
		}
		w := sub(all, off)
		n := FlushF16(w)
		if want := 2 * 1023; n != want {
			t.Errorf("FlushF16 of every half (off %d) replaced %d, want %d", off, n, want)
		}
		for i, h := range w {
			orig := uint16(i)
			subnormal := orig&0x7c00 == 0 && orig&0x3ff != 0
			switch {
			case subnormal && h != orig&0x8000:
				t.Fatalf("FlushF16: subnormal %#04x became %#04x, want %#04x", orig, h, orig&0x8000)
			case !subnormal && h != orig:
				t.Fatalf("FlushF16: %#04x became %#04x, want it unchanged", orig, h)
			}
		}
	}
	if n := FlushF16(nil); n != 0 {
		t.Errorf("FlushF16(nil) = %d, want 0", n)
	}
}

func TestPanics(t *testing.T) {
	f32 := func(n int) []float32 { return make([]float32, n) }
	f16 := func(n int) []uint16 { return make([]uint16, n) }
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"MatMulF16 short out", func() { MatMulF16(f32(3), f16(8), f32(4), 2, 2, 2) }},
		{"MatMulF16 short w", func() { MatMulF16(f32(4), f16(3), f32(4), 2, 2, 2) }},
		{"MatMulF16 short x", func() { MatMulF16(f32(4), f16(4), f32(3), 2, 2, 2) }},
		{"MatMulF16 negative", func() { MatMulF16(f32(4), f16(4), f32(4), -1, 2, 2) }},
		{"MatMulF32 short out", func() { MatMulF32(f32(3), f32(8), f32(4), 2, 2, 2) }},
		{"MatMulF32 short w", func() { MatMulF32(f32(4), f32(3), f32(4), 2, 2, 2) }},
		{"MatMulF32 short x", func() { MatMulF32(f32(4), f32(4), f32(3), 2, 2, 2) }},
		{"MatMulF32 negative", func() { MatMulF32(f32(4), f32(4), f32(4), 2, 2, -1) }},
		{"Dot", func() { Dot(f32(3), f32(2)) }},
		{"Axpy", func() { Axpy(f32(3), 1, f32(2)) }},
		{"Add", func() { Add(f32(3), f32(2)) }},
		{"RMSNorm short out", func() { RMSNorm(f32(2), f32(3), f32(3), 1e-5) }},
		{"RMSNorm short w", func() { RMSNorm(f32(3), f32(3), f32(2), 1e-5) }},
		{"SiLUMul", func() { SiLUMul(f32(3), f32(2)) }},
		{"Rope odd headDim", func() { Rope(f32(6), f32(3), f32(3), 3, false) }},
		{"Rope zero headDim", func() { Rope(f32(6), f32(3), f32(3), 0, false) }},
		{"Rope ragged", func() { Rope(f32(6), f32(2), f32(2), 4, false) }},
		{"Rope short cos", func() { Rope(f32(8), f32(1), f32(2), 4, true) }},
		{"Rope short sin", func() { Rope(f32(8), f32(2), f32(1), 4, true) }},
		{"WidenF16", func() { WidenF16(f32(3), f16(2)) }},
		{"Attention negative", func() { Attention(f32(4), f32(4), f32(4), f32(4), f32(4), -1, 2, 2, 1) }},
		{"Attention short out", func() { Attention(f32(3), f32(4), f32(4), f32(4), f32(4), 2, 2, 2, 1) }},
		{"Attention short att", func() { Attention(f32(4), f32(3), f32(4), f32(4), f32(4), 2, 2, 2, 1) }},
		{"Attention short q", func() { Attention(f32(4), f32(4), f32(3), f32(4), f32(4), 2, 2, 2, 1) }},
		{"Attention short keys", func() { Attention(f32(4), f32(4), f32(4), f32(3), f32(4), 2, 2, 2, 1) }},
		{"Attention short values", func() { Attention(f32(4), f32(4), f32(4), f32(4), f32(3), 2, 2, 2, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.f()
		})
	}
}

// attnSizes are Attention's test shapes: positions, head dimensions and
// heads per KV head.
var (
	attnPositions = []int{0, 1, 3, 7, 15, 17, 4095}
	attnHeadDims  = []int{1, 3, 8, 48, 64, 65}
	attnHeads     = []int{1, 3}
)

// attentionDefinition is Attention's definition as its doc comment writes
// it, in calls of the exported API: the engine's attention before Attention.
func attentionDefinition(out, att, q, keys, values []float32, n, hd, heads int, scale float32) {
	MatMulF32(att, keys, q, n, hd, heads)
	for j := range heads {
		a := att[j*n : (j+1)*n]
		for i := range a {
			a[i] *= scale
		}
		Softmax(a)
		o := out[j*hd : (j+1)*hd]
		clear(o)
		for i, w := range a {
			Axpy(o, w, values[i*hd:(i+1)*hd])
		}
	}
}

// negZeros sets about half of v to -0, so that some sums of products are
// all zeros, whose sign shows where a sum starts (+0 + -0 is +0).
func negZeros(r *rand.Rand, v []float32) {
	for i := range v {
		if r.IntN(2) == 0 {
			v[i] = float32(math.Copysign(0, -1))
		}
	}
}

// TestAttentionDefinition requires Attention to equal its definition, and
// the Go definition (goAttention), bit for bit, weights and outputs, over
// odd sizes, unaligned slices and two kinds of data: moderate values, and
// wide ones (whose scores saturate the softmax) with half the values -0;
// and the moderate case to be near a float64 attention.
func TestAttentionDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, n := range attnPositions {
		for _, hd := range attnHeadDims {
			for _, heads := range attnHeads {
				for _, wide := range []bool{false, true} {
					off := (n + hd + heads) % 4
					gen := func(m int) []float32 {
						if wide {
							return randF32(r, m)
						}
						return randRange(r, m, -2, 2)
					}
					q := sub(gen(heads*hd), off)
					keys := sub(gen(n*hd), (off+1)%4)
					values := randF32(r, n*hd)
					if wide {
						negZeros(r, values)
					}
					values = sub(values, (off+2)%4)
					scale := float32(1 / math.Sqrt(float64(hd)))
					what := fmt.Sprintf("Attention n=%d headDim=%d heads=%d wide=%v", n, hd, heads, wide)

					out := sub(randF32(r, heads*hd), (off+3)%4) // overwritten
					att := sub(randF32(r, heads*n), off)
					Attention(out, att, q, keys, values, n, hd, heads, scale)
					wantOut, wantAtt := make([]float32, heads*hd), make([]float32, heads*n)
					attentionDefinition(wantOut, wantAtt, q, keys, values, n, hd, heads, scale)
					sameBits(t, what+" out", out, wantOut)
					sameBits(t, what+" att", att, wantAtt)
					goAttention(wantOut, wantAtt, q, keys, values, n, hd, heads, scale)
					sameBits(t, what+" out (Go)", out, wantOut)
					sameBits(t, what+" att (Go)", att, wantAtt)
					if wide {
						continue
					}
					for j := range heads {
						s := make([]float64, n)
						m := math.Inf(-1)
						for i := range s {
							for c := range hd {
								s[i] += float64(q[j*hd+c]) * float64(keys[i*hd+c])
							}
							s[i] *= float64(scale)
							m = math.Max(m, s[i])
						}
						var total float64
						for i := range s {
							s[i] = math.Exp(s[i] - m)
							total += s[i]
						}
						for c := range hd {
							var want, abs float64
							for i := range s {
								p := s[i] / total * float64(values[i*hd+c])
								want, abs = want+p, abs+math.Abs(p)
							}
							tol := (4e-5+4*float64(n+hd)*u)*abs + 1e-37
							near(t, fmt.Sprintf("%s head %d out[%d]", what, j, c), out[j*hd+c], want, tol)
						}
					}
				}
			}
		}
	}
}

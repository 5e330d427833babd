package simd

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"wisp/internal/readsum"
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
		for _, rows := range []int{1, 2, 3, 4, 5, 6, 7, 9, 13} {
			for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33} {
				for _, off := range []int{0, 1, 3} {
					w16 := randF16(rows*cols + off)[off:]
					w32 := randF32(rows*cols + off)[off:]
					x := randF32(n*cols + off)[off:]
					got, want := make([]float32, n*rows), make([]float32, n*rows)
					MatMulF16(got, w16, x, rows, cols, n)
					goMatMulF16(want, w16, x, rows, cols, n)
					same("MatMulF16", got, want)
					MatMulF16Finite(got, w16, x, rows, cols, n)
					same("MatMulF16Finite", got, want)
					MatMulF32(got, w32, x, rows, cols, n)
					goMatMulF32(want, w32, x, rows, cols, n)
					same("MatMulF32", got, want)
					MatMulBF16(got, w16, x, rows, cols, n)
					goMatMulBF16(want, w16, x, rows, cols, n)
					same("MatMulBF16", got, want)
				}
			}
		}
		for _, off := range []int{0, 1, 2, 3} {
			a, b := randF32(cols + off)[off:], randF32(cols + off)[off:]
			if got, want := Dot(a, b), goDot(a, b); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("Dot over %d at offset %d: %v, Go kernel %v", cols, off, got, want)
			}
			y := randF32(cols + off)[off:]
			want := append([]float32(nil), y...)
			s := float32(rng.NormFloat64())
			Axpy(y, s, a)
			goAxpy(want, s, a)
			same("Axpy", y, want)
		}
	}
}

// TestMatMulHostile multiplies several vectors holding hostile values
// (infinities, NaNs, values whose products overflow or fall below the
// normal range, signed zeros) by matrices of halves of every finite value,
// subnormals included, and requires the API to equal the Go kernels, NaN
// matching any NaN (the order of an operation's operands may pick another
// NaN's payload).
func TestMatMulHostile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	hostile := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 3e38, -3e38, 1e-40, -1e-45, float32(math.Copysign(0, -1)), 0, 65536, 0x1.fffffep15}
	for _, cols := range []int{8, 9, 17, 64, 100, 577} {
		for _, rows := range []int{1, 3, 4, 7, 10} {
			for _, n := range []int{2, 3, 4, 5, 9, 17} {
				for _, off := range []int{0, 1} {
					w16 := make([]uint16, rows*cols+off)[off:]
					w32 := make([]float32, rows*cols+off)[off:]
					for i := range w16 {
						for {
							h := uint16(rng.Uint32())
							if h&0x7c00 != 0x7c00 {
								w16[i] = h
								break
							}
						}
						w32[i] = F16(w16[i]) * float32(math.Pow(2, float64(rng.IntN(200)-100)))
					}
					x := make([]float32, n*cols+off)[off:]
					for i := range x {
						if rng.IntN(8) == 0 {
							x[i] = hostile[rng.IntN(len(hostile))]
						} else {
							x[i] = float32(rng.NormFloat64())
						}
					}
					got, want := make([]float32, n*rows), make([]float32, n*rows)
					check := func(what string) {
						t.Helper()
						for i := range want {
							g, w := got[i], want[i]
							if g != g && w != w {
								continue
							}
							if math.Float32bits(g) != math.Float32bits(w) {
								t.Fatalf("%s %d×%d, %d vectors, offset %d: element %d = %v, Go kernel %v", what, rows, cols, n, off, i, g, w)
							}
						}
					}
					MatMulF16(got, w16, x, rows, cols, n)
					goMatMulF16(want, w16, x, rows, cols, n)
					check("MatMulF16")
					MatMulF16Finite(got, w16, x, rows, cols, n)
					check("MatMulF16Finite")
					MatMulF32(got, w32, x, rows, cols, n)
					goMatMulF32(want, w32, x, rows, cols, n)
					check("MatMulF32")
					MatMulBF16(got, w16, x, rows, cols, n)
					goMatMulBF16(want, w16, x, rows, cols, n)
					check("MatMulBF16")
				}
			}
		}
	}
}

// TestMatVecF16Rows checks the one-vector F16 product (MatMulF16 and
// MatMulF16Finite, whose AVX2 kernel widens with F16C), whose AVX2 kernel
// takes eight rows per pass (rows%8 left over), 32 columns per step
// (then eight, then the cols%8 last one at a time), and moves the factor
// 2^112 of the widening to x when every |x[i]| < 2^16: every row count to
// 17, columns around those boundaries, unaligned data, and vectors with a
// large element (at the start, in the middle or past the last whole group
// of eight) or an infinity.
func TestMatVecF16Rows(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	halves := func(n int) []uint16 {
		v := make([]uint16, n)
		for i := range v {
			for {
				h := uint16(rng.Uint32())
				if h&0x7c00 != 0x7c00 {
					v[i] = h
					break
				}
			}
		}
		return v
	}
	for rows := 1; rows <= 17; rows++ {
		for _, cols := range []int{8, 9, 15, 16, 24, 31, 32, 33, 40, 63, 64, 65, 96, 100, 576} {
			for _, off := range []int{0, 1, 3} {
				w := halves(rows*cols + off)[off:]
				for big := range 6 {
					x := make([]float32, cols+off)[off:]
					for i := range x {
						x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2)))
					}
					switch big {
					case 1:
						x[0] = 65536
					case 2:
						x[cols/2] = -1e6
					case 3:
						x[cols-1] = 3e5 // past the groups of eight when cols%8 != 0
					case 4:
						x[cols/3] = 65535.996 // the largest float32 below 2^16
					case 5:
						x[cols/2] = float32(math.Inf(1))
					}
					got, want := make([]float32, rows), make([]float32, rows)
					MatMulF16(got, w, x, rows, cols, 1)
					goMatMulF16(want, w, x, rows, cols, 1)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%d×%d at offset %d, x case %d: row %d = %v (%#x), Go kernel %v (%#x)", rows, cols, off, big, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
					}
					MatMulF16Finite(got, w, x, rows, cols, 1)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("MatMulF16Finite %d×%d at offset %d, x case %d: row %d = %v (%#x), Go kernel %v (%#x)", rows, cols, off, big, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	}
}

// BenchmarkDecodeF16 multiplies one vector by the matrices of a
// SmolLM2-135M-shaped F16 model (30 layers of 576×576, 192×576 twice,
// 576×576, 1536×576 twice and 576×1536, then the 49152×576 classifier:
// 269 MB, far more than the caches) as a decoded token does, with
// MatMulF16 and with MatMulF16Finite (F16C natively), and reads a 256 MiB
// block (xor of uint64 words, eight accumulators) in the same iterations.
// It reports the products' GB/s and token rate, the read's GB/s, and the
// products' share of the read's speed. On the 2-core EPYC: MatMulF16 0.85
// to 0.88 of the read, MatMulF16Finite 0.95.
func BenchmarkDecodeF16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	type mat struct {
		rows, cols int
		w          []uint16
	}
	var ms []mat
	total := 0
	for range 30 {
		for _, sh := range [][2]int{{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}} {
			ms = append(ms, mat{sh[0], sh[1], benchF16(r, sh[0]*sh[1])})
			total += 2 * sh[0] * sh[1]
		}
	}
	ms = append(ms, mat{49152, 576, benchF16(r, 49152*576)})
	total += 2 * 49152 * 576
	x := randRange(r, 1536, -2, 2)
	out := make([]float32, 49152)
	block := make([]uint64, 256<<20/8)
	for i := range block {
		block[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	for _, k := range []struct {
		name string
		mul  func(out []float32, w []uint16, x []float32, rows, cols, n int)
	}{{"MatMulF16", MatMulF16}, {"MatMulF16Finite", MatMulF16Finite}} {
		b.Run(k.name, func(b *testing.B) {
			var tm, tr time.Duration
			for b.Loop() {
				t0 := time.Now()
				for _, m := range ms {
					k.mul(out, m.w, x, m.rows, m.cols, 1)
				}
				t1 := time.Now()
				readSink ^= readsum.Xor(block)
				tm, tr = tm+t1.Sub(t0), tr+time.Since(t1)
			}
			mgbs := float64(total) * float64(b.N) / tm.Seconds() / 1e9
			rgbs := float64(len(block)*8) * float64(b.N) / tr.Seconds() / 1e9
			b.ReportMetric(mgbs, "GB/s")
			b.ReportMetric(float64(b.N)/tm.Seconds(), "tok/s")
			b.ReportMetric(rgbs, "read-GB/s")
			b.ReportMetric(mgbs/rgbs, "share")
		})
	}
}

var readSink uint64

// TestSiLUMulMatchesGo requires SiLUMul (AVX2 on amd64, with Exp's
// polynomial) to equal the Go kernel bit for bit over every length to 40,
// unaligned slices and values across Exp's whole range and past its
// clamps, infinities, NaNs (any NaN matching any), subnormals and zeros.
func TestSiLUMulMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 87, -87, 88, -88, 88.5, -87.5, 100, -100, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0.5, -0.5, 1, -1}
	for n := 1; n <= 40; n++ {
		for off := range 3 {
			for rep := range 20 {
				a := make([]float32, n+off)[off:]
				b := make([]float32, n+off)[off:]
				for i := range a {
					switch rng.IntN(4) {
					case 0:
						a[i] = special[rng.IntN(len(special))]
					case 1:
						a[i] = float32(rng.Float64()*200 - 100)
					default:
						a[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2)))
					}
					b[i] = float32(rng.NormFloat64())
					if rep == 0 && i%5 == 0 {
						b[i] = special[rng.IntN(len(special))]
					}
				}
				want := append([]float32(nil), a...)
				goSiLUMul(want, b)
				a0 := append([]float32(nil), a...)
				SiLUMul(a, b)
				for i := range want {
					g, w := a[i], want[i]
					if g != g && w != w {
						continue
					}
					if math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("n=%d off=%d: element %d of SiLU(%v)·%v = %v (%#x), Go kernel %v (%#x)", n, off, i, a0[i], b[i], g, math.Float32bits(g), w, math.Float32bits(w))
					}
				}
			}
		}
	}
	// Every float32 exponent, both signs.
	var a, b, want []float32
	for e := range 256 {
		for _, m := range []uint32{0, 1, 0x400000, 0x7fffff, 0x123457} {
			for _, sg := range []uint32{0, 0x80000000} {
				a = append(a, math.Float32frombits(sg|uint32(e)<<23|m))
				b = append(b, 1)
			}
		}
	}
	want = append(want, a...)
	goSiLUMul(want, b)
	a0 := append([]float32(nil), a...)
	SiLUMul(a, b)
	for i := range want {
		g, w := a[i], want[i]
		if !(g != g && w != w) && math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("SiLU(%v (%#x)) = %v (%#x), Go kernel %v (%#x)", a0[i], math.Float32bits(a0[i]), g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
}

// TestSoftmaxMatchesGo requires Softmax (on amd64 its exponentials in
// AVX2, expShift8) to equal the Go kernel bit for bit over lengths 1 to
// 40 and longer ones, unaligned slices, and scores of moderate and of wide
// spread (whose exponentials reach Exp's clamps and underflow to zero),
// with infinities and NaNs among them (any NaN matching any).
func TestSoftmaxMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, 87, -87, 88, -88, 100, -100, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	lengths := []int{191, 256, 4095}
	for n := 1; n <= 40; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for off := range 3 {
			for rep := range 12 {
				x := make([]float32, n+off)[off:]
				spread := []float64{1, 10, 200}[rep%3]
				for i := range x {
					x[i] = float32(rng.NormFloat64() * spread)
					if rep >= 9 && rng.IntN(8) == 0 {
						x[i] = special[rng.IntN(len(special))]
					}
				}
				want := append([]float32(nil), x...)
				goSoftmax(want)
				x0 := append([]float32(nil), x...)
				Softmax(x)
				for i := range want {
					g, w := x[i], want[i]
					if !(g != g && w != w) && math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("Softmax n=%d off=%d rep=%d [%d] of %v: %v (%#x), Go kernel %v (%#x)", n, off, rep, i, x0[i], g, math.Float32bits(g), w, math.Float32bits(w))
					}
				}
			}
		}
	}
}

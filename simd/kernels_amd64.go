//go:build amd64 && !purego

package simd

import (
	"bytes"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// On amd64 with AVX2 the matrix products and dot products run in assembly
// (kernels_amd64.s) that keeps the canonical order of operations; the other
// kernels, and CPUs without AVX2, run the Go kernels.

// avx2 says whether the CPU has AVX2 (read once by x/sys/cpu at start-up).
var avx2 = cpu.X86.HasAVX2

// dot8F16 and dot8F16S: see kernels_amd64.s and matVecF16.
//
//go:noescape
func dot8F16(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)

//go:noescape
func dot8F16S(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)

// dot8F16C is dot8F16 widening with F16C (for finite halves only).
//
//go:noescape
func dot8F16C(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)

//go:noescape
func f16Small(x *float32, n int) bool

//go:noescape
func tileF32(w *float32, woffs *[3]int, x *float32, xoffs *[4]int, n int, out *[12]float32)

//go:noescape
func silu8(a, b *float32, n int)

//go:noescape
func expShift8(x *float32, m float32, n int)

//go:noescape
func axpy8(y *float32, a float32, x *float32, n int)

//go:noescape
func widen8F16(dst *float32, src *uint16, n int)

//go:noescape
func mix8(out *float32, a *float32, v *float32, n, stride, cols int)

//go:noescape
func dot4F32(a *float32, b *float32, stride int, n int, out *[4]float32)

// Kernels reports which implementation the API runs: "go", "amd64-avx2"
// or "wasm-simd128".
func Kernels() string {
	if avx2 {
		return "amd64-avx2"
	}
	return "go"
}

// matMulF16Finite widens with F16C in the matrix-vector product; a prompt's
// product widens each row once for every vector (matMulF16), so the
// widening's cost does not matter there.
func matMulF16Finite(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if !avx2 || cols < 8 || n != 1 {
		matMulF16(out, w, x, rows, cols, n)
		return
	}
	matVecF16(out, w, x, rows, cols, true)
}

func matMulF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if !avx2 || cols < 8 {
		goMatMulF16(out, w, x, rows, cols, n)
		return
	}
	if n == 1 {
		matVecF16(out, w, x, rows, cols, false)
		return
	}
	// Widen three rows at a time once and use them for every vector, in
	// tiles of three rows by four vectors.
	buf := make([]float32, 3*cols)
	for r0 := 0; r0 < rows; r0 += 3 {
		nr := min(3, rows-r0)
		for k := range nr {
			widenRow(buf[k*cols:(k+1)*cols], w[(r0+k)*cols:(r0+k+1)*cols])
		}
		tileRows(out, rows, r0, nr, buf, x, cols, n)
	}
}

// widenRow widens a row of halves, eight at a time in assembly.
func widenRow(dst []float32, src []uint16) {
	c8 := len(dst) &^ 7
	if c8 > 0 {
		widen8F16(&dst[0], &src[0], c8)
	}
	for i := c8; i < len(dst); i++ {
		dst[i] = F16(src[i])
	}
}

// tileVectors is matMulF32 for n <= 3 vectors (attention's scores: the
// query heads that share a key head, times every cached key) with the
// tile's roles swapped: the vectors take its three rows and four rows of w
// at a time its four vectors, so that no tile repeats a vector when n is
// 3. A dot product's terms and their order do not depend on which side is
// which (each product a·b equals b·a), so the sums are tileRows's.
func tileVectors(out []float32, w, x []float32, rows, cols, n int) {
	c8 := cols &^ 7
	var xoffs [3]int
	for k := range xoffs {
		xoffs[k] = min(k, n-1) * cols * 4
	}
	var woffs [4]int
	var s [12]float32
	for r0 := 0; r0 < rows; r0 += 4 {
		nr := min(4, rows-r0)
		for j := range woffs {
			woffs[j] = (r0 + min(j, nr-1)) * cols * 4
		}
		tileF32(&x[0], &xoffs, &w[0], &woffs, c8, &s)
		for k := range n {
			o := out[k*rows+r0 : k*rows+r0+nr]
			for j := range o {
				o[j] = s[4*k+j]
				if c8 < cols {
					o[j] = tailF32(o[j], w[(r0+j)*cols:(r0+j+1)*cols], x[k*cols:(k+1)*cols], c8)
				}
			}
		}
	}
}

// tileRows sets out[t*rows+r0+k] = dot(w[k*cols:(k+1)*cols], x[t]) for
// the nr <= 3 rows of w and the n vectors x[t] of cols >= 8 values, in
// tiles of three rows by four vectors (tileF32); a tile short of rows or
// vectors repeats its last one and drops the repeats' sums.
func tileRows(out []float32, rows, r0, nr int, w, x []float32, cols, n int) {
	c8 := cols &^ 7
	var woffs [3]int
	for k := range woffs {
		woffs[k] = min(k, nr-1) * cols * 4
	}
	var xoffs [4]int
	var s [12]float32
	for t := 0; t < n; t += 4 {
		nt := min(4, n-t)
		for j := range xoffs {
			xoffs[j] = (t + min(j, nt-1)) * cols * 4
		}
		tileF32(&w[0], &woffs, &x[0], &xoffs, c8, &s)
		if c8 == cols {
			for j := range nt {
				o := out[(t+j)*rows+r0 : (t+j)*rows+r0+nr]
				for k := range o {
					o[k] = s[4*k+j]
				}
			}
			continue
		}
		for k := range nr {
			for j := range nt {
				out[(t+j)*rows+r0+k] = tailF32(s[4*k+j], w[k*cols:(k+1)*cols], x[(t+j)*cols:(t+j+1)*cols], c8)
			}
		}
	}
}

// matVecF16 computes rows of w·x, eight rows per pass sharing the loads of
// x: rows r, p+r, …, 7p+r (p = rows/8) in pass r, so that each of the
// eight streams reads memory sequentially, which the hardware prefetcher
// follows (adjacent rows are slower on large matrices). The rows%8 last
// rows take one more pass, whose missing rows repeat the last. With finite
// weights (F16Finite) the kernel widens with F16C (dot8F16C); otherwise,
// when every |x[i]| < 2^16, it moves the widening's factor 2^112 from the
// halves to x (dot8F16S), one multiplication per eight columns and pass
// instead of one per row.
func matVecF16(out []float32, w []uint16, x []float32, rows, cols int, finite bool) {
	c8 := cols &^ 7
	// A switch rather than a func value, through which offs and s would
	// escape to the heap on every call.
	kind := f16Plain
	switch {
	case finite:
		kind = f16C
	case f16Small(&x[0], c8):
		kind = f16Scaled
	}
	dot8 := func(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32) {
		switch kind {
		case f16C:
			dot8F16C(w, offs, x, n, out)
		case f16Scaled:
			dot8F16S(w, offs, x, n, out)
		default:
			dot8F16(w, offs, x, n, out)
		}
	}
	var offs [8]int
	var s [8]float32
	p := rows / 8
	for r := range p {
		for j := range offs {
			offs[j] = (j*p + r) * cols * 2
		}
		dot8(&w[0], &offs, &x[0], c8, &s)
		for j, v := range s {
			i := j*p + r
			out[i] = tailF16(v, w[i*cols:(i+1)*cols], x, c8)
		}
	}
	if l := rows - 8*p; l > 0 {
		for j := range offs {
			offs[j] = (8*p + min(j, l-1)) * cols * 2
		}
		dot8(&w[0], &offs, &x[0], c8, &s)
		for j, v := range s[:l] {
			i := 8*p + j
			out[i] = tailF16(v, w[i*cols:(i+1)*cols], x, c8)
		}
	}
}

// The widenings of matVecF16's passes.
const (
	f16Plain  = iota // dot8F16
	f16C             // dot8F16C: finite halves, F16C
	f16Scaled        // dot8F16S: 2^112 moved to x
)

// tailF16 adds the terms past the last whole group of eight, one at a time.
func tailF16(t float32, w []uint16, x []float32, from int) float32 {
	for i := from; i < len(w); i++ {
		t += float32(F16(w[i]) * x[i])
	}
	return t
}

func tailF32(t float32, a, b []float32, from int) float32 {
	for i := from; i < len(a); i++ {
		t += float32(a[i] * b[i])
	}
	return t
}

func matMulF32(out []float32, w []float32, x []float32, rows, cols, n int) {
	if !avx2 || cols < 8 {
		goMatMulF32(out, w, x, rows, cols, n)
		return
	}
	if n > 1 && n <= 3 && rows > 3 {
		tileVectors(out, w, x, rows, cols, n)
		return
	}
	if n > 1 {
		for r0 := 0; r0 < rows; r0 += 3 {
			tileRows(out, rows, r0, min(3, rows-r0), w[r0*cols:], x, cols, n)
		}
		return
	}
	c8 := cols &^ 7
	var s [4]float32
	for t := range n {
		xt := x[t*cols : (t+1)*cols]
		ot := out[t*rows : (t+1)*rows]
		r := 0
		for ; r+4 <= rows; r += 4 {
			dot4F32(&xt[0], &w[r*cols], cols, c8, &s)
			for k := range 4 {
				ot[r+k] = tailF32(s[k], xt, w[(r+k)*cols:(r+k+1)*cols], c8)
			}
		}
		for ; r < rows; r++ {
			dot4F32(&xt[0], &w[r*cols], 0, c8, &s)
			ot[r] = tailF32(s[0], xt, w[r*cols:(r+1)*cols], c8)
		}
	}
}

func dot(a, b []float32) float32 {
	if !avx2 || len(a) < 8 {
		return goDot(a, b)
	}
	c8 := len(a) &^ 7
	var s [4]float32
	dot4F32(&a[0], &b[0], 0, c8, &s)
	return tailF32(s[0], a, b, c8)
}

func axpy(y []float32, a float32, x []float32) {
	c8 := len(y) &^ 7
	if !avx2 || c8 == 0 {
		goAxpy(y, a, x)
		return
	}
	axpy8(&y[0], a, &x[0], c8)
	goAxpy(y[c8:], a, x[c8:])
}

// attention is goAttention with the AVX2 matrix product for the scores and
// mix for the weighted sums of the values.
func attention(out, att, q, keys, values []float32, n, hd, heads int, scale float32) {
	matMulF32(att, keys, q, n, hd, heads)
	for j := range heads {
		a := att[j*n : (j+1)*n]
		for i := range a {
			a[i] *= scale
		}
		softmax(a)
		mix(out[j*hd:(j+1)*hd], a, values)
	}
}

// mix is goMix: the columns in groups of eight in assembly (mix8), each
// group's sums held in registers over every position, the last hd%8
// columns in Go, each column's terms in the same order.
func mix(out, a, v []float32) {
	hd := len(out)
	c8 := hd &^ 7
	if !avx2 || c8 == 0 {
		goMix(out, a, v)
		return
	}
	mix8(&out[0], &a[0], &v[0], len(a), hd, c8)
	for c := c8; c < hd; c++ {
		var s float32
		for i, w := range a {
			s += float32(w * v[i*hd+c])
		}
		out[c] = s
	}
}

func add(dst, src []float32)                   { goAdd(dst, src) }
func rmsNorm(out, x, w []float32, eps float32) { goRMSNorm(out, x, w, eps) }

// softmax is goSoftmax with the exponentials eight at a time in assembly
// (expShift8: Exp's polynomial in the same float32 steps).
func softmax(x []float32) {
	if !avx2 || len(x) < 8 {
		goSoftmax(x)
		return
	}
	softmaxBy(x, func(x []float32, m float32) {
		c8 := len(x) &^ 7
		expShift8(&x[0], m, c8)
		goExpShift(x[c8:], m)
	})
}
func siluMul(a, b []float32) {
	c8 := len(a) &^ 7
	if !avx2 || c8 == 0 {
		goSiLUMul(a, b)
		return
	}
	silu8(&a[0], &b[0], c8)
	goSiLUMul(a[c8:], b[c8:])
}
func rope(x []float32, cos, sin []float32, headDim int, neox bool) {
	goRope(x, cos, sin, headDim, neox)
}
func widenF16(dst []float32, src []uint16) { goWidenF16(dst, src) }
func flushF16(w []uint16) int              { return goFlushF16(w) }

// The quantized kernels and bfloat16 run the Go definitions here for now.
func matMulBF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if !avx2 || cols < 8 || n == 1 {
		goMatMulBF16(out, w, x, rows, cols, n)
		return
	}
	// As matMulF16: three rows widened (exactly) at a time, then tiles.
	buf := make([]float32, 3*cols)
	for r0 := 0; r0 < rows; r0 += 3 {
		nr := min(3, rows-r0)
		for k := range nr {
			row := buf[k*cols : (k+1)*cols]
			for c, h := range w[(r0+k)*cols : (r0+k+1)*cols] {
				row[c] = BF16(h)
			}
		}
		tileRows(out, rows, r0, nr, buf, x, cols, n)
	}
}

// quantQ8 quantizes the blocks of x in order while they are finite and
// returns how many it did (see kernels_amd64.s).
//
//go:noescape
func quantQ8(x *float32, q *int8, d, s *float32, sum *int32, nb int) int

func quantizeQ8(dst *Q8, x []float32) {
	if !avx2 {
		goQuantizeQ8(dst, x)
		return
	}
	nb := len(x) / 32
	for b := 0; b < nb; {
		b += quantQ8(&x[32*b], &dst.Q[32*b], &dst.D[b], &dst.S[b], &dst.Sum[b], nb-b)
		if b < nb {
			// A block with an infinity or a NaN: the Go definition.
			one := Q8{Q: dst.Q[32*b : 32*b+32], D: dst.D[b : b+1], S: dst.S[b : b+1], Sum: dst.Sum[b : b+1]}
			goQuantizeQ8(&one, x[32*b:32*b+32])
			b++
		}
	}
}

// The quantized products. A matrix-vector kernel (mvQ8_0...) multiplies one
// vector by eight rows at once, the rows at w+offs[k]: each lane of its
// YMM registers is one row, the integer sums I_b of a block are taken with
// VPMADDUBSW and a tree of horizontal adds (exact in any order, within
// int16 where the bounds of the type allow it), and every lane then runs
// the float steps of quant.go in order, a separate VMULPS or VADDPS each.
// nb is the number of blocks of the row (of 32, or super-blocks of 256);
// x, d and s point at the vector's Q8 blocks.

//go:noescape
func mvQ8_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

// mm2Q8_0 is mvQ8_0 for two vectors: the second's blocks 8·xs8 bytes
// further in x and xs8 bytes further in d, its results in out1.
//
//go:noescape
func mm2Q8_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32, xs8 int, out1 *[8]float32)

//go:noescape
func mvQ4_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ6_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ4_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ4_1(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ5_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ5_1(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

//go:noescape
func mvQ5_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)

// widenF16C widens eight halves with F16C's VCVTPH2PS (tests only: it is
// not F16, see TestF16CWidening).
//
//go:noescape
func widenF16C(dst *[8]float32, src *[8]uint16)

// mv calls the kernel of q. (Through a table of func values, offs and out
// would escape to the heap at every call.)
func mv(q QType, w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32) {
	switch q {
	case Q8_0:
		mvQ8_0(w, offs, x, d, s, nb, out)
	case Q4_0:
		mvQ4_0(w, offs, x, d, s, nb, out)
	case Q4_1:
		mvQ4_1(w, offs, x, d, s, nb, out)
	case Q5_0:
		mvQ5_0(w, offs, x, d, s, nb, out)
	case Q5_1:
		mvQ5_1(w, offs, x, d, s, nb, out)
	case Q4_K:
		mvQ4_K(w, offs, x, d, s, nb, out)
	case Q5_K:
		mvQ5_K(w, offs, x, d, s, nb, out)
	case Q6_K:
		mvQ6_K(w, offs, x, d, s, nb, out)
	default:
		panic("simd: no kernel for " + q.String())
	}
}

func matMulQ(out []float32, q QType, w []byte, x *Q8, rows, cols, n int) {
	// The kernels multiply activations by sign tricks and VPMADDUBSW,
	// exact for |q| <= 127, which is every value QuantizeQ8 makes; a Q8
	// built otherwise with a -128 takes the Go definition.
	if !avx2 || !hasMV(q) || hasMinus128(x.Q[:n*cols]) {
		goMatMulQ(out, q, w, x, rows, cols, n)
		return
	}
	nb := cols / q.BlockLen()
	rb := nb * q.BlockBytes()
	// Several vectors go through a panel of passes (whose weights stay in
	// the cache, about 128 KiB of them) one after the other, so that the
	// matrix is read from memory once, not n times.
	passes := rows / 8
	panel := max(1, (128<<10)/(8*rb))
	for r0 := 0; r0 < passes || r0 == 0; r0 += panel {
		r1 := min(r0+panel, passes)
		t := 0
		if q == Q8_0 {
			// Two vectors per pass, sharing each row's loads and scales.
			for ; t+2 <= n; t += 2 {
				b := t * cols / 32
				mvQ8_0x2(out[t*rows:(t+2)*rows], w, rb, &x.Q[t*cols], &x.D[b], nb, rows, cols, r0, r1)
			}
		}
		for ; t < n; t++ {
			b := t * cols / 32
			mvQ(q, out[t*rows:(t+1)*rows], w, rb, &x.Q[t*cols], &x.D[b], &x.S[b], nb, rows, r0, r1)
		}
	}
}

// mvQ computes one vector's products with passes r0..r1 of rows rows of rb
// bytes, eight rows per pass: rows r, p+r, …, 7p+r (p = rows/8) in pass r,
// a stride apart so that each of the eight streams reads memory
// sequentially (as matVecF16 does). The rows%8 last rows take one more
// pass, whose missing rows repeat the last, with the first panel (r0 = 0).
func mvQ(q QType, out []float32, w []byte, rb int, xq *int8, xd, xs *float32, nb, rows, r0, r1 int) {
	var offs [8]int
	var s [8]float32
	p := rows / 8
	for r := r0; r < r1; r++ {
		for j := range offs {
			offs[j] = (j*p + r) * rb
		}
		mv(q, &w[0], &offs, xq, xd, xs, nb, &s)
		for j, v := range s {
			out[j*p+r] = v
		}
	}
	if l := rows - 8*p; l > 0 && r0 == 0 {
		for j := range offs {
			offs[j] = (8*p + min(j, l-1)) * rb
		}
		mv(q, &w[0], &offs, xq, xd, xs, nb, &s)
		copy(out[8*p:rows], s[:l])
	}
}

// mvQ8_0x2 is mvQ for Q8_0 and two vectors of cols values (mm2Q8_0), the
// second right after the first in x and in out.
func mvQ8_0x2(out []float32, w []byte, rb int, xq *int8, xd *float32, nb, rows, cols, r0, r1 int) {
	var offs [8]int
	var s0, s1 [8]float32
	p := rows / 8
	o0, o1 := out[:rows], out[rows:2*rows]
	for r := r0; r < r1; r++ {
		for j := range offs {
			offs[j] = (j*p + r) * rb
		}
		mm2Q8_0(&w[0], &offs, xq, xd, xd, nb, &s0, cols/8, &s1)
		for j := range s0 {
			o0[j*p+r], o1[j*p+r] = s0[j], s1[j]
		}
	}
	if l := rows - 8*p; l > 0 && r0 == 0 {
		for j := range offs {
			offs[j] = (8*p + min(j, l-1)) * rb
		}
		mm2Q8_0(&w[0], &offs, xq, xd, xd, nb, &s0, cols/8, &s1)
		copy(o0[8*p:rows], s0[:l])
		copy(o1[8*p:rows], s1[:l])
	}
}

// hasMV reports whether q has a kernel.
func hasMV(q QType) bool { return q >= Q8_0 && q <= Q6_K }

// hasMinus128 reports whether q holds a -128.
func hasMinus128(q []int8) bool {
	return bytes.IndexByte(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q)), 0x80) >= 0
}

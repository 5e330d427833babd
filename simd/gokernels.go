package simd

import (
	"math"
)

// This file holds the portable Go kernels. They are compiled on every build
// (the wasm tests compare the SIMD128 kernels against them) and are what the
// exported functions run off GOARCH=wasm. Every product is converted to
// float32 explicitly so that no compiler fuses it into a multiply-add.

// reduce8 reduces the eight lanes of a canonical sum.
func reduce8(s0, s1, s2, s3, s4, s5, s6, s7 float32) float32 {
	a0 := s0 + s4
	a1 := s1 + s5
	a2 := s2 + s6
	a3 := s3 + s7
	return (a0 + a2) + (a1 + a3)
}

func goDot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	n8 := n &^ 7
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for i := 0; i < n8; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += float32(aa[0] * bb[0])
		s1 += float32(aa[1] * bb[1])
		s2 += float32(aa[2] * bb[2])
		s3 += float32(aa[3] * bb[3])
		s4 += float32(aa[4] * bb[4])
		s5 += float32(aa[5] * bb[5])
		s6 += float32(aa[6] * bb[6])
		s7 += float32(aa[7] * bb[7])
	}
	t := reduce8(s0, s1, s2, s3, s4, s5, s6, s7)
	for i := n8; i < n; i++ {
		t += float32(a[i] * b[i])
	}
	return t
}

// goDotF16 is goDot with the first operand in halves.
func goDotF16(w []uint16, x []float32) float32 {
	n := len(w)
	x = x[:n]
	n8 := n &^ 7
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for i := 0; i < n8; i += 8 {
		ww := w[i : i+8 : i+8]
		xx := x[i : i+8 : i+8]
		s0 += float32(F16(ww[0]) * xx[0])
		s1 += float32(F16(ww[1]) * xx[1])
		s2 += float32(F16(ww[2]) * xx[2])
		s3 += float32(F16(ww[3]) * xx[3])
		s4 += float32(F16(ww[4]) * xx[4])
		s5 += float32(F16(ww[5]) * xx[5])
		s6 += float32(F16(ww[6]) * xx[6])
		s7 += float32(F16(ww[7]) * xx[7])
	}
	t := reduce8(s0, s1, s2, s3, s4, s5, s6, s7)
	for i := n8; i < n; i++ {
		t += float32(F16(w[i]) * x[i])
	}
	return t
}

func goMatMulF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if n == 1 {
		for r := 0; r < rows; r++ {
			out[r] = goDotF16(w[r*cols:(r+1)*cols], x)
		}
		return
	}
	// Widen each row once and use it for every vector.
	row := make([]float32, cols)
	for r := 0; r < rows; r++ {
		goWidenF16(row, w[r*cols:(r+1)*cols])
		for t := 0; t < n; t++ {
			out[t*rows+r] = goDot(row, x[t*cols:(t+1)*cols])
		}
	}
}

func goMatMulF32(out []float32, w []float32, x []float32, rows, cols, n int) {
	for r := 0; r < rows; r++ {
		wr := w[r*cols : (r+1)*cols]
		for t := 0; t < n; t++ {
			out[t*rows+r] = goDot(wr, x[t*cols:(t+1)*cols])
		}
	}
}

func goAxpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += float32(a * x[i])
	}
}

func goAdd(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

func goRMSNorm(out, x, w []float32, eps float32) {
	ss := goDot(x, x)
	ms := ss/float32(len(x)) + eps
	inv := 1 / float32(math.Sqrt(float64(ms)))
	out = out[:len(x)]
	w = w[:len(x)]
	for i := range x {
		out[i] = w[i] * float32(x[i]*inv)
	}
}

// goSum returns Σ x[i] in the canonical order.
func goSum(x []float32) float32 {
	n := len(x)
	n8 := n &^ 7
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for i := 0; i < n8; i += 8 {
		xx := x[i : i+8 : i+8]
		s0 += xx[0]
		s1 += xx[1]
		s2 += xx[2]
		s3 += xx[3]
		s4 += xx[4]
		s5 += xx[5]
		s6 += xx[6]
		s7 += xx[7]
	}
	t := reduce8(s0, s1, s2, s3, s4, s5, s6, s7)
	for i := n8; i < n; i++ {
		t += x[i]
	}
	return t
}

// goSoftmax is Softmax's definition.
func goSoftmax(x []float32) { softmaxBy(x, goExpShift) }

// softmaxBy is Softmax with expShift for its exponentials: the maximum m,
// x[i] = Exp(x[i] - m) by expShift(x, m), then every x[i] times one over
// their sum (goSum). The kernels differ only in expShift.
func softmaxBy(x []float32, expShift func(x []float32, m float32)) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	expShift(x, m)
	inv := 1 / goSum(x)
	for i := range x {
		x[i] *= inv
	}
}

// goExpShift sets x[i] = Exp(x[i] - m), the difference rounded to
// float32 first.
func goExpShift(x []float32, m float32) {
	for i, v := range x {
		x[i] = Exp(v - m)
	}
}

// goAttention is Attention's definition, written as it reads.
func goAttention(out, att, q, keys, values []float32, n, hd, heads int, scale float32) {
	goMatMulF32(att, keys, q, n, hd, heads)
	for j := range heads {
		a := att[j*n : (j+1)*n]
		for i := range a {
			a[i] *= scale
		}
		if n > 0 {
			goSoftmax(a)
		}
		goMix(out[j*hd:(j+1)*hd], a, values)
	}
}

// goMix sets out[c] = Σ a[i]·v[i*len(out)+c] over i < len(a), from +0 and
// in increasing i, each product rounded before its sum: clear(out) and
// then goAxpy(out, a[i], v[i*len(out):]) for each i.
func goMix(out, a, v []float32) {
	hd := len(out)
	clear(out)
	for i, w := range a {
		goAxpy(out, w, v[i*hd:(i+1)*hd])
	}
}

func goSiLUMul(a, b []float32) {
	b = b[:len(a)]
	for i, v := range a {
		a[i] = float32(v/(1+Exp(-v))) * b[i]
	}
}

func goRope(x []float32, cos, sin []float32, headDim int, neox bool) {
	half := headDim / 2
	cos, sin = cos[:half], sin[:half]
	for h := 0; h+headDim <= len(x); h += headDim {
		v := x[h : h+headDim : h+headDim]
		for i := 0; i < half; i++ {
			j, k := 2*i, 2*i+1
			if neox {
				j, k = i, i+half
			}
			a, b := v[j], v[k]
			c, s := cos[i], sin[i]
			v[j] = float32(a*c) - float32(b*s)
			v[k] = float32(a*s) + float32(b*c)
		}
	}
}

func goWidenF16(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = F16(h)
	}
}

func goFlushF16(w []uint16) int {
	n := 0
	for i, h := range w {
		if h&0x7c00 == 0 && h&0x03ff != 0 {
			w[i] = h & 0x8000
			n++
		}
	}
	return n
}

// goDotBF16 is goDot with the first operand in bfloat16.
func goDotBF16(w []uint16, x []float32) float32 {
	n := len(w)
	x = x[:n]
	n8 := n &^ 7
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for i := 0; i < n8; i += 8 {
		ww := w[i : i+8 : i+8]
		xx := x[i : i+8 : i+8]
		s0 += float32(BF16(ww[0]) * xx[0])
		s1 += float32(BF16(ww[1]) * xx[1])
		s2 += float32(BF16(ww[2]) * xx[2])
		s3 += float32(BF16(ww[3]) * xx[3])
		s4 += float32(BF16(ww[4]) * xx[4])
		s5 += float32(BF16(ww[5]) * xx[5])
		s6 += float32(BF16(ww[6]) * xx[6])
		s7 += float32(BF16(ww[7]) * xx[7])
	}
	t := reduce8(s0, s1, s2, s3, s4, s5, s6, s7)
	for i := n8; i < n; i++ {
		t += float32(BF16(w[i]) * x[i])
	}
	return t
}

func goMatMulBF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if n == 1 {
		for r := 0; r < rows; r++ {
			out[r] = goDotBF16(w[r*cols:(r+1)*cols], x)
		}
		return
	}
	row := make([]float32, cols)
	for r := 0; r < rows; r++ {
		for c, h := range w[r*cols : (r+1)*cols] {
			row[c] = BF16(h)
		}
		for t := 0; t < n; t++ {
			out[t*rows+r] = goDot(row, x[t*cols:(t+1)*cols])
		}
	}
}

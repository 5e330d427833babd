package engine

import "math"

// RoPE angles. Pair i of a head of size d at position p is rotated by
// p·θᵢ with θᵢ = base^(-2i/d), as in llama.cpp and llama2.c. The angles are
// computed in float64 and their cosines and sines rounded to float32.
//
// math.Exp, math.Log and math.Pow have assembly versions on amd64 that need
// not agree with the pure Go ones used on wasm, so the inverse frequencies
// come from ln and exp written here, in plain float64 arithmetic that every
// build evaluates alike. math.Sincos is pure Go everywhere.

// ropeFreqs returns θᵢ for i < headDim/2.
func ropeFreqs(base float64, headDim int) []float64 {
	lnBase := ln(base)
	f := make([]float64, headDim/2)
	for i := range f {
		f[i] = exp(-float64(2*i) / float64(headDim) * lnBase)
	}
	return f
}

// ropeAngles fills cos and sin with the rotation of position pos.
func ropeAngles(cos, sin []float32, freqs []float64, pos int) {
	for i, f := range freqs {
		s, c := math.Sincos(float64(pos) * f)
		cos[i], sin[i] = float32(c), float32(s)
	}
}

// ln returns the natural logarithm of x > 0 with an error of a few ulp:
// x = m·2^e with m in [√½, √2), ln m = 2·atanh((m-1)/(m+1)) by its series.
func ln(x float64) float64 {
	m, e := math.Frexp(x) // m in [½, 1)
	if m < math.Sqrt2/2 {
		m *= 2
		e--
	}
	s := (m - 1) / (m + 1)
	s2 := float64(s * s)
	term, sum := s, 0.0
	for k := 1; k < 40; k += 2 {
		sum += term / float64(k)
		term = float64(term * s2)
	}
	return float64(2*sum) + float64(float64(e)*math.Ln2)
}

// exp returns e^x for |x| < 700 with an error of a few ulp: x = k·ln2 + r,
// e^r by its Taylor series, scaled by 2^k.
func exp(x float64) float64 {
	k := math.Round(x / math.Ln2)
	r := x - float64(k*math.Ln2)
	term, sum := 1.0, 1.0
	for n := 1; n < 24; n++ {
		term = float64(term*r) / float64(n)
		sum += term
	}
	return math.Ldexp(sum, int(k))
}

// Package quant stores float32 weights in ggml's block formats (Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) and in bfloat16, byte for byte as
// ggml lays them out (simd.Dequantize decodes them, as ggml's
// dequantize_row_* functions do), and chooses the type of each tensor of a
// model the way llama.cpp's llama-quantize does for its Q4_K_M and Q5_K_M
// mixtures (see Scheme).
//
// The quantizers follow the ideas of ggml's reference quantizers
// (quantize_row_*_ref), which llama-quantize uses when it has no
// importance matrix:
//
//   - Q8_0, Q4_0 and Q5_0 scale each block of 32 by its largest magnitude:
//     d = amax/127 for Q8_0; for Q4_0 and Q5_0 the value of largest
//     magnitude, sign included, becomes the most negative quant (-8 or
//     -16), so that the asymmetric range [-8, 7] or [-16, 15] is used in
//     full.
//   - Q4_1 and Q5_1 map each block's [min, max] onto [0, 15] or [0, 31].
//   - Q4_K and Q5_K fit a scale and a min to each sub-block of 32 by a
//     search: a few candidate scales around (max-min)/nmax each give a
//     rounding of the values, and a weighted least-squares fit of scale and
//     min to that rounding (weights |x| + the sub-block's RMS, so large
//     values count more) is kept if it lowers the weighted squared error.
//     The eight scales and eight mins are then quantized to 6 bits against
//     the super-block's two half-precision factors, and every value is
//     rounded once more with the scales as stored.
//   - Q6_K fits a signed scale to each sub-block of 16 by trying scales
//     around amax/32 (weights x², a least-squares scale for each rounding),
//     then quantizes the sixteen scales to 8 bits against one
//     half-precision factor and rounds the values again.
//
// Where ggml rounds with a block scale it has not yet stored in half
// precision, this package uses the stored (rounded) scale, which can only
// bring each value nearer its reconstruction.
//
// Values must be finite: NaN or ±Inf, or a block whose scale would
// overflow a half, is an error rather than a block of garbage. Very small
// blocks may underflow to zero, as in ggml.
package quant

import (
	"fmt"
	"math"

	"github.com/x448/float16"

	"wisp/engine/gguf"
	"wisp/simd"
)

// QType returns the block format of a quantized GGUF type.
func QType(t gguf.TensorType) (simd.QType, bool) {
	q, ok := qtypes[t]
	return q, ok
}

// TensorType returns the GGUF type of a block format.
func TensorType(q simd.QType) gguf.TensorType {
	for t, v := range qtypes {
		if v == q {
			return t
		}
	}
	panic("quant: no GGUF type for " + q.String())
}

var qtypes = map[gguf.TensorType]simd.QType{
	gguf.Q8_0: simd.Q8_0, gguf.Q4_0: simd.Q4_0, gguf.Q4_1: simd.Q4_1,
	gguf.Q5_0: simd.Q5_0, gguf.Q5_1: simd.Q5_1, gguf.Q4_K: simd.Q4_K,
	gguf.Q5_K: simd.Q5_K, gguf.Q6_K: simd.Q6_K,
}

// Quantize returns src, whose length must be a multiple of q.BlockLen(),
// in format q: len(src)/q.BlockLen() blocks of q.BlockBytes() bytes.
func Quantize(q simd.QType, src []float32) ([]byte, error) {
	if len(src)%q.BlockLen() != 0 {
		return nil, fmt.Errorf("quant: %d values are not a whole number of %v blocks of %d", len(src), q, q.BlockLen())
	}
	dst := make([]byte, q.RowBytes(len(src)))
	if err := QuantizeInto(q, dst, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// QuantizeInto writes src in format q into dst, which must hold exactly
// q.RowBytes(len(src)) bytes. On error dst holds no meaningful data.
func QuantizeInto(q simd.QType, dst []byte, src []float32) error {
	bl, bb := q.BlockLen(), q.BlockBytes()
	if len(src)%bl != 0 || len(dst) != len(src)/bl*bb {
		return fmt.Errorf("quant: %d values and %d bytes do not make whole %v blocks", len(src), len(dst), q)
	}
	return quantizeFrom(q, dst, src, 0)
}

// quantizeFrom is QuantizeInto for values that start at index first of a
// tensor, which the errors count from.
func quantizeFrom(q simd.QType, dst []byte, src []float32, first int) error {
	bl, bb := q.BlockLen(), q.BlockBytes()
	for i, v := range src {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("quant: value %d is %v; %v stores finite values only", first+i, v, q)
		}
	}
	enc := encoders[q]
	var k kscratch
	for b := range len(src) / bl {
		if err := enc(dst[b*bb:(b+1)*bb], src[b*bl:(b+1)*bl], &k); err != nil {
			at := first + b*bl
			return fmt.Errorf("quant: %v block of values %d to %d: %w", q, at, at+bl-1, err)
		}
	}
	return nil
}

// encoders quantize one block each.
var encoders = map[simd.QType]func(dst []byte, x []float32, k *kscratch) error{
	simd.Q8_0: func(dst []byte, x []float32, _ *kscratch) error { return quantizeQ8_0(dst, x) },
	simd.Q4_0: func(dst []byte, x []float32, _ *kscratch) error { return quantizeSym(dst, x, 4) },
	simd.Q5_0: func(dst []byte, x []float32, _ *kscratch) error { return quantizeSym(dst, x, 5) },
	simd.Q4_1: func(dst []byte, x []float32, _ *kscratch) error { return quantizeMinMax(dst, x, 4) },
	simd.Q5_1: func(dst []byte, x []float32, _ *kscratch) error { return quantizeMinMax(dst, x, 5) },
	simd.Q4_K: func(dst []byte, x []float32, k *kscratch) error { return quantizeQxK(dst, x, 4, k) },
	simd.Q5_K: func(dst []byte, x []float32, k *kscratch) error { return quantizeQxK(dst, x, 5, k) },
	simd.Q6_K: func(dst []byte, x []float32, k *kscratch) error { return quantizeQ6K(dst, x, k) },
}

// half rounds f to the nearest half (ties to even), returning its bits and
// its value as the kernels widen it. It fails if the half would be
// infinite.
func half(f float32, what string) (uint16, float32, error) {
	h := float16.Fromfloat32(f).Bits()
	if h&0x7c00 == 0x7c00 {
		return 0, 0, fmt.Errorf("%s %g is too large for a half (at most 65504): the values are too large for this type", what, f)
	}
	return h, simd.F16(h), nil
}

func put16(b []byte, h uint16) { b[0], b[1] = byte(h), byte(h>>8) }

// nearest rounds f to the nearest integer, ties to even (as ggml's
// nearest_int does), clamped to [lo, hi].
func nearest(f float32, lo, hi int32) int32 {
	r := math.RoundToEven(float64(f))
	switch {
	case !(r >= float64(lo)): // also NaN
		return lo
	case r > float64(hi):
		return hi
	}
	return int32(r)
}

// quantizeQ8_0 writes one Q8_0 block: d = amax/127, q = round(x/d).
func quantizeQ8_0(dst []byte, x []float32) error {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs(v))
	}
	h, d, err := half(amax/127, "block scale")
	if err != nil {
		return err
	}
	put16(dst, h)
	id := inverse(d)
	for i, v := range x {
		dst[2+i] = byte(int8(nearest(v*id, -127, 127)))
	}
	return nil
}

// inverse returns 1/d, or 0 for a zero scale.
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

func abs(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// quantizeSym writes one Q4_0 (bits 4) or Q5_0 (bits 5) block: the value
// of largest magnitude becomes the quant -2^(bits-1).
func quantizeSym(dst []byte, x []float32, bits int) error {
	var amax, m float32
	for _, v := range x {
		if a := abs(v); a > amax {
			amax, m = a, v
		}
	}
	off := int32(1) << (bits - 1) // 8 or 16
	h, d, err := half(m/-float32(off), "block scale")
	if err != nil {
		return err
	}
	put16(dst, h)
	id := inverse(d)
	var q [32]uint8
	for i, v := range x {
		q[i] = uint8(nearest(v*id, -off, off-1) + off)
	}
	if bits == 4 {
		packNibbles(dst[2:18], &q)
		return nil
	}
	packQ5(dst[2:6], dst[6:22], &q)
	return nil
}

// quantizeMinMax writes one Q4_1 (bits 4) or Q5_1 (bits 5) block: w = d·q
// + m with m the block's minimum and d its range over 2^bits - 1.
func quantizeMinMax(dst []byte, x []float32, bits int) error {
	lo, hi := x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	nmax := int32(1)<<bits - 1
	span := float32(float64(hi) - float64(lo)) // as a float32, which float64 keeps from overflowing first
	hd, d, err := half(span/float32(nmax), "block scale")
	if err != nil {
		return err
	}
	hm, m, err := half(lo, "block minimum")
	if err != nil {
		return err
	}
	put16(dst, hd)
	put16(dst[2:], hm)
	id := inverse(d)
	var q [32]uint8
	for i, v := range x {
		q[i] = uint8(nearest((v-m)*id, 0, nmax))
	}
	if bits == 4 {
		packNibbles(dst[4:20], &q)
		return nil
	}
	packQ5(dst[4:8], dst[8:24], &q)
	return nil
}

// packNibbles stores quants 0..15 as ggml's 32-blocks do: quant i < 16 in
// the low nibble of qs[i], quant i+16 in its high nibble.
func packNibbles(qs []byte, q *[32]uint8) {
	for i := range 16 {
		qs[i] = q[i]&15 | q[i+16]&15<<4
	}
}

// packQ5 stores quants 0..31: the low four bits as packNibbles, the fifth
// bit of quant i as bit i of the little-endian uint32 qh.
func packQ5(qh, qs []byte, q *[32]uint8) {
	packNibbles(qs, q)
	var h uint32
	for i, v := range q {
		h |= uint32(v>>4&1) << i
	}
	qh[0], qh[1], qh[2], qh[3] = byte(h), byte(h>>8), byte(h>>16), byte(h>>24)
}

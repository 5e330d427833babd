package simd

import (
	"fmt"
	"math"
)

// # Quantized weights
//
// A quantized matrix is stored row by row in ggml's block formats (QType):
// each row of cols weights is cols/BlockLen blocks of BlockBytes bytes, and
// the kernels read the blocks where they lie, widening them in registers.
//
// A product with quantized weights first quantizes its input vectors to
// 8-bit blocks (Q8, see QuantizeQ8), so that the inner sums are exact
// integer sums, which every runtime computes alike in any order; only the
// per-block scaling is floating point, in the order fixed here.
//
// Activation blocks. Each run of 32 consecutive values x[0..32) of a vector
// becomes one block: amax = max|x[i]| (NaN if any x[i] is NaN), d = amax /
// 127, id = 1/d if d is normal and finite (2^-126 <= d < +Inf; a smaller d
// would make 1/d overflow) and 0 otherwise, q[i] =
// roundTiesToEven(x[i]·id) converted to an integer as WebAssembly's
// i32x4.trunc_sat_f32x4_s converts it (NaN to 0, saturating; finite inputs
// give |q[i]| <= 127), sum = Σq[i] (an integer) and s = d·float32(sum).
//
// Weight blocks. For activation block b of a row (the 32 weights that meet
// x's block b), a type defines an integer I_b and floats a_b and c_b (see
// each QType) so that the exact dot product of the dequantized weights with
// the dequantized activations is (a_b·d_b)·I_b + c_b·s_b. The kernels
// compute t_b = (a_b·d_b)·float32(I_b) + c_b·s_b, each product rounded to
// float32 in that order; types without an offset (c_b = 0) compute only
// the first product. A row's result is ((+0 + t_0) + t_1) + … over its
// blocks in increasing b: no lanes, no reduction tree.
//
// The weights of a block dequantize (Dequantize) to float32 exactly as
// ggml's dequantize_row_* functions compute them.

// QType is a quantized weight format of ggml.
type QType uint8

// The quantized formats the kernels multiply. The comment of each says how
// a weight is reconstructed and what I_b, a_b and c_b are for the 32
// weights w[0..32) that meet activation block b.
const (
	// Q8_0: blocks of 32, {f16 d; int8 q[32]}; w = d·q. I = Σ q·xq, a = d.
	Q8_0 QType = iota + 1
	// Q4_0: blocks of 32, {f16 d; u8 qs[16]}; weight i < 16 is the low
	// nibble of qs[i] and weight i+16 its high nibble, each minus 8; w =
	// d·(q-8). I = Σ (q-8)·xq, a = d.
	Q4_0
	// Q4_1: blocks of 32, {f16 d, m; u8 qs[16]}, nibbles as Q4_0; w = d·q +
	// m. I = Σ q·xq, a = d, c = m.
	Q4_1
	// Q5_0: blocks of 32, {f16 d; u8 qh[4]; u8 qs[16]}; weight i has the
	// nibble of Q4_0 and bit i of the little-endian uint32 qh as its fifth
	// bit; w = d·(q-16). I = Σ (q-16)·xq, a = d.
	Q5_0
	// Q5_1: blocks of 32, {f16 d, m; u8 qh[4]; u8 qs[16]}, quants as Q5_0;
	// w = d·q + m. I = Σ q·xq, a = d, c = m.
	Q5_1
	// Q4_K: super-blocks of 256, {f16 d, dmin; u8 scales[12]; u8 qs[128]},
	// eight sub-blocks j of 32 with 6-bit scale sc_j and min m_j packed in
	// scales (ggml's get_scale_min_k4); sub-block 2k holds the low nibbles
	// of qs[32k..32k+32) and sub-block 2k+1 their high nibbles; w =
	// (d·sc_j)·q - dmin·m_j. For sub-block j: I = sc_j·Σ q·xq, a = d, c =
	// -(dmin·m_j).
	Q4_K
	// Q5_K: super-blocks of 256, {f16 d, dmin; u8 scales[12]; u8 qh[32];
	// u8 qs[128]}, as Q4_K with a fifth bit: bit j of qh[l] for weight l of
	// sub-block j; w = (d·sc_j)·q - dmin·m_j. I, a and c as Q4_K.
	Q5_K
	// Q6_K: super-blocks of 256, {u8 ql[128]; u8 qh[64]; i8 scales[16];
	// f16 d}, sixteen sub-blocks of 16 with scale sc_k; w = (d·sc_k)·(q-32)
	// with q laid out as ggml's dequantize_row_q6_K reads it. For the
	// sub-blocks k, k+1 that meet activation block b: I = sc_k·Σ(q-32)·xq
	// over the first 16 + sc_{k+1}·Σ(q-32)·xq over the second, a = d.
	Q6_K
)

// qtypeInfo is a format's name, block length and block size in bytes.
type qtypeInfo struct {
	name         string
	elems, bytes int
}

var qtypes = [...]qtypeInfo{
	Q8_0: {"Q8_0", 32, 34},
	Q4_0: {"Q4_0", 32, 18},
	Q4_1: {"Q4_1", 32, 20},
	Q5_0: {"Q5_0", 32, 22},
	Q5_1: {"Q5_1", 32, 24},
	Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176},
	Q6_K: {"Q6_K", 256, 210},
}

// QTypes lists every quantized format, in the order of their constants.
func QTypes() []QType { return []QType{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K} }

func (q QType) info() qtypeInfo {
	if int(q) >= len(qtypes) || qtypes[q].elems == 0 {
		panic(fmt.Sprintf("simd: unknown QType %d", uint8(q)))
	}
	return qtypes[q]
}

// String returns ggml's name of the format, such as "Q4_K".
func (q QType) String() string {
	if int(q) >= len(qtypes) || qtypes[q].elems == 0 {
		return fmt.Sprintf("QType(%d)", uint8(q))
	}
	return qtypes[q].name
}

// BlockLen returns the number of weights in one block (32 or 256).
func (q QType) BlockLen() int { return q.info().elems }

// BlockBytes returns the bytes one block takes.
func (q QType) BlockBytes() int { return q.info().bytes }

// RowBytes returns the bytes of a row of cols weights; cols must be a
// multiple of BlockLen.
func (q QType) RowBytes(cols int) int { return cols / q.BlockLen() * q.BlockBytes() }

// Q8 holds vectors quantized to 8-bit blocks of 32 for a product with
// quantized weights (see the package comment). Block b of vector t covers
// x[t][32b..32b+32). QuantizeQ8 writes values in [-127, 127]; a Q8 built
// by hand may hold -128, which every kernel multiplies correctly, the AVX2
// ones by falling back to the portable Go kernel for that product (their
// sign trick is exact only within ±127).
type Q8 struct {
	Q   []int8    // the quantized values, cols per vector
	D   []float32 // d of each block
	S   []float32 // s = d·float32(Sum) of each block
	Sum []int32   // Σq of each block
}

// Resize makes room for n vectors of cols values (cols a multiple of 32),
// reusing the arrays when they are large enough.
func (a *Q8) Resize(n, cols int) {
	nb := n * cols / 32
	if cap(a.Q) < n*cols {
		a.Q = make([]int8, n*cols)
	}
	if cap(a.D) < nb {
		a.D = make([]float32, nb)
		a.S = make([]float32, nb)
		a.Sum = make([]int32, nb)
	}
	a.Q, a.D, a.S, a.Sum = a.Q[:n*cols], a.D[:nb], a.S[:nb], a.Sum[:nb]
}

// QuantizeQ8 quantizes n vectors of cols values (cols a multiple of 32)
// into dst, resizing it. It panics if x is shorter than n·cols.
func QuantizeQ8(dst *Q8, x []float32, n, cols int) {
	if n < 0 || cols < 0 || cols%32 != 0 || len(x) < n*cols {
		panic("simd: QuantizeQ8: bad dimensions")
	}
	dst.Resize(n, cols)
	if n*cols == 0 {
		return
	}
	quantizeQ8(dst, x[:n*cols])
}

// MatMulQ multiplies n vectors, quantized in x, by a rows×cols matrix of
// quantized weights w in format q: out[t*rows+r] = Σ_b t_b over the blocks
// of row r and vector t, in the order of the package comment. cols must be
// a multiple of q.BlockLen(). The result for a given row and vector does not
// depend on n.
//
// It panics if the slices are shorter than the dimensions say.
func MatMulQ(out []float32, q QType, w []byte, x *Q8, rows, cols, n int) {
	if rows < 0 || cols < 0 || n < 0 || cols%q.BlockLen() != 0 {
		panic("simd: MatMulQ: bad dimensions")
	}
	if len(w) < rows*q.RowBytes(cols) || len(x.Q) < n*cols || len(x.D) < n*cols/32 ||
		len(x.S) < n*cols/32 || len(x.Sum) < n*cols/32 || len(out) < n*rows {
		panic("simd: MatMulQ: slice shorter than its dimensions")
	}
	if rows == 0 || n == 0 {
		return
	}
	if cols == 0 {
		clear(out[:n*rows])
		return
	}
	matMulQ(out, q, w, x, rows, cols, n)
}

// Dequantize widens the weights of whole blocks of format q in src to
// float32 in dst, as ggml's dequantize_row_* functions do: len(dst) must be
// a multiple of q.BlockLen() and src at least as long as those blocks.
func Dequantize(q QType, dst []float32, src []byte) {
	bl, bb := q.BlockLen(), q.BlockBytes()
	if len(dst)%bl != 0 || len(src) < len(dst)/bl*bb {
		panic("simd: Dequantize: bad lengths")
	}
	var blk block
	for i := 0; i < len(dst); i += bl {
		blk.unpack(q, src[i/bl*bb:(i/bl+1)*bb])
		y := dst[i : i+bl]
		sub := 32
		if q == Q6_K {
			sub = 16
		}
		for j := range bl / sub {
			// ggml's order: the scale times the sub-block's integer scale
			// first, then times each quant, then the offset added.
			s := blk.a * float32(blk.sc[j])
			for l := j * sub; l < (j+1)*sub; l++ {
				v := s * float32(blk.q[l])
				if q.hasOffset() {
					v += blk.c[j*sub/32]
				}
				y[l] = v
			}
		}
	}
}

// hasOffset reports whether the format's weights have an additive offset
// (c_b != 0 in the package comment).
func (q QType) hasOffset() bool { return q == Q4_1 || q == Q5_1 || q == Q4_K || q == Q5_K }

// block is one decoded block: its integer quants (with Q4_0's, Q5_0's and
// Q6_K's offsets applied), its scale a, the integer scale of each
// sub-block (of 32 weights, or of 16 for Q6_K; 1 where the format has
// none) and the offset c of each sub-block of 32.
type block struct {
	q  [256]int8
	a  float32
	sc [16]int32
	c  [8]float32
}

// unpack decodes one block of format q.
func (blk *block) unpack(q QType, b []byte) {
	blk.a = F16(le16(b))
	for j := range blk.sc {
		blk.sc[j] = 1
	}
	blk.c[0] = 0
	switch q {
	case Q8_0:
		for i := range 32 {
			blk.q[i] = int8(b[2+i])
		}
	case Q4_0, Q4_1:
		off, base := 8, 2
		if q == Q4_1 {
			blk.c[0], off, base = F16(le16(b[2:])), 0, 4
		}
		for i := range 16 {
			v := b[base+i]
			blk.q[i] = int8(int(v&15) - off)
			blk.q[i+16] = int8(int(v>>4) - off)
		}
	case Q5_0, Q5_1:
		off, base := 16, 2
		if q == Q5_1 {
			blk.c[0], off, base = F16(le16(b[2:])), 0, 4
		}
		qh := le32(b[base:])
		for i := range 16 {
			v := b[base+4+i]
			lo := int(v&15) | int(qh>>i&1)<<4
			hi := int(v>>4) | int(qh>>(i+16)&1)<<4
			blk.q[i] = int8(lo - off)
			blk.q[i+16] = int8(hi - off)
		}
	case Q4_K, Q5_K:
		dmin := F16(le16(b[2:]))
		for j := range 8 {
			sc, m := scaleMinK4(j, b[4:16])
			blk.sc[j] = int32(sc)
			blk.c[j] = -(dmin * float32(m))
		}
		if q == Q4_K {
			ql := b[16:144]
			for k := range 4 {
				for l := range 32 {
					v := ql[32*k+l]
					blk.q[64*k+l] = int8(v & 15)
					blk.q[64*k+32+l] = int8(v >> 4)
				}
			}
		} else {
			qh, ql := b[16:48], b[48:176]
			for k := range 4 {
				for l := range 32 {
					v, h := ql[32*k+l], qh[l]
					blk.q[64*k+l] = int8(v&15 | (h>>(2*k)&1)<<4)
					blk.q[64*k+32+l] = int8(v>>4 | (h>>(2*k+1)&1)<<4)
				}
			}
		}
	case Q6_K:
		blk.a = F16(le16(b[208:]))
		for k := range 16 {
			blk.sc[k] = int32(int8(b[192+k]))
		}
		unpackQ6K(&blk.q, b)
	default:
		panic("simd: unpack: " + q.String())
	}
}

// unpackQ6K decodes a Q6_K super-block's quants, minus 32, in weight order.
func unpackQ6K(qs *[256]int8, blk []byte) {
	ql, qh := blk[0:128], blk[128:192]
	for n := range 2 {
		l8, h8 := ql[64*n:], qh[32*n:]
		y := qs[128*n:]
		for l := range 32 {
			h := h8[l]
			y[l] = int8(l8[l]&15|(h&3)<<4) - 32
			y[l+32] = int8(l8[l+32]&15|(h>>2&3)<<4) - 32
			y[l+64] = int8(l8[l]>>4|(h>>4&3)<<4) - 32
			y[l+96] = int8(l8[l+32]>>4|(h>>6&3)<<4) - 32
		}
	}
}

// scaleMinK4 returns the 6-bit scale and min of sub-block j of a Q4_K or
// Q5_K super-block, as ggml's get_scale_min_k4 unpacks them.
func scaleMinK4(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&15 | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// truncSat converts a float32 holding an integer value to int32 as
// WebAssembly's i32.trunc_sat_f32_s does: NaN to 0, saturating at the ends.
func truncSat(v float32) int32 {
	switch {
	case v != v:
		return 0
	case v >= 2147483648:
		return math.MaxInt32
	case v <= -2147483648:
		return math.MinInt32
	}
	return int32(v)
}

// goQuantizeQ8 is the portable definition of QuantizeQ8.
func goQuantizeQ8(dst *Q8, x []float32) {
	for b := range len(x) / 32 {
		xb := x[32*b : 32*b+32]
		var amax float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d >= 0x1p-126 && d <= math.MaxFloat32 {
			id = 1 / d
		}
		var sum int32
		q := dst.Q[32*b : 32*b+32]
		for i, v := range xb {
			r := float32(math.RoundToEven(float64(float32(v * id))))
			qi := min(max(truncSat(r), -128), 127) // as i8x16.narrow saturates
			q[i] = int8(qi)
			sum += qi
		}
		dst.D[b], dst.Sum[b], dst.S[b] = d, sum, d*float32(sum)
	}
}

// goMatMulQ is the portable definition of MatMulQ.
func goMatMulQ(out []float32, q QType, w []byte, x *Q8, rows, cols, n int) {
	bl, bb := q.BlockLen(), q.BlockBytes()
	rowBytes := cols / bl * bb
	sub := 32
	if q == Q6_K {
		sub = 16
	}
	var blk block
	for r := range rows {
		wr := w[r*rowBytes : (r+1)*rowBytes]
		for t := range n {
			out[t*rows+r] = 0
		}
		for k := range cols / bl {
			blk.unpack(q, wr[k*bb:(k+1)*bb])
			for t := range n {
				acc := out[t*rows+r]
				for j := range bl / 32 {
					b := t*cols/32 + k*bl/32 + j // the activation block
					xq := x.Q[32*b : 32*b+32]
					var isum int32
					for i := 0; i < 32; i += sub {
						isum += blk.sc[(32*j+i)/sub] * dotI8(blk.q[32*j+i:32*j+i+sub], xq[i:i+sub])
					}
					tb := float32(blk.a*x.D[b]) * float32(isum)
					if q.hasOffset() {
						tb += float32(blk.c[j] * x.S[b])
					}
					acc += tb
				}
				out[t*rows+r] = acc
			}
		}
	}
}

// dotI8 returns Σ a[i]·b[i] over i < len(a) as an exact integer.
func dotI8(a, b []int8) int32 {
	b = b[:len(a)]
	var s int32
	for i, v := range a {
		s += int32(v) * int32(b[i])
	}
	return s
}

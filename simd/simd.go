// Package simd is wisp's kernel API: the few numeric loops that a
// transformer's forward pass spends its time in.
//
// Every function has two implementations that agree to the bit. On
// GOARCH=wasm (unless built with the purego tag) the functions call the
// hand-written SIMD128 module kernels.wasm through imports; everywhere else
// they run the portable Go code in this package. Both follow the same order of
// operations, which this comment fixes; change it in both places or not at
// all.
//
// # Order of operations
//
// Sums. A sum over n terms t[0..n) (a dot product, a sum of squares, the
// denominator of a softmax) is taken in eight lanes: lane j accumulates the
// terms t[i] with i < n&^7 and i%8 == j, in increasing i, starting from +0.
// The lanes are reduced as a0 = s0+s4, a1 = s1+s5, a2 = s2+s6, a3 = s3+s7,
// then (a0+a2) + (a1+a3); the tail terms t[n&^7..n) are then added one at a
// time in increasing i. In SIMD128 terms: two f32x4 accumulators, added
// together, the high half added to the low half, then lane 0 plus lane 1.
//
// Products and sums are rounded to float32 separately: no fused
// multiply-add, anywhere. (The Go code converts every product explicitly to
// float32, which the Go specification says prevents fusion.)
//
// Exp. exp(x) is computed by Exp's polynomial: x is clamped to [-87, 88],
// k = roundTiesToEven(x·log2(e)), r = (x - k·ln2hi) - k·ln2lo, p is the
// degree-6 Taylor polynomial of e^r evaluated by Horner's rule, and the
// result is p·2^k with 2^k built from its bits. The relative error is below
// 4e-7 over the whole range.
//
// Halves. IEEE half-precision weights are widened exactly by
// sign-extending to 32 bits, shifting left by 13, masking with 0x8fffffff
// and multiplying by 2^112 as float32. This is exact for every finite half
// (zero and subnormals included); infinities and NaNs widen to large
// finite numbers, so models must not contain them.
package simd

import (
	"math"
	"unsafe"
)

// MatMulF16 multiplies n vectors by a matrix of IEEE half-precision weights:
// out[t*rows+r] = Σ_c w[r*cols+c] · x[t*cols+c] for t < n, r < rows, each
// sum taken in the canonical order (see the package comment). With n == 1
// it is a matrix-vector product; with n > 1 each weight is widened once and
// used for every vector, which is how a prompt is prefilled. The result for
// a given row and vector does not depend on n.
//
// It panics if the slices are shorter than the dimensions say.
func MatMulF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	checkMatMul(len(out), len(w), len(x), rows, cols, n)
	if rows == 0 || n == 0 {
		return
	}
	matMulF16(out, w, x, rows, cols, n)
}

// MatMulF16Finite is MatMulF16 for weights that F16Finite accepts, with the
// same result bit for bit. On finite halves the hardware's conversion (F16C's
// VCVTPH2PS on amd64) is exact and equals F16, so the native matrix-vector
// kernel widens eight halves with one instruction instead of four; the
// other implementations run MatMulF16. Check the weights once, when they
// are loaded: on a half of exponent 31 the result may differ from
// MatMulF16's (an infinity or NaN where F16 makes a finite number).
//
// It panics if the slices are shorter than the dimensions say.
func MatMulF16Finite(out []float32, w []uint16, x []float32, rows, cols, n int) {
	checkMatMul(len(out), len(w), len(x), rows, cols, n)
	if rows == 0 || n == 0 {
		return
	}
	matMulF16Finite(out, w, x, rows, cols, n)
}

// MatMulBF16 is MatMulF16 for bfloat16 weights (see BF16).
func MatMulBF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	checkMatMul(len(out), len(w), len(x), rows, cols, n)
	if rows == 0 || n == 0 {
		return
	}
	matMulBF16(out, w, x, rows, cols, n)
}

// MatMulF32 is MatMulF16 for float32 weights.
func MatMulF32(out []float32, w []float32, x []float32, rows, cols, n int) {
	checkMatMul(len(out), len(w), len(x), rows, cols, n)
	if rows == 0 || n == 0 {
		return
	}
	matMulF32(out, w, x, rows, cols, n)
}

// Dot returns Σ a[i]·b[i] over i < len(a), in the canonical order. It
// equals a row of MatMulF32 bit for bit. It panics if len(b) < len(a).
func Dot(a, b []float32) float32 {
	if len(b) < len(a) {
		panic("simd: Dot: len(b) < len(a)")
	}
	if len(a) == 0 {
		return 0
	}
	return dot(a, b)
}

// Axpy adds a·x to y: y[i] = y[i] + a·x[i] for i < len(y), the product
// rounded before the sum. It panics if len(x) < len(y).
func Axpy(y []float32, a float32, x []float32) {
	if len(x) < len(y) {
		panic("simd: Axpy: len(x) < len(y)")
	}
	if len(y) == 0 {
		return
	}
	axpy(y, a, x)
}

// Add adds src to dst element-wise: dst[i] = dst[i] + src[i] for i <
// len(dst). It panics if len(src) < len(dst).
func Add(dst, src []float32) {
	if len(src) < len(dst) {
		panic("simd: Add: len(src) < len(dst)")
	}
	if len(dst) == 0 {
		return
	}
	add(dst, src)
}

// RMSNorm normalises x by its root mean square and scales it by w:
// out[i] = w[i] · (x[i] · inv) with inv = 1 / sqrt(Σx²/n + eps), the sum of
// squares taken in the canonical order. out may be x. It panics if out or w
// are shorter than x.
func RMSNorm(out, x, w []float32, eps float32) {
	if len(out) < len(x) || len(w) < len(x) {
		panic("simd: RMSNorm: out or w shorter than x")
	}
	if len(x) == 0 {
		return
	}
	rmsNorm(out, x, w, eps)
}

// Softmax replaces x by its softmax: e[i] = Exp(x[i] - max(x)), then
// x[i] = e[i] · (1 / Σe), the sum taken in the canonical order.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	softmax(x)
}

// Attention computes the attention of heads query heads that share one key
// and value head over positions 0..n-1 of a KV cache, in one call. The
// query heads are adjacent vectors of headDim values in q, the keys and
// values the rows of n×headDim matrices; head j's weights are att[j*n :
// (j+1)*n] and its output out[j*headDim : (j+1)*headDim]. It is exactly
//
//	MatMulF32(att, keys, q, n, headDim, heads) // att[j*n+i] = q_j·k_i
//	for each head j:
//		a := att[j*n : (j+1)*n]
//		a[i] = a[i] · scale, for each i
//		Softmax(a)
//		o := out[j*headDim : (j+1)*headDim]
//		clear(o) // +0
//		Axpy(o, a[i], values[i*headDim:(i+1)*headDim]), for i = 0..n-1
//
// so each output is ((+0 + a[0]·v_0) + a[1]·v_1) + … over the positions
// in increasing order, every product rounded before its sum. att is left
// holding the attention weights. out and att must not overlap each other
// or the inputs.
//
// It panics if a dimension is negative or a slice is shorter than the
// dimensions say.
func Attention(out, att, q, keys, values []float32, n, headDim, heads int, scale float32) {
	if n < 0 || headDim < 0 || heads < 0 {
		panic("simd: Attention: negative dimension")
	}
	if len(out) < heads*headDim || len(q) < heads*headDim || len(att) < heads*n ||
		len(keys) < n*headDim || len(values) < n*headDim {
		panic("simd: Attention: slice shorter than its dimensions")
	}
	if n == 0 || headDim == 0 || heads == 0 {
		goAttention(out, att, q, keys, values, n, headDim, heads, scale)
		return
	}
	attention(out, att, q, keys, values, n, headDim, heads, scale)
}

// SiLUMul computes SwiGLU's gate in place: a[i] = (a[i] / (1 + Exp(-a[i])))
// · b[i]. It panics if len(b) < len(a).
func SiLUMul(a, b []float32) {
	if len(b) < len(a) {
		panic("simd: SiLUMul: len(b) < len(a)")
	}
	if len(a) == 0 {
		return
	}
	siluMul(a, b)
}

// Rope rotates each head of x (len(x)/headDim heads of headDim values) by
// the angles whose cosines and sines are cos[i] and sin[i], i < headDim/2.
// Pair i is (x[2i], x[2i+1]) in the llama layout (neox false) and
// (x[i], x[i+headDim/2]) in the neox layout used by Qwen2. A pair (a, b)
// becomes (a·c - b·s, a·s + b·c), each product rounded before the sum.
//
// It panics if headDim is odd, does not divide len(x), or cos and sin are
// shorter than headDim/2.
func Rope(x []float32, cos, sin []float32, headDim int, neox bool) {
	if headDim <= 0 || headDim%2 != 0 || len(x)%headDim != 0 || len(cos) < headDim/2 || len(sin) < headDim/2 {
		panic("simd: Rope: bad dimensions")
	}
	if len(x) == 0 {
		return
	}
	rope(x, cos, sin, headDim, neox)
}

// WidenF16 converts halves to float32 exactly: dst[i] = float32(src[i]) for
// i < len(dst). It panics if len(src) < len(dst).
func WidenF16(dst []float32, src []uint16) {
	if len(src) < len(dst) {
		panic("simd: WidenF16: len(src) < len(dst)")
	}
	if len(dst) == 0 {
		return
	}
	widenF16(dst, src)
}

// FlushF16 replaces every subnormal half in w by a zero of the same sign and
// returns how many it replaced. Widened subnormals are subnormal float32s,
// which make multiplications several times slower on x86, and their values
// (below 6.1e-5 in magnitude) are too small to matter in a weight.
func FlushF16(w []uint16) int {
	if len(w) == 0 {
		return 0
	}
	return flushF16(w)
}

// F16Finite reports whether no half in w has exponent 31, the exponent of
// IEEE infinities and NaNs, which F16 widens to finite numbers
// (±2^16·(1+m/1024)) and the hardware does not: such weights may go to
// MatMulF16Finite. It reads w four halves at a time.
func F16Finite(w []uint16) bool {
	// A half's exponent bits plus 0x0400 carry into its sign bit only when
	// they are all set; four halves share a uint64 without carrying into
	// one another.
	const exp, one = 0x7c007c007c007c00, 0x0400040004000400
	var any uint64
	i := 0
	for ; i < len(w) && uintptr(unsafe.Pointer(&w[i]))%8 != 0; i++ {
		any |= uint64(w[i])&exp + one
	}
	if n := (len(w) - i) / 4; n > 0 {
		for _, v := range unsafe.Slice((*uint64)(unsafe.Pointer(&w[i])), n) {
			any |= v&exp + one
		}
		i += 4 * n
	}
	for ; i < len(w); i++ {
		any |= uint64(w[i])&exp + one
	}
	return any&0x8000800080008000 == 0
}

func checkMatMul(nout, nw, nx, rows, cols, n int) {
	if rows < 0 || cols < 0 || n < 0 {
		panic("simd: MatMul: negative dimension")
	}
	if nw < rows*cols || nx < n*cols || nout < n*rows {
		panic("simd: MatMul: slice shorter than its dimensions")
	}
}

// F16 returns the float32 value of the half h, widened as the kernels do
// (see the package comment).
func F16(h uint16) float32 {
	return math.Float32frombits(uint32(int32(int16(h))<<13)&0x8fffffff) * 0x1p112
}

// BF16 returns the float32 value of the bfloat16 h: its bits are the high
// half of the float32's, so the widening is exact for every value.
func BF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Exp returns e^x computed exactly as the kernels compute it (see the
// package comment).
func Exp(x float32) float32 {
	if x < -87 {
		x = -87
	}
	if x > 88 {
		x = 88
	}
	k := float32(math.RoundToEven(float64(float32(x * log2e))))
	r := x - float32(k*ln2Hi)
	r = r - float32(k*ln2Lo)
	p := float32(expC6)
	p = float32(p*r) + expC5
	p = float32(p*r) + expC4
	p = float32(p*r) + expC3
	p = float32(p*r) + expC2
	p = float32(p*r) + 1
	p = float32(p*r) + 1
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// The constants of Exp, as float32. ln2Hi has its low 9 bits zero so that
// k·ln2Hi is exact for |k| < 2^9.
const (
	log2e float32 = 1.44269504088896341
	ln2Hi float32 = 0.693145751953125
	ln2Lo float32 = 1.42860682030941723212e-6
	expC2 float32 = 1.0 / 2
	expC3 float32 = 1.0 / 6
	expC4 float32 = 1.0 / 24
	expC5 float32 = 1.0 / 120
	expC6 float32 = 1.0 / 720
)

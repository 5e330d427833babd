//go:build wasm && !purego

package simd

import "sync"

// On GOARCH=wasm the API calls the SIMD128 kernels of kernels.wasm, which the
// host instantiates with this module's memory and wires to these imports
// (see the wasm/ folder). Pointers lower to i32 addresses in that memory.

//go:wasmimport simd matmul_f16
func kMatMulF16(out *float32, w *uint16, x *float32, rows, cols, n int32)

//go:wasmimport simd matmul_f32
func kMatMulF32(out *float32, w *float32, x *float32, rows, cols, n int32)

//go:wasmimport simd dot
func kDot(a, b *float32, n int32) float32

//go:wasmimport simd axpy
func kAxpy(y *float32, a float32, x *float32, n int32)

//go:wasmimport simd add
func kAdd(dst, src *float32, n int32)

//go:wasmimport simd rmsnorm
func kRMSNorm(out, x, w *float32, n int32, eps float32)

//go:wasmimport simd softmax
func kSoftmax(x *float32, n int32)

//go:wasmimport simd silu_mul
func kSiLUMul(a, b *float32, n int32)

//go:wasmimport simd rope
func kRope(x, cos, sin *float32, n, headDim, neox int32)

//go:wasmimport simd widen_f16
func kWidenF16(dst *float32, src *uint16, n int32)

//go:wasmimport simd flush_f16
func kFlushF16(w *uint16, n int32) int32

//go:wasmimport simd matmul_bf16
func kMatMulBF16(out *float32, w *uint16, x *float32, rows, cols, n int32)

//go:wasmimport simd quantize_q8
func kQuantizeQ8(q *int8, d, s *float32, sum *int32, x *float32, blocks int32)

//go:wasmimport simd matmul_q
func kMatMulQ(out *float32, w *byte, xq *int8, xd, xs *float32, xsum *int32, rows, cols, n, q int32)

//go:wasmimport simd attention
func kAttention(out, att, q, keys, values *float32, n, headDim, heads int32, scale float32)

// matMulF16Finite is matMulF16: SIMD128 has no conversion of halves.
func matMulF16Finite(out []float32, w []uint16, x []float32, rows, cols, n int) {
	matMulF16(out, w, x, rows, cols, n)
}

func matMulF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if cols == 0 { // w and x may be empty: every sum is +0.
		clear(out[:rows*n])
		return
	}
	if n < 2 {
		kMatMulF16(&out[0], &w[0], &x[0], int32(rows), int32(cols), int32(n))
		return
	}
	// Several vectors: widen a chunk of rows once (widen_f16, exact) into a
	// buffer of about 128 KiB, which stays in the L2 cache, multiply it as
	// float32 weights (matmul_f32's tiles of two rows by two vectors) and
	// move the chunk's sums to their rows. That is goMatMulF16's order of
	// operations, and in Chromium 1.4-1.9x as fast as widening each weight
	// in the pass for four vectors (see kernels.wat's header).
	chunk := max(2, f16Chunk/cols)
	chunk = min(chunk, rows)
	buf := f16Bufs.Get().(*f16Buf)
	if len(buf.w) < chunk*cols {
		buf.w = make([]float32, chunk*cols)
	}
	if len(buf.out) < chunk*n {
		buf.out = make([]float32, chunk*n)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		c := min(chunk, rows-r0)
		kWidenF16(&buf.w[0], &w[r0*cols], int32(c*cols))
		kMatMulF32(&buf.out[0], &buf.w[0], &x[0], int32(c), int32(cols), int32(n))
		for t := range n {
			copy(out[t*rows+r0:t*rows+r0+c], buf.out[t*c:(t+1)*c])
		}
	}
	f16Bufs.Put(buf)
}

// f16Chunk is how many weights matMulF16 widens at a time for several
// vectors (128 KiB of float32).
const f16Chunk = 32768

// f16Buf is matMulF16's buffers: a chunk of widened rows and its sums.
type f16Buf struct{ w, out []float32 }

var f16Bufs = sync.Pool{New: func() any { return new(f16Buf) }}

func matMulF32(out []float32, w []float32, x []float32, rows, cols, n int) {
	if cols == 0 {
		clear(out[:rows*n])
		return
	}
	kMatMulF32(&out[0], &w[0], &x[0], int32(rows), int32(cols), int32(n))
}

func matMulBF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	if cols == 0 {
		clear(out[:rows*n])
		return
	}
	kMatMulBF16(&out[0], &w[0], &x[0], int32(rows), int32(cols), int32(n))
}

// quantizeQ8 and matMulQ are called with every dimension positive (see
// QuantizeQ8 and MatMulQ).
func quantizeQ8(dst *Q8, x []float32) {
	kQuantizeQ8(&dst.Q[0], &dst.D[0], &dst.S[0], &dst.Sum[0], &x[0], int32(len(x)/32))
}

func matMulQ(out []float32, q QType, w []byte, x *Q8, rows, cols, n int) {
	kMatMulQ(&out[0], &w[0], &x.Q[0], &x.D[0], &x.S[0], &x.Sum[0], int32(rows), int32(cols), int32(n), int32(q))
}

func dot(a, b []float32) float32               { return kDot(&a[0], &b[0], int32(len(a))) }
func axpy(y []float32, a float32, x []float32) { kAxpy(&y[0], a, &x[0], int32(len(y))) }
func add(dst, src []float32)                   { kAdd(&dst[0], &src[0], int32(len(dst))) }
func rmsNorm(out, x, w []float32, eps float32) { kRMSNorm(&out[0], &x[0], &w[0], int32(len(x)), eps) }
func softmax(x []float32)                      { kSoftmax(&x[0], int32(len(x))) }
func siluMul(a, b []float32)                   { kSiLUMul(&a[0], &b[0], int32(len(a))) }

func rope(x []float32, cos, sin []float32, headDim int, neox bool) {
	var nx int32
	if neox {
		nx = 1
	}
	kRope(&x[0], &cos[0], &sin[0], int32(len(x)), int32(headDim), nx)
}

// attention is called with every dimension positive (see Attention).
func attention(out, att, q, keys, values []float32, n, headDim, heads int, scale float32) {
	kAttention(&out[0], &att[0], &q[0], &keys[0], &values[0], int32(n), int32(headDim), int32(heads), scale)
}

func widenF16(dst []float32, src []uint16) { kWidenF16(&dst[0], &src[0], int32(len(dst))) }
func flushF16(w []uint16) int              { return int(kFlushF16(&w[0], int32(len(w)))) }

// Kernels reports which implementation the API runs: "go", "amd64-avx2"
// or "wasm-simd128".
func Kernels() string { return "wasm-simd128" }

//go:build (!wasm && !amd64) || purego

package simd

// Off GOARCH=wasm, or with the purego tag, the API runs the Go kernels.

func matMulF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	goMatMulF16(out, w, x, rows, cols, n)
}

func matMulF32(out []float32, w []float32, x []float32, rows, cols, n int) {
	goMatMulF32(out, w, x, rows, cols, n)
}

func dot(a, b []float32) float32               { return goDot(a, b) }
func axpy(y []float32, a float32, x []float32) { goAxpy(y, a, x) }
func add(dst, src []float32)                   { goAdd(dst, src) }
func rmsNorm(out, x, w []float32, eps float32) { goRMSNorm(out, x, w, eps) }
func softmax(x []float32)                      { goSoftmax(x) }
func siluMul(a, b []float32)                   { goSiLUMul(a, b) }
func rope(x []float32, cos, sin []float32, headDim int, neox bool) {
	goRope(x, cos, sin, headDim, neox)
}
func attention(out, att, q, keys, values []float32, n, headDim, heads int, scale float32) {
	goAttention(out, att, q, keys, values, n, headDim, heads, scale)
}
func widenF16(dst []float32, src []uint16) { goWidenF16(dst, src) }
func flushF16(w []uint16) int              { return goFlushF16(w) }
func matMulF16Finite(out []float32, w []uint16, x []float32, rows, cols, n int) {
	goMatMulF16(out, w, x, rows, cols, n)
}

// Kernels reports which implementation the API runs: "go", "amd64-avx2"
// or "wasm-simd128".
func Kernels() string { return "go" }

// The quantized kernels and bfloat16 run the Go definitions here for now.
func matMulBF16(out []float32, w []uint16, x []float32, rows, cols, n int) {
	goMatMulBF16(out, w, x, rows, cols, n)
}
func quantizeQ8(dst *Q8, x []float32) { goQuantizeQ8(dst, x) }
func matMulQ(out []float32, q QType, w []byte, x *Q8, rows, cols, n int) {
	goMatMulQ(out, q, w, x, rows, cols, n)
}

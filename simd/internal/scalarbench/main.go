// Command scalarbench is a WASI reactor that package simd's benchmarks use to
// time its Go kernels compiled to WebAssembly, without the SIMD128 kernels.
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -tags purego -buildmode=c-shared
//
// It exports prepare(rows, cols), which allocates and fills a matrix of
// halves and a vector, and run(k), which multiplies them k times with
// simd.MatMulF16.
package main

func main() {}

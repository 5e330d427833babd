//go:build wasip1

package main

import "wisp/simd"

// problem is the matrix-vector product that run repeats.
type problem struct {
	rows, cols int
	w          []uint16
	x, out     []float32
}

// current is the problem prepared by the host; the reactor has no other
// way to keep it between calls.
var current problem

//go:wasmexport prepare
func prepare(rows, cols int32) {
	p := problem{rows: int(rows), cols: int(cols)}
	p.w = make([]uint16, p.rows*p.cols)
	p.x = make([]float32, p.cols)
	p.out = make([]float32, p.rows)
	s := uint32(1)
	for i := range p.w {
		s = s*1664525 + 1013904223
		// Normal halves of magnitude 2^-8 to 2^0, both signs.
		exp := uint16(7 + (s>>28)%8)
		p.w[i] = uint16(s>>16)&0x83ff | exp<<10
	}
	for i := range p.x {
		p.x[i] = float32(i%17) - 8
	}
	current = p
}

//go:wasmexport run
func run(k int32) {
	p := &current
	for range k {
		simd.MatMulF16(p.out, p.w, p.x, p.rows, p.cols, 1)
	}
}

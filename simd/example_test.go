package simd_test

import (
	"fmt"

	"wisp/simd"
)

func ExampleMatMulF16() {
	// A 2x3 matrix of halves: [1 2 -1; 0.5 0 4].
	w := []uint16{0x3c00, 0x4000, 0xbc00, 0x3800, 0x0000, 0x4400}
	x := []float32{3, 4, 5}
	out := make([]float32, 2)
	simd.MatMulF16(out, w, x, 2, 3, 1)
	fmt.Println(out)
	// Output: [6 21.5]
}

package engine

import (
	"fmt"
	"testing"

	"wisp/simd"
)

// BenchmarkSplit times F16 and Q8_0 products by one vector and by 32 on
// one goroutine and split among two, whatever their size, for choosing
// minSplitWork: compare ns/op of threads=1 and threads=2 per shape. On the
// 2-core EPYC, by 32 vectors, µs at 1 -> 2: 576×576 322 -> 194, 1536×576
// 958 -> 491, 576×1536 899 -> 531; by one vector see minSplitWork.
func BenchmarkSplit(b *testing.B) {
	for _, shape := range [][2]int{{32, 576}, {64, 576}, {128, 576}, {192, 576}, {576, 576}, {1536, 576}, {576, 1536}} {
		rows, cols := shape[0], shape[1]
		w := make([]uint16, rows*cols)
		for i := range w {
			w[i] = uint16(0x3000 + i%1024)
		}
		for _, n := range []int{1, 32} {
			x := make([]float32, n*cols)
			for i := range x {
				x[i] = float32(i%7) - 3
			}
			out := make([]float32, n*rows)
			m := &Matrix{Rows: rows, Cols: cols, F16: w}
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("f16/%dx%d/n=%d/threads=%d", rows, cols, n, threads), func(b *testing.B) {
					p := newThreads(threads)
					if p != nil {
						p.minWork = 1
					}
					in := &input{x: x, n: n, cols: cols, q: new(simd.Q8), threads: p}
					for b.Loop() {
						m.mul(out, in)
					}
				})
			}
		}
	}
}

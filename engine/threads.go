package engine

import (
	"sync"
	"sync/atomic"

	"wisp/simd"
)

// MaxThreads is the most goroutines a matrix product is split among.
const MaxThreads = 64

// threads splits a State's matrix products among goroutines. Each
// goroutine computes whole rows, every row's sums in the kernels' own
// order, so that the result does not depend on the number of goroutines
// (DESIGN.md: threads split rows, never sums).
type threads struct {
	n       int       // goroutines per product, 1 to MaxThreads
	minWork int       // minSplitWork, but in tests
	tmp     []float32 // the rows of each part, for products of several vectors
	wg      sync.WaitGroup
}

// minSplitWork is how many multiply-adds each goroutine must have for a
// product to be split: below it, waking goroutines and joining them costs
// more than it saves. BenchmarkSplit on the 2-core EPYC, shared with other
// jobs (so the second core was often busy), F16 by one vector, ns at 1 ->
// 2 goroutines: 64×576 1.9 -> 2.8 µs, 576×576 18 -> 23 µs, 1536×576 45 ->
// 49 µs; by 32 vectors: 576×576 285 -> 244 µs, 576×1536 724 -> 490 µs.
// So a product splits from about 256 K multiply-adds a goroutine: the FFN
// and the classifier of a 135M model, not its attention projections.
const minSplitWork = 256 << 10

// splitAlign is the multiple of rows the parts start at, so that every
// kernel's passes of 4 and 8 rows stay whole but in the last part.
const splitAlign = 8

// parts returns how many goroutines a product of rows×cols weights by n
// vectors is split among.
func (p *threads) parts(rows, cols, n int) int {
	if p == nil || p.n <= 1 {
		return 1
	}
	work := rows * cols * n
	k := min(p.n, work/p.minWork, rows/splitAlign)
	return max(k, 1)
}

// mul computes out = M·in as m.mul does, split by rows among p's
// goroutines when the product is large enough; the caller's goroutine is
// one of them.
func (p *threads) mul(m *Matrix, out []float32, in *input) {
	k := p.parts(m.Rows, m.Cols, in.n)
	if k <= 1 {
		m.mul1(out, in)
		return
	}
	if m.Q != nil && !in.quantized { // once, before the parts read it
		simd.QuantizeQ8(in.q, in.x, in.n, in.cols)
		in.quantized = true
	}
	rows, n := m.Rows, in.n
	if n > 1 && len(p.tmp) < rows*n {
		p.tmp = make([]float32, rows*n)
	}
	// The rows go in chunks, chunksPerThread per goroutine, each taken by
	// whichever goroutine is free: a core that another process holds
	// takes fewer, rather than the product waiting for its equal share.
	chunks := min(k*chunksPerThread, rows/splitAlign)
	bound := func(i int) int {
		if i == chunks {
			return rows
		}
		return (i * rows / chunks) &^ (splitAlign - 1)
	}
	var next atomic.Int32
	run := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= chunks {
				return
			}
			r0, r1 := bound(i), bound(i+1)
			sub := m.rowRange(r0, r1)
			if n == 1 {
				sub.mul1(out[r0:r1], in)
				continue
			}
			// Several vectors: the chunk's rows are strided in out, so
			// it computes them into its share of tmp, then copies them.
			tmp := p.tmp[r0*n : r1*n]
			sub.mul1(tmp, in)
			for t := range n {
				copy(out[t*rows+r0:t*rows+r1], tmp[t*(r1-r0):(t+1)*(r1-r0)])
			}
		}
	}
	p.wg.Add(k - 1)
	for range k - 1 {
		go func() {
			defer p.wg.Done()
			run()
		}()
	}
	run()
	p.wg.Wait()
}

// chunksPerThread is how many chunks of rows a split product has per
// goroutine.
const chunksPerThread = 4

// newThreads returns the threads of a State of a model with Threads n, or
// nil for one goroutine.
func newThreads(n int) *threads {
	n = min(n, MaxThreads)
	if n <= 1 {
		return nil
	}
	return &threads{n: n, minWork: minSplitWork}
}

// rowRange returns rows [r0, r1) of the matrix, a view of the same data.
func (m *Matrix) rowRange(r0, r1 int) *Matrix {
	s := &Matrix{Rows: r1 - r0, Cols: m.Cols, QType: m.QType}
	c := m.Cols
	switch {
	case m.F16 != nil:
		s.F16 = m.F16[r0*c : r1*c]
	case m.BF16 != nil:
		s.BF16 = m.BF16[r0*c : r1*c]
	case m.Q != nil:
		rb := m.QType.RowBytes(c)
		s.Q = m.Q[r0*rb : r1*rb]
	default:
		s.F32 = m.F32[r0*c : r1*c]
	}
	return s
}

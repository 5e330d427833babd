package train

import (
	"sync"
	"sync/atomic"

	"wisp/simd"
)

// float is the element type of a network: float32 for training, float64 for
// the finite-difference tests, which run the very same code.
type float interface{ ~float32 | ~float64 }

// pool runs tasks on a fixed number of goroutines. A task's result must not
// depend on which goroutine runs it (the worker index only selects scratch
// memory), so that every result is the same for any number of workers.
type pool struct{ workers int }

// run calls f(w, i) for every i < n, spreading the calls over the workers;
// w < workers identifies the goroutine.
func (p pool) run(n int, f func(w, i int)) {
	k := min(p.workers, n)
	if k <= 1 {
		for i := range n {
			f(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(w, i)
			}
		})
	}
	wg.Wait()
}

// chunks calls f(w, lo, hi) over [0, n) cut into pieces of at most size
// elements. The cut does not depend on the number of workers.
func (p pool) chunks(n, size int, f func(w, lo, hi int)) {
	p.run((n+size-1)/size, func(w, i int) {
		f(w, i*size, min(n, (i+1)*size))
	})
}

// matmul is the one matrix product of the network:
//
//	out[t*rows+r] (+)= Σ_c w[r*cols+c] · x[t*cols+c]   for t < n, r < rows,
//
// adding to out when acc is set. Every other product (the gradients of the
// inputs and of the weights) is this one on transposed operands. tmp must
// hold tileElems values.
type matmul[F float] func(out, w, x []F, rows, cols, n int, acc bool, tmp []F)

// tileElems is the scratch a matmul needs per call.
const tileElems = 1 << 16

// pickMatmul returns the matmul for F: the AVX2 (or portable) kernels of
// package simd for float32, plain loops for float64.
func pickMatmul[F float]() matmul[F] {
	if f, ok := any(matmulF32).(func(out, w, x []F, rows, cols, n int, acc bool, tmp []F)); ok {
		return f
	}
	return matmulGeneric[F]
}

func matmulGeneric[F float](out, w, x []F, rows, cols, n int, acc bool, _ []F) {
	for t := range n {
		xt := x[t*cols : (t+1)*cols]
		ot := out[t*rows : (t+1)*rows]
		for r := range rows {
			wr := w[r*cols : (r+1)*cols]
			var s F
			for c, v := range xt {
				s += wr[c] * v
			}
			if acc {
				ot[r] += s
			} else {
				ot[r] = s
			}
		}
	}
}

// tileSize returns how many rows of w and how many vectors of x one tile
// of the product takes: together about 128 KiB, which stays in the cache
// while the tile is computed.
func tileSize(cols int) int {
	k := (tileElems / 2) / max(cols, 1)
	k = max(4, min(k, 256)) &^ 3
	return k
}

// matmulF32 computes the product tile by tile with simd.MatMulF32, so that
// the rows of w and the vectors of x in use stay in the cache.
func matmulF32(out, w, x []float32, rows, cols, n int, acc bool, tmp []float32) {
	k := tileSize(cols)
	if k >= rows && !acc {
		// One tile of rows: simd writes straight into out.
		for t0 := 0; t0 < n; t0 += k {
			nn := min(k, n-t0)
			simd.MatMulF32(out[t0*rows:(t0+nn)*rows], w[:rows*cols], x[t0*cols:(t0+nn)*cols], rows, cols, nn)
		}
		return
	}
	for r0 := 0; r0 < rows; r0 += k {
		rr := min(k, rows-r0)
		for t0 := 0; t0 < n; t0 += k {
			nn := min(k, n-t0)
			simd.MatMulF32(tmp[:nn*rr], w[r0*cols:(r0+rr)*cols], x[t0*cols:(t0+nn)*cols], rr, cols, nn)
			for t := range nn {
				o := out[(t0+t)*rows+r0 : (t0+t)*rows+r0+rr]
				s := tmp[t*rr : (t+1)*rr]
				if acc {
					simd.Add(o, s)
				} else {
					copy(o, s)
				}
			}
		}
	}
}

// parMatmul is matmul spread over the pool: the vectors of x are cut into
// blocks, each computed by one worker with its own scratch.
func parMatmul[F float](p pool, mm matmul[F], scratch [][]F, out, w, x []F, rows, cols, n int, acc bool) {
	// Blocks of whole tiles, at least one per worker when there is enough
	// work. The cut depends only on the shapes.
	bs := tileSize(cols)
	if n > 2*bs {
		bs = max(bs, (n/8+bs-1)/bs*bs)
	}
	p.chunks(n, bs, func(wk, lo, hi int) {
		mm(out[lo*rows:hi*rows], w, x[lo*cols:hi*cols], rows, cols, hi-lo, acc, scratch[wk])
	})
}

// transpose writes the cols×rows transpose of the rows×cols matrix a into
// dst.
func transpose[F float](dst, a []F, rows, cols int) {
	transposeCols(dst, a, rows, cols, 0, cols)
}

// transposeCols writes rows [lo, hi) of the transpose (columns [lo, hi) of
// a), by tiles of 64×64 made of blocks of 8×8: each block reads eight rows
// of a and writes eight rows of dst, few enough cache lines that a
// power-of-two stride does not evict them from one cache set before they
// are used, and each tile touches few enough pages for the TLB.
func transposeCols[F float](dst, a []F, rows, cols, lo, hi int) {
	const tile = 64
	r8 := rows &^ 7
	c8 := lo + (hi-lo)&^7
	for c0 := lo; c0 < c8; c0 += tile {
		c1 := min(c8, c0+tile)
		for r0 := 0; r0 < r8; r0 += tile {
			r1 := min(r8, r0+tile)
			for c := c0; c < c1; c += 8 {
				for r := r0; r < r1; r += 8 {
					var blk [8][8]F
					for i := range 8 {
						o := (r+i)*cols + c
						blk[i] = [8]F(a[o : o+8])
					}
					for j := range 8 {
						o := (c+j)*rows + r
						d := dst[o : o+8 : o+8]
						d[0], d[1], d[2], d[3] = blk[0][j], blk[1][j], blk[2][j], blk[3][j]
						d[4], d[5], d[6], d[7] = blk[4][j], blk[5][j], blk[6][j], blk[7][j]
					}
				}
			}
		}
		for r := r8; r < rows; r++ {
			for c := c0; c < c1; c++ {
				dst[c*rows+r] = a[r*cols+c]
			}
		}
	}
	for c := c8; c < hi; c++ {
		for r := range rows {
			dst[c*rows+r] = a[r*cols+c]
		}
	}
}

// parTranspose is transpose spread over the pool by blocks of rows of dst.
func parTranspose[F float](p pool, dst, a []F, rows, cols int) {
	p.chunks(cols, 64, func(_, lo, hi int) {
		transposeCols(dst, a, rows, cols, lo, hi)
	})
}

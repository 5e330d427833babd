package engine

import (
	"runtime"
	"sync/atomic"
	"time"

	"wisp/simd"
)

// MaxThreads is the most goroutines a matrix product is split among.
const MaxThreads = 64

// threads splits a State's matrix products among goroutines, and its
// attention (threads.each). Each goroutine computes whole rows, every
// row's sums in the kernels' own order, or whole calls of the attention
// kernel, so that the result does not depend on the number of goroutines
// (DESIGN.md: threads split rows, never sums).
type threads struct {
	n       int       // goroutines per product, 1 to MaxThreads
	minWork int       // minSplitWork, but in tests
	tmp     []float32 // the rows of each part, for products of several vectors
	pool    *pool     // the n-1 helpers, started by the first split product
}

// minSplitWork is how many multiply-adds each goroutine must have for a
// product to be split: below it, handing the product to the helpers and
// waiting for them costs more than it saves. BenchmarkSplit on the 2-core
// EPYC with the pool of spinning helpers, F16 by one vector, µs at 1 -> 2
// goroutines: 32×576 1.06 -> 2.12, 64×576 2.35 -> 2.01, 128×576
// 5.65 -> 4.09, 576×576 18.4 -> 12.7, 1536×576 61 -> 31. (With a goroutine
// started per part, 576×576 went from 18 to 23 µs.)
const minSplitWork = 32 << 10

// splitAlign is the multiple of rows the parts start at, so that every
// kernel's passes of 4 and 8 rows stay whole but in the last part.
const splitAlign = 8

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

// count returns how many goroutines p splits work among: 1 for nil.
func (p *threads) count() int {
	if p == nil {
		return 1
	}
	return p.n
}

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
	if in.n > 1 && len(p.tmp) < m.Rows*in.n {
		p.tmp = make([]float32, m.Rows*in.n)
	}
	// The rows go in chunks, chunksPerThread per goroutine, each taken by
	// whichever goroutine is free: a core that another process holds
	// takes fewer, rather than the product waiting for its equal share.
	p.helpers().run(&job{m: m, out: out, in: in, tmp: p.tmp, chunks: min(k*chunksPerThread, m.Rows/splitAlign)})
}

// helpers returns p's pool, started by the first split job.
func (p *threads) helpers() *pool {
	if p.pool == nil {
		p.pool = startPool(p.n - 1)
		// The helpers hold only the pool, so the threads become
		// unreachable with their State, and the cleanup stops them.
		runtime.AddCleanup(p, (*pool).stop, p.pool)
	}
	return p.pool
}

// each calls fn(i, g) for every i < items, split among p's goroutines
// when the items' work (multiply-adds in all) is large enough, else on
// the caller's goroutine; g < p.n is the goroutine calling, 0 for the
// caller, so that fn can give each goroutine scratch of its own. Items are
// taken one at a time by whichever goroutine is free.
func (p *threads) each(items, work int, fn func(i, g int)) {
	if p == nil || p.n <= 1 || items < 2 || work/p.minWork < 2 {
		for i := range items {
			fn(i, 0)
		}
		return
	}
	p.helpers().run(&job{fn: fn, chunks: items})
}

// job is one split product: the chunks of its rows go to whichever
// goroutine takes them next. A job is never reused, so that a helper
// that wakes after it is done touches only its counters.
type job struct {
	fn     func(i, g int) // the items of a job of threads.each, or nil for a product
	m      *Matrix
	out    []float32
	in     *input
	tmp    []float32
	chunks int
	next   atomic.Int32 // the next chunk to take
	done   atomic.Int32 // the chunks computed
}

// bound returns the first row of chunk i.
func (j *job) bound(i int) int {
	if i == j.chunks {
		return j.m.Rows
	}
	return (i * j.m.Rows / j.chunks) &^ (splitAlign - 1)
}

// work computes chunks until none is left, on goroutine g of the pool
// (0 the caller, helper h h+1).
func (j *job) work(g int) {
	for {
		i := int(j.next.Add(1)) - 1
		if i >= j.chunks {
			return
		}
		if j.fn != nil {
			j.fn(i, g)
			j.done.Add(1)
			continue
		}
		rows, n := j.m.Rows, j.in.n
		r0, r1 := j.bound(i), j.bound(i+1)
		sub := j.m.rowRange(r0, r1)
		if n == 1 {
			sub.mul1(j.out[r0:r1], j.in)
			j.done.Add(1)
			continue
		}
		// Several vectors: the chunk's rows are strided in out, so it
		// computes them into its share of tmp, then copies them.
		tmp := j.tmp[r0*n : r1*n]
		sub.mul1(tmp, j.in)
		for t := range n {
			copy(j.out[t*rows+r0:t*rows+r1], tmp[t*(r1-r0):(t+1)*(r1-r0)])
		}
		j.done.Add(1)
	}
}

// pool is the helper goroutines of a State's threads. The caller publishes
// a job; each helper spins for the next one for spinFor after its last,
// so that the products of one token, a few microseconds apart, do not
// each pay a wake-up, then sleeps on its channel until woken. The caller
// waits for the job's chunks, not for the helpers: one that a busy core
// keeps from waking costs the product nothing but its share.
type pool struct {
	cur     atomic.Pointer[job] // the latest job
	stopped atomic.Bool
	helpers []helper
	spin    time.Duration
}

// helper is one helper goroutine's sleeping flag and wake-up channel.
type helper struct {
	sleeping atomic.Bool
	wake     chan struct{} // buffered, 1
}

// spinFor is how long a helper spins for the next job before it sleeps:
// longer than the gaps between one token's split products (attention and
// the small projections run between them), short enough that a paused
// generation leaves the cores idle within a millisecond.
const spinFor = 300 * time.Microsecond

// startPool starts n helper goroutines.
func startPool(n int) *pool {
	p := &pool{helpers: make([]helper, n)}
	if runtime.GOMAXPROCS(0) > 1 {
		p.spin = spinFor // with one processor, spinning only delays the caller
	}
	p.cur.Store(&job{}) // no chunks
	for i := range p.helpers {
		p.helpers[i].wake = make(chan struct{}, 1)
		go p.help(&p.helpers[i], i+1, p.cur.Load())
	}
	return p
}

// run has the helpers and the caller compute j, and returns when it is
// done.
func (p *pool) run(j *job) {
	p.cur.Store(j)
	p.wakeAll()
	j.work(0)
	for i := 0; int(j.done.Load()) != j.chunks; i++ {
		if i%64 == 63 || p.spin == 0 {
			runtime.Gosched()
		}
	}
}

// wakeAll wakes the helpers that sleep.
func (p *pool) wakeAll() {
	for i := range p.helpers {
		h := &p.helpers[i]
		if h.sleeping.CompareAndSwap(true, false) {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}
}

// stop ends the helpers once they finish what they are doing.
func (p *pool) stop() {
	p.stopped.Store(true)
	p.cur.Store(&job{})
	p.wakeAll()
}

// help is helper goroutine g (1 to len(p.helpers)): it works on every job
// until stopped.
func (p *pool) help(h *helper, g int, seen *job) {
	for {
		seen = p.await(h, seen)
		if p.stopped.Load() {
			return
		}
		seen.work(g)
	}
}

// await returns the latest job once it is not seen: spinning for p.spin,
// then sleeping on h.wake. The caller stores the job before it reads the
// sleeping flag and the helper sets the flag before it reads the job, so
// one of them sees the other's write and no wake-up is lost.
func (p *pool) await(h *helper, seen *job) *job {
	if p.spin > 0 {
		deadline := time.Now().Add(p.spin)
		for i := 0; ; i++ {
			if j := p.cur.Load(); j != seen {
				return j
			}
			if i%256 == 255 {
				if time.Now().After(deadline) {
					break
				}
				runtime.Gosched()
			}
		}
	}
	for {
		h.sleeping.Store(true)
		if j := p.cur.Load(); j != seen {
			h.sleeping.Store(false)
			return j
		}
		<-h.wake
		if j := p.cur.Load(); j != seen {
			return j
		}
	}
}

// rowRange returns rows [r0, r1) of the matrix, a view of the same data.
func (m *Matrix) rowRange(r0, r1 int) *Matrix {
	s := &Matrix{Rows: r1 - r0, Cols: m.Cols, QType: m.QType, f16Finite: m.f16Finite}
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

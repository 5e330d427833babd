package simd

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// These tests run kernels.wasm in wazero's compiler, wired as the engine
// wires it (a memory module named "engine", forward.wasm as "simd", then
// kernels.wasm), and require every kernel to agree with its Go kernel to the
// bit.

// kernelNames lists the kernels in their table order: the one list that
// TestKernelABI holds the modules and kernels_wasm.go to.
var kernelNames = []string{
	"matmul_f16", "matmul_f32", "dot", "axpy", "add", "rmsnorm",
	"softmax", "silu_mul", "rope", "widen_f16", "flush_f16",
	"matmul_bf16", "quantize_q8", "matmul_q", "attention",
}

// memoryModule returns a wasm module that exports a memory of the given
// number of 64 KiB pages, no maximum, as "memory".
func memoryModule(pages uint32) []byte {
	mem := binary.AppendUvarint([]byte{1, 0}, uint64(pages)) // one memory, limits: min only
	exp := []byte{1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0}  // one export: memory 0
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	b = append(b, 5)
	b = binary.AppendUvarint(b, uint64(len(mem)))
	b = append(b, mem...)
	b = append(b, 7)
	b = binary.AppendUvarint(b, uint64(len(exp)))
	return append(b, exp...)
}

// wasmKernels is kernels.wasm instantiated in wazero with a memory of its
// own, and a bump allocator over that memory.
type wasmKernels struct {
	ctx    context.Context
	mem    api.Memory
	kern   map[string]api.Function // the exports of kernels.wasm
	fwd    map[string]api.Function // the exports of forward.wasm
	next   uint32
	guards []uint32
}

const (
	heapStart = 1024
	guardLen  = 16
	guardByte = 0xa5
)

func newWasmKernels(tb testing.TB, pages uint32) *wasmKernels {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	tb.Cleanup(func() { r.Close(ctx) })
	inst := func(name string, bin []byte) api.Module {
		m, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(name))
		if err != nil {
			tb.Fatalf("instantiating %s: %v", name, err)
		}
		return m
	}
	engine := inst("engine", memoryModule(pages))
	fwd := inst("simd", ForwardWasm())
	kern := inst("kernels", KernelsWasm())
	k := &wasmKernels{
		ctx:  ctx,
		mem:  engine.Memory(),
		kern: map[string]api.Function{},
		fwd:  map[string]api.Function{},
		next: heapStart,
	}
	for _, name := range kernelNames {
		if k.kern[name] = kern.ExportedFunction(name); k.kern[name] == nil {
			tb.Fatalf("kernels.wasm does not export %s", name)
		}
		if k.fwd[name] = fwd.ExportedFunction(name); k.fwd[name] == nil {
			tb.Fatalf("forward.wasm does not export %s", name)
		}
	}
	return k
}

// reset frees everything allocated.
func (k *wasmKernels) reset() {
	k.next = heapStart
	k.guards = k.guards[:0]
}

// alloc returns the address of nbytes of memory that start skew bytes past
// a multiple of 16, followed by a guard zone that check verifies.
func (k *wasmKernels) alloc(tb testing.TB, nbytes, skew uint32) uint32 {
	tb.Helper()
	addr := (k.next+15)&^15 + skew
	end := addr + nbytes
	if uint64(end)+guardLen > uint64(k.mem.Size()) {
		tb.Fatalf("wasm memory too small for %d more bytes", nbytes)
	}
	g := make([]byte, guardLen)
	for i := range g {
		g[i] = guardByte
	}
	k.mem.Write(end, g)
	k.guards = append(k.guards, end)
	k.next = end + guardLen
	return addr
}

// checkGuards fails if a kernel wrote past the end of any allocation.
func (k *wasmKernels) checkGuards(tb testing.TB, what string) {
	tb.Helper()
	for _, g := range k.guards {
		b, _ := k.mem.Read(g, guardLen)
		for _, c := range b {
			if c != guardByte {
				tb.Fatalf("%s: wrote past the end of a buffer (guard at %d)", what, g)
			}
		}
	}
}

// putF32 allocates room for v at the given float skew (0..3) and writes it.
func (k *wasmKernels) putF32(tb testing.TB, v []float32, skew int) uint32 {
	tb.Helper()
	addr := k.alloc(tb, uint32(4*len(v)), uint32(4*skew))
	k.writeF32(addr, v)
	return addr
}

// putF16 allocates room for v at the given half skew (0..7) and writes it.
func (k *wasmKernels) putF16(tb testing.TB, v []uint16, skew int) uint32 {
	tb.Helper()
	addr := k.alloc(tb, uint32(2*len(v)), uint32(2*skew))
	k.writeF16(addr, v)
	return addr
}

func (k *wasmKernels) writeF32(addr uint32, v []float32) {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	k.mem.Write(addr, b)
}

func (k *wasmKernels) writeF16(addr uint32, v []uint16) {
	b := make([]byte, 2*len(v))
	for i, h := range v {
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	k.mem.Write(addr, b)
}

func (k *wasmKernels) readF32(addr uint32, n int) []float32 {
	b, _ := k.mem.Read(addr, uint32(4*n))
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func (k *wasmKernels) readF16(addr uint32, n int) []uint16 {
	b, _ := k.mem.Read(addr, uint32(2*n))
	v := make([]uint16, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return v
}

// call calls the kernel name of kernels.wasm, or of forward.wasm if fwd.
// Arguments are int (i32) or float32 (f32).
func (k *wasmKernels) call(tb testing.TB, fwd bool, name string, args ...any) uint64 {
	tb.Helper()
	f := k.kern[name]
	if fwd {
		f = k.fwd[name]
	}
	params := make([]uint64, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case int:
			params[i] = api.EncodeI32(int32(a))
		case uint32:
			params[i] = api.EncodeU32(a)
		case float32:
			params[i] = api.EncodeF32(a)
		default:
			tb.Fatalf("call %s: argument %d has type %T", name, i, a)
		}
	}
	res, err := f.Call(k.ctx, params...)
	if err != nil {
		tb.Fatalf("call %s: %v", name, err)
	}
	if len(res) > 0 {
		return res[0]
	}
	return 0
}

// sameBits reports the first index where got and want differ in their bits.
func sameBits(tb testing.TB, what string, got, want []float32) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			tb.Fatalf("%s: [%d] = %v (%#08x), want %v (%#08x)", what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// randF32 returns n floats of both signs over magnitudes 2^-12 to 2^12,
// with a few zeros of both signs.
func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch r.IntN(32) {
		case 0:
			v[i] = 0
		case 1:
			v[i] = float32(math.Copysign(0, -1))
		default:
			v[i] = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(25)-12))
		}
	}
	return v
}

// randRange returns n floats uniform in [lo, hi).
func randRange(r *rand.Rand, n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return v
}

// randF16 returns n finite halves of both signs; subnormals only if sub.
func randF16(r *rand.Rand, n int, sub bool) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		for {
			h := uint16(r.Uint32())
			e := h & 0x7c00
			if e == 0x7c00 || (!sub && e == 0 && h&0x3ff != 0) {
				continue
			}
			v[i] = h
			break
		}
	}
	return v
}

var (
	vecSizes = []int{1, 3, 7, 15, 16, 17, 31, 33, 4095}
	skews    = []int{0, 1, 2, 3}
	mmCols   = []int{0, 1, 7, 8, 9, 16, 17, 63, 64, 65, 288}
)

func TestWasmMatMul(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(1, 2))
	for rows := 1; rows <= 9; rows++ {
		for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33} {
			for ci, cols := range mmCols {
				k.reset()
				sw, sx, so := (rows+ci)%8, (n+ci)%4, (rows+n)%4
				x := randF32(r, n*cols)
				if (rows+n+ci)%4 == 0 {
					withBig(r, x)
				}
				wh := randF16(r, rows*cols, ci%3 == 0)
				wf := randF32(r, rows*cols)
				want := make([]float32, n*rows)
				px := k.putF32(t, x, sx)
				pwh := k.putF16(t, wh, sw)
				pwf := k.putF32(t, wf, sw%4)
				pout := k.putF32(t, make([]float32, n*rows), so)

				what := fmt.Sprintf("matmul_f16 rows=%d cols=%d n=%d", rows, cols, n)
				goMatMulF16(want, wh, x, rows, cols, n)
				k.call(t, false, "matmul_f16", pout, pwh, px, rows, cols, n)
				sameBits(t, what, k.readF32(pout, n*rows), want)

				what = fmt.Sprintf("matmul_f32 rows=%d cols=%d n=%d", rows, cols, n)
				goMatMulF32(want, wf, x, rows, cols, n)
				k.call(t, false, "matmul_f32", pout, pwf, px, rows, cols, n)
				sameBits(t, what, k.readF32(pout, n*rows), want)
				k.checkGuards(t, what)
			}
		}
	}
}

// bigValues are vector values at and beyond 2^16, where matmul_f16 can no
// longer scale x by 2^112, and just below it, where it still does.
var bigValues = []float32{65536, -65536, 0x1.fffffep15, -0x1.fffffep15, 1e6, -3e7}

// withBig puts a few of bigValues at random places in x.
func withBig(r *rand.Rand, x []float32) {
	for range 1 + len(x)/64 {
		if len(x) > 0 {
			x[r.IntN(len(x))] = bigValues[r.IntN(len(bigValues))]
		}
	}
}

// TestWasmMatVecScaling checks matmul_f16 on either side of |x| = 2^16.
func TestWasmMatVecScaling(t *testing.T) {
	k := newWasmKernels(t, 16)
	r := rand.New(rand.NewPCG(11, 12))
	for _, big := range bigValues {
		for _, cols := range []int{1, 9, 64, 100, 288} {
			k.reset()
			const rows = 7
			x := randF32(r, cols)
			x[r.IntN(cols)] = big
			w := randF16(r, rows*cols, true)
			want := make([]float32, rows)
			px, pw := k.putF32(t, x, 1), k.putF16(t, w, 3)
			pout := k.putF32(t, want, 2)
			goMatMulF16(want, w, x, rows, cols, 1)
			k.call(t, false, "matmul_f16", pout, pw, px, rows, cols, 1)
			sameBits(t, fmt.Sprintf("matmul_f16 cols=%d x has %v", cols, big), k.readF32(pout, rows), want)
			k.checkGuards(t, "matmul_f16 scaling")
		}
	}
}

// TestWasmMatMulLarge covers many groups of four vectors and long rows.
func TestWasmMatMulLarge(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		rows, cols, n int
		big           bool
	}{
		{67, 768, 1, false}, {67, 768, 1, true}, {67, 768, 16, false}, {13, 771, 18, true},
		{200, 33, 9, false}, {41, 1000, 2, false}, {9, 2100, 1, true},
	} {
		k.reset()
		x := randF32(r, tc.n*tc.cols)
		if tc.big {
			withBig(r, x)
		}
		wh := randF16(r, tc.rows*tc.cols, false)
		wf := randF32(r, tc.rows*tc.cols)
		want := make([]float32, tc.n*tc.rows)
		px := k.putF32(t, x, 1)
		pwh := k.putF16(t, wh, 3)
		pwf := k.putF32(t, wf, 2)
		pout := k.putF32(t, want, 3)

		goMatMulF16(want, wh, x, tc.rows, tc.cols, tc.n)
		k.call(t, false, "matmul_f16", pout, pwh, px, tc.rows, tc.cols, tc.n)
		sameBits(t, fmt.Sprintf("matmul_f16 %+v", tc), k.readF32(pout, len(want)), want)

		goMatMulF32(want, wf, x, tc.rows, tc.cols, tc.n)
		k.call(t, false, "matmul_f32", pout, pwf, px, tc.rows, tc.cols, tc.n)
		sameBits(t, fmt.Sprintf("matmul_f32 %+v", tc), k.readF32(pout, len(want)), want)
		k.checkGuards(t, "matmul large")
	}
}

func TestWasmVectorKernels(t *testing.T) {
	k := newWasmKernels(t, 16)
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range vecSizes {
		for _, skew := range skews {
			s2 := (skew + 1) % 4
			name := func(kernel string) string { return fmt.Sprintf("%s n=%d skew=%d", kernel, n, skew) }

			k.reset()
			a, b := randF32(r, n), randF32(r, n)
			pa, pb := k.putF32(t, a, skew), k.putF32(t, b, s2)
			got := math.Float32frombits(uint32(k.call(t, false, "dot", pa, pb, n)))
			sameBits(t, name("dot"), []float32{got}, []float32{goDot(a, b)})

			y, c := randF32(r, n), randF32(r, 1)[0]
			py := k.putF32(t, y, s2)
			k.call(t, false, "axpy", py, c, pa, n)
			goAxpy(y, c, a)
			sameBits(t, name("axpy"), k.readF32(py, n), y)

			k.call(t, false, "add", py, pb, n)
			goAdd(y, b)
			sameBits(t, name("add"), k.readF32(py, n), y)

			// RMSNorm into a separate vector and in place.
			w := randF32(r, n)
			pw := k.putF32(t, w, 3-skew)
			pout := k.putF32(t, make([]float32, n), s2)
			out := make([]float32, n)
			k.call(t, false, "rmsnorm", pout, pa, pw, n, float32(1e-5))
			goRMSNorm(out, a, w, 1e-5)
			sameBits(t, name("rmsnorm"), k.readF32(pout, n), out)
			k.call(t, false, "rmsnorm", pa, pa, pw, n, float32(1e-6))
			goRMSNorm(a, a, w, 1e-6)
			sameBits(t, name("rmsnorm in place"), k.readF32(pa, n), a)

			// Softmax over moderate and over wide ranges (the latter
			// clamps Exp's argument).
			for _, span := range []float64{8, 300} {
				x := randRange(r, n, -span, span)
				px := k.putF32(t, x, skew)
				k.call(t, false, "softmax", px, n)
				goSoftmax(x)
				sameBits(t, name(fmt.Sprintf("softmax span=%v", span)), k.readF32(px, n), x)
			}

			// SiLU·mul, including arguments beyond Exp's clamps.
			g := randRange(r, n, -120, 120)
			copy(g, randF32(r, n/2))
			pg := k.putF32(t, g, skew)
			k.call(t, false, "silu_mul", pg, pb, n)
			goSiLUMul(g, b)
			sameBits(t, name("silu_mul"), k.readF32(pg, n), g)

			h := randF16(r, n, true)
			ph := k.putF16(t, h, 2*skew+1)
			pd := k.putF32(t, make([]float32, n), s2)
			k.call(t, false, "widen_f16", pd, ph, n)
			wide := make([]float32, n)
			goWidenF16(wide, h)
			sameBits(t, name("widen_f16"), k.readF32(pd, n), wide)

			cnt := int(int32(k.call(t, false, "flush_f16", ph, n)))
			if want := goFlushF16(h); cnt != want {
				t.Fatalf("%s: count %d, want %d", name("flush_f16"), cnt, want)
			}
			if got := k.readF16(ph, n); fmt.Sprint(got) != fmt.Sprint(h) {
				t.Fatalf("%s: got %v, want %v", name("flush_f16"), got, h)
			}
			k.checkGuards(t, name("vector kernels"))
		}
	}
}

func TestWasmRope(t *testing.T) {
	k := newWasmKernels(t, 16)
	r := rand.New(rand.NewPCG(7, 8))
	for _, hd := range []int{2, 4, 6, 8, 10, 12, 14, 64, 128} {
		for _, heads := range []int{1, 3} {
			for _, neox := range []bool{false, true} {
				for _, skew := range skews {
					k.reset()
					x := randF32(r, heads*hd)
					cos := randRange(r, hd/2, -1, 1)
					sin := randRange(r, hd/2, -1, 1)
					px := k.putF32(t, x, skew)
					pc := k.putF32(t, cos, (skew+1)%4)
					ps := k.putF32(t, sin, (skew+2)%4)
					nx := 0
					if neox {
						nx = 1
					}
					k.call(t, false, "rope", px, pc, ps, len(x), hd, nx)
					goRope(x, cos, sin, hd, neox)
					what := fmt.Sprintf("rope headDim=%d heads=%d neox=%v skew=%d", hd, heads, neox, skew)
					sameBits(t, what, k.readF32(px, len(x)), x)
					k.checkGuards(t, what)
				}
			}
		}
	}
}

// TestWasmAttention holds attention to goAttention bit for bit, weights and
// outputs, over the shapes of TestAttentionDefinition (positions from one,
// the kernel's count is never zero), every skew of each slice, moderate
// and wide data (wide scores saturate the softmax; half the values are
// -0), and scales that make the scaled scores wider still.
func TestWasmAttention(t *testing.T) {
	k := newWasmKernels(t, 64)
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range attnPositions[1:] {
		for _, hd := range attnHeadDims {
			for _, heads := range attnHeads {
				for ci, wide := range []bool{false, true} {
					k.reset()
					skew := (n + hd + heads + ci) % 4
					gen := func(m int) []float32 {
						if wide {
							return randF32(r, m)
						}
						return randRange(r, m, -2, 2)
					}
					q, keys, values := gen(heads*hd), gen(n*hd), randF32(r, n*hd)
					if wide {
						negZeros(r, values)
					}
					scale := float32(1 / math.Sqrt(float64(hd)))
					if ci == 1 && n%2 == 1 {
						scale = 3
					}
					pq := k.putF32(t, q, skew)
					pk := k.putF32(t, keys, (skew+1)%4)
					pv := k.putF32(t, values, (skew+2)%4)
					pout := k.putF32(t, randF32(r, heads*hd), (skew+3)%4)
					patt := k.putF32(t, randF32(r, heads*n), skew)
					out, att := make([]float32, heads*hd), make([]float32, heads*n)
					goAttention(out, att, q, keys, values, n, hd, heads, scale)
					k.call(t, false, "attention", pout, patt, pq, pk, pv, n, hd, heads, scale)
					what := fmt.Sprintf("attention n=%d headDim=%d heads=%d wide=%v skew=%d", n, hd, heads, wide, skew)
					sameBits(t, what+" out", k.readF32(pout, len(out)), out)
					sameBits(t, what+" att", k.readF32(patt, len(att)), att)
					k.checkGuards(t, what)
				}
			}
		}
	}
}

// TestWasmHalves widens and flushes every one of the 65536 halves.
func TestWasmHalves(t *testing.T) {
	k := newWasmKernels(t, 16)
	h := make([]uint16, 1<<16)
	for i := range h {
		h[i] = uint16(i)
	}
	ph := k.putF16(t, h, 1)
	pd := k.putF32(t, make([]float32, len(h)), 1)
	k.call(t, false, "widen_f16", pd, ph, len(h))
	want := make([]float32, len(h))
	goWidenF16(want, h)
	sameBits(t, "widen_f16 of every half", k.readF32(pd, len(h)), want)

	cnt := int(int32(k.call(t, false, "flush_f16", ph, len(h))))
	if wcnt := goFlushF16(h); cnt != wcnt {
		t.Fatalf("flush_f16 of every half: count %d, want %d", cnt, wcnt)
	}
	got := k.readF16(ph, len(h))
	for i := range h {
		if got[i] != h[i] {
			t.Fatalf("flush_f16 of every half: [%#04x] = %#04x, want %#04x", i, got[i], h[i])
		}
	}
	k.checkGuards(t, "halves")
}

// TestWasmForward calls each kernel once through forward.wasm's exports,
// which reach kernels.wasm only through the table it filled.
func TestWasmForward(t *testing.T) {
	k := newWasmKernels(t, 16)
	r := rand.New(rand.NewPCG(9, 10))
	const n = 37
	const rows, cols, nv = 5, 19, 6
	for _, name := range kernelNames {
		k.reset()
		a, b := randF32(r, n), randF32(r, n)
		pa, pb := k.putF32(t, a, 1), k.putF32(t, b, 2)
		switch name {
		case "matmul_f16", "matmul_f32":
			x := randF32(r, nv*cols)
			px := k.putF32(t, x, 3)
			pout := k.putF32(t, make([]float32, nv*rows), 1)
			want := make([]float32, nv*rows)
			var pw uint32
			if name == "matmul_f16" {
				w := randF16(r, rows*cols, false)
				pw = k.putF16(t, w, 1)
				goMatMulF16(want, w, x, rows, cols, nv)
			} else {
				w := randF32(r, rows*cols)
				pw = k.putF32(t, w, 1)
				goMatMulF32(want, w, x, rows, cols, nv)
			}
			k.call(t, true, name, pout, pw, px, rows, cols, nv)
			sameBits(t, name, k.readF32(pout, len(want)), want)
		case "dot":
			got := math.Float32frombits(uint32(k.call(t, true, name, pa, pb, n)))
			sameBits(t, name, []float32{got}, []float32{goDot(a, b)})
		case "axpy":
			k.call(t, true, name, pa, float32(-1.5), pb, n)
			goAxpy(a, -1.5, b)
			sameBits(t, name, k.readF32(pa, n), a)
		case "add":
			k.call(t, true, name, pa, pb, n)
			goAdd(a, b)
			sameBits(t, name, k.readF32(pa, n), a)
		case "rmsnorm":
			k.call(t, true, name, pa, pa, pb, n, float32(1e-5))
			goRMSNorm(a, a, b, 1e-5)
			sameBits(t, name, k.readF32(pa, n), a)
		case "softmax":
			k.call(t, true, name, pa, n)
			goSoftmax(a)
			sameBits(t, name, k.readF32(pa, n), a)
		case "silu_mul":
			k.call(t, true, name, pa, pb, n)
			goSiLUMul(a, b)
			sameBits(t, name, k.readF32(pa, n), a)
		case "rope":
			x := randF32(r, 24)
			px := k.putF32(t, x, 0)
			k.call(t, true, name, px, pa, pb, len(x), 8, 1)
			goRope(x, a, b, 8, true)
			sameBits(t, name, k.readF32(px, len(x)), x)
		case "widen_f16", "flush_f16":
			h := randF16(r, n, true)
			ph := k.putF16(t, h, 1)
			if name == "widen_f16" {
				k.call(t, true, name, pa, ph, n)
				goWidenF16(a, h)
				sameBits(t, name, k.readF32(pa, n), a)
			} else {
				cnt := int(int32(k.call(t, true, name, ph, n)))
				if want := goFlushF16(h); cnt != want || fmt.Sprint(k.readF16(ph, n)) != fmt.Sprint(h) {
					t.Fatalf("%s: count %d, want %d, or halves differ", name, cnt, want)
				}
			}
		case "matmul_bf16":
			x := randF32(r, nv*cols)
			w := randBF16(r, rows*cols, false)
			px, pw := k.putF32(t, x, 3), k.putF16(t, w, 1)
			pout := k.putF32(t, make([]float32, nv*rows), 1)
			want := make([]float32, nv*rows)
			goMatMulBF16(want, w, x, rows, cols, nv)
			k.call(t, true, name, pout, pw, px, rows, cols, nv)
			sameBits(t, name, k.readF32(pout, len(want)), want)
		case "quantize_q8":
			x := randF32(r, 64)
			var want Q8
			want.Resize(1, 64)
			goQuantizeQ8(&want, x)
			px := k.putF32(t, x, 1)
			pq := k.putQ8(t, &Q8{Q: make([]int8, 64), D: make([]float32, 2), S: make([]float32, 2), Sum: make([]int32, 2)}, 5)
			k.call(t, true, name, pq.q, pq.d, pq.s, pq.sum, px, 2)
			if got := k.readBytes(pq.q, 64); fmt.Sprint(got) != fmt.Sprint(qBytes(want.Q)) {
				t.Fatalf("%s: q = %v, want %v", name, got, want.Q)
			}
			sameBits(t, name+" d", k.readF32(pq.d, 2), want.D)
			sameBits(t, name+" s", k.readF32(pq.s, 2), want.S)
		case "matmul_q":
			const qcols = 256
			w := quantWeights(r, Q4_K, rows, qcols, true, false)
			var a Q8
			QuantizeQ8(&a, randF32(r, nv*qcols), nv, qcols)
			px := k.putQ8(t, &a, 7)
			pw := k.putBytes(t, w, 3)
			pout := k.putF32(t, make([]float32, nv*rows), 1)
			want := make([]float32, nv*rows)
			goMatMulQ(want, Q4_K, w, &a, rows, qcols, nv)
			k.call(t, true, name, pout, pw, px.q, px.d, px.s, px.sum, rows, qcols, nv, int(Q4_K))
			sameBits(t, name, k.readF32(pout, len(want)), want)
		case "attention":
			const pos, hd, heads = 9, 12, 3
			q, keys, values := randF32(r, heads*hd), randRange(r, pos*hd, -1, 1), randF32(r, pos*hd)
			pq, pk, pv := k.putF32(t, q, 1), k.putF32(t, keys, 2), k.putF32(t, values, 3)
			pout, patt := k.putF32(t, make([]float32, heads*hd), 1), k.putF32(t, make([]float32, heads*pos), 2)
			out, att := make([]float32, heads*hd), make([]float32, heads*pos)
			goAttention(out, att, q, keys, values, pos, hd, heads, 0.25)
			k.call(t, true, name, pout, patt, pq, pk, pv, pos, hd, heads, float32(0.25))
			sameBits(t, name+" out", k.readF32(pout, len(out)), out)
			sameBits(t, name+" att", k.readF32(patt, len(att)), att)
		default:
			t.Fatalf("no forwarding test for %s", name)
		}
		k.checkGuards(t, name)
	}
}

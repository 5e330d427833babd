package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"wisp/internal/readsum"
	"wisp/simd"
)

// ceilingSpec is what the ceiling measures, here and in
// site/bench/ceiling.js alike: read bandwidth over blocks of the Read
// sizes (bytes, multiples of 128), and the matrix-vector kernel on the
// MatVec shapes; Samples measurements of each, each lasting at least
// MinMs after as long a warm-up.
type ceilingSpec struct {
	Read    []int         `json:"read"`
	Samples int           `json:"samples"`
	MinMs   float64       `json:"minMs"`
	MatVec  []matvecShape `json:"matvec"`
}

// matvecShape is one matrix of the matvec measurement.
type matvecShape struct {
	Name string `json:"name"`
	Type string `json:"type"` // "f16" or "f32"
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
}

// defaultCeiling measures reads from memory (256 MiB) and from the last
// level cache (16 MiB), and the kernel on a SmolLM2-135M feed-forward
// matrix (cache-resident in F16) and on a 256 MiB F16 matrix.
func defaultCeiling(samples int) ceilingSpec {
	return ceilingSpec{
		Read:    []int{256 << 20, 16 << 20},
		Samples: samples,
		MinMs:   60,
		MatVec: []matvecShape{
			{Name: "F16 1536×576", Type: "f16", Rows: 1536, Cols: 576},
			{Name: "F32 1536×576", Type: "f32", Rows: 1536, Cols: 576},
			{Name: "F16 16384×8192", Type: "f16", Rows: 16384, Cols: 8192},
		},
	}
}

// sizeName names a block size: "256 MiB".
func sizeName(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// ceilingAnswer is a runtime's measurements: GB/s by block size (its
// decimal string) and GFLOP/s by shape name, as ceiling.js answers them.
type ceilingAnswer struct {
	Read   map[string][]float64 `json:"read"`
	MatVec map[string][]float64 `json:"matvec"`
}

// row turns an answer into a ceiling table row, in the spec's order.
func (a ceilingAnswer) row(runtime string, spec ceilingSpec) ceilingRow {
	r := ceilingRow{Runtime: runtime}
	for _, n := range spec.Read {
		r.Read = append(r.Read, namedSummary{Name: sizeName(n), summary: summarize(a.Read[fmt.Sprint(n)])})
	}
	for _, m := range spec.MatVec {
		r.MatVec = append(r.MatVec, namedSummary{Name: m.Name, summary: summarize(a.MatVec[m.Name])})
	}
	return r
}

// timed calls f for at least minMs untimed (at least once), then again
// until at least minMs have passed, and returns the timed calls and
// their time.
func timed(f func(), minMs float64) (int, time.Duration) {
	min := time.Duration(minMs * 1e6)
	for w0 := time.Now(); ; {
		f()
		if time.Since(w0) >= min {
			break
		}
	}
	reps := 0
	t0 := time.Now()
	for {
		f()
		reps++
		if d := time.Since(t0); d >= min {
			return reps, d
		}
	}
}

// randomHalves returns n normal halves of magnitude 2^-8 to 2^0, both
// signs: the kind of weights a flushed model holds.
func randomHalves(r *rand.Rand, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = uint16(r.Uint32())&0x83ff | uint16(7+r.IntN(8))<<10
	}
	return w
}

// randomFloats returns n floats in [lo, hi).
func randomFloats(r *rand.Rand, n int, lo, hi float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = lo + (hi-lo)*r.Float32()
	}
	return x
}

// nativeCeiling measures the spec natively: reads in Go, and simd's
// portable Go kernels.
func nativeCeiling(spec ceilingSpec) ceilingAnswer {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := ceilingAnswer{Read: map[string][]float64{}, MatVec: map[string][]float64{}}
	var sink uint64
	for _, n := range spec.Read {
		w := make([]uint64, n/8)
		for i := range w {
			w[i] = uint64(i) * 0x9e3779b97f4a7c15
		}
		for range spec.Samples {
			reps, d := timed(func() { sink ^= readsum.Xor(w) }, spec.MinMs)
			a.Read[fmt.Sprint(n)] = append(a.Read[fmt.Sprint(n)], float64(n)*float64(reps)/d.Seconds()/1e9)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range spec.MatVec {
		x := randomFloats(r, m.Cols, -2, 2)
		out := make([]float32, m.Rows)
		var f func()
		if m.Type == "f16" {
			w := randomHalves(r, m.Rows*m.Cols)
			mul := simd.MatMulF16 // the kernel engine.Load picks for w
			if simd.F16Finite(w) {
				mul = simd.MatMulF16Finite
			}
			f = func() { mul(out, w, x, m.Rows, m.Cols, 1) }
		} else {
			w := randomFloats(r, m.Rows*m.Cols, -1, 1)
			f = func() { simd.MatMulF32(out, w, x, m.Rows, m.Cols, 1) }
		}
		for range spec.Samples {
			reps, d := timed(f, spec.MinMs)
			a.MatVec[m.Name] = append(a.MatVec[m.Name], 2*float64(m.Rows)*float64(m.Cols)*float64(reps)/d.Seconds()/1e9)
		}
	}
	runtime.KeepAlive(sink)
	return a
}

// wazeroCeiling measures the spec in wazero: readWasm (site/bench's
// read.wasm) lends its memory to simd's kernels.wasm as ceiling.js wires
// them.
func wazeroCeiling(ctx context.Context, readWasm []byte, spec ceilingSpec) (ceilingAnswer, error) {
	a := ceilingAnswer{Read: map[string][]float64{}, MatVec: map[string][]float64{}}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	inst := func(name string, bin []byte) (api.Module, error) {
		m, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(name))
		if err != nil {
			return nil, fmt.Errorf("wazero ceiling: instantiating %s: %w", name, err)
		}
		return m, nil
	}
	eng, err := inst("engine", readWasm)
	if err != nil {
		return a, err
	}
	if _, err := inst("simd", simd.ForwardWasm()); err != nil {
		return a, err
	}
	kern, err := inst("kernels", simd.KernelsWasm())
	if err != nil {
		return a, err
	}
	mem := eng.Memory()
	xor := eng.ExportedFunction("xor_sum")
	mm := map[string]api.Function{"f16": kern.ExportedFunction("matmul_f16"), "f32": kern.ExportedFunction("matmul_f32")}
	if mem == nil || xor == nil || mm["f16"] == nil || mm["f32"] == nil {
		return a, fmt.Errorf("wazero ceiling: read.wasm or kernels.wasm lacks an export")
	}
	// view returns n bytes of memory at off, growing it as needed.
	view := func(off, n uint32) ([]byte, error) {
		end := uint64(off) + uint64(n)
		if have := uint64(mem.Size()); end > have {
			if _, ok := mem.Grow(uint32((end - have + 65535) / 65536)); !ok {
				return nil, fmt.Errorf("wazero ceiling: cannot grow memory to %d bytes", end)
			}
		}
		b, ok := mem.Read(off, n)
		if !ok {
			return nil, fmt.Errorf("wazero ceiling: memory [%d, %d) out of range", off, end)
		}
		return b, nil
	}
	const base = 1 << 20
	var callErr error
	call := func(f api.Function, args ...uint64) {
		if _, err := f.Call(ctx, args...); err != nil && callErr == nil {
			callErr = err
		}
	}
	for _, n := range spec.Read {
		b, err := view(base, uint32(n))
		if err != nil {
			return a, err
		}
		for i := 0; i+4 <= len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], uint32(i/4)*2654435761)
		}
		for range spec.Samples {
			reps, d := timed(func() { call(xor, base, uint64(n)) }, spec.MinMs)
			a.Read[fmt.Sprint(n)] = append(a.Read[fmt.Sprint(n)], float64(n)*float64(reps)/d.Seconds()/1e9)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range spec.MatVec {
		px := uint32(base)
		pout := px + uint32(4*m.Cols) + 128
		pw := (pout + uint32(4*m.Rows) + 128 + 127) &^ 127
		size := 4
		if m.Type == "f16" {
			size = 2
		}
		// The weights first: growing the memory would leave older views
		// of it stale.
		wb, err := view(pw, uint32(size*m.Rows*m.Cols))
		if err != nil {
			return a, err
		}
		xb, err := view(px, uint32(4*m.Cols))
		if err != nil {
			return a, err
		}
		for i, v := range randomFloats(r, m.Cols, -2, 2) {
			binary.LittleEndian.PutUint32(xb[4*i:], math.Float32bits(v))
		}
		if m.Type == "f16" {
			for i, h := range randomHalves(r, m.Rows*m.Cols) {
				binary.LittleEndian.PutUint16(wb[2*i:], h)
			}
		} else {
			for i, v := range randomFloats(r, m.Rows*m.Cols, -1, 1) {
				binary.LittleEndian.PutUint32(wb[4*i:], math.Float32bits(v))
			}
		}
		f := mm[m.Type]
		for range spec.Samples {
			reps, d := timed(func() { call(f, uint64(pout), uint64(pw), uint64(px), uint64(m.Rows), uint64(m.Cols), 1) }, spec.MinMs)
			a.MatVec[m.Name] = append(a.MatVec[m.Name], 2*float64(m.Rows)*float64(m.Cols)*float64(reps)/d.Seconds()/1e9)
		}
	}
	if callErr != nil {
		return a, fmt.Errorf("wazero ceiling: %w", callErr)
	}
	return a, nil
}

package simd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"wisp/internal/cputime"
)

// The benchmarks report GFLOP/s, counting 2·rows·cols flops per vector,
// over wall time and, where the system tells it, over the CPU time of the
// benchmarking thread (cpu-GFLOP/s), which other processes on a busy
// machine disturb much less.

var matVecShapes = []struct{ rows, cols int }{
	{768, 768}, {2048, 768}, {32000, 288},
}

// measure runs f(b.N) on a locked thread and reports its GFLOP/s for a
// product of n vectors by a rows×cols matrix.
func measure(b *testing.B, rows, cols, n int, f func(iters int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	flops := 2 * float64(rows) * float64(cols) * float64(n) * float64(b.N)
	b.ResetTimer()
	c0, ok := cputime.Thread()
	f(b.N)
	c1, _ := cputime.Thread()
	b.StopTimer()
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if ok && c1 > c0 {
		b.ReportMetric(flops/(c1-c0).Seconds()/1e9, "cpu-GFLOP/s")
	}
}

// benchF16 returns normal halves of magnitude 2^-8 to 2^0, both signs: the
// kind of weights a flushed model has.
func benchF16(r *rand.Rand, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = uint16(r.Uint32())&0x83ff | uint16(7+r.IntN(8))<<10
	}
	return w
}

// wasmMatMulF16 calls kernels.wasm's matmul_f16 on data already in memory.
type wasmMatMulF16 struct {
	k     *wasmKernels
	f     api.Function
	stack []uint64
}

func newWasmMatMulF16(b *testing.B, w []uint16, x []float32, rows, cols, n int) *wasmMatMulF16 {
	b.Helper()
	pages := uint32((2*len(w)+4*len(x)+4*rows*n)>>16) + 4
	k := newWasmKernels(b, pages)
	px := k.putF32(b, x, 0)
	pw := k.putF16(b, w, 0)
	pout := k.putF32(b, make([]float32, rows*n), 0)
	return &wasmMatMulF16{k: k, f: k.kern["matmul_f16"], stack: []uint64{
		api.EncodeU32(pout), api.EncodeU32(pw), api.EncodeU32(px),
		api.EncodeI32(int32(rows)), api.EncodeI32(int32(cols)), api.EncodeI32(int32(n)),
	}}
}

func (m *wasmMatMulF16) run(b *testing.B, iters int) {
	for range iters {
		if err := m.f.CallWithStack(m.k.ctx, m.stack[:6:6]); err != nil {
			b.Fatal(err)
		}
	}
}

// scalarWasm is internal/scalarbench, package simd's Go kernels compiled to
// wasm, instantiated in wazero.
type scalarWasm struct {
	ctx          context.Context
	prepare, run api.Function
}

// newScalarWasm builds and instantiates internal/scalarbench, or returns
// the reason it could not.
func newScalarWasm(b *testing.B) (*scalarWasm, error) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "scalarbench.wasm")
	cmd := exec.Command("go", "build", "-tags", "purego", "-buildmode=c-shared", "-o", bin, "./internal/scalarbench")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building scalarbench: %v\n%s", err, out)
	}
	code, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	b.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	m, err := r.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		return nil, fmt.Errorf("instantiating scalarbench: %w", err)
	}
	s := &scalarWasm{ctx: ctx, prepare: m.ExportedFunction("prepare"), run: m.ExportedFunction("run")}
	if s.prepare == nil || s.run == nil {
		return nil, fmt.Errorf("scalarbench does not export prepare and run")
	}
	return s, nil
}

func BenchmarkMatVecF16(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	scalar, scalarErr := newScalarWasm(b)
	for _, sh := range matVecShapes {
		w := benchF16(r, sh.rows*sh.cols)
		x := randRange(r, sh.cols, -2, 2)
		out := make([]float32, sh.rows)
		name := fmt.Sprintf("%dx%d", sh.rows, sh.cols)
		b.Run(name+"/go", func(b *testing.B) {
			measure(b, sh.rows, sh.cols, 1, func(iters int) {
				for range iters {
					MatMulF16(out, w, x, sh.rows, sh.cols, 1)
				}
			})
		})
		m := newWasmMatMulF16(b, w, x, sh.rows, sh.cols, 1)
		b.Run(name+"/wasm-simd128", func(b *testing.B) {
			measure(b, sh.rows, sh.cols, 1, func(iters int) { m.run(b, iters) })
		})
		b.Run(name+"/wasm-go", func(b *testing.B) {
			if scalarErr != nil {
				b.Skip(scalarErr)
			}
			if _, err := scalar.prepare.Call(scalar.ctx, uint64(sh.rows), uint64(sh.cols)); err != nil {
				b.Fatal(err)
			}
			measure(b, sh.rows, sh.cols, 1, func(iters int) {
				if _, err := scalar.run.Call(scalar.ctx, uint64(iters)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkPrefillF16 multiplies n = 32, 64 and 128 vectors by the
// SmolLM2-135M feed-forward shapes (1536×576 and 576×1536), F16 and F32
// weights, natively (go: the API, AVX2 on amd64) and in wazero.
func BenchmarkPrefillF16(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, sh := range []struct{ rows, cols int }{{1536, 576}, {576, 1536}} {
		for _, n := range []int{32, 64, 128} {
			rows, cols := sh.rows, sh.cols
			w := benchF16(r, rows*cols)
			w32 := make([]float32, rows*cols)
			WidenF16(w32, w)
			x := randRange(r, n*cols, -2, 2)
			out := make([]float32, n*rows)
			name := fmt.Sprintf("%dx%dx%d", rows, cols, n)
			b.Run(name+"/f16/go", func(b *testing.B) {
				measure(b, rows, cols, n, func(iters int) {
					for range iters {
						MatMulF16(out, w, x, rows, cols, n)
					}
				})
			})
			b.Run(name+"/f32/go", func(b *testing.B) {
				measure(b, rows, cols, n, func(iters int) {
					for range iters {
						MatMulF32(out, w32, x, rows, cols, n)
					}
				})
			})
			m := newWasmMatMulF16(b, w, x, rows, cols, n)
			b.Run(name+"/f16/wasm-simd128", func(b *testing.B) {
				measure(b, rows, cols, n, func(iters int) { m.run(b, iters) })
			})
		}
	}
}

// BenchmarkAttention runs Attention for one decoded token of a
// SmolLM2-135M-shaped layer (three query heads per key head, head
// dimension 64) over 64, 192 and 256 cached positions, natively: the
// scores, their softmax and the weighted sum of the values.
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const hd, heads = 64, 3
	for _, n := range []int{64, 192, 256} {
		keys, values := randRange(r, n*hd, -1, 1), randRange(r, n*hd, -1, 1)
		q := randRange(r, heads*hd, -1, 1)
		att, out := make([]float32, heads*n), make([]float32, heads*hd)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				Attention(out, att, q, keys, values, n, hd, heads, 0.125)
			}
		})
	}
}

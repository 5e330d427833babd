package simd

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"wisp/internal/cputime"
)

// The benchmarks of the quantized and bfloat16 products run kernels.wasm in
// wazero and in Node (V8), next to the F16 kernel on the same shapes:
// 576×576, 1536×576, 576×1536 and 49152×576 (the matrices of a
// SmolLM2-135M-shaped model), one vector (decode) and 32 (prefill). Each
// reports GFLOP/s (2·rows·cols·n per product) and GB/s, the bytes of
// weights read per second, over wall time and over CPU time (cpu-: the
// benchmarking thread's in wazero, the process's in Node, which runs with
// --single-threaded). The activations of the quantized products are
// quantized once, outside the timing, as the engine quantizes an input once
// for every matrix that reads it. The Node runs need node on the PATH and
// are skipped without it.

var quantShapes = []struct{ rows, cols int }{
	{576, 576}, {1536, 576}, {576, 1536}, {49152, 576},
}

// benchTypes are the weight formats measured: the F16 and F32 kernels for
// comparison, BF16 and every QType.
func benchTypes() []string {
	t := []string{"F16", "F32", "BF16"}
	for _, q := range QTypes() {
		t = append(t, q.String())
	}
	return t
}

// qtypeNamed returns the QType whose name starts name.
func qtypeNamed(name string) (QType, bool) {
	for _, q := range QTypes() {
		if s := q.String(); len(name) >= len(s) && name[:len(s)] == s {
			return q, true
		}
	}
	return 0, false
}

// benchProblem is a product of n vectors by a rows×cols matrix of one
// format, its data laid out as it goes into wasm memory at address base:
// the weights, then the vectors (float32, or a Q8's four slices), then the
// output, each 64-byte aligned.
type benchProblem struct {
	typ              string
	rows, cols, n    int
	image            []byte // memory from base
	kernel           string
	args             []uint32 // the kernel's arguments
	weightBytes      int
	base, end, pages uint32
}

const benchBase = 1 << 20

func newBenchProblem(r *rand.Rand, typ string, rows, cols, n int) *benchProblem {
	p := &benchProblem{typ: typ, rows: rows, cols: cols, n: n, base: benchBase}
	put := func(b []byte) uint32 {
		for len(p.image)%64 != 0 {
			p.image = append(p.image, 0)
		}
		addr := p.base + uint32(len(p.image))
		p.image = append(p.image, b...)
		return addr
	}
	f32s := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	u16s := func(v []uint16) []byte {
		b := make([]byte, 2*len(v))
		for i, h := range v {
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	}
	x := randRange(r, n*cols, -2, 2)
	outBytes := make([]byte, 4*rows*n)
	if q, ok := qtypeNamed(typ); ok {
		w := quantWeights(r, q, rows, cols, true, false)
		var a Q8
		QuantizeQ8(&a, x, n, cols)
		pw := put(w)
		pq := put(qBytes(a.Q))
		pd, ps := put(f32s(a.D)), put(f32s(a.S))
		sum := make([]byte, 4*len(a.Sum))
		for i, v := range a.Sum {
			binary.LittleEndian.PutUint32(sum[4*i:], uint32(v))
		}
		psum := put(sum)
		pout := put(outBytes)
		p.kernel = "matmul_q"
		p.args = []uint32{pout, pw, pq, pd, ps, psum, uint32(rows), uint32(cols), uint32(n), uint32(q)}
		p.weightBytes = len(w)
	} else if typ == "F32" {
		w := randRange(r, rows*cols, -1, 1)
		pw := put(f32s(w))
		px := put(f32s(x))
		pout := put(outBytes)
		p.kernel = "matmul_f32"
		p.args = []uint32{pout, pw, px, uint32(rows), uint32(cols), uint32(n)}
		p.weightBytes = 4 * len(w)
	} else {
		var w []uint16
		if typ == "F16" {
			w = benchF16(r, rows*cols)
			p.kernel = "matmul_f16"
		} else {
			w = make([]uint16, rows*cols)
			for i, f := range randRange(r, rows*cols, -1, 1) {
				w[i] = uint16(math.Float32bits(f) >> 16)
			}
			p.kernel = "matmul_bf16"
		}
		pw := put(u16s(w))
		px := put(f32s(x))
		pout := put(outBytes)
		p.args = []uint32{pout, pw, px, uint32(rows), uint32(cols), uint32(n)}
		p.weightBytes = 2 * len(w)
	}
	p.end = p.base + uint32(len(p.image))
	p.pages = (p.end+0xffff)>>16 + 1
	return p
}

func (p *benchProblem) flops(iters int) float64 {
	return 2 * float64(p.rows) * float64(p.cols) * float64(p.n) * float64(iters)
}

// report reports the rates of iters products that took wall and cpu
// seconds (cpu 0: unknown).
func (p *benchProblem) report(b *testing.B, iters int, wall, cpu float64) {
	bytes := float64(p.weightBytes) * float64(iters)
	b.ReportMetric(p.flops(iters)/wall/1e9, "GFLOP/s")
	b.ReportMetric(bytes/wall/1e9, "GB/s")
	if cpu > 0 {
		b.ReportMetric(p.flops(iters)/cpu/1e9, "cpu-GFLOP/s")
		b.ReportMetric(bytes/cpu/1e9, "cpu-GB/s")
	}
}

// runWazero times the problem's kernel in wazero.
func (p *benchProblem) runWazero(b *testing.B) {
	k := newWasmKernels(b, p.pages)
	k.mem.Write(p.base, p.image)
	f := k.kern[p.kernel]
	stack := make([]uint64, len(p.args))
	call := func() {
		for i, a := range p.args {
			stack[i] = api.EncodeU32(a)
		}
		if err := f.CallWithStack(k.ctx, stack); err != nil {
			b.Fatal(err)
		}
	}
	call() // compile-free warm-up: wazero compiles ahead of time
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	c0, ok := cputime.Thread()
	for range b.N {
		call()
	}
	c1, _ := cputime.Thread()
	b.StopTimer()
	cpu := 0.0
	if ok && c1 > c0 {
		cpu = (c1 - c0).Seconds()
	}
	p.report(b, b.N, b.Elapsed().Seconds(), cpu)
}

// nodeRunner is a Node process that runs kernels.wasm on request (see
// nodeRunnerJS).
type nodeRunner struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	dir    string
	loaded *benchProblem
}

var (
	nodeOnce sync.Once
	nodeRun  *nodeRunner
	nodeErr  error
)

// nodeRunnerJS answers one JSON request per line: {"op": "load", "file",
// "base", "pages"} copies a memory image, {"op": "run", "kernel", "args",
// "iters", "warmupMs"} calls a kernel iters times after warming it up and
// answers {"ms", "cpuMs"}.
const nodeRunnerJS = `
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
const [kernelsPath, forwardPath] = process.argv.slice(2);
const memory = new WebAssembly.Memory({ initial: 17 });
const forward = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(forwardPath)), {});
const kernels = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(kernelsPath)), {
  engine: { memory }, simd: { table: forward.exports.table },
}).exports;
const rl = readline.createInterface({ input: process.stdin });
const answer = (v) => process.stdout.write(JSON.stringify(v) + '\n');
rl.on('line', (line) => {
  const req = JSON.parse(line);
  try {
    if (req.op === 'load') {
      const need = req.pages - memory.buffer.byteLength / 65536;
      if (need > 0) memory.grow(need);
      new Uint8Array(memory.buffer, req.base).set(readFileSync(req.file));
      answer({});
    } else if (req.op === 'run') {
      const f = kernels[req.kernel];
      const a = req.args;
      const w0 = performance.now();
      do f(...a); while (performance.now() - w0 < req.warmupMs);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < req.iters; i++) f(...a);
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      answer({ ms, cpuMs: (c.user + c.system) / 1000 });
    }
  } catch (e) {
    answer({ error: String(e) });
  }
});
`

func startNode(b *testing.B) (*nodeRunner, error) {
	nodeOnce.Do(func() {
		node, err := exec.LookPath("node")
		if err != nil {
			nodeErr = fmt.Errorf("node is not on the PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "wisp-simd-bench")
		if err != nil {
			nodeErr = err
			return
		}
		write := func(name string, b []byte) string {
			path := filepath.Join(dir, name)
			if err == nil {
				err = os.WriteFile(path, b, 0o644)
			}
			return path
		}
		js := write("runner.mjs", []byte(nodeRunnerJS))
		kw := write("kernels.wasm", KernelsWasm())
		fw := write("forward.wasm", ForwardWasm())
		if err != nil {
			nodeErr = err
			return
		}
		cmd := exec.Command(node, "--no-liftoff", "--single-threaded", js, kw, fw)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			nodeErr = err
			return
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			nodeErr = err
			return
		}
		if err := cmd.Start(); err != nil {
			nodeErr = err
			return
		}
		nodeRun = &nodeRunner{cmd: cmd, in: in, out: bufio.NewReader(out), dir: dir}
	})
	return nodeRun, nodeErr
}

func (n *nodeRunner) request(req map[string]any) (map[string]any, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := n.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	resp, err := n.out.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		return nil, fmt.Errorf("node: %q: %w", resp, err)
	}
	if e, ok := m["error"]; ok {
		return nil, fmt.Errorf("node: %v", e)
	}
	return m, nil
}

// runNode times the problem's kernel in Node.
func (p *benchProblem) runNode(b *testing.B) {
	n, err := startNode(b)
	if err != nil {
		b.Skip(err)
	}
	if n.loaded != p {
		file := filepath.Join(n.dir, "image")
		if err := os.WriteFile(file, p.image, 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := n.request(map[string]any{"op": "load", "file": file, "base": p.base, "pages": p.pages}); err != nil {
			b.Fatal(err)
		}
		n.loaded = p
	}
	args := make([]int32, len(p.args))
	for i, a := range p.args {
		args[i] = int32(a)
	}
	b.ResetTimer()
	m, err := n.request(map[string]any{"op": "run", "kernel": p.kernel, "args": args, "iters": b.N, "warmupMs": 200})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	ms, _ := m["ms"].(float64)
	cpuMs, _ := m["cpuMs"].(float64)
	p.report(b, b.N, ms/1e3, cpuMs/1e3)
}

// runGo times the API natively: the AVX2 kernels on amd64, elsewhere (and
// for the types without one) the Go definitions.
func (p *benchProblem) runGo(b *testing.B, r *rand.Rand) {
	x := randRange(r, p.n*p.cols, -2, 2)
	out := make([]float32, p.rows*p.n)
	var f func()
	if q, ok := qtypeNamed(p.typ); ok {
		w := quantWeights(r, q, p.rows, p.cols, true, false)
		var a Q8
		QuantizeQ8(&a, x, p.n, p.cols)
		f = func() { MatMulQ(out, q, w, &a, p.rows, p.cols, p.n) }
	} else if p.typ == "F32" {
		w := randRange(r, p.rows*p.cols, -1, 1)
		f = func() { MatMulF32(out, w, x, p.rows, p.cols, p.n) }
	} else {
		w := benchF16(r, p.rows*p.cols)
		if p.typ == "F16" {
			f = func() { MatMulF16(out, w, x, p.rows, p.cols, p.n) }
		} else {
			f = func() { MatMulBF16(out, w, x, p.rows, p.cols, p.n) }
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	c0, ok := cputime.Thread()
	for range b.N {
		f()
	}
	c1, _ := cputime.Thread()
	b.StopTimer()
	cpu := 0.0
	if ok && c1 > c0 {
		cpu = (c1 - c0).Seconds()
	}
	p.report(b, b.N, b.Elapsed().Seconds(), cpu)
}

func benchQuant(b *testing.B, n int) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, sh := range quantShapes {
		shape := fmt.Sprintf("%dx%d", sh.rows, sh.cols)
		if n > 1 {
			shape += fmt.Sprintf("x%d", n)
		}
		for _, typ := range benchTypes() {
			rows, cols := sh.rows, sh.cols
			if q, ok := qtypeNamed(typ); ok && cols%q.BlockLen() != 0 {
				// 576 is not a multiple of 256: the k-quants take the
				// next multiple, and their name says so.
				cols += q.BlockLen() - cols%q.BlockLen()
				typ += fmt.Sprintf("-cols%d", cols)
			}
			var p *benchProblem
			prep := func() *benchProblem {
				if p == nil {
					p = newBenchProblem(r, typ, rows, cols, n)
				}
				return p
			}
			b.Run(shape+"/"+typ+"/wazero", func(b *testing.B) { prep().runWazero(b) })
			b.Run(shape+"/"+typ+"/node", func(b *testing.B) { prep().runNode(b) })
			b.Run(shape+"/"+typ+"/go", func(b *testing.B) { prep().runGo(b, r) })
		}
	}
}

// BenchmarkMatVecQ measures matrix-vector products (decode).
func BenchmarkMatVecQ(b *testing.B) { benchQuant(b, 1) }

// BenchmarkPrefillQ measures products with 32 vectors (prefill).
func BenchmarkPrefillQ(b *testing.B) { benchQuant(b, 32) }

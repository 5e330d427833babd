package simd

import _ "embed"

// The wasm modules, built from kernels.wat and forward.wat by make kernels.
var (
	//go:embed kernels.wasm
	kernelsWasm []byte

	//go:embed forward.wasm
	forwardWasm []byte

	//go:embed threads.wasm
	threadsWasm []byte
)

// KernelsWasm returns the SIMD128 kernel module kernels.wasm. It imports the
// engine's memory as ("engine", "memory") and the forwarding module's table
// as ("simd", "table"), fills that table with its kernels when instantiated,
// and exports each kernel under the name of its simd import. The returned
// slice is shared: callers must not modify it.
func KernelsWasm() []byte { return kernelsWasm }

// ForwardWasm returns the forwarding module forward.wasm. It exports a table
// of one funcref per kernel as "table" and one function per simd import of the engine
// that calls the table entry of that kernel. Instantiate it as "simd" before
// the engine, then the engine, then KernelsWasm. The returned slice is
// shared: callers must not modify it.
func ForwardWasm() []byte { return forwardWasm }

// ThreadsWasm returns threads.wasm, the matrix products split among kernel
// threads (threads.wat). It imports the shared memory ("env", "memory"),
// the forwarding module's table and its own thread's kernels ("kernels",
// matmul_f16, matmul_f32, matmul_bf16, matmul_q); on the engine's thread
// it replaces those table entries by dispatchers, and on each helper's it
// exports the loop "worker". The returned slice is shared: callers must
// not modify it.
func ThreadsWasm() []byte { return threadsWasm }

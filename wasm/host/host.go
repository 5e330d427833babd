// Package host runs wisp's WebAssembly engine (wisp/wasm/module) in wazero,
// wired to the SIMD128 kernels of wisp/simd, as the tests and benchmarks of
// the wasm build and the command line's wazero runtime do.
//
// A Runtime is one instance of the module; it holds at most one Model at a
// time, and a Model at most one generation at a time. Neither is meant for
// concurrent use, though every method is safe to call from any goroutine.
package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"wisp/simd"
	"wisp/wasm/abi"
	"wisp/wasm/sharedmem"
)

// Options configures a Runtime. The zero value (and nil) is fine.
type Options struct {
	// Cache holds compiled modules; it is not closed by the Runtime. When
	// nil, the Runtime uses a cache directory under os.UserCacheDir()/wisp,
	// or an in-memory cache when there is none.
	Cache wazero.CompilationCache
	// MemoryLimit is how many bytes the instance's memory may grow to: 0
	// means the 4 GiB that wasm32 addresses. A smaller limit mimics a
	// browser that grants less; the module plans with it and refuses
	// requests beyond it with an error.
	MemoryLimit int64
	// Stderr receives what the module writes to its standard error: the Go
	// runtime's fatal errors. When nil it is discarded; its first lines
	// still end up in the TrapError of a call that traps.
	Stderr io.Writer
	// Threads is how many threads split the large matrix products by rows
	// (0 or 1: one, at most MaxThreads): helper goroutines, each with its
	// own instance of the kernels on a shared memory (threads.wasm). The
	// engine module is made to import a shared memory when it does not.
	// wazero allocates a shared memory's whole maximum (MemoryLimit) up
	// front: give a MemoryLimit that fits the model when memory is short.
	Threads int

	minWork int // threads.wasm's threshold, when not 0 (tests)
}

// Bounds of Options.MemoryLimit, and the size of a wasm page.
const (
	minMemory = 32 << 20
	maxMemory = 4 << 30
	pageSize  = 64 << 10
)

// Runtime is an instance of the engine module in wazero.
type Runtime struct {
	mu       sync.Mutex
	rt       wazero.Runtime
	cache    wazero.CompilationCache // closed by Close when owned
	ownCache bool
	mod      api.Module
	fns      map[string]api.Function
	stderr   *head
	simd     bool // whether the module calls the SIMD128 kernels
	threads  *threads
	broken   error // set when a call trapped: the instance is unusable
	model    *Model
	closed   bool
}

// New compiles and instantiates the engine module wasm (built from
// wisp/wasm/module, see BuildModule) with WASI and, when it imports them,
// the kernels of wisp/simd, and initialises it.
func New(ctx context.Context, wasm []byte, opts *Options) (*Runtime, error) {
	if opts == nil {
		opts = &Options{}
	}
	limit := opts.MemoryLimit
	switch {
	case limit == 0:
		limit = maxMemory
	case limit < minMemory || limit > maxMemory:
		return nil, fmt.Errorf("host: memory limit of %d bytes is out of range [%d, %d]", limit, int64(minMemory), int64(maxMemory))
	}
	if opts.Threads < 0 || opts.Threads > MaxThreads {
		return nil, fmt.Errorf("host: %d threads is out of range [1, %d]", opts.Threads, MaxThreads)
	}
	if _, _, _, shared := sharedmem.Memory(wasm); opts.Threads > 1 && !shared {
		m := abi.SharedMemory
		var err error
		if wasm, err = sharedmem.Share(wasm, sharedmem.Import{Module: m.Module, Name: m.Name}, m.MinPages, m.MaxPages); err != nil {
			return nil, fmt.Errorf("host: sharing the engine's memory among %d threads: %w", opts.Threads, err)
		}
	}
	r := &Runtime{cache: opts.Cache, stderr: &head{w: opts.Stderr}}
	if r.cache == nil {
		r.cache, r.ownCache = defaultCache(), true
	}
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(uint32(limit / pageSize))
	// A module whose memory is an imported shared one (wisp/wasm/sharedmem)
	// needs wazero's threads, and a module that defines that memory.
	imp, minPages, maxPages, shared := sharedmem.Memory(wasm)
	if shared {
		cfg = cfg.WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesThreads)
	}
	r.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if shared {
		maxPages = min(maxPages, uint32(limit/pageSize))
		mem := sharedmem.MemoryModule(minPages, maxPages)
		if _, err := r.rt.InstantiateWithConfig(ctx, mem, wazero.NewModuleConfig().WithName(imp.Module)); err != nil {
			r.close(ctx)
			return nil, fmt.Errorf("host: making the shared memory the engine imports: %w", err)
		}
	}
	if err := r.instantiate(ctx, wasm); err != nil {
		r.close(ctx)
		return nil, err
	}
	if _, err := r.status(ctx, "wisp_memory_limit", uint64(limit>>20)); err != nil {
		r.close(ctx)
		return nil, err
	}
	if opts.Threads > 1 {
		minWork := opts.minWork
		if minWork == 0 {
			minWork = defaultMinWork
		}
		if err := r.startThreads(ctx, opts.Threads, minWork); err != nil {
			r.close(ctx)
			return nil, err
		}
	}
	return r, nil
}

// defaultCache returns a compilation cache in the user's cache directory,
// or in memory.
func defaultCache() wazero.CompilationCache {
	if dir, err := os.UserCacheDir(); err == nil {
		if c, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "wisp", "wazero")); err == nil {
			return c
		}
	}
	return wazero.NewCompilationCache()
}

// instantiate wires the modules: the forwarding module as "simd", WASI,
// the engine as "engine" without start functions, the kernels against the
// engine's memory and the forwarding module's table, then _initialize (last,
// so that even package initialisers could call kernels).
func (r *Runtime) instantiate(ctx context.Context, wasm []byte) error {
	compiled, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return fmt.Errorf("host: compiling the engine module: %w", err)
	}
	for _, f := range compiled.ImportedFunctions() {
		if mod, _, _ := f.Import(); mod == "simd" {
			r.simd = true
		}
	}
	if r.simd {
		cfg := wazero.NewModuleConfig().WithName("simd")
		if _, err := r.rt.InstantiateWithConfig(ctx, simd.ForwardWasm(), cfg); err != nil {
			return fmt.Errorf("host: instantiating the forwarding module: %w", err)
		}
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		return fmt.Errorf("host: instantiating WASI: %w", err)
	}
	cfg := wazero.NewModuleConfig().
		WithName("engine").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStderr(r.stderr)
	r.mod, err = r.rt.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		return fmt.Errorf("host: instantiating the engine module: %w", err)
	}
	if r.mod.ExportedMemory("memory") == nil {
		return errors.New("host: the engine module exports no memory: is it wisp/wasm/module?")
	}
	if r.simd {
		cfg := wazero.NewModuleConfig().WithName("kernels")
		if _, err := r.rt.InstantiateWithConfig(ctx, simd.KernelsWasm(), cfg); err != nil {
			return fmt.Errorf("host: instantiating the kernels: %w", err)
		}
	}
	init := r.mod.ExportedFunction("_initialize")
	if init == nil {
		return errors.New("host: the engine module exports no _initialize: build it with -buildmode=c-shared")
	}
	if _, err := init.Call(ctx); err != nil {
		return &TrapError{Op: "_initialize", Err: err, Stderr: r.stderr.String()}
	}
	r.fns = map[string]api.Function{}
	for _, e := range abi.Exports {
		f := r.mod.ExportedFunction(e.Name)
		if f == nil {
			return fmt.Errorf("host: the engine module does not export %s: is it wisp/wasm/module?", e.Name)
		}
		r.fns[e.Name] = f
	}
	if v, err := r.call(ctx, "wisp_abi_version"); err != nil {
		return err
	} else if int32(v) != abi.Version {
		return fmt.Errorf("host: the engine module speaks ABI version %d, the host %d", int32(v), abi.Version)
	}
	return nil
}

// Kernels reports which kernels the instance runs: "wasm-simd128" when the
// module imports them, "go" for a module built with the purego tag.
func (r *Runtime) Kernels() string {
	if r.simd {
		return "wasm-simd128"
	}
	return "go"
}

// Close releases the instance and everything in it.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.close(ctx)
}

func (r *Runtime) close(ctx context.Context) error {
	r.closed = true
	if r.model != nil {
		r.model.closed = true
		r.model = nil
	}
	terr := r.threads.stop(ctx)
	err := r.rt.Close(ctx)
	if err == nil {
		err = terr
	}
	if r.ownCache {
		if cerr := r.cache.Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// Load copies the bytes of a GGUF model file into the instance and loads
// it there; data may be reused once Load returns. Only one model may be
// loaded at a time: close the last one first.
func (r *Runtime) Load(ctx context.Context, data []byte) (*Model, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return nil, err
	}
	if r.model != nil {
		return nil, errors.New("host: a model is already loaded; close it first")
	}
	if len(data) == 0 {
		return nil, errors.New("host: the model file is empty")
	}
	if len(data) > math.MaxUint32 {
		return nil, fmt.Errorf("host: a model of %d bytes does not fit in 4 GiB of wasm32 memory", len(data))
	}
	// The header first, as a page does before it downloads the file: a
	// model the engine cannot run, or that does not fit, gets the error
	// that Check gives, before its bytes are copied in.
	for n := min(len(data), checkPrefix); ; {
		need, err := r.check(ctx, data[:n], int64(len(data)))
		if err != nil {
			return nil, err
		}
		if need == 0 {
			break
		}
		n = min(len(data), max(need, 2*n))
	}
	addr, err := r.alloc(ctx, len(data))
	if err != nil {
		return nil, err
	}
	if !r.mod.Memory().Write(addr, data) {
		return nil, fmt.Errorf("host: writing %d bytes at %#x is out of memory's range", len(data), addr)
	}
	if _, err := r.status(ctx, "wisp_load", uint64(addr), uint64(len(data))); err != nil {
		r.status(ctx, "wisp_free", uint64(addr)) // the buffer is still ours
		return nil, err
	}
	js, err := r.read(ctx, "wisp_info_ptr", "wisp_info_len", 1)
	if err != nil {
		return nil, err
	}
	m := &Model{r: r, token: -1}
	if err := json.Unmarshal(js, &m.info); err != nil {
		return nil, fmt.Errorf("host: the model's info: %w", err)
	}
	r.model = m
	return m, nil
}

// checkPrefix is how much of a file Load hands to the check first.
const checkPrefix = 64 << 10

// Check checks prefix, the first bytes of a GGUF model file of size bytes
// (size < 0: not known), as Load would check the whole file, without
// loading anything: from the header, the architecture, the tokenizer and
// every tensor's type and shape; from the size, whether the file holds
// every tensor and fits in memory with a short session. It returns need >
// 0 when prefix ends inside the header, which takes at least need bytes
// (call again with at least that many), and otherwise the *Error that Load
// gives for the file, or nil.
func (r *Runtime) Check(ctx context.Context, prefix []byte, size int64) (need int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usable(); err != nil {
		return 0, err
	}
	return r.check(ctx, prefix, size)
}

func (r *Runtime) check(ctx context.Context, prefix []byte, size int64) (need int, err error) {
	err = r.with(ctx, prefix, func(addr uint32) error {
		st, err := r.status(ctx, "wisp_check", uint64(addr), uint64(len(prefix)), api.EncodeI64(size))
		if err == nil {
			need = int(st)
		}
		return err
	})
	return need, err
}

// usable returns an error when the instance can no longer be called.
func (r *Runtime) usable() error {
	switch {
	case r.closed:
		return errors.New("host: the runtime is closed")
	case r.broken != nil:
		return r.broken
	}
	return nil
}

// call calls an export and returns its result. A trap makes the instance
// unusable: the Go runtime inside may be in any state.
func (r *Runtime) call(ctx context.Context, name string, args ...uint64) (uint64, error) {
	if err := r.usable(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r.stderr.reset()
	res, err := r.fns[name].Call(ctx, args...)
	if err != nil {
		r.broken = &TrapError{Op: name, Err: err, Stderr: r.stderr.String()}
		return 0, r.broken
	}
	return res[0], nil
}

// status calls an export that returns a status, turning a negative one
// into an *Error.
func (r *Runtime) status(ctx context.Context, name string, args ...uint64) (int32, error) {
	v, err := r.call(ctx, name, args...)
	if err != nil {
		return 0, err
	}
	st := int32(uint32(v))
	if st < 0 {
		return st, r.errorOf(ctx, name, st)
	}
	return st, nil
}

// errorOf returns the module's error after a failed call.
func (r *Runtime) errorOf(ctx context.Context, name string, st int32) error {
	msg, err := r.read(ctx, "wisp_error_ptr", "wisp_error_len", 1)
	if err != nil {
		return err
	}
	return &Error{Op: name, Status: st, Msg: string(msg)}
}

// read copies the bytes that a ptr/len pair of exports describes; the
// length counts elements of size elem.
func (r *Runtime) read(ctx context.Context, ptrName, lenName string, elem uint32) ([]byte, error) {
	p, err := r.call(ctx, ptrName)
	if err != nil {
		return nil, err
	}
	n, err := r.call(ctx, lenName)
	if err != nil {
		return nil, err
	}
	return r.view(uint32(p), uint64(uint32(n))*uint64(elem))
}

// view copies n bytes at addr out of the module's memory, as it is now.
func (r *Runtime) view(addr uint32, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	b, ok := r.mod.Memory().Read(addr, uint32(min(n, math.MaxUint32)))
	if !ok || n > math.MaxUint32 {
		return nil, fmt.Errorf("host: the module pointed at [%#x, +%d), outside its memory", addr, n)
	}
	return bytes.Clone(b), nil
}

// alloc allocates n bytes in the module.
func (r *Runtime) alloc(ctx context.Context, n int) (uint32, error) {
	v, err := r.call(ctx, "wisp_alloc", uint64(n))
	if err != nil {
		return 0, err
	}
	if addr := uint32(v); addr != 0 {
		return addr, nil
	}
	st, err := r.call(ctx, "wisp_error_status")
	if err != nil {
		return 0, err
	}
	return 0, r.errorOf(ctx, "wisp_alloc", int32(uint32(st)))
}

// with copies data into a fresh buffer of the module, calls f with its
// address, and frees it. Empty data needs no buffer: f gets address 0.
func (r *Runtime) with(ctx context.Context, data []byte, f func(addr uint32) error) error {
	if len(data) == 0 {
		return f(0)
	}
	if uint64(len(data)) > math.MaxUint32 {
		return fmt.Errorf("host: %d bytes do not fit in wasm32 memory", len(data))
	}
	addr, err := r.alloc(ctx, len(data))
	if err != nil {
		return err
	}
	if !r.mod.Memory().Write(addr, data) {
		return fmt.Errorf("host: writing %d bytes at %#x is out of memory's range", len(data), addr)
	}
	err = f(addr)
	if _, ferr := r.status(ctx, "wisp_free", uint64(addr)); err == nil {
		err = ferr
	}
	return err
}

// Error is an error that the module reported through its ABI.
type Error struct {
	Op     string // the export that failed, such as "wisp_prompt"
	Status int32  // its negative status, one of the abi.Status* codes
	Msg    string // the module's description of the problem
}

func (e *Error) Error() string { return "host: " + e.Op + ": " + e.Msg }

// head is an io.Writer that keeps the first bytes written to it since the
// last reset, and passes everything on to w, when not nil: the Go runtime's
// fatal errors say what went wrong first, then dump every goroutine.
type head struct {
	w   io.Writer
	buf []byte
}

const headSize = 1024

func (h *head) Write(p []byte) (int, error) {
	if h.w != nil {
		h.w.Write(p) // the module's output must not fail the module
	}
	h.buf = append(h.buf, p[:min(len(p), headSize-len(h.buf))]...)
	return len(p), nil
}

// reset forgets what was kept.
func (h *head) reset() { h.buf = h.buf[:0] }

// String returns the lines kept up to the first goroutine dump.
func (h *head) String() string {
	s := string(h.buf)
	if i := strings.Index(s, "\ngoroutine "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// TrapError is a call into the module that trapped or exited, typically a
// fatal error of the Go runtime inside (memory exhausted). The instance is
// unusable afterwards: every later call returns the same error.
type TrapError struct {
	Op     string // the export called, such as "wisp_load"
	Err    error  // wazero's error, with the wasm stack trace
	Stderr string // what the module wrote to stderr before trapping
}

func (e *TrapError) Error() string {
	msg, _, _ := strings.Cut(e.Err.Error(), "\n")
	if e.Stderr != "" {
		msg = strings.ReplaceAll(e.Stderr, "\n", "; ") + " (" + msg + ")"
	}
	return "host: " + e.Op + " trapped, the instance is unusable: " + msg
}

func (e *TrapError) Unwrap() error { return e.Err }

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"wisp/wasm/backend"
	"wisp/wasm/host"
)

// runtimeFlags are the flags that choose where and how the engine runs:
// --runtime, --wasm and --threads.
type runtimeFlags struct {
	runtime, wasmPath string
	threads           int
}

// register adds the flags to fs.
func (f *runtimeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.runtime, "runtime", "native", "where the engine runs: native, or wazero (the wasm module with its SIMD128 kernels, as in a browser)")
	fs.StringVar(&f.wasmPath, "wasm", "", "the engine module for --runtime wazero (default: site/wasm/wisp.wasm, else built)")
	fs.IntVar(&f.threads, "threads", 1, "threads that split each large matrix product by rows (the output is the same at any number)")
}

// openBackend loads the model in the runtime named by --runtime
// (wisp/wasm/backend) with its matrix products split among --threads.
// --wasm is the engine module for wazero; when empty, site/wasm/wisp.wasm
// (made by make site) is used if present, else the module is built into
// the user's cache.
func (f runtimeFlags) openBackend(model, tokPath string, stderr io.Writer) (backend.Model, error) {
	if !slices.Contains(backend.Runtimes, f.runtime) {
		return nil, fmt.Errorf("--runtime %q: choose native or wazero", f.runtime)
	}
	data, err := readModelBytes(model, tokPath)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if f.threads < 1 || f.threads > backend.MaxThreads {
		return nil, fmt.Errorf("--threads %d: choose 1 to %d", f.threads, backend.MaxThreads)
	}
	cfg := backend.Config{Runtime: f.runtime, Threads: f.threads, Host: &host.Options{Stderr: stderr}}
	if f.runtime == "wazero" {
		if f.wasmPath == "" {
			if f.wasmPath, err = findModule(ctx, stderr); err != nil {
				return nil, err
			}
		}
		if cfg.Wasm, err = os.ReadFile(f.wasmPath); err != nil {
			return nil, err
		}
	}
	m, err := backend.Open(ctx, cfg, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	return m, nil
}

// findModule returns site/wasm/wisp.wasm when it exists, else builds the
// engine module into the user's cache directory.
func findModule(ctx context.Context, stderr io.Writer) (string, error) {
	const built = "site/wasm/wisp.wasm"
	if _, err := os.Stat(built); err == nil {
		return built, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "wisp", "module")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "building the engine module (no %s; make site builds it)...\n", built)
	return host.BuildModule(ctx, dir)
}

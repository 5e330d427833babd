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

// runtimeFlags adds the flags that choose where and how the engine runs,
// --runtime, --wasm and --threads, whose values openBackend takes.
func runtimeFlags(fs *flag.FlagSet) (runtime, wasmPath *string, threads *int) {
	runtime = fs.String("runtime", "native", "where the engine runs: native, or wazero (the wasm module with its SIMD128 kernels, as in a browser)")
	wasmPath = fs.String("wasm", "", "the engine module for --runtime wazero (default: site/wasm/wisp.wasm, else built)")
	threads = fs.Int("threads", 1, "threads that split each large matrix product by rows (the output is the same at any number)")
	return runtime, wasmPath, threads
}

// openBackend loads the model in the named runtime (wisp/wasm/backend)
// with its matrix products split among threads. wasmPath is the engine
// module for wazero; when empty, site/wasm/wisp.wasm (made by make site)
// is used if present, else the module is built into the user's cache.
func openBackend(runtime, model, tokPath, wasmPath string, threads int, stderr io.Writer) (backend.Model, error) {
	if !slices.Contains(backend.Runtimes, runtime) {
		return nil, fmt.Errorf("--runtime %q: choose native or wazero", runtime)
	}
	data, err := readModelBytes(model, tokPath)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if threads < 1 || threads > backend.MaxThreads {
		return nil, fmt.Errorf("--threads %d: choose 1 to %d", threads, backend.MaxThreads)
	}
	cfg := backend.Config{Runtime: runtime, Threads: threads, Host: &host.Options{Stderr: stderr}}
	if runtime == "wazero" {
		if wasmPath == "" {
			if wasmPath, err = findModule(ctx, stderr); err != nil {
				return nil, err
			}
		}
		if cfg.Wasm, err = os.ReadFile(wasmPath); err != nil {
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

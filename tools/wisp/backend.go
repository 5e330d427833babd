package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"wisp/engine"
	"wisp/engine/option"
	"wisp/wasm/host"
)

// backend runs a model in one runtime: natively, or as the wasm module in
// wazero. Both print the same bytes for the same model and options.
type backend interface {
	ContextLen() int
	Tokenize(prompt string) ([]int, error)
	// Start evaluates the prompt tokens and returns their text.
	Start(ids []int, o option.Options) (echo string, err error)
	// Next returns the text of the next token; io.EOF at the end.
	Next() (string, error)
	Close() error
}

// nativeBackend runs the engine in this process.
type nativeBackend struct {
	m *engine.Model
	s *engine.Session
}

func (b *nativeBackend) ContextLen() int                       { return b.m.ContextLen }
func (b *nativeBackend) Tokenize(prompt string) ([]int, error) { return b.m.Tokenize(prompt) }
func (b *nativeBackend) Close() error                          { return nil }
func (b *nativeBackend) Next() (string, error)                 { return b.s.Next() }

func (b *nativeBackend) Start(ids []int, o option.Options) (string, error) {
	var err error
	b.s, err = b.m.NewSession(o)
	if err != nil {
		return "", err
	}
	return b.s.PromptTokens(ids)
}

// wazeroBackend runs the engine's wasm module, with the SIMD128 kernels,
// in wazero.
type wazeroBackend struct {
	ctx context.Context
	rt  *host.Runtime
	m   *host.Model
}

func (b *wazeroBackend) ContextLen() int { return b.m.Info().ContextLength }

func (b *wazeroBackend) Tokenize(prompt string) ([]int, error) {
	return b.m.Tokenize(b.ctx, prompt, true)
}

func (b *wazeroBackend) Start(ids []int, o option.Options) (string, error) {
	return b.m.PromptTokens(b.ctx, ids, o)
}

func (b *wazeroBackend) Next() (string, error) { return b.m.Step(b.ctx) }

func (b *wazeroBackend) Close() error { return b.rt.Close(b.ctx) }

// openBackend loads the model in the named runtime. wasmPath is the engine
// module for wazero; when empty, site/wasm/wisp.wasm (made by make site) is
// used if present, else the module is built into the user's cache.
func openBackend(runtime, model, tokPath, wasmPath string, stderr io.Writer) (backend, error) {
	switch runtime {
	case "native":
		m, err := loadModel(model, tokPath)
		if err != nil {
			return nil, err
		}
		return &nativeBackend{m: m}, nil
	case "wazero":
	default:
		return nil, fmt.Errorf("--runtime %q: choose native or wazero", runtime)
	}
	data, err := readModelBytes(model, tokPath)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if wasmPath == "" {
		if wasmPath, err = findModule(ctx, stderr); err != nil {
			return nil, err
		}
	}
	code, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, err
	}
	rt, err := host.New(ctx, code, &host.Options{Stderr: stderr})
	if err != nil {
		return nil, err
	}
	m, err := rt.Load(ctx, data)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	return &wazeroBackend{ctx: ctx, rt: rt, m: m}, nil
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

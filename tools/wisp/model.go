package main

import (
	"bytes"
	"fmt"
	"os"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/llama2c"
)

// isGGUF reports whether b starts with GGUF's magic.
func isGGUF(b []byte) bool { return bytes.HasPrefix(b, []byte("GGUF")) }

// readModelBytes returns the bytes of a GGUF model: the file itself, or,
// for a llama2.c checkpoint with its tokenizer, its F32 conversion made in
// memory.
func readModelBytes(path, tokPath string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("no model: give one with -m MODEL")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if isGGUF(b) {
		return b, nil // it carries its own tokenizer; -z is for the other inputs
	}
	if tokPath == "" {
		return nil, fmt.Errorf("%s is not a GGUF file; for a llama2.c checkpoint give its tokenizer with -z tokenizer.bin", path)
	}
	tok, err := os.ReadFile(tokPath)
	if err != nil {
		return nil, err
	}
	g, _, err := llama2c.Convert(b, tok, llama2c.Options{Type: gguf.F32})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// loadModel loads a model as readModelBytes reads it.
func loadModel(path, tokPath string) (*engine.Model, error) {
	b, err := readModelBytes(path, tokPath)
	if err != nil {
		return nil, err
	}
	m, err := engine.Load(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// tensorType parses a --type flag: f32 or f16.
func tensorType(name string) (gguf.TensorType, error) {
	switch name {
	case "f32":
		return gguf.F32, nil
	case "f16":
		return gguf.F16, nil
	}
	return 0, fmt.Errorf("--type %q: choose f32 or f16", name)
}

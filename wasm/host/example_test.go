package host_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
	"wisp/wasm/host"
)

func Example() {
	ctx := context.Background()

	// Build the engine module (a prebuilt wisp.wasm does as well).
	dir, err := os.MkdirTemp("", "wisp")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path, err := host.BuildModule(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	r, err := host.New(ctx, wasm, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(ctx)

	// A small random model; any GGUF file's bytes do.
	file, err := synth.Bytes(synth.Shapes()["stories260K"], synth.Options{Type: gguf.F16, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}

	m, err := r.Load(ctx, file)
	if err != nil {
		log.Fatal(err)
	}
	info := m.Info()
	fmt.Printf("%s, %d layers, %d tokens, kernels %s\n", info.Architecture, info.Layers, info.VocabSize, info.Kernels)

	n := 0
	err = m.Generate(ctx, "Once upon a time", option.Options{Temperature: 0.8, Seed: 42, MaxTokens: 20},
		func(piece string) error {
			n++ // a real program prints the piece
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped because of", m.Done())
	// Output:
	// llama, 5 layers, 512 tokens, kernels wasm-simd128
	// stopped because of length
}

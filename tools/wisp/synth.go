package main

import (
	"fmt"
	"io"
	"strings"

	"wisp/internal/synth"
)

func synthCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("synth", "-o OUT.gguf (--shape NAME | --dim D --hidden H --layers L --heads N [--kv-heads K] --vocab V) [flags]",
		`Writes a model of random weights with the shape of a known model, or of the
given dimensions, for tests and benchmarks. Its text is gibberish; its speed
and memory are those of the real thing. The file is marked wisp.random.
Shapes: `+strings.Join(synth.ShapeNames(), ", ")+`.`, stderr)
	out := fs.String("o", "", "the GGUF file to write")
	shapeName := fs.String("shape", "", "a named shape")
	typ := fs.String("type", "f16", "tensor type of the matrices: f32 or f16")
	seed := fs.Uint64("seed", 1, "random seed")
	arch := fs.String("arch", "llama", "architecture, with explicit dimensions: llama or qwen2")
	dim := fs.Int("dim", 0, "embedding length")
	hidden := fs.Int("hidden", 0, "feed-forward length")
	layers := fs.Int("layers", 0, "number of blocks")
	heads := fs.Int("heads", 0, "attention heads")
	kvHeads := fs.Int("kv-heads", 0, "key/value heads (default: as many as heads)")
	vocab := fs.Int("vocab", 0, "vocabulary size (at least 259)")
	ctx := fs.Int("ctx", 512, "context length")
	chatML := fs.Bool("chatml", false, "make the last two tokens ChatML's <|im_start|> and <|im_end|> (EOS) and write the ChatML chat template")
	untied := fs.Bool("untied", false, "store a separate output matrix instead of reusing the embedding")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *out == "" {
		fs.Usage()
		return errUsage
	}
	var s synth.Shape
	if *shapeName != "" {
		var ok bool
		if s, ok = synth.Shapes()[*shapeName]; !ok {
			return fmt.Errorf("unknown shape %q; choose one of %s", *shapeName, strings.Join(synth.ShapeNames(), ", "))
		}
	} else {
		if *kvHeads == 0 {
			*kvHeads = *heads
		}
		s = synth.Shape{Arch: *arch, Dim: *dim, HiddenDim: *hidden, Layers: *layers, Heads: *heads, KVHeads: *kvHeads,
			Vocab: *vocab, ContextLen: *ctx, RopeBase: 10000, Tied: true}
	}
	if *untied {
		s.Tied = false
	}
	tt, err := tensorType(*typ)
	if err != nil {
		return err
	}
	name := "random"
	if *shapeName != "" {
		name = "random-" + *shapeName
	}
	b, err := synth.Build(s, synth.Options{Type: tt, Seed: *seed, Name: name, ChatML: *chatML})
	if err != nil {
		return err
	}
	n, err := writeGGUF(*out, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s: %s, %d parameters, %d bytes, random weights\n", *out, name, s.Params(), n)
	return nil
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"wisp/engine/gguf"
	"wisp/tools/llama2c"
)

func convertCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "-o OUT.gguf [--type f32|f16] MODEL [-z TOKENIZER]",
		`Converts a llama2.c checkpoint (with its tokenizer.bin, -z) into a GGUF file
with the tokenizer inside. Half precision rounds to nearest even and flushes
values too small for a normal half to zero; the losses are reported.`, stderr)
	out := fs.String("o", "", "the GGUF file to write")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin")
	typ := fs.String("type", "f16", "tensor type of the matrices: f32 or f16 (norms stay f32)")
	name := fs.String("name", "", "general.name to record (default: the input's base name)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		fs.Usage()
		return errUsage
	}
	in := pos[0]
	var tt gguf.TensorType
	switch *typ {
	case "f32":
		tt = gguf.F32
	case "f16":
		tt = gguf.F16
	default:
		return fmt.Errorf("--type %q: choose f32 or f16", *typ)
	}
	if *name == "" {
		*name = filepath.Base(in)
	}
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	if isGGUF(b) {
		return fmt.Errorf("%s is already GGUF; converting between GGUF types is not supported yet", in)
	}
	if *tokPath == "" {
		return fmt.Errorf("%s looks like a llama2.c checkpoint: give its tokenizer.bin with -z", in)
	}
	tok, err := os.ReadFile(*tokPath)
	if err != nil {
		return err
	}
	g, st, err := llama2c.Convert(b, tok, llama2c.Options{Type: tt, Name: *name})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.WriteFile(*out, g, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d bytes, %s)\n", *out, len(g), *typ)
	if tt == gguf.F16 {
		fmt.Fprintf(stderr, "f16: %v\n", st)
	}
	return nil
}

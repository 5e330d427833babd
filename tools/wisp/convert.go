package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"wisp/engine/gguf"
	"wisp/tools/fp16"
	"wisp/tools/hf"
	"wisp/tools/llama2c"
	"wisp/tools/retype"
)

func convertCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "-o OUT.gguf [--type f32|f16] INPUT [-z TOKENIZER]",
		`Converts a model to GGUF. INPUT is one of:
  - a Hugging Face folder (config.json, model.safetensors or a sharded index,
    tokenizer.json; Llama and Qwen2; BF16, F16 or F32 tensors);
  - a llama2.c checkpoint, with its tokenizer.bin given by -z;
  - a GGUF file, whose matrices are converted to --type.
Half precision rounds to nearest even and flushes values too small for a
normal half to zero; what that cost is reported.`, stderr)
	out := fs.String("o", "", "the GGUF file to write")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for a llama2.c checkpoint")
	typ := fs.String("type", "f16", "tensor type of the matrices: f32 or f16 (norms and biases stay f32)")
	name := fs.String("name", "", "general.name to record (default: the input's base name; kept for GGUF input)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		fs.Usage()
		return errUsage
	}
	in := pos[0]
	tt, err := tensorType(*typ)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	}
	var b *gguf.Builder
	var st fp16.Stats
	if info, err := os.Stat(in); err != nil {
		return err
	} else if info.IsDir() {
		var rep hf.Report
		b, rep, err = hf.Convert(in, hf.Options{Type: tt, Name: *name, Progress: progressBar(stderr, "convert")})
		if err != nil {
			return err
		}
		st = rep.FP16
		fmt.Fprintf(stderr, "%s: %s, %d tensors, %d parameters, tokenizer %s (%d tokens)\n", in, rep.Arch, rep.Tensors, rep.Params, rep.Tokenizer, rep.Vocab)
		for _, w := range rep.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
	} else {
		data, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		switch {
		case isGGUF(data):
			f, err := gguf.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			if b, st, err = retype.Convert(f, tt); err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
		case *tokPath == "":
			return fmt.Errorf("%s is neither a folder nor a GGUF file; for a llama2.c checkpoint give its tokenizer.bin with -z", in)
		default:
			tok, err := os.ReadFile(*tokPath)
			if err != nil {
				return err
			}
			ck, err := llama2c.ReadCheckpoint(data)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			v, err := llama2c.ReadTokenizer(tok, ck.VocabSize)
			if err != nil {
				return fmt.Errorf("%s: %w", *tokPath, err)
			}
			if b, st, err = llama2c.ToGGUF(ck, v, llama2c.Options{Type: tt, Name: *name}); err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
		}
	}
	n, err := writeGGUF(*out, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d bytes, %s)\n", *out, n, *typ)
	if tt == gguf.F16 {
		fmt.Fprintf(stderr, "f16: %v\n", st)
	}
	return nil
}

// writeGGUF writes a builder to a file, removing the file on failure.
func writeGGUF(path string, b *gguf.Builder) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, err := b.WriteTo(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return 0, err
	}
	return n, nil
}

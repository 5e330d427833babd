package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"wisp/engine/gguf"
	"wisp/internal/llama2c"
	"wisp/tools/hf"
	"wisp/tools/quant"
	"wisp/tools/retype"
)

func convertCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", "-o OUT.gguf [--type TYPE] INPUT [-z TOKENIZER]",
		`Converts a model to GGUF. INPUT is one of:
  - a Hugging Face folder (config.json, model.safetensors or a sharded index,
    tokenizer.json; Llama and Qwen2; BF16, F16 or F32 tensors);
  - a llama2.c checkpoint, with its tokenizer.bin given by -z;
  - a GGUF file (F32, F16, BF16 or quantized), whose matrices are converted
    to --type.
--type is one of:
`+schemeList()+`
Vectors (norms, biases) stay F32. A matrix whose rows are not whole blocks
of its type falls back as llama.cpp does (Q4_K to Q5_0, Q5_K to Q5_1,
Q6_K to Q8_0, and to F16 when the rows are not a multiple of 32 either).
Half precision rounds to nearest even and flushes values too small for a
normal half to zero. The size, bits a weight and round-trip error of each
type stored are reported, with the fallbacks.`, stderr)
	out := fs.String("o", "", "the GGUF file to write")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for a llama2.c checkpoint")
	typ := fs.String("type", "f16", "tensor type of the matrices: "+strings.Join(quant.SchemeNames(), ", "))
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
	scheme, err := quant.ParseScheme(*typ)
	if err != nil {
		return fmt.Errorf("--type: %w", err)
	}
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
	}
	// Folders and checkpoints are read as F32 and then stored as the
	// scheme says, as GGUF input is: one conversion, one report.
	tt := gguf.F32
	var b *gguf.Builder
	var src *gguf.File
	if info, err := os.Stat(in); err != nil {
		return err
	} else if info.IsDir() {
		var rep hf.Report
		b, rep, err = hf.Convert(in, hf.Options{Type: tt, Name: *name, Progress: progressBar(stderr, "convert")})
		if err != nil {
			return err
		}
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
			if src, err = gguf.Parse(data); err != nil {
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
			if b, _, err = llama2c.ToGGUF(ck, v, llama2c.Options{Type: tt, Name: *name}); err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
		}
	}
	if src == nil {
		src = b.File()
	}
	b, rep, err := retype.Convert(src, scheme, progressBar(stderr, "store as "+scheme.Name()))
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	n, err := writeGGUF(*out, b)
	if err != nil {
		return err
	}
	rep.Write(stderr)
	fmt.Fprintf(stderr, "wrote %s (%d bytes, %s)\n", *out, n, scheme.Name())
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

// schemeList describes the --type schemes, one a line.
func schemeList() string {
	var sb strings.Builder
	for _, s := range quant.Schemes() {
		fmt.Fprintf(&sb, "  %-7s %s\n", s.Name(), s.About())
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

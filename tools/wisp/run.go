package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"wisp/engine/option"
)

func runCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "-m MODEL [-z TOKENIZER] [-p PROMPT] [flags]",
		`Generates text and streams it to stdout as llama2.c's run prints it: the prompt
as the tokenizer decodes it, then the continuation, then a newline. Timings go
to stderr. MODEL is a GGUF file, or a llama2.c checkpoint given with its
tokenizer.bin (-z), converted in memory.`, stderr)
	model := fs.String("m", "", "the model: a GGUF file, or a llama2.c .bin with -z")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for a llama2.c checkpoint")
	prompt := fs.String("p", "", "the prompt (default: none, start from BOS)")
	steps := fs.Int("n", 256, "positions to run, the prompt included, as llama2.c counts them; 0 means the model's context length")
	var opt option.Options
	storeOptions := option.Flags(fs, &opt) // -t, --top-p, --seed, --stop, ...
	quiet := fs.Bool("q", false, "print no timings to stderr")
	runtime, wasmPath, threads := runtimeFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	storeOptions()
	if *model == "" && len(pos) == 1 {
		*model, pos = pos[0], nil
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	if opt.Seed == 0 {
		opt.Seed = uint64(time.Now().UnixNano())
	}
	if err := opt.Validate(); err != nil {
		return flagError(err)
	}

	t0 := time.Now()
	be, err := openBackend(*runtime, *model, *tokPath, *wasmPath, *threads, stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	loadTime := time.Since(t0)
	n := *steps
	if ctx := be.ContextLen(); n <= 0 || n > ctx {
		n = ctx
	}
	ids, err := be.Tokenize(*prompt)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("the prompt is empty and the model adds no BOS token: give a prompt with -p")
	}
	if len(ids) > n {
		return fmt.Errorf("the prompt is %d tokens but -n allows %d positions (the model's context is %d)", len(ids), n, be.ContextLen())
	}
	opt.Context = n
	// llama2.c evaluates n positions and prints the token sampled after the
	// last of them too.
	opt.MaxTokens = n - len(ids) + 1

	out := bufio.NewWriter(stdout)
	write := func(s string) error {
		if _, err := out.WriteString(s); err != nil {
			return err
		}
		return out.Flush()
	}
	t1 := time.Now()
	echo, err := be.PromptTokens(ids, opt)
	if err != nil {
		return err
	}
	prefillTime := time.Since(t1)
	if err := write(echo); err != nil {
		return err
	}
	t2 := time.Now()
	generated := 0
	for {

		piece, err := be.Next()
		if piece != "" {
			if err := write(piece); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		generated++
	}
	decodeTime := time.Since(t2)
	if err := write("\n"); err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stderr, "load %.0f ms; prefill %d tokens, %.1f tok/s; decode %d tokens, %.1f tok/s\n",
			ms(loadTime), len(ids), rate(len(ids), prefillTime), generated, rate(generated, decodeTime))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// flagError names the flag of an option out of its range.
func flagError(err error) error {
	var oe *option.Error
	if errors.As(err, &oe) && oe.Spec.Flag != "" {
		return fmt.Errorf("--%s: %w", oe.Spec.Flag, err)
	}
	return err
}

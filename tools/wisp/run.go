package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"wisp/engine/option"
	"wisp/wasm/backend"
)

func runCmd(args []string, stdout, stderr io.Writer) error {
	o, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := generate(o, stdout, stderr)
	if err != nil {
		return err
	}
	if !o.quiet {
		rep.write(stderr)
	}
	return nil
}

// runOptions is what wisp run's flags ask for.
type runOptions struct {
	model, tokPath, prompt string
	// steps is the positions to run, the prompt included; 0 or more than
	// the model's context means the context.
	steps int
	opt   option.Options
	quiet bool
	runtimeFlags
}

// parseRunFlags reads wisp run's flags; a zero seed becomes the clock's.
func parseRunFlags(args []string, stderr io.Writer) (runOptions, error) {
	var o runOptions
	fs := newFlags("run", "-m MODEL [-z TOKENIZER] [-p PROMPT] [flags]",
		`Generates text and streams it to stdout as llama2.c's run prints it: the prompt
as the tokenizer decodes it, then the continuation, then a newline. Timings go
to stderr. MODEL is a GGUF file, or a llama2.c checkpoint given with its
tokenizer.bin (-z), converted in memory.`, stderr)
	fs.StringVar(&o.model, "m", "", "the model: a GGUF file, or a llama2.c .bin with -z")
	fs.StringVar(&o.tokPath, "z", "", "llama2.c tokenizer.bin, for a llama2.c checkpoint")
	fs.StringVar(&o.prompt, "p", "", "the prompt (default: none, start from BOS)")
	fs.IntVar(&o.steps, "n", 256, "positions to run, the prompt included, as llama2.c counts them; 0 means the model's context length")
	storeOptions := option.Flags(fs, &o.opt) // -t, --top-p, --seed, --stop, ...
	fs.BoolVar(&o.quiet, "q", false, "print no timings to stderr")
	o.runtimeFlags.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return o, err
	}
	storeOptions()
	if o.model == "" && len(pos) == 1 {
		o.model, pos = pos[0], nil
	}
	if len(pos) > 0 {
		fs.Usage()
		return o, errUsage
	}
	if o.opt.Seed == 0 {
		o.opt.Seed = uint64(time.Now().UnixNano())
	}
	if err := o.opt.Validate(); err != nil {
		return o, flagError(err)
	}
	return o, nil
}

// runReport is what one wisp run took.
type runReport struct {
	load, prefill, decode time.Duration
	// promptTokens were evaluated in the prefill, generated in the decode.
	promptTokens, generated int
}

// write prints the timings as one line.
func (r runReport) write(w io.Writer) {
	fmt.Fprintf(w, "load %.0f ms; prefill %d tokens, %.1f tok/s; decode %d tokens, %.1f tok/s\n",
		ms(r.load), r.promptTokens, rate(r.promptTokens, r.prefill), r.generated, rate(r.generated, r.decode))
}

// generate loads the model, then streams the prompt as the tokenizer
// decodes it, the continuation and a newline to stdout, each piece as it
// comes.
func generate(o runOptions, stdout, stderr io.Writer) (runReport, error) {
	var rep runReport
	t0 := time.Now()
	be, err := o.openBackend(o.model, o.tokPath, stderr)
	if err != nil {
		return rep, err
	}
	defer be.Close()
	rep.load = time.Since(t0)
	ids, err := promptPositions(be, o.prompt, o.steps, &o.opt)
	if err != nil {
		return rep, err
	}
	rep.promptTokens = len(ids)
	out := flushingWriter{bufio.NewWriter(stdout)}
	t1 := time.Now()
	echo, err := be.PromptTokens(ids, o.opt)
	if err != nil {
		return rep, err
	}
	rep.prefill = time.Since(t1)
	if err := out.write(echo); err != nil {
		return rep, err
	}
	t2 := time.Now()
	rep.generated, err = streamTokens(be, out)
	rep.decode = time.Since(t2)
	if err != nil {
		return rep, err
	}
	return rep, out.write("\n")
}

// promptPositions tokenizes the prompt and sets opt's context and token
// budget from steps as llama2.c counts them: steps positions are evaluated
// (the model's context if steps is 0 or more), and the token sampled after
// the last of them is printed too.
func promptPositions(be backend.Model, prompt string, steps int, opt *option.Options) ([]int, error) {
	n := steps
	if ctx := be.ContextLen(); n <= 0 || n > ctx {
		n = ctx
	}
	ids, err := be.Tokenize(prompt)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("the prompt is empty and the model adds no BOS token: give a prompt with -p")
	}
	if len(ids) > n {
		return nil, fmt.Errorf("the prompt is %d tokens but -n allows %d positions (the model's context is %d)", len(ids), n, be.ContextLen())
	}
	opt.Context = n
	opt.MaxTokens = n - len(ids) + 1
	return ids, nil
}

// streamTokens writes each generated piece as it comes until the end of
// the generation and returns the number of tokens generated.
func streamTokens(be backend.Model, out flushingWriter) (int, error) {
	generated := 0
	for {
		piece, err := be.Next()
		if piece != "" {
			if err := out.write(piece); err != nil {
				return generated, err
			}
		}
		if errors.Is(err, io.EOF) {
			return generated, nil
		}
		if err != nil {
			return generated, err
		}
		generated++
	}
}

// flushingWriter writes each piece through to its writer at once.
type flushingWriter struct{ w *bufio.Writer }

// write writes s and flushes it.
func (f flushingWriter) write(s string) error {
	if _, err := f.w.WriteString(s); err != nil {
		return err
	}
	return f.w.Flush()
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is n per second of d, or 0 for no time.
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

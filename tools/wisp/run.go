package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"wisp/engine/sample"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

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
	temp := fs.Float64("t", 1.0, "temperature; 0 picks the most likely token (greedy)")
	topP := fs.Float64("top-p", 0.9, "nucleus sampling: keep the most likely tokens up to this total probability; 0 or 1 keeps all")
	topK := fs.Int("top-k", 0, "keep only the K most likely tokens; 0 keeps all")
	minP := fs.Float64("min-p", 0, "drop tokens less likely than this fraction of the most likely one")
	repeat := fs.Float64("repeat-penalty", 1, "penalise tokens seen in the last --repeat-last-n tokens; 1 is none")
	repeatN := fs.Int("repeat-last-n", 64, "how many recent tokens --repeat-penalty looks at")
	seed := fs.Uint64("seed", 0, "random seed; 0 takes one from the clock")
	var stops stringList
	fs.Var(&stops, "stop", "end generation before this text (repeatable)")
	quiet := fs.Bool("q", false, "print no timings to stderr")
	runtime := fs.String("runtime", "native", "where the engine runs: native, or wazero (the wasm module with its SIMD128 kernels, as in a browser)")
	wasmPath := fs.String("wasm", "", "the engine module for --runtime wazero (default: site/wasm/wisp.wasm, else built)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *model == "" && len(pos) == 1 {
		*model, pos = pos[0], nil
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}

	t0 := time.Now()
	be, err := openBackend(*runtime, *model, *tokPath, *wasmPath, stderr)
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
	opt := genOptions{
		Context: n,
		Sample: sample.Options{
			Temperature: float32(*temp), TopP: float32(*topP), TopK: *topK, MinP: float32(*minP),
			RepeatPenalty: float32(*repeat), RepeatLastN: *repeatN, Seed: *seed,
		},
		// llama2.c evaluates n positions and prints the token sampled after
		// the last of them too.
		MaxTokens: n - len(ids) + 1,
		Stop:      stops,
	}
	if err := opt.Sample.Validate(); err != nil {
		return err
	}

	out := bufio.NewWriter(stdout)
	write := func(s string) error {
		if _, err := out.WriteString(s); err != nil {
			return err
		}
		return out.Flush()
	}
	t1 := time.Now()
	echo, err := be.Start(ids, opt)
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

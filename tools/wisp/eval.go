package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"wisp/tools/eval"
)

func evalCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "-m MODEL --text FILE [--ref REFERENCE] [flags]",
		`Measures a model on a text: its perplexity and, against a reference model
(--ref, typically the original before fp16 or pruning), the mean KL divergence
KL(reference‖model) per token, how often both rank the same token first, and
how many tokens of greedy continuation they share. The text is cut into
windows that each start from BOS.`, stderr)
	model := fs.String("m", "", "the model to measure (GGUF, or a llama2.c .bin with -z)")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	ref := fs.String("ref", "", "a reference model to compare with (same tokenizer)")
	textPath := fs.String("text", "", "the text file to score (- reads stdin)")
	window := fs.Int("window", 0, "tokens per window, BOS included (default min(512, context))")
	maxTokens := fs.Int("max-tokens", 0, "score at most this many tokens of the text (0: all)")
	greedy := fs.Int("greedy", 200, "with --ref, tokens of greedy continuation (from BOS) to compare; 0 skips")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *model == "" || *textPath == "" {
		fs.Usage()
		return errUsage
	}
	var text []byte
	if *textPath == "-" {
		text, err = io.ReadAll(os.Stdin)
	} else {
		text, err = os.ReadFile(*textPath)
	}
	if err != nil {
		return err
	}
	m, err := loadModel(*model, *tokPath)
	if err != nil {
		return err
	}
	opt := eval.Options{Window: *window, MaxTokens: *maxTokens, Progress: progressBar(stderr, "eval")}
	var r eval.Result
	if *ref != "" {
		rm, err := loadModel(*ref, *tokPath)
		if err != nil {
			return err
		}
		if r, err = eval.Compare(rm, m, string(text), opt); err != nil {
			return err
		}
		if *greedy > 0 {
			if r.Prefix, err = eval.GreedyPrefix(rm, m, "", *greedy); err != nil {
				return err
			}
			r.PrefixOf = *greedy
		}
	} else if r, err = eval.Perplexity(m, string(text), opt); err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			Model     string `json:"model"`
			Params    int64  `json:"params"`    // the model's parameters
			FileBytes int64  `json:"fileBytes"` // the size of its file
			Ref       string `json:"ref,omitempty"`
			eval.Result
		}{Model: *model, Params: m.Params(), Ref: *ref, Result: r}
		st, err := os.Stat(*model)
		if err != nil {
			return err
		}
		out.FileBytes = st.Size()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if *ref == "" {
		fmt.Fprintf(stdout, "%s: perplexity %.4f (%.4f nats/token) over %d tokens\n", *model, r.Perplexity, r.NLL, r.Tokens)
		return nil
	}
	fmt.Fprintf(stdout, "tokens scored        %d\n", r.Tokens)
	fmt.Fprintf(stdout, "perplexity           %.4f  %s\n", r.PerplexityB, *model)
	fmt.Fprintf(stdout, "perplexity (ref)     %.4f  %s\n", r.Perplexity, *ref)
	fmt.Fprintf(stdout, "mean KL(ref‖model)   %.6f nats/token\n", r.KL)
	fmt.Fprintf(stdout, "top-1 agreement      %.2f%%\n", 100*r.Top1)
	if r.PrefixOf > 0 {
		fmt.Fprintf(stdout, "greedy prefix shared %d of %d tokens\n", r.Prefix, r.PrefixOf)
	}
	return nil
}

// progressBar returns a progress callback that redraws a bar on stderr when
// it is a terminal, at most ten times a second, and nil otherwise.
func progressBar(stderr io.Writer, label string) func(done, total int) {
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	start := time.Now()
	var last time.Time
	return func(done, total int) {
		now := time.Now()
		if done < total && now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		const width = 30
		fill := width * done / max(total, 1)
		rate := float64(done) / max(now.Sub(start).Seconds(), 1e-9)
		eta := time.Duration(float64(total-done) / max(rate, 1e-9) * float64(time.Second))
		fmt.Fprintf(f, "\r%s [%s%s] %3d%% %d/%d tokens, %.0f tok/s, %s left ", label,
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*done/max(total, 1), done, total, rate, eta.Round(time.Second))
		if done >= total {
			fmt.Fprintln(f)
		}
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"wisp/engine"
	"wisp/engine/chat"
	"wisp/tools/eval"
	"wisp/tools/train"
)

func evalCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "-m MODEL --text FILE [--ref REFERENCE] [flags]",
		`Measures a model on a text: its perplexity and, against a reference model
(--ref, typically the original before fp16 or pruning), the mean KL divergence
KL(reference‖model) per token, how often both rank the same token first, and
how many tokens of greedy continuation they share. The text is cut into
windows that each start from BOS.

With --chat the text is conversations, one a line as wisp train --chat
takes them: each is rendered by the model's chat template and scored on its
own, from BOS, on the assistant's replies only (their text and the template
text that closes them), as wisp train --chat learns and evaluates them.`, stderr)
	model := fs.String("m", "", "the model to measure (GGUF, or a llama2.c .bin with -z)")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	ref := fs.String("ref", "", "a reference model to compare with (same tokenizer)")
	textPath := fs.String("text", "", "the text file to score (- reads stdin)")
	window := fs.Int("window", 0, "tokens per window, BOS included (default min(512, context))")
	maxTokens := fs.Int("max-tokens", 0, "score at most this many tokens of the text (0: all)")
	greedy := fs.Int("greedy", 200, "with --ref, tokens of greedy continuation (from BOS) to compare; 0 skips")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	chatText := fs.Bool("chat", false, "the text is conversations (JSON lines): score the assistant's replies")
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
	if *chatText {
		if *ref != "" {
			return errors.New("--chat does not compare with --ref")
		}
		if r, err = chatPerplexity(m, string(text), *maxTokens); err != nil {
			return err
		}
	} else if *ref != "" {
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

// chatPerplexity scores the replies of the conversations in text (JSON
// lines), each conversation from BOS in a state of its own, at most
// maxTokens replies' tokens in all (0: all). A conversation longer than the
// context is scored as far as the context reaches.
func chatPerplexity(m *engine.Model, text string, maxTokens int) (eval.Result, error) {
	var r eval.Result
	fm, err := chat.FromGGUF(m.File, m.Tokenizer)
	if err != nil {
		return r, err
	}
	st, err := m.NewState(m.ContextLen)
	if err != nil {
		return r, err
	}
	V := m.VocabSize
	var nll float64
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		stream, _, err := encodeConversation(line, m.Tokenizer, fm)
		if err != nil {
			return r, fmt.Errorf("line %d: %w", i+1, err)
		}
		stream = stream[:min(len(stream), m.ContextLen)]
		ids := make([]int, len(stream))
		for k, x := range stream {
			ids[k] = int(train.Token(x))
		}
		st.Reset()
		for lo := 0; lo < len(ids)-1; lo += engine.MaxBatch {
			hi := min(lo+engine.MaxBatch, len(ids)-1)
			logits, err := st.ForwardAll(ids[lo:hi])
			if err != nil {
				return r, err
			}
			for k := lo; k < hi; k++ {
				if stream[k+1] < 0 || (maxTokens > 0 && r.Tokens == maxTokens) {
					continue
				}
				z := logits[(k-lo)*V : (k-lo+1)*V]
				mx := math.Inf(-1)
				for _, v := range z {
					mx = max(mx, float64(v))
				}
				var sum float64
				for _, v := range z {
					sum += math.Exp(float64(v) - mx)
				}
				nll += mx + math.Log(sum) - float64(z[ids[k+1]])
				r.Tokens++
			}
		}
	}
	if r.Tokens == 0 {
		return r, errors.New("eval: the conversations have no replies to score")
	}
	r.NLL = nll / float64(r.Tokens)
	r.Perplexity = math.Exp(r.NLL)
	return r, nil
}

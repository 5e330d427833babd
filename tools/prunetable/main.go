// Command prunetable measures what fp16 and structured pruning cost
// stories260K and prints the README's table in Markdown: for the original
// F32 model, its F16 conversion and the model pruned to 90 %, 75 % and 60 %
// of its parameters (by Wanda-style scores and, for comparison, by plain
// magnitude), the file size, the parameters, the mean KL divergence and
// top-1 agreement against the original, and how many of the original's
// first greedy tokens each reproduces.
//
// Usage:
//
//	go run ./tools/prunetable [-model ../shared/models/stories260K.bin] [-tok ../shared/models/tok512.bin] [flags]
//
// Both texts are sampled from the original at temperature 1: the
// calibration stories with seeds -calib-seed, -calib-seed+1, …, the
// held-out stories the models are compared on with seeds -eval-seed, …;
// the two ranges of seeds must not overlap. Everything is deterministic:
// the same flags print the same table.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/llama2c"
	"wisp/tools/eval"
	"wisp/tools/prune"
)

// options are the command's flags.
type options struct {
	model, tok              string
	calibStories, calibSeed int
	evalStories, evalSeed   int
	greedy                  int
	typ                     string
	magnitude, texts        bool
	dir                     string
}

func main() {
	var o options
	flag.StringVar(&o.model, "model", "../shared/models/stories260K.bin", "the llama2.c checkpoint")
	flag.StringVar(&o.tok, "tok", "../shared/models/tok512.bin", "its tokenizer.bin")
	flag.IntVar(&o.calibStories, "calib-stories", 200, "calibration stories to sample")
	flag.IntVar(&o.calibSeed, "calib-seed", 1000, "seed of the first calibration story")
	flag.IntVar(&o.evalStories, "eval-stories", 50, "held-out stories to compare on")
	flag.IntVar(&o.evalSeed, "eval-seed", 1, "seed of the first held-out story")
	flag.IntVar(&o.greedy, "greedy", 200, "greedy tokens to compare and show")
	flag.StringVar(&o.typ, "type", "f16", "tensor type of the pruned models: f16 or f32")
	flag.BoolVar(&o.magnitude, "magnitude", true, "also prune by plain magnitude, for comparison")
	flag.BoolVar(&o.texts, "texts", true, "print each model's greedy text after the table")
	flag.StringVar(&o.dir, "dir", "", "also write every model to this folder")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prunetable:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	name   string
	data   []byte
	params int64
	r      eval.Result
	shared int
	text   string
}

// table is what the prune table shows: its rows, the pairs of Wanda and
// magnitude rows at the same size, and how the rows were measured.
type table struct {
	rows        []*row
	pairs       []pair
	refText     string // the original's greedy text
	calibTokens int
}

// pair is the Wanda and the magnitude row of one size.
type pair struct{ wanda, mag *row }

// run measures the table and writes it to stdout.
func run(o options, stdout, stderr io.Writer) error {
	t, err := measure(o, stderr)
	if err != nil {
		return err
	}
	t.write(stdout, o)
	return nil
}

// measure makes the models of the table and compares each with the
// original, reporting its progress to stderr.
func measure(o options, stderr io.Writer) (*table, error) {
	typ, err := o.check()
	if err != nil {
		return nil, err
	}
	f32, f16, err := convertModel(o.model, o.tok)
	if err != nil {
		return nil, err
	}
	ref, err := engine.Load(slices.Clone(f32))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "sampling %d calibration and %d held-out stories…\n", o.calibStories, o.evalStories)
	calib, err := eval.Samples(ref, o.calibStories, storyOptions(o.calibSeed))
	if err != nil {
		return nil, err
	}
	held, err := eval.Samples(ref, o.evalStories, storyOptions(o.evalSeed))
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(stderr, "scoring…")
	wanda, mag, err := scoreModel(f32, calib)
	if err != nil {
		return nil, err
	}
	base := f16
	if typ == gguf.F32 {
		base = f32
	}
	src, err := prune.Load(slices.Clone(base))
	if err != nil {
		return nil, err
	}
	t := &table{rows: []*row{{name: "original (F32)", data: f32}, {name: "F16", data: f16}}, calibTokens: wanda.Tokens}
	if !o.magnitude {
		mag = nil
	}
	if err := t.addPruned(src, wanda, mag, strings.ToUpper(o.typ)); err != nil {
		return nil, err
	}
	if t.refText, err = greedyText(ref, o.greedy); err != nil {
		return nil, err
	}
	if err := t.evaluate(ref, held, o, stderr); err != nil {
		return nil, err
	}
	return t, nil
}

// check refuses flags out of their range and returns the tensor type of
// the pruned models.
func (o options) check() (gguf.TensorType, error) {
	switch {
	case o.calibStories < 1 || o.evalStories < 1:
		return 0, fmt.Errorf("-calib-stories %d and -eval-stories %d must be positive", o.calibStories, o.evalStories)
	case o.calibSeed < o.evalSeed+o.evalStories && o.evalSeed < o.calibSeed+o.calibStories:
		return 0, fmt.Errorf("the seeds of the calibration stories [%d, %d) and of the held-out ones [%d, %d) overlap",
			o.calibSeed, o.calibSeed+o.calibStories, o.evalSeed, o.evalSeed+o.evalStories)
	case o.greedy < 1:
		return 0, fmt.Errorf("-greedy %d must be positive", o.greedy)
	}
	switch o.typ {
	case "f16":
		return gguf.F16, nil
	case "f32":
		return gguf.F32, nil
	}
	return 0, fmt.Errorf("-type %q: choose f16 or f32", o.typ)
}

// convertModel reads the llama2.c checkpoint and its tokenizer and
// returns them as F32 and F16 GGUF files.
func convertModel(model, tokPath string) (f32, f16 []byte, err error) {
	bin, err := os.ReadFile(model)
	if err != nil {
		return nil, nil, err
	}
	tok, err := os.ReadFile(tokPath)
	if err != nil {
		return nil, nil, err
	}
	convert := func(t gguf.TensorType) ([]byte, error) {
		b, _, err := llama2c.Convert(bin, tok, llama2c.Options{Type: t, Name: "stories260K"})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", model, err)
		}
		return b, nil
	}
	if f32, err = convert(gguf.F32); err != nil {
		return nil, nil, err
	}
	if f16, err = convert(gguf.F16); err != nil {
		return nil, nil, err
	}
	return f32, f16, nil
}

// scoreModel scores the F32 model's groups and neurons by Wanda on the
// calibration text and by plain magnitude.
func scoreModel(f32 []byte, calib string) (wanda, mag *prune.Scores, err error) {
	src, err := prune.Load(slices.Clone(f32))
	if err != nil {
		return nil, nil, err
	}
	if wanda, err = src.Score(prune.Wanda, calib, prune.ScoreOptions{}); err != nil {
		return nil, nil, err
	}
	if mag, err = src.Score(prune.Magnitude, "", prune.ScoreOptions{}); err != nil {
		return nil, nil, err
	}
	return wanda, mag, nil
}

// addPruned adds the rows of src pruned to 90 %, 75 % and 60 % of its
// parameters, to the shape Wanda plans, by the Wanda scores and (unless
// mag is nil) by the magnitude scores; typ names src's tensor type.
func (t *table) addPruned(src *prune.Source, wanda, mag *prune.Scores, typ string) error {
	full := src.Full()
	for _, p := range []float64{0.9, 0.75, 0.6} {
		sh, err := src.Plan(prune.Targets{Params: p}, prune.Wanda)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%.0f %% params, %s (%d/%d groups, %d/%d neurons)", 100*p, typ, sh.Groups, full.Groups, sh.FFN, full.FFN)
		if sh.Layers < full.Layers {
			desc = fmt.Sprintf("%.0f %% params, %s (%d/%d blocks, %d/%d groups, %d/%d neurons)", 100*p, typ, sh.Layers, full.Layers, sh.Groups, full.Groups, sh.FFN, full.FFN)
		}
		var pr pair
		for _, sc := range []*prune.Scores{wanda, mag} {
			if sc == nil {
				continue
			}
			sel, err := sc.Select(sh)
			if err != nil {
				return err
			}
			data, err := src.Apply(sel)
			if err != nil {
				return err
			}
			r := &row{name: "pruned to " + desc + ", " + string(sc.Method), data: data}
			t.rows = append(t.rows, r)
			if sc == wanda {
				pr.wanda = r
			} else {
				pr.mag = r
			}
		}
		t.pairs = append(t.pairs, pr)
	}
	return nil
}

// evaluate compares every row's model with the original ref on the
// held-out text, writing the model into -dir first if it is given.
func (t *table) evaluate(ref *engine.Model, held string, o options, stderr io.Writer) error {
	for i, r := range t.rows {
		fmt.Fprintf(stderr, "evaluating %s…\n", r.name)
		if o.dir != "" {
			name := fmt.Sprintf("%d.gguf", i)
			if err := os.WriteFile(filepath.Join(o.dir, name), r.data, 0o644); err != nil {
				return err
			}
		}
		if err := r.evaluate(ref, held, o.greedy); err != nil {
			return err
		}
	}
	return nil
}

// evaluate compares the row's model with the original ref on the held-out
// text, and takes its first greedy tokens.
func (r *row) evaluate(ref *engine.Model, held string, greedy int) error {
	m, err := engine.Load(slices.Clone(r.data))
	if err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	r.params = m.Params()
	if r.r, err = eval.Compare(ref, m, held, eval.Options{}); err != nil {
		return err
	}
	if r.shared, err = eval.GreedyPrefix(ref, m, "", greedy); err != nil {
		return err
	}
	r.text, err = greedyText(m, greedy)
	return err
}

// write writes the table as Markdown.
func (t *table) write(w io.Writer, o options) {
	fmt.Fprintf(w, "| model | file size | parameters | KL vs original (nats/token) | top-1 agreement | greedy tokens shared (of %d) |\n", o.greedy)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %s | %d (%.1f %%) | %.4f | %.1f %% | %d |\n", r.name, size(len(r.data)), r.params,
			100*float64(r.params)/float64(t.rows[0].params), r.r.KL, 100*r.r.Top1, r.shared)
	}
	fmt.Fprintf(w, "\nKL and top-1 over %d tokens of %d stories sampled from the original at temperature 1 (seeds %d–%d), held out from the %d calibration stories (seeds %d–%d, %d tokens). The original's perplexity on them is %.3f.\n",
		t.rows[0].r.Tokens, o.evalStories, o.evalSeed, o.evalSeed+o.evalStories-1, o.calibStories, o.calibSeed, o.calibSeed+o.calibStories-1, t.calibTokens, t.rows[0].r.Perplexity)
	if o.magnitude {
		var parts []string
		for _, p := range t.pairs {
			parts = append(parts, fmt.Sprintf("%.0f %% lower KL (%.3f vs %.3f) at %d params", 100*(1-p.wanda.r.KL/p.mag.r.KL), p.wanda.r.KL, p.mag.r.KL, p.wanda.params))
		}
		fmt.Fprintf(w, "Wanda against magnitude at the same size: %s.\n", strings.Join(parts, "; "))
	}
	if o.texts {
		fmt.Fprintf(w, "\n<details><summary>The first %d greedy tokens of each model</summary>\n\n", o.greedy)
		fmt.Fprintf(w, "**original (F32)**\n\n```\n%s\n```\n\n", strings.TrimSpace(t.refText))
		for _, r := range t.rows[1:] {
			fmt.Fprintf(w, "**%s**\n\n```\n%s\n```\n\n", r.name, strings.TrimSpace(r.text))
		}
		fmt.Fprintln(w, "</details>")
	}
}

// storyOptions samples stories at temperature 1, from the given seed on,
// each to the end-of-text token or the full context.
func storyOptions(seed int) option.Options {
	return option.Options{Temperature: 1, Seed: uint64(seed)}
}

// greedyText returns the text of up to n greedy tokens from BOS.
func greedyText(m *engine.Model, n int) (string, error) {
	s, err := m.NewSession(option.Options{Context: min(m.ContextLen, n+1), MaxTokens: n})
	if err != nil {
		return "", err
	}
	if _, err := s.Prompt(""); err != nil {
		return "", err
	}
	return s.Rest()
}

// size formats a byte count in KiB or MiB.
func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

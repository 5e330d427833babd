package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/tools/eval"
	"wisp/tools/prune"
	"wisp/tools/quant"
	"wisp/tools/retype"
)

func pruneCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prune", "-m MODEL -o OUT.gguf --calib TEXT (--params RATIO|N | --bytes N | --ffn R --heads R --layers R) [--per-layer] [flags]",
		`Removes whole feed-forward neurons, whole attention heads (a key/value group
at a time) and whole blocks, and writes an ordinary, smaller GGUF model of
the same architecture and tensor types, with its history in wisp.prune.*
metadata. Every block keeps the same number of neurons and groups, each
block its own best ones, so llama.cpp loads the result.

With --per-layer, blocks keep different numbers of neurons and groups:
units are ranked against those of every block (each score divided by the
mean of its block's), every block keeping at least one neuron and one
group, to the same targets and budgets. Widths that differ are written as
llama.cpp's per-layer arrays (feed_forward_length, attention.head_count and
head_count_kv with one entry per block). llama.cpp reads such arrays, but
its llama and qwen2 loaders build every block with the first block's
widths and reject the file; wisp runs it. wisp distil does not take such
a model as a student, and it cannot be pruned again.

Units are scored on calibration text run through the model, Wanda-style
(Σ|W|·‖x‖ over the unit's weights), or by plain magnitude Σ|W|; blocks by
how much they turn the residual stream. Targets are the fractions to keep
(--ffn, --heads, --layers), or a budget (--params, --bytes) met width first:
attention groups and neurons cut by the same fraction, neurons then filling
up to the budget, blocks dropped only below a quarter of the width.

Unless --no-eval, the pruned model is compared with the original (mean KL
divergence, top-1 agreement, perplexities, greedy prefix) on --eval TEXT, or
else on the last --holdout of the calibration text, which is then not used
for calibration.`, stderr)
	model := fs.String("m", "", "the model to prune (GGUF, or a llama2.c .bin with -z)")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	out := fs.String("o", "", "the GGUF file to write")
	calibPath := fs.String("calib", "", "calibration text file (needed by --method wanda)")
	evalPath := fs.String("eval", "", "text file to compare the pruned model with the original on")
	method := fs.String("method", string(prune.Wanda), "scoring: wanda or magnitude")
	ffn := fs.Float64("ffn", 0, "fraction of the feed-forward neurons of each block to keep, in (0, 1]")
	heads := fs.Float64("heads", 0, "fraction of the key/value groups (with their query heads) of each block to keep, in (0, 1]")
	layers := fs.Float64("layers", 0, "fraction of the blocks to keep, in (0, 1]")
	params := fs.String("params", "", "parameter budget: a fraction of the model's (at most 1) or a count")
	byteBudget := fs.Int64("bytes", 0, "budget for the size of the output file, in bytes")
	calibTokens := fs.Int("calib-tokens", 0, "use at most this many tokens of calibration text (0: all)")
	window := fs.Int("window", 0, "tokens per calibration and evaluation window, BOS included (default min(512, context))")
	holdout := fs.Float64("holdout", 0.1, "without --eval, the fraction of the calibration text held out to evaluate on")
	noEval := fs.Bool("no-eval", false, "skip the comparison with the original")
	greedy := fs.Int("greedy", 200, "tokens of greedy continuation (from BOS) to compare; 0 skips")
	perLayer := fs.Bool("per-layer", false, "let blocks keep different numbers of neurons and groups (llama.cpp's llama and qwen2 loaders reject the result)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *model == "" || *out == "" {
		fs.Usage()
		return errUsage
	}

	// Targets: a flag given as 0 is an error, not "keep everything".
	var t prune.Targets
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, r := range []struct {
		name string
		v    float64
		dst  *float64
	}{{"ffn", *ffn, &t.FFN}, {"heads", *heads, &t.Heads}, {"layers", *layers, &t.Layers}} {
		if !set[r.name] {
			continue
		}
		if !(r.v > 0 && r.v <= 1) {
			return fmt.Errorf("--%s %g: a fraction to keep must be in (0, 1]", r.name, r.v)
		}
		*r.dst = r.v
	}
	if set["params"] {
		v, err := strconv.ParseFloat(*params, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("--params %q: give a fraction of the model's parameters in (0, 1] or a positive count", *params)
		}
		t.Params = v
	}
	if set["bytes"] {
		if *byteBudget <= 0 {
			return fmt.Errorf("--bytes %d: the budget must be positive", *byteBudget)
		}
		t.Bytes = *byteBudget
	}
	if t == (prune.Targets{}) {
		return errors.New("no target: give --params, --bytes, or fractions to keep with --ffn, --heads and --layers")
	}
	if *holdout < 0 || *holdout >= 1 {
		return fmt.Errorf("--holdout %g: the fraction held out must be in [0, 1)", *holdout)
	}
	m := prune.Method(*method)
	if m != prune.Wanda && m != prune.Magnitude {
		return fmt.Errorf("--method %q: choose %s or %s", *method, prune.Wanda, prune.Magnitude)
	}

	// Texts: calibration, and what to evaluate on.
	var calib, evalText string
	if *calibPath != "" {
		b, err := os.ReadFile(*calibPath)
		if err != nil {
			return err
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			return fmt.Errorf("%s: the calibration text is empty", *calibPath)
		}
		calib = string(b)
	} else if m == prune.Wanda {
		return errors.New("--calib TEXT is needed to score by activations (or choose --method magnitude)")
	}
	if !*noEval {
		if *evalPath != "" {
			b, err := os.ReadFile(*evalPath)
			if err != nil {
				return err
			}
			evalText = string(b)
		} else if calib != "" && *holdout > 0 {
			calib, evalText = splitTail(calib, *holdout)
		}
	}

	data, err := readModelBytes(*model, *tokPath)
	if err != nil {
		return err
	}
	if data, err = widenForPruning(data, stderr); err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	src, err := prune.Load(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	sh, err := src.Plan(t, m)
	if err != nil {
		return err
	}
	full := src.Full()
	c := &src.Model.Config
	per := c.Heads / c.KVHeads
	before := src.Model.Params()
	after := src.Params(sh)
	size, err := src.FileSize(sh, m)
	if err != nil {
		return err
	}
	if *perLayer {
		fmt.Fprintf(stdout, "plan: keep %d of %d blocks, %d of %d key/value groups and %d of %d feed-forward neurons in all, shared out between blocks by score\n",
			sh.Layers, full.Layers, sh.Layers*sh.Groups, full.Layers*full.Groups, sh.Layers*sh.FFN, full.Layers*full.FFN)
	} else {
		fmt.Fprintf(stdout, "plan: keep %d of %d blocks, %d of %d key/value groups (%d of %d heads) and %d of %d feed-forward neurons per block\n",
			sh.Layers, full.Layers, sh.Groups, full.Groups, sh.Groups*per, c.Heads, sh.FFN, full.FFN)
		fmt.Fprintf(stdout, "      %d of %d parameters (%.1f%%), a file of %d bytes\n", after, before, 100*float64(after)/float64(before), size)
	}

	sc, err := src.Score(m, calib, prune.ScoreOptions{MaxTokens: *calibTokens, Window: *window, Progress: progressBar(stderr, "calibrate")})
	if err != nil {
		return err
	}
	var sel prune.Selection
	if *perLayer {
		sel, err = src.SelectPerLayer(sc, t)
	} else {
		sel, err = sc.Select(sh)
	}
	if err != nil {
		return err
	}
	pruned, err := src.Apply(sel)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, pruned, 0o644); err != nil {
		return err
	}
	// Load flushes subnormal halves in place: the file is written first.
	pm, err := engine.Load(pruned)
	if err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	after = pm.Params()
	if sc.Tokens > 0 {
		fmt.Fprintf(stdout, "scored by %s on %d calibration tokens\n", m, sc.Tokens)
	} else {
		fmt.Fprintf(stdout, "scored by %s\n", m)
	}
	if sh.Layers < full.Layers {
		fmt.Fprintf(stdout, "blocks kept          %v of 0..%d\n", sel.Layers, full.Layers-1)
	}
	if *perLayer {
		var ffn, groups []int
		for i := range sel.Layers {
			ffn, groups = append(ffn, len(sel.FFN[i])), append(groups, len(sel.Groups[i]))
		}
		fmt.Fprintf(stdout, "neurons per block    %v of %d\n", ffn, full.FFN)
		fmt.Fprintf(stdout, "groups per block     %v of %d\n", groups, full.Groups)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	fmt.Fprintf(stdout, "parameters           %d → %d (%.1f%%)\n", before, after, 100*float64(after)/float64(before))
	fmt.Fprintf(stdout, "file size            %d → %d bytes (%.1f%%)\n", src.Size, len(pruned), 100*float64(len(pruned))/float64(src.Size))

	if *noEval {
		return nil
	}
	if strings.TrimSpace(evalText) == "" {
		fmt.Fprintln(stdout, "no text to evaluate on: give --eval TEXT or a --holdout of --calib")
		return nil
	}
	r, err := eval.Compare(src.Model, pm, evalText, eval.Options{Window: *window, Progress: progressBar(stderr, "eval")})
	if err != nil {
		return err
	}
	on := *evalPath
	if on == "" {
		on = fmt.Sprintf("the last %g of the calibration text", *holdout)
	}
	fmt.Fprintf(stdout, "compared on          %s, %d tokens\n", on, r.Tokens)
	fmt.Fprintf(stdout, "perplexity           %.4f → %.4f\n", r.Perplexity, r.PerplexityB)
	fmt.Fprintf(stdout, "mean KL(orig‖pruned) %.6f nats/token\n", r.KL)
	fmt.Fprintf(stdout, "top-1 agreement      %.2f%%\n", 100*r.Top1)
	if *greedy > 0 {
		n, err := eval.GreedyPrefix(src.Model, pm, "", *greedy)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "greedy prefix shared %d of %d tokens\n", n, *greedy)
	}
	return nil
}

// splitTail cuts the last fraction of text off at a line break, or at a
// space when no line break after the cut leaves text behind it, returning
// the head and the tail (empty when there is nowhere to cut).
func splitTail(text string, frac float64) (head, tail string) {
	cut := int(float64(len(text)) * (1 - frac))
	for _, sep := range []byte{'\n', ' '} {
		if i := strings.IndexByte(text[cut:], sep); i >= 0 && strings.TrimSpace(text[cut+i+1:]) != "" {
			return text[:cut+i+1], text[cut+i+1:]
		}
	}
	return text, ""
}

// widenForPruning returns a model whose matrices are BF16 or quantized
// widened to F32, which is exact, since pruning cuts rows and columns out
// of matrices and the block formats do not cut; other models are returned
// as they are. It says so on stderr: the pruned file is then F32 (budgets
// count its F32 bytes), to be stored again with wisp convert --type.
func widenForPruning(data []byte, stderr io.Writer) ([]byte, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, err
	}
	types := map[gguf.TensorType]bool{}
	for _, t := range f.Tensors {
		if len(t.Dims) >= 2 && t.Type != gguf.F32 && t.Type != gguf.F16 {
			types[t.Type] = true
		}
	}
	if len(types) == 0 {
		return data, nil
	}
	var names []string
	for t := range types {
		names = append(names, t.String())
	}
	slices.Sort(names)
	f32, err := quant.ParseScheme("f32")
	if err != nil {
		return nil, err
	}
	b, _, err := retype.Convert(f, f32, nil)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "prune: the model's matrices are %s; they are widened to F32 (exactly) to be pruned, and the pruned model is F32: store it again with wisp convert --type\n", strings.Join(names, ", "))
	return buf.Bytes(), nil
}

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
	var f pruneFlags
	fs.StringVar(&f.model, "m", "", "the model to prune (GGUF, or a llama2.c .bin with -z)")
	fs.StringVar(&f.tokPath, "z", "", "llama2.c tokenizer.bin, for llama2.c checkpoints")
	fs.StringVar(&f.out, "o", "", "the GGUF file to write")
	fs.StringVar(&f.calibPath, "calib", "", "calibration text file (needed by --method wanda)")
	fs.StringVar(&f.evalPath, "eval", "", "text file to compare the pruned model with the original on")
	fs.StringVar(&f.method, "method", string(prune.Wanda), "scoring: wanda or magnitude")
	fs.Float64Var(&f.ffn, "ffn", 0, "fraction of the feed-forward neurons of each block to keep, in (0, 1]")
	fs.Float64Var(&f.heads, "heads", 0, "fraction of the key/value groups (with their query heads) of each block to keep, in (0, 1]")
	fs.Float64Var(&f.layers, "layers", 0, "fraction of the blocks to keep, in (0, 1]")
	fs.StringVar(&f.params, "params", "", "parameter budget: a fraction of the model's (at most 1) or a count")
	fs.Int64Var(&f.bytes, "bytes", 0, "budget for the size of the output file, in bytes")
	fs.IntVar(&f.calibTokens, "calib-tokens", 0, "use at most this many tokens of calibration text (0: all)")
	fs.IntVar(&f.window, "window", 0, "tokens per calibration and evaluation window, BOS included (default min(512, context))")
	fs.Float64Var(&f.holdout, "holdout", 0.1, "without --eval, the fraction of the calibration text held out to evaluate on")
	fs.BoolVar(&f.noEval, "no-eval", false, "skip the comparison with the original")
	fs.IntVar(&f.greedy, "greedy", 200, "tokens of greedy continuation (from BOS) to compare; 0 skips")
	fs.BoolVar(&f.perLayer, "per-layer", false, "let blocks keep different numbers of neurons and groups (llama.cpp's llama and qwen2 loaders reject the result)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || f.model == "" || f.out == "" {
		fs.Usage()
		return errUsage
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	o, err := f.options(stdout, stderr)
	if err != nil {
		return err
	}

	data, err := readModelBytes(f.model, f.tokPath)
	if err != nil {
		return err
	}
	if data, err = widenForPruning(data, stderr); err != nil {
		return fmt.Errorf("%s: %w", f.model, err)
	}
	src, err := prune.Load(data)
	if err != nil {
		return fmt.Errorf("%s: %w", f.model, err)
	}
	r, err := src.Run(o)
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.out, r.File, 0o644); err != nil {
		return err
	}
	f.report(stdout, src, r)
	return nil
}

// pruneFlags are wisp prune's flags.
type pruneFlags struct {
	model, tokPath, out, calibPath, evalPath, method, params string
	ffn, heads, layers, holdout                              float64
	bytes                                                    int64
	calibTokens, window, greedy                              int
	noEval, perLayer                                         bool
	set                                                      map[string]bool // the flags given
}

// options checks the flags and reads the texts they name.
func (f *pruneFlags) options(stdout, stderr io.Writer) (prune.Options, error) {
	// Targets: a flag given as 0 is an error, not "keep everything".
	var t prune.Targets
	for _, r := range []struct {
		name string
		v    float64
		dst  *float64
	}{{"ffn", f.ffn, &t.FFN}, {"heads", f.heads, &t.Heads}, {"layers", f.layers, &t.Layers}} {
		if !f.set[r.name] {
			continue
		}
		if !(r.v > 0 && r.v <= 1) {
			return prune.Options{}, fmt.Errorf("--%s %g: a fraction to keep must be in (0, 1]", r.name, r.v)
		}
		*r.dst = r.v
	}
	if f.set["params"] {
		v, err := strconv.ParseFloat(f.params, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return prune.Options{}, fmt.Errorf("--params %q: give a fraction of the model's parameters in (0, 1] or a positive count", f.params)
		}
		t.Params = v
	}
	if f.set["bytes"] {
		if f.bytes <= 0 {
			return prune.Options{}, fmt.Errorf("--bytes %d: the budget must be positive", f.bytes)
		}
		t.Bytes = f.bytes
	}
	if t == (prune.Targets{}) {
		return prune.Options{}, errors.New("no target: give --params, --bytes, or fractions to keep with --ffn, --heads and --layers")
	}
	if f.holdout < 0 || f.holdout >= 1 {
		return prune.Options{}, fmt.Errorf("--holdout %g: the fraction held out must be in [0, 1)", f.holdout)
	}
	m := prune.Method(f.method)
	if m != prune.Wanda && m != prune.Magnitude {
		return prune.Options{}, fmt.Errorf("--method %q: choose %s or %s", f.method, prune.Wanda, prune.Magnitude)
	}

	// Texts: calibration, and what to evaluate on.
	var calib, evalText string
	if f.calibPath != "" {
		b, err := os.ReadFile(f.calibPath)
		if err != nil {
			return prune.Options{}, err
		}
		if len(strings.TrimSpace(string(b))) == 0 {
			return prune.Options{}, fmt.Errorf("%s: the calibration text is empty", f.calibPath)
		}
		calib = string(b)
	} else if m == prune.Wanda {
		return prune.Options{}, errors.New("--calib TEXT is needed to score by activations (or choose --method magnitude)")
	}
	if !f.noEval {
		if f.evalPath != "" {
			b, err := os.ReadFile(f.evalPath)
			if err != nil {
				return prune.Options{}, err
			}
			evalText = string(b)
		} else if calib != "" && f.holdout > 0 {
			calib, evalText = splitTail(calib, f.holdout)
		}
	}
	if strings.TrimSpace(evalText) == "" {
		evalText = ""
	}
	return prune.Options{
		Targets: t, Method: m, PerLayer: f.perLayer,
		Calib:       calib,
		Score:       prune.ScoreOptions{MaxTokens: f.calibTokens, Window: f.window, Progress: progressBar(stderr, "calibrate")},
		Eval:        evalText,
		EvalOptions: eval.Options{Window: f.window, Progress: progressBar(stderr, "eval")},
		Greedy:      f.greedy,
		Planned:     func(r *prune.Report) { printPlan(stdout, r) },
	}, nil
}

// printPlan says what the plan keeps, before the work.
func printPlan(w io.Writer, r *prune.Report) {
	sh, full := r.Plan, r.Full
	if r.PerLayer {
		fmt.Fprintf(w, "plan: keep %d of %d blocks, %d of %d key/value groups and %d of %d feed-forward neurons in all, shared out between blocks by score\n",
			sh.Layers, full.Layers, sh.Layers*sh.Groups, full.Layers*full.Groups, sh.Layers*sh.FFN, full.Layers*full.FFN)
		return
	}
	per := r.Heads / full.Groups
	fmt.Fprintf(w, "plan: keep %d of %d blocks, %d of %d key/value groups (%d of %d heads) and %d of %d feed-forward neurons per block\n",
		sh.Layers, full.Layers, sh.Groups, full.Groups, sh.Groups*per, r.Heads, sh.FFN, full.FFN)
	fmt.Fprintf(w, "      %d of %d parameters (%.1f%%), a file of %d bytes\n", r.PlannedParams, r.ParamsBefore, 100*float64(r.PlannedParams)/float64(r.ParamsBefore), r.PlannedBytes)
}

// report prints what the job did.
func (f *pruneFlags) report(w io.Writer, src *prune.Source, r *prune.Report) {
	full, sel := r.Full, r.Selection
	if r.Tokens > 0 {
		fmt.Fprintf(w, "scored by %s on %d calibration tokens\n", r.Method, r.Tokens)
	} else {
		fmt.Fprintf(w, "scored by %s\n", r.Method)
	}
	if r.Plan.Layers < full.Layers {
		fmt.Fprintf(w, "blocks kept          %v of 0..%d\n", sel.Layers, full.Layers-1)
	}
	if r.PerLayer {
		var ffn, groups []int
		for i := range sel.Layers {
			ffn, groups = append(ffn, len(sel.FFN[i])), append(groups, len(sel.Groups[i]))
		}
		fmt.Fprintf(w, "neurons per block    %v of %d\n", ffn, full.FFN)
		fmt.Fprintf(w, "groups per block     %v of %d\n", groups, full.Groups)
	}
	fmt.Fprintf(w, "wrote %s\n", f.out)
	fmt.Fprintf(w, "parameters           %d → %d (%.1f%%)\n", r.ParamsBefore, r.ParamsAfter, 100*float64(r.ParamsAfter)/float64(r.ParamsBefore))
	fmt.Fprintf(w, "file size            %d → %d bytes (%.1f%%)\n", r.BytesBefore, len(r.File), 100*float64(len(r.File))/float64(r.BytesBefore))

	if f.noEval {
		return
	}
	c := r.Compared
	if c == nil {
		fmt.Fprintln(w, "no text to evaluate on: give --eval TEXT or a --holdout of --calib")
		return
	}
	on := f.evalPath
	if on == "" {
		on = fmt.Sprintf("the last %g of the calibration text", f.holdout)
	}
	fmt.Fprintf(w, "compared on          %s, %d tokens\n", on, c.Tokens)
	fmt.Fprintf(w, "perplexity           %.4f → %.4f\n", c.Perplexity, c.PerplexityB)
	fmt.Fprintf(w, "mean KL(orig‖pruned) %.6f nats/token\n", c.KL)
	fmt.Fprintf(w, "top-1 agreement      %.2f%%\n", 100*c.Top1)
	if f.greedy > 0 {
		fmt.Fprintf(w, "greedy prefix shared %d of %d tokens\n", r.GreedyShared, f.greedy)
	}
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

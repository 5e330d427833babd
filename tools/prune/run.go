package prune

import (
	"fmt"
	"slices"

	"wisp/engine"
	"wisp/tools/eval"
)

// Options is one whole pruning job, the four steps of the package comment
// and the comparison of the result with the original.
type Options struct {
	Targets  Targets
	Method   Method
	PerLayer bool   // share widths out between blocks (SelectPerLayer)
	Calib    string // calibration text, needed by Wanda
	Score    ScoreOptions

	// Eval is the text to compare the pruned model with the original on;
	// empty skips the comparison.
	Eval        string
	EvalOptions eval.Options
	// Greedy is how many tokens of greedy continuation from BOS to compare
	// when Eval is given; 0 skips.
	Greedy int

	// Planned, if set, is called once the plan is made, before the slow
	// steps, with the Report's plan fields filled in.
	Planned func(*Report)
}

// Report is what Run did.
type Report struct {
	Method   Method
	PerLayer bool
	Full     Shape // the model's own shape
	Plan     Shape // the shape the targets asked for
	Heads    int   // the model's query heads per block (Full.Groups groups of them)

	PlannedParams int64 // parameters of the plan
	PlannedBytes  int64 // the size of the file the plan makes

	Tokens    int       // calibration tokens scored on (0 for magnitude)
	Selection Selection // the units kept

	File         []byte        // the pruned model, a GGUF file
	Model        *engine.Model // File loaded (from a copy)
	ParamsBefore int64
	ParamsAfter  int64
	BytesBefore  int64

	Compared     *eval.Result // the comparison on Options.Eval, or nil
	GreedyShared int          // greedy tokens shared, of Options.Greedy
}

// Run plans, scores, selects and applies, then loads the result and
// compares it with the original.
func (s *Source) Run(o Options) (*Report, error) {
	sh, err := s.Plan(o.Targets, o.Method)
	if err != nil {
		return nil, err
	}
	size, err := s.FileSize(sh, o.Method)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Method: o.Method, PerLayer: o.PerLayer, Full: s.Full(), Plan: sh, Heads: s.Model.Heads,
		PlannedParams: s.Params(sh), PlannedBytes: size,
		ParamsBefore: s.Model.Params(), BytesBefore: s.Size,
	}
	if o.Planned != nil {
		o.Planned(r)
	}

	sc, err := s.Score(o.Method, o.Calib, o.Score)
	if err != nil {
		return nil, err
	}
	r.Tokens = sc.Tokens
	if o.PerLayer {
		r.Selection, err = s.SelectPerLayer(sc, o.Targets)
	} else {
		r.Selection, err = sc.Select(sh)
	}
	if err != nil {
		return nil, err
	}
	if r.File, err = s.Apply(r.Selection); err != nil {
		return nil, err
	}
	// Load flushes subnormal halves in place: it gets a copy of the file.
	if r.Model, err = engine.Load(slices.Clone(r.File)); err != nil {
		return nil, fmt.Errorf("prune: the pruned model does not load: %w", err)
	}
	r.ParamsAfter = r.Model.Params()

	if o.Eval == "" {
		return r, nil
	}
	c, err := eval.Compare(s.Model, r.Model, o.Eval, o.EvalOptions)
	if err != nil {
		return nil, err
	}
	r.Compared = &c
	if o.Greedy > 0 {
		if r.GreedyShared, err = eval.GreedyPrefix(s.Model, r.Model, "", o.Greedy); err != nil {
			return nil, err
		}
	}
	return r, nil
}

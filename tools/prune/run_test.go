package prune_test

import (
	"bytes"
	"testing"

	"wisp/engine/gguf"
	"wisp/tools/eval"
	"wisp/tools/prune"
)

// TestRun checks that the whole job gives what its steps give one by one,
// and that the report says so.
func TestRun(t *testing.T) {
	calib, held := calibText(t)
	calib = calib[:2000]
	src := source(t, stories(t, gguf.F32))
	tg := prune.Targets{Params: 0.75}
	score := prune.ScoreOptions{MaxTokens: 300}

	var planned *prune.Report
	r, err := src.Run(prune.Options{
		Targets: tg, Method: prune.Wanda, Calib: calib, Score: score,
		Eval: held, Greedy: 20,
		Planned: func(r *prune.Report) {
			if r.File != nil || r.Tokens != 0 {
				t.Error("Planned was called after the work")
			}
			planned = r
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if planned != r {
		t.Error("Planned was not called with the report")
	}

	// The same steps, one by one.
	sh, err := src.Plan(tg, prune.Wanda)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := src.Score(prune.Wanda, calib, score)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := sc.Select(sh)
	if err != nil {
		t.Fatal(err)
	}
	want, err := src.Apply(sel)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.File, want) {
		t.Fatal("Run's file differs from Plan, Score, Select and Apply's")
	}
	if r.Plan != sh || r.Tokens != sc.Tokens || r.Tokens == 0 {
		t.Errorf("plan %+v after %d tokens, want %+v after %d", r.Plan, r.Tokens, sh, sc.Tokens)
	}
	if r.ParamsAfter != r.PlannedParams || int64(len(r.File)) != r.PlannedBytes {
		t.Errorf("%d parameters in %d bytes, planned %d in %d", r.ParamsAfter, len(r.File), r.PlannedParams, r.PlannedBytes)
	}
	if r.ParamsBefore != src.Model.Params() || r.BytesBefore != src.Size {
		t.Errorf("before: %d parameters, %d bytes; want %d, %d", r.ParamsBefore, r.BytesBefore, src.Model.Params(), src.Size)
	}
	c, err := eval.Compare(src.Model, load(t, want), held, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Compared == nil || *r.Compared != c {
		t.Errorf("compared %+v, want %+v", r.Compared, c)
	}
	if r.GreedyShared < 1 || r.GreedyShared > 20 {
		t.Errorf("%d greedy tokens shared of 20", r.GreedyShared)
	}

	// Without an evaluation text there is no comparison.
	r, err = src.Run(prune.Options{Targets: tg, Method: prune.Magnitude})
	if err != nil {
		t.Fatal(err)
	}
	if r.Compared != nil || r.Tokens != 0 {
		t.Errorf("magnitude without text: compared %v after %d tokens", r.Compared, r.Tokens)
	}
}

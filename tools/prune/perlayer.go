package prune

import (
	"fmt"
	"math"
	"sort"
)

// SelectPerLayer selects for the targets, as Plan and Select do, but lets
// every block keep its own number of groups and neurons: the selection is
// PerLayer (see the package comment, "Per-layer widths").
//
// It keeps the blocks Select would keep for the shape Plan gives, and as
// many groups and neurons in all as that shape has (Layers·Groups and
// Layers·FFN). Each kept block keeps its best group and its best neuron;
// the rest are ranked across all the kept blocks by their score divided by
// the mean score of their kind in their block, and the best kept. For a
// budget, neurons are then added in the same order, or taken away in
// reverse, until the file meets the budget and one more neuron would
// not.
func (s *Source) SelectPerLayer(sc *Scores, t Targets) (Selection, error) {
	if sc == nil {
		return Selection{}, fmt.Errorf("prune: no scores")
	}
	sh, err := s.Plan(t, sc.Method)
	if err != nil {
		return Selection{}, err
	}
	full := s.Full()
	if len(sc.Layers) != full.Layers || len(sc.FFN) != full.Layers || len(sc.Groups) != full.Layers {
		return Selection{}, fmt.Errorf("prune: scores for %d blocks, %d blocks of neurons and %d of groups; the model has %d blocks", len(sc.Layers), len(sc.FFN), len(sc.Groups), full.Layers)
	}
	for l := range full.Layers {
		if len(sc.FFN[l]) != full.FFN || len(sc.Groups[l]) != full.Groups {
			return Selection{}, fmt.Errorf("prune: block %d has scores for %d neurons and %d groups; the model has %d and %d", l, len(sc.FFN[l]), len(sc.Groups[l]), full.FFN, full.Groups)
		}
	}
	layers := top(sc.Layers, sh.Layers)
	pick := func(scores [][]float64) ranking {
		var kept [][]float64
		for _, l := range layers {
			kept = append(kept, scores[l])
		}
		return rank(kept)
	}
	groups, neurons := pick(sc.Groups), pick(sc.FFN)
	sel := Selection{
		Layers: layers, Method: sc.Method, CalibSHA256: sc.CalibSHA256, CalibTokens: sc.Tokens, PerLayer: true,
		Groups: groups.keep(sh.Layers * sh.Groups),
		FFN:    neurons.keep(sh.Layers * sh.FFN),
	}
	if t.Params == 0 && t.Bytes == 0 {
		return sel, nil
	}

	// A budget: as many neurons as fit. measure is the size of the file
	// with n neurons in all; it grows with n.
	var budget int64
	var measure func(n int) (int64, error)
	if t.Params != 0 {
		budget = int64(math.Floor(t.Params))
		if t.Params <= 1 {
			budget = int64(math.Floor(t.Params * float64(s.Model.Params())))
		}
		measure = func(n int) (int64, error) {
			sel.FFN = neurons.keep(n)
			ts, err := s.layout(sel)
			return params(ts), err
		}
	} else {
		budget = t.Bytes
		zeros := make([]byte, s.largest())
		measure = func(n int) (int64, error) {
			sel.FFN = neurons.keep(n)
			return s.selectionSize(sel, zeros)
		}
	}
	fits := func(n int) (bool, error) {
		v, err := measure(n)
		return v <= budget, err
	}
	n := sh.Layers * sh.FFN
	ok, err := fits(n)
	if err != nil {
		return Selection{}, err
	}
	if ok {
		n, err = largestFitting(n, neurons.len(), fits)
	} else {
		// The per-layer metadata can take a few bytes more than the
		// uniform plan's.
		n, err = largestFitting(sh.Layers, n-1, fits)
	}
	if err != nil {
		return Selection{}, err
	}
	if n < sh.Layers {
		least, err := measure(sh.Layers)
		if err != nil {
			return Selection{}, err
		}
		return Selection{}, fmt.Errorf("prune: the budget of %d is less than the %d of %d blocks keeping one neuron each", budget, least, sh.Layers)
	}
	sel.FFN = neurons.keep(n)
	return sel, nil
}

// ranking orders the units of a kind in the kept blocks: first the best
// unit of every block, then all the others, best first.
type ranking struct {
	sizes []int     // units in each block
	order []unitRef // first len(sizes) are each block's best
}

type unitRef struct{ block, unit int }

// rank ranks the units of blocks whose scores are given. Scores are made
// comparable across blocks by dividing each by the mean of its block's
// (a block whose scores are all zero keeps them zero); ties go to the
// earlier block, then the lower index.
func rank(scores [][]float64) ranking {
	r := ranking{sizes: make([]int, len(scores))}
	type scored struct {
		unitRef
		v float64
	}
	var rest []scored
	for b, v := range scores {
		r.sizes[b] = len(v)
		var mean float64
		for _, x := range v {
			mean += x
		}
		mean /= float64(len(v))
		if !(mean > 0) {
			mean = 1
		}
		best := top(v, 1)[0]
		r.order = append(r.order, unitRef{b, best})
		for i, x := range v {
			if i != best {
				rest = append(rest, scored{unitRef{b, i}, x / mean})
			}
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].v > rest[j].v })
	for _, u := range rest {
		r.order = append(r.order, u.unitRef)
	}
	return r
}

// len returns the number of units ranked.
func (r *ranking) len() int { return len(r.order) }

// keep returns, for every block, the indices of its units among the first
// n of the ranking, in increasing order; n is at least one per block.
func (r *ranking) keep(n int) [][]int {
	n = min(max(n, len(r.sizes)), len(r.order))
	out := make([][]int, len(r.sizes))
	for _, u := range r.order[:n] {
		out[u.block] = append(out[u.block], u.unit)
	}
	for _, v := range out {
		sort.Ints(v)
	}
	return out
}

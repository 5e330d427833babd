package prune

import (
	"math"

	"wisp/engine"
)

// activations accumulates, as an engine.Observer, the statistics pruning
// scores units by, over every token the observed State evaluates: per
// weight matrix, the sum of squares of each input feature (what Wanda
// weighs weights by: ‖x_j‖² over the calibration tokens), and per block
// how much it turns the residual stream (1 - cosine similarity of the
// stream before and after it, ShortGPT's "block influence").
type activations struct {
	tokens    int         // tokens observed
	attnIn    [][]float64 // [layer][Dim]: inputs of Wq, Wk, Wv (after the attention norm)
	attnOut   [][]float64 // [layer][QDimOf(layer)]: inputs of Wo (the heads' outputs)
	ffnIn     [][]float64 // [layer][Dim]: inputs of the gate and up matrices
	ffnHidden [][]float64 // [layer][HiddenOf(layer)]: inputs of the down matrix
	influence []float64   // [layer]: Σ over tokens of 1 - cos(stream before, stream after)

	blockIn []float32 // the stream entering the block being evaluated
}

// newActivations returns empty statistics shaped for the model.
func newActivations(c *engine.Config) *activations {
	a := &activations{influence: make([]float64, c.Layers)}
	mk := func(n func(l int) int) [][]float64 {
		v := make([][]float64, c.Layers)
		for l := range v {
			v[l] = make([]float64, n(l))
		}
		return v
	}
	dim := func(int) int { return c.Dim }
	a.attnIn, a.attnOut, a.ffnIn, a.ffnHidden = mk(dim), mk(c.QDimOf), mk(dim), mk(c.HiddenOf)
	return a
}

// Observe adds the statistics of n tokens' activations at one probe.
func (a *activations) Observe(layer int, at engine.Probe, x []float32, n int) {
	switch at {
	case engine.BlockInput:
		if layer == 0 {
			a.tokens += n
		}
		a.blockIn = append(a.blockIn[:0], x...)
	case engine.AttnInput:
		addSquares(a.attnIn[layer], x, n)
	case engine.AttnOutput:
		addSquares(a.attnOut[layer], x, n)
	case engine.FFNInput:
		addSquares(a.ffnIn[layer], x, n)
	case engine.FFNHidden:
		addSquares(a.ffnHidden[layer], x, n)
	case engine.BlockOutput:
		addInfluence(&a.influence[layer], a.blockIn, x, n)
	}
}

// addSquares adds the squares of the n rows of x to sum, whose length is
// the rows' width.
func addSquares(sum []float64, x []float32, n int) {
	w := len(sum)
	for t := range n {
		for j, v := range x[t*w : (t+1)*w] {
			sum[j] += float64(v) * float64(v)
		}
	}
}

// addInfluence adds 1 - cos(before, after) for the n rows of before and
// after to sum.
func addInfluence(sum *float64, before, after []float32, n int) {
	w := len(after) / n
	for t := range n {
		var ab, aa, bb float64
		for j := range w {
			a, b := float64(before[t*w+j]), float64(after[t*w+j])
			ab += a * b
			aa += a * a
			bb += b * b
		}
		if aa > 0 && bb > 0 {
			*sum += 1 - ab/math.Sqrt(aa*bb)
		}
	}
}

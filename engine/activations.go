package engine

import "math"

// Activations accumulates statistics of the activations a State sees, over
// every token it evaluates while recording: per weight matrix, the sum of
// squares of each input feature (what Wanda-style pruning weighs weights
// by: ‖x_j‖² over the calibration tokens), and per block how much it turns
// the residual stream (1 - cosine similarity of the stream before and
// after it, ShortGPT's "block influence").
type Activations struct {
	Tokens    int         // tokens recorded
	AttnIn    [][]float64 // [layer][Dim]: inputs of Wq, Wk, Wv (after the attention norm)
	AttnOut   [][]float64 // [layer][QDimOf(layer)]: inputs of Wo (the heads' outputs)
	FFNIn     [][]float64 // [layer][Dim]: inputs of the gate and up matrices
	FFNHidden [][]float64 // [layer][HiddenOf(layer)]: inputs of the down matrix
	Influence []float64   // [layer]: Σ over tokens of 1 - cos(stream before, stream after)
}

// NewActivations returns empty statistics shaped for the model.
func (m *Model) NewActivations() *Activations {
	c := &m.Config
	a := &Activations{Influence: make([]float64, c.Layers)}
	mk := func(n func(l int) int) [][]float64 {
		v := make([][]float64, c.Layers)
		for l := range v {
			v[l] = make([]float64, n(l))
		}
		return v
	}
	dim := func(int) int { return c.Dim }
	a.AttnIn, a.AttnOut, a.FFNIn, a.FFNHidden = mk(dim), mk(c.QDimOf), mk(dim), mk(c.HiddenOf)
	return a
}

// Record makes the State add the statistics of every token it evaluates
// from now on to a (nil stops recording). Recording runs in plain Go and
// slows the forward pass down.
func (s *State) Record(a *Activations) {
	s.acts = a
	if a != nil && len(s.xin) < len(s.x) {
		s.xin = make([]float32, len(s.x))
	}
}

// addSquares adds the squares of n rows of width w of x to sum.
func addSquares(sum []float64, x []float32, n, w int) {
	for t := range n {
		for j, v := range x[t*w : (t+1)*w] {
			sum[j] += float64(v) * float64(v)
		}
	}
}

// addInfluence adds 1 - cos(before, after) for n rows of width w.
func addInfluence(sum *float64, before, after []float32, n, w int) {
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

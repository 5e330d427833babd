package prune

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"

	"wisp/engine"
)

// Scores hold the importance of every unit of a model: the higher, the
// more the unit is worth keeping.
type Scores struct {
	Method Method
	FFN    [][]float64 // [block][neuron]
	Groups [][]float64 // [block][key/value group]
	Layers []float64   // [block]
	// CalibSHA256 is the hex SHA-256 of the calibration text and Tokens
	// the number of tokens run through the model, BOS included (empty and
	// 0 for Magnitude).
	CalibSHA256 string
	Tokens      int
}

// ScoreOptions configure the calibration run of Source.Score.
type ScoreOptions struct {
	// MaxTokens caps the tokens of the calibration text used (from its
	// start); 0 uses all.
	MaxTokens int
	// Window is the number of tokens evaluated together, BOS included: the
	// text is cut into windows of this size, each starting afresh from
	// BOS, as eval does. 0 means min(512, the model's context length).
	Window int
	// Progress, if set, is called after each window with the tokens of
	// text run so far and their total.
	Progress func(done, total int)
}

// Score scores every unit of the model by the method. Wanda runs the
// calibration text through the model, recording its activations (see
// engine.Activations); a unit scores Σ |W|·‖x‖ over its weights, where ‖x‖
// is the root of the sum of squares of the input feature the weight
// multiplies:
//
//   - a feed-forward neuron: its rows of the gate and up matrices (inputs:
//     the normalised stream) and its column of the down matrix (input: the
//     neuron's own activation);
//   - a key/value group: the rows of its query heads, its key head and its
//     value head (inputs: the normalised stream) and its query heads'
//     columns of the output matrix (inputs: the heads' outputs);
//   - a block: its mean influence, 1 − cos(stream before, stream after).
//
// Magnitude uses Σ |W| over the same weights instead, and the sum over all
// of a block's matrices for the block; it ignores the calibration text.
func (s *Source) Score(method Method, calib string, opt ScoreOptions) (*Scores, error) {
	if err := method.check(); err != nil {
		return nil, err
	}
	m := s.Model
	sc := &Scores{Method: method}
	if method == Magnitude {
		for l := range m.Blocks {
			s.scoreBlock(sc, l, nil)
		}
		return sc, nil
	}
	acts, err := calibrate(m, calib, opt)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(calib))
	sc.CalibSHA256 = hex.EncodeToString(sum[:])
	sc.Tokens = acts.tokens
	for l := range m.Blocks {
		s.scoreBlock(sc, l, acts)
	}
	return sc, nil
}

// calibrate runs the text through the model in windows that start from
// BOS, recording activations.
func calibrate(m *engine.Model, text string, opt ScoreOptions) (*activations, error) {
	if text == "" {
		return nil, errors.New("prune: the calibration text is empty; Wanda scoring needs text to run through the model")
	}
	if opt.MaxTokens < 0 {
		return nil, fmt.Errorf("prune: calibration token cap %d is negative", opt.MaxTokens)
	}
	ids, err := m.Tokenizer.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("prune: calibration text: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("prune: the calibration text has no tokens")
	}
	if opt.MaxTokens > 0 && len(ids) > opt.MaxTokens {
		ids = ids[:opt.MaxTokens]
	}
	window := opt.Window
	if window == 0 {
		window = min(512, m.ContextLen)
	}
	if window < 2 || window > m.ContextLen {
		return nil, fmt.Errorf("prune: window of %d tokens must be in [2, %d] (the context length)", window, m.ContextLen)
	}
	bos := m.Tokenizer.BOS()
	if bos < 0 {
		return nil, errors.New("prune: the tokenizer has no BOS token to start each window from")
	}
	st, err := m.NewState(window)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	acts := newActivations(&m.Config)
	st.Observe(acts)
	chunk := make([]int, 0, window)
	for start := 0; start < len(ids); start += window - 1 {
		end := min(len(ids), start+window-1)
		chunk = append(append(chunk[:0], bos), ids[start:end]...)
		st.Reset()
		if _, err := st.Forward(chunk); err != nil {
			return nil, fmt.Errorf("prune: calibration: %w", err)
		}
		if opt.Progress != nil {
			opt.Progress(end, len(ids))
		}
	}
	return acts, nil
}

// scoreBlock appends the scores of block l; acts is nil for Magnitude.
func (s *Source) scoreBlock(sc *Scores, l int, acts *activations) {
	m := s.Model
	c := &m.Config
	b := &m.Blocks[l]
	// norms returns ‖x‖ per feature, or ones for Magnitude.
	norms := func(sq [][]float64, n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = 1
			if acts != nil {
				v[i] = math.Sqrt(sq[l][i])
			}
		}
		return v
	}
	var attnIn, attnOut, ffnIn, ffnHidden [][]float64
	if acts != nil {
		attnIn, attnOut, ffnIn, ffnHidden = acts.attnIn, acts.attnOut, acts.ffnIn, acts.ffnHidden
	}
	xa, xo := norms(attnIn, c.Dim), norms(attnOut, c.QDim())
	xf, xh := norms(ffnIn, c.Dim), norms(ffnHidden, c.HiddenDim)

	var total float64 // Σ|W| of the block, for Magnitude's block score
	// rowScores returns Σ_c |W[r,c]|·x[c] for every row r.
	rowScores := func(w *engine.Matrix, x []float64) []float64 {
		row := make([]float32, w.Cols)
		out := make([]float64, w.Rows)
		for r := range w.Rows {
			w.Row(row, r)
			var sum, abs float64
			for j, v := range row {
				a := math.Abs(float64(v))
				sum += a * x[j]
				abs += a
			}
			out[r] = sum
			total += abs
		}
		return out
	}
	// colScores returns Σ_r |W[r,c]|·x[c] for every column c.
	colScores := func(w *engine.Matrix, x []float64) []float64 {
		row := make([]float32, w.Cols)
		out := make([]float64, w.Cols)
		for r := range w.Rows {
			w.Row(row, r)
			for j, v := range row {
				a := math.Abs(float64(v))
				out[j] += a
				total += a
			}
		}
		for j := range out {
			out[j] *= x[j]
		}
		return out
	}

	gate, up, down := rowScores(&b.Gate, xf), rowScores(&b.Up, xf), colScores(&b.Down, xh)
	ffn := make([]float64, c.HiddenDim)
	for j := range ffn {
		ffn[j] = gate[j] + up[j] + down[j]
	}
	q, k, v, o := rowScores(&b.Wq, xa), rowScores(&b.Wk, xa), rowScores(&b.Wv, xa), colScores(&b.Wo, xo)
	hd, per := c.HeadDim, c.Heads/c.KVHeads
	groups := make([]float64, c.KVHeads)
	for g := range groups {
		for r := g * per * hd; r < (g+1)*per*hd; r++ {
			groups[g] += q[r] + o[r]
		}
		for r := g * hd; r < (g+1)*hd; r++ {
			groups[g] += k[r] + v[r]
		}
	}
	layer := total
	if acts != nil {
		layer = acts.influence[l] / float64(max(acts.tokens, 1))
	}
	sc.FFN = append(sc.FFN, ffn)
	sc.Groups = append(sc.Groups, groups)
	sc.Layers = append(sc.Layers, layer)
}

// top returns the indices of the n highest scores in increasing order;
// ties go to the lower index.
func top(scores []float64, n int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	idx = idx[:n]
	sort.Ints(idx)
	return idx
}

// Select keeps, for the shape, the most influential blocks and in each of
// them its best groups and neurons.
func (sc *Scores) Select(sh Shape) (Selection, error) {
	layers := len(sc.Layers)
	if len(sc.FFN) != layers || len(sc.Groups) != layers || layers == 0 {
		return Selection{}, fmt.Errorf("prune: scores for %d blocks, %d blocks of neurons and %d of groups", layers, len(sc.FFN), len(sc.Groups))
	}
	if sh.Layers < 1 || sh.Layers > layers || sh.FFN < 1 || sh.Groups < 1 {
		return Selection{}, fmt.Errorf("prune: shape %d blocks × %d groups × %d neurons does not fit scores of %d blocks", sh.Layers, sh.Groups, sh.FFN, layers)
	}
	sel := Selection{Layers: top(sc.Layers, sh.Layers), Method: sc.Method, CalibSHA256: sc.CalibSHA256, CalibTokens: sc.Tokens}
	for _, l := range sel.Layers {
		if sh.FFN > len(sc.FFN[l]) || sh.Groups > len(sc.Groups[l]) {
			return Selection{}, fmt.Errorf("prune: block %d has scores for %d neurons and %d groups, fewer than the shape's %d and %d", l, len(sc.FFN[l]), len(sc.Groups[l]), sh.FFN, sh.Groups)
		}
		sel.FFN = append(sel.FFN, top(sc.FFN[l], sh.FFN))
		sel.Groups = append(sel.Groups, top(sc.Groups[l], sh.Groups))
	}
	return sel, nil
}

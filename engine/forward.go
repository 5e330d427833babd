package engine

import (
	"errors"
	"fmt"
	"math"

	"wisp/simd"
)

// MaxBatch is the largest number of tokens one call of the forward pass
// multiplies through the weights together. Longer prompts are prefilled in
// batches of this size.
//
// Measured in Chromium 156 on the 2-core EPYC (site/bench/prefill.bench.js,
// 128-token prompts, five interleaved rounds, against 32): 64 gave F16
// 1.14-1.16x and 128 gave 1.18x (stories15M shape) and 1.26x (SmolLM2-135M
// shape), since the F16 path widens each chunk of weights once per batch;
// Q8_0 1.01-1.03x. Natively no change beyond the noise.
const MaxBatch = 128

// State is one sequence being evaluated: its key/value cache, its position
// and the scratch buffers of the forward pass. It is not safe for concurrent
// use; make one State per sequence.
type State struct {
	m      *Model
	ctx    int // capacity of the cache in positions
	pos    int // positions filled so far
	batch  int // tokens per call of forward: MaxBatch (tests make it smaller)
	freqs  []float64
	keys   []float32 // [layer][KV head][position][HeadDim], each layer KVDim·ctx apart
	values []float32

	// Scratch, each for up to MaxBatch tokens.
	x, xb    []float32 // [t][Dim]
	q, xb2   []float32 // [t][QDim]
	k, v     []float32 // [t][KVDim]
	hb, hb2  []float32 // [t][HiddenDim]
	cos, sin []float32 // [t][HeadDim/2]
	att      []float32 // [goroutine][group][ctx]: the scores of a KV head's query heads
	logits   []float32 // [MaxBatch][VocabSize] or [VocabSize]
	in       input     // the input of the matrix products being computed
	q8       simd.Q8   // that input in 8-bit blocks, for quantized weights
	threads  *threads  // the goroutines of the matrix products, or nil

	obs Observer // shown the activations, or nil
}

// NewState makes a State holding up to ctx positions; ctx <= 0 means the
// model's context length. The cache takes 8·Layers·ctx·KVDim bytes: every
// block gets room for the widest block's keys and values, which wastes
// the difference in a model whose blocks differ in width but keeps the
// cache one simple array.
func (m *Model) NewState(ctx int) (*State, error) {
	ctx, err := m.Positions(ctx)
	if err != nil {
		return nil, err
	}
	c := &m.Config
	kvd := c.KVDim()
	cache := int64(c.Layers) * int64(ctx) * int64(kvd)
	if cache > math.MaxInt32 {
		return nil, fmt.Errorf("engine: a key/value cache of %d layers × %d positions × %d values is too large; ask for a shorter context", c.Layers, ctx, kvd)
	}
	s := &State{
		m:       m,
		ctx:     ctx,
		batch:   MaxBatch,
		freqs:   ropeFreqs(c.RopeBase, c.HeadDim),
		keys:    make([]float32, cache),
		values:  make([]float32, cache),
		x:       make([]float32, MaxBatch*c.Dim),
		xb:      make([]float32, MaxBatch*c.Dim),
		xb2:     make([]float32, MaxBatch*c.QDim()),
		q:       make([]float32, MaxBatch*c.QDim()),
		k:       make([]float32, MaxBatch*kvd),
		v:       make([]float32, MaxBatch*kvd),
		hb:      make([]float32, MaxBatch*c.HiddenDim),
		hb2:     make([]float32, MaxBatch*c.HiddenDim),
		cos:     make([]float32, MaxBatch*c.HeadDim/2),
		sin:     make([]float32, MaxBatch*c.HeadDim/2),
		threads: newThreads(m.Threads),
	}
	s.att = make([]float32, s.threads.count()*maxGroup(c)*ctx)
	return s, nil
}

// Positions returns how many positions NewState(ctx) holds: ctx, or the
// model's context length for ctx <= 0; a context longer than the model's
// is an error.
func (m *Model) Positions(ctx int) (int, error) {
	if ctx <= 0 {
		return m.ContextLen, nil
	}
	if ctx > m.ContextLen {
		return 0, fmt.Errorf("engine: context of %d positions is longer than the model's %d", ctx, m.ContextLen)
	}
	return ctx, nil
}

// StateBytes returns about how many bytes a State of ctx positions holds
// (ctx <= 0 means the model's context length): the key/value cache, the
// scratch of a batch, the 8-bit copy of a batch's input for quantized
// weights, the logits of a batch and each goroutine's attention scores.
// Hosts check it against their memory before they make a State.
func (m *Model) StateBytes(ctx int) uint64 {
	if ctx <= 0 {
		ctx = m.ContextLen
	}
	c := &m.Config
	b := uint64(MaxBatch)
	kv := 8 * uint64(c.Layers) * uint64(ctx) * uint64(c.KVDim())
	scratch := 4 * b * uint64(2*c.Dim+2*c.QDim()+2*c.KVDim()+2*c.HiddenDim+c.HeadDim+c.VocabSize)
	widest := uint64(max(c.Dim, c.QDim(), c.HiddenDim))
	q8 := b * (widest + widest/32*12)                                                       // int8 values; d, s and the sum per 32
	scores := 4 * uint64(newThreads(m.Threads).count()) * uint64(maxGroup(c)) * uint64(ctx) // per goroutine
	return kv + scratch + q8 + scores + 8*uint64(c.HeadDim)
}

// maxGroup returns the most query heads that share a KV head in any block.
func maxGroup(c *Config) int {
	g := 1
	for l := range c.Layers {
		g = max(g, c.HeadsOf(l)/c.KVHeadsOf(l))
	}
	return g
}

// Pos returns the number of positions evaluated so far.
func (s *State) Pos() int { return s.pos }

// Context returns the number of positions the State can hold.
func (s *State) Context() int { return s.ctx }

// Reset forgets every position, keeping the buffers.
func (s *State) Reset() { s.pos = 0 }

// Forward evaluates tokens at the next positions and returns the logits
// that follow the last of them. The slice is owned by the State and
// overwritten by the next call.
func (s *State) Forward(tokens []int) ([]float32, error) {
	// Check everything before the first batch moves the position.
	if err := s.check(tokens); err != nil {
		return nil, err
	}
	var logits []float32
	for len(tokens) > 0 {
		n := min(len(tokens), s.batch)
		var err error
		logits, err = s.forward(tokens[:n], false)
		if err != nil {
			return nil, err
		}
		tokens = tokens[n:]
	}
	return logits, nil
}

// ForwardAll evaluates at most MaxBatch tokens and returns the logits after
// each of them, len(tokens)·VocabSize values owned by the State.
func (s *State) ForwardAll(tokens []int) ([]float32, error) {
	if len(tokens) > MaxBatch {
		return nil, fmt.Errorf("engine: ForwardAll of %d tokens, more than MaxBatch (%d)", len(tokens), MaxBatch)
	}
	if err := s.check(tokens); err != nil {
		return nil, err
	}
	return s.forward(tokens, true)
}

// check reports tokens that cannot be evaluated at the current position
// (see Model.CheckPrompt).
func (s *State) check(tokens []int) error {
	return s.m.CheckPrompt(tokens, s.pos, s.ctx)
}

// CheckPrompt reports tokens that cannot be evaluated after used of ctx
// positions: none at all, more than the context has left, or an id outside
// the vocabulary (CheckTokens). It is the one check of a prompt, which
// Forward makes before the first batch moves the position and Sessions make
// before they touch their cache.
func (m *Model) CheckPrompt(tokens []int, used, ctx int) error {
	if len(tokens) == 0 {
		return errors.New("engine: empty prompt: a model needs at least one token (BOS) to start from")
	}
	if used+len(tokens) > ctx {
		held := ""
		if used > 0 {
			held = fmt.Sprintf(" (%d of its %d positions are used)", used, ctx)
		}
		return fmt.Errorf("engine: the prompt is %d tokens but the context holds %d%s; shorten the prompt or raise the context", len(tokens), ctx-used, held)
	}
	return m.CheckTokens(tokens)
}

// CheckTokens reports an id outside the model's vocabulary, which it can
// neither evaluate nor print.
func (m *Model) CheckTokens(ids []int) error {
	for _, id := range ids {
		if id < 0 || id >= m.VocabSize {
			return fmt.Errorf("engine: token %d is outside the vocabulary of %d", id, m.VocabSize)
		}
	}
	return nil
}

// forward runs the transformer over n <= MaxBatch tokens, as llama2.c's
// forward() does for one: for every layer, attention then feed-forward, each
// around a residual connection; then the final norm and the classifier.
// Its callers have checked the tokens.
func (s *State) forward(tokens []int, all bool) ([]float32, error) {
	m, c := s.m, &s.m.Config
	n := len(tokens)
	dim, hd, stride := c.Dim, c.HeadDim, s.ctx*c.KVDim()
	half := hd / 2
	x, xb := s.x[:n*dim], s.xb[:n*dim]

	// Token embeddings, and each position's rotation.
	for t, tok := range tokens {
		m.Embedding.Row(x[t*dim:], tok)
		ropeAngles(s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half], s.freqs, s.pos+t)
	}
	scale := float32(1 / math.Sqrt(float64(hd)))

	for l := range m.Blocks {
		ly := &m.Blocks[l]
		// This block's widths (the same in every block unless the model
		// was pruned per layer).
		heads, qd, kvd, hidden := c.HeadsOf(l), c.QDimOf(l), c.KVDimOf(l), c.HiddenOf(l)
		group := heads / c.KVHeadsOf(l)
		xb2, q, k, v := s.xb2[:n*qd], s.q[:n*qd], s.k[:n*kvd], s.v[:n*kvd]
		hb, hb2 := s.hb[:n*hidden], s.hb2[:n*hidden]
		layerKeys := s.keys[l*stride : l*stride+s.ctx*kvd]
		layerValues := s.values[l*stride : l*stride+s.ctx*kvd]

		// Attention: normalise, project to queries, keys and values.
		s.observe(l, BlockInput, x, n, dim)
		for t := range n {
			simd.RMSNorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], ly.AttnNorm, c.NormEps)
		}
		s.observe(l, AttnInput, xb, n, dim)
		in := s.input(xb, n, dim)
		ly.Wq.mul(q, in)
		ly.Wk.mul(k, in)
		ly.Wv.mul(v, in)
		for t := range n {
			qt, kt, vt := q[t*qd:(t+1)*qd], k[t*kvd:(t+1)*kvd], v[t*kvd:(t+1)*kvd]
			if ly.Bq != nil {
				simd.Add(qt, ly.Bq)
				simd.Add(kt, ly.Bk)
				simd.Add(vt, ly.Bv)
			}
			// Rotate queries and keys by their position, then cache keys and values.
			cos, sin := s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half]
			simd.Rope(qt, cos, sin, hd, c.RopeNeox)
			simd.Rope(kt, cos, sin, hd, c.RopeNeox)
			p := s.pos + t
			for g := range kvd / hd {
				at := (g*s.ctx + p) * hd
				copy(layerKeys[at:at+hd], kt[g*hd:(g+1)*hd])
				copy(layerValues[at:at+hd], vt[g*hd:(g+1)*hd])
			}
		}

		// Each head attends to every position up to its own. The query
		// heads of a KV head are adjacent vectors of q (and their outputs
		// of xb2), so that one call takes a position's group of heads:
		// the scores q·k scaled by 1/sqrt(hd), their softmax, and the
		// values summed with those weights, position by position. The
		// calls, one per token and KV head, are independent, so they are
		// shared among the goroutines (each with scores of its own) and
		// the result does not depend on how.
		kvHeads := heads / group
		attend := func(i, w int) {
			t, g := i/kvHeads, i%kvHeads
			p := s.pos + t
			keys := layerKeys[g*s.ctx*hd : (g*s.ctx+p+1)*hd]
			values := layerValues[g*s.ctx*hd : (g*s.ctx+p+1)*hd]
			at := t*qd + g*group*hd // the group's first head
			att := s.att[w*len(s.att)/s.threads.count():]
			simd.Attention(xb2[at:at+group*hd], att[:group*(p+1)], q[at:at+group*hd],
				keys, values, p+1, hd, group, scale)
		}
		// Multiply-adds: the scores and the sums, 2·hd per head and position.
		work := 2 * hd * heads * n * (s.pos + (n+1)/2)
		s.threads.each(n*kvHeads, work, attend)
		s.observe(l, AttnOutput, xb2, n, qd)
		ly.Wo.mul(xb, s.input(xb2, n, qd))
		simd.Add(x, xb)

		// Feed-forward: normalise, SwiGLU, project back.
		for t := range n {
			simd.RMSNorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], ly.FFNNorm, c.NormEps)
		}
		s.observe(l, FFNInput, xb, n, dim)
		in = s.input(xb, n, dim)
		ly.Gate.mul(hb, in)
		ly.Up.mul(hb2, in)
		simd.SiLUMul(hb, hb2)
		s.observe(l, FFNHidden, hb, n, hidden)
		ly.Down.mul(xb, s.input(hb, n, hidden))
		simd.Add(x, xb)
		s.observe(l, BlockOutput, x, n, dim)
	}
	s.pos += n

	// Final norm and classifier, for the last token or for all of them.
	first := n - 1
	if all {
		first = 0
	}
	rows := n - first
	for t := first; t < n; t++ {
		simd.RMSNorm(xb[(t-first)*dim:(t-first+1)*dim], x[t*dim:(t+1)*dim], m.OutputNorm, c.NormEps)
	}
	if need := rows * c.VocabSize; len(s.logits) < need {
		s.logits = make([]float32, need)
	}
	logits := s.logits[:rows*c.VocabSize]
	m.Output.mul(logits, s.input(xb, rows, dim))
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("engine: the logit of token %d after position %d is %v: the model's weights or activations overflowed float32", i%c.VocabSize, s.pos-n+first+i/c.VocabSize, v)
		}
	}
	return logits, nil
}

// input returns the first n vectors of cols values in x as the input of
// matrix products, to be quantized at most once.
func (s *State) input(x []float32, n, cols int) *input {
	s.in = input{x: x[:n*cols], n: n, cols: cols, q: &s.q8, threads: s.threads}
	return &s.in
}

package train

import (
	"fmt"
	"math"

	"wisp/engine"
)

// Config is the shape of a Llama-family model as the engine runs it with
// architecture "llama": RMSNorm, RoPE rotating adjacent pairs, grouped-query
// attention without biases, SwiGLU, and a classifier tied to the embedding
// or not.
type Config struct {
	Dim        int     // embedding length
	HiddenDim  int     // feed-forward length
	Layers     int     // blocks
	Heads      int     // attention heads
	KVHeads    int     // key/value heads; 0 means Heads
	HeadDim    int     // values per head; 0 means Dim/Heads
	Vocab      int     // tokens
	ContextLen int     // the longest sequence, recorded in the model file
	NormEps    float32 // RMSNorm epsilon; 0 means 1e-5
	RopeBase   float64 // RoPE frequency base; 0 means 10000
	Tied       bool    // the classifier is the token embedding
}

// Limits on a model's shape. They keep a mistyped flag or a hostile file
// from asking for absurd allocations; they are far above any model one can
// train on a CPU.
const (
	maxDim    = 1 << 14
	maxLayers = 1 << 8
	maxVocab  = 1 << 20
	maxCtx    = 1 << 16
	maxParams = 1 << 30
)

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.RopeBase == 0 {
		c.RopeBase = 10000
	}
	return c
}

// Validate reports a shape that cannot be trained or run.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dim <= 0 || c.HiddenDim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.HeadDim <= 0 || c.Vocab <= 0 || c.ContextLen <= 0:
		return fmt.Errorf("train: every dimension must be positive: %+v", c)
	case c.Dim > maxDim || c.HiddenDim > 4*maxDim || c.Heads*c.HeadDim > maxDim || c.Layers > maxLayers || c.Vocab > maxVocab || c.ContextLen > maxCtx:
		return fmt.Errorf("train: dimensions exceed the limits (dim %d, hidden %d, layers %d, vocabulary %d, context %d): %+v",
			maxDim, 4*maxDim, maxLayers, maxVocab, maxCtx, c)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("train: head size %d is odd; RoPE needs pairs", c.HeadDim)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("train: %d heads do not split into %d key/value groups", c.Heads, c.KVHeads)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return fmt.Errorf("train: RMSNorm epsilon %g is out of range (0, 1)", c.NormEps)
	case !(c.RopeBase > 1 && c.RopeBase < 1e12):
		return fmt.Errorf("train: RoPE base %g is out of range (1, 1e12)", c.RopeBase)
	}
	if p := c.Params(); p > maxParams {
		return fmt.Errorf("train: %d parameters are more than %d", p, maxParams)
	}
	return nil
}

// QDim is the width of the queries of all heads.
func (c Config) QDim() int { c = c.withDefaults(); return c.Heads * c.HeadDim }

// KVDim is the width of the keys (or values) of all key/value heads.
func (c Config) KVDim() int { c = c.withDefaults(); return c.KVHeads * c.HeadDim }

// Params returns the number of parameters, counting a tied classifier once.
func (c Config) Params() int64 {
	var n int64
	for _, t := range c.tensors() {
		n += int64(t.rows) * int64(t.cols)
	}
	return n
}

// tensorInfo places one weight in the flat parameter vector. A vector has
// rows == 1.
type tensorInfo struct {
	name       string
	role       engine.Role
	layer      int
	rows, cols int
	off        int
}

// matrix reports whether the tensor is a matrix, which weight decay applies to.
func (t tensorInfo) matrix() bool { return t.rows > 1 }

// engine returns the engine's description of a model of this shape (a
// llama model), defaults applied.
func (c Config) engine() engine.Config {
	c = c.withDefaults()
	return engine.Config{
		Arch: "llama", Dim: c.Dim, HiddenDim: c.HiddenDim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads,
		HeadDim: c.HeadDim, VocabSize: c.Vocab, ContextLen: c.ContextLen, NormEps: c.NormEps, RopeBase: c.RopeBase,
	}
}

// tensors lists the weights in the order of the parameter vector and of
// the GGUF file, with their GGUF names.
func (c Config) tensors() []tensorInfo {
	ec := c.engine()
	var ts []tensorInfo
	off := 0
	for _, t := range ec.Tensors(c.Tied) {
		rows := max(t.Rows, 1)
		ts = append(ts, tensorInfo{t.Name, t.Role, t.Layer, rows, t.Cols, off})
		off += rows * t.Cols
	}
	return ts
}

// layerWeights are the weights of one block, as views of the parameter
// vector (or of a gradient vector of the same layout).
type layerWeights[F float] struct {
	attnNorm, wq, wk, wv, wo, ffnNorm, gate, up, down []F
}

// weights are all the weights of a model as views of one vector.
type weights[F float] struct {
	emb     []F
	layers  []layerWeights[F]
	outNorm []F
	out     []F // emb itself when tied
}

// bind returns the views of all, which has c.Params() values.
func bind[F float](c Config, all []F) weights[F] {
	w := weights[F]{layers: make([]layerWeights[F], c.Layers)}
	for _, t := range c.tensors() {
		v := all[t.off : t.off+t.rows*t.cols : t.off+t.rows*t.cols]
		var ly *layerWeights[F]
		if t.layer >= 0 {
			ly = &w.layers[t.layer]
		}
		switch t.role {
		case engine.RoleEmbedding:
			w.emb = v
		case engine.RoleAttnNorm:
			ly.attnNorm = v
		case engine.RoleQ:
			ly.wq = v
		case engine.RoleK:
			ly.wk = v
		case engine.RoleV:
			ly.wv = v
		case engine.RoleAttnOutput:
			ly.wo = v
		case engine.RoleFFNNorm:
			ly.ffnNorm = v
		case engine.RoleGate:
			ly.gate = v
		case engine.RoleUp:
			ly.up = v
		case engine.RoleDown:
			ly.down = v
		case engine.RoleOutputNorm:
			w.outNorm = v
		case engine.RoleOutput:
			w.out = v
		}
	}
	if c.Tied {
		w.out = w.emb
	}
	return w
}

// ropeTables returns the cosines and sines of the rotations of positions
// [0, T) for a head of hd values: pair i at position p turns by p·θᵢ with
// θᵢ = base^(-2i/hd), as the engine does.
func ropeTables[F float](base float64, hd, T int) (cos, sin []F) {
	half := hd / 2
	cos, sin = make([]F, T*half), make([]F, T*half)
	for i := range half {
		theta := math.Pow(base, -float64(2*i)/float64(hd))
		for p := range T {
			s, c := math.Sincos(float64(p) * theta)
			cos[p*half+i], sin[p*half+i] = F(float32(c)), F(float32(s))
		}
	}
	return cos, sin
}

package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/simd"
)

// Model is a model in training: its shape and all its weights as float32,
// in one vector laid out in the order of the GGUF file's tensors.
type Model struct {
	Config Config
	Params []float32
}

// New returns a model of the given shape with random weights: matrices
// drawn from N(0, 0.02²), the attention output and feed-forward down
// projections further scaled by 1/√(2·Layers) as in GPT-2, norms at 1.
func New(c Config, seed uint64) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	m := &Model{Config: c, Params: make([]float32, c.Params())}
	rng := rand.New(rand.NewPCG(seed, 0x696e6974))
	resid := 1 / math.Sqrt(2*float64(c.Layers))
	for _, t := range c.tensors() {
		v := m.Params[t.off : t.off+t.rows*t.cols]
		if !t.matrix() {
			for i := range v {
				v[i] = 1
			}
			continue
		}
		std := 0.02
		if t.role == engine.RoleAttnOutput || t.role == engine.RoleDown {
			std *= resid
		}
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
	}
	return m, nil
}

// FromGGUF reads a llama model from a GGUF file (F32 or F16 tensors), for
// example a pruned student to distil or a model to train further.
func FromGGUF(f *gguf.File) (*Model, error) {
	if arch, err := f.String("general.architecture"); err != nil {
		return nil, err
	} else if arch != "llama" {
		return nil, fmt.Errorf("train: architecture %q: wisp trains llama models only", arch)
	}
	ec, err := engine.ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if ec.PerLayer() {
		// Config has one width for every block.
		return nil, errors.New("train: the model's blocks differ in width (pruned with --per-layer); wisp trains only models whose blocks are alike")
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, errors.New("train: tensor \"token_embd.weight\" is missing")
	}
	if len(emb.Dims) != 2 || emb.Dims[1] == 0 || emb.Dims[1] > maxVocab {
		return nil, fmt.Errorf("train: tensor \"token_embd.weight\" has shape %v", emb.Dims)
	}
	_, hasOut := f.Tensor("output.weight")
	c := Config{
		Dim: ec.Dim, HiddenDim: ec.HiddenDim, Layers: ec.Layers, Heads: ec.Heads, KVHeads: ec.KVHeads,
		HeadDim: ec.HeadDim, Vocab: int(emb.Dims[1]), ContextLen: ec.ContextLen,
		NormEps: ec.NormEps, RopeBase: ec.RopeBase, Tied: !hasOut,
	}
	if c.ContextLen > maxCtx {
		c.ContextLen = maxCtx // longer than any sequence we train on
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: c, Params: make([]float32, c.Params())}
	for _, ti := range c.tensors() {
		if err := readTensor(f, ti, m.Params[ti.off:ti.off+ti.rows*ti.cols]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readTensor reads one weight into dst, widening halves.
func readTensor(f *gguf.File, ti tensorInfo, dst []float32) error {
	t, ok := f.Tensor(ti.name)
	if !ok {
		return fmt.Errorf("train: tensor %q is missing", ti.name)
	}
	want := []uint64{uint64(ti.cols), uint64(ti.rows)}
	if ti.rows == 1 {
		want = want[:1]
	}
	if len(t.Dims) != len(want) || t.Dims[0] != want[0] || (len(want) == 2 && t.Dims[1] != want[1]) {
		return fmt.Errorf("train: tensor %q has shape %v, want %v", ti.name, t.Dims, want)
	}
	switch t.Type {
	case gguf.F32:
		v, err := t.F32()
		if err != nil {
			return fmt.Errorf("train: tensor %q: %w", ti.name, err)
		}
		copy(dst, v)
	case gguf.F16:
		h, err := t.F16()
		if err != nil {
			return fmt.Errorf("train: tensor %q: %w", ti.name, err)
		}
		simd.WidenF16(dst, h)
	default:
		return fmt.Errorf("train: tensor %q has type %v; wisp reads F32 and F16", ti.name, t.Type)
	}
	return nil
}

// Builder returns a GGUF builder holding the model as F32 tensors under
// architecture "llama", with the tokenizer v (which may be nil) and
// general.name set to name. The tensors are copies: later training does
// not change them.
func (m *Model) Builder(v *tokenizer.Vocab, name string) (*gguf.Builder, error) {
	c := m.Config.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(m.Params) != int(c.Params()) {
		return nil, fmt.Errorf("train: model has %d parameters, its shape %d", len(m.Params), c.Params())
	}
	if v != nil && len(v.Tokens) != c.Vocab {
		return nil, fmt.Errorf("train: tokenizer has %d tokens, the model %d", len(v.Tokens), c.Vocab)
	}
	b := gguf.NewBuilder()
	ec := c.engine()
	ec.SetGGUF(b)
	b.Set("general.name", name)
	if v != nil {
		if err := tokenizer.SetGGUF(b, v); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if err := addTensors(b, c, "", m.Params); err != nil {
		return nil, err
	}
	return b, nil
}

// addTensors adds the weights held in p (laid out as c's parameters) as F32
// tensors, their names prefixed.
func addTensors(b *gguf.Builder, c Config, prefix string, p []float32) error {
	for _, t := range c.tensors() {
		dims := []uint64{uint64(t.cols), uint64(t.rows)}
		if t.rows == 1 {
			dims = dims[:1]
		}
		if err := b.AddTensor(prefix+t.name, gguf.F32, dims, gguf.F32Bytes(p[t.off:t.off+t.rows*t.cols])); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}

// Logits runs the model over one sequence of tokens, as the engine would,
// and returns the logits after each of them: len(tokens)·Vocab values.
// It uses up to threads goroutines.
func (m *Model) Logits(tokens []int, threads int) ([]float32, error) {
	c := m.Config.withDefaults()
	if len(tokens) == 0 || len(tokens) > c.ContextLen {
		return nil, fmt.Errorf("train: %d tokens: want 1 to %d", len(tokens), c.ContextLen)
	}
	if len(m.Params) != int(c.Params()) {
		return nil, fmt.Errorf("train: model has %d parameters, its shape %d", len(m.Params), c.Params())
	}
	n := newNet[float32](c, 1, len(tokens), threads, m.Params, nil)
	for i, t := range tokens {
		if t < 0 || t >= c.Vocab {
			return nil, fmt.Errorf("train: token %d is outside the vocabulary of %d", t, c.Vocab)
		}
		n.tokens[i] = int32(t)
	}
	n.forward()
	return n.logits, nil
}

// GrowVocab returns a copy of m with n more tokens at the end of its
// vocabulary, for tokens added to a trained model's tokenizer (such as a
// chat format's control tokens). The rows of the new tokens, in the
// embedding and in an untied classifier, start as the mean row of the
// matrix plus noise from N(0, (0.02·s)²), s being the root-mean-square
// of the matrix's values, drawn from seed: near every other token, so that
// they neither dominate the first predictions nor start alike.
func (m *Model) GrowVocab(n int, seed uint64) (*Model, error) {
	c := m.Config.withDefaults()
	if n < 1 {
		return nil, fmt.Errorf("train: growing the vocabulary by %d tokens", n)
	}
	if len(m.Params) != int(c.Params()) {
		return nil, fmt.Errorf("train: model has %d parameters, its shape %d", len(m.Params), c.Params())
	}
	g := c
	g.Vocab += n
	if err := g.Validate(); err != nil {
		return nil, err
	}
	out := &Model{Config: g, Params: make([]float32, g.Params())}
	old := c.tensors()
	rng := rand.New(rand.NewPCG(seed, 0x67726f77))
	for i, t := range g.tensors() {
		src := m.Params[old[i].off : old[i].off+old[i].rows*old[i].cols]
		dst := out.Params[t.off : t.off+t.rows*t.cols]
		copy(dst, src)
		if t.role != engine.RoleEmbedding && t.role != engine.RoleOutput {
			continue
		}
		d := t.cols
		mean := make([]float64, d)
		var sq float64
		for r := range old[i].rows {
			for j, x := range src[r*d : (r+1)*d] {
				mean[j] += float64(x)
				sq += float64(x) * float64(x)
			}
		}
		rows := float64(old[i].rows)
		std := 0.02 * math.Sqrt(sq/(rows*float64(d)))
		for r := old[i].rows; r < t.rows; r++ {
			for j := range d {
				dst[r*d+j] = float32(mean[j]/rows + rng.NormFloat64()*std)
			}
		}
	}
	return out, nil
}

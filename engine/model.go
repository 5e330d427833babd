package engine

import (
	"fmt"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/simd"
)

// Matrix is a Rows×Cols weight matrix in row-major order, either float32 or
// IEEE half precision (exactly one of F32 and F16 is set). It is a view into
// the model file's bytes.
type Matrix struct {
	Rows, Cols int
	F32        []float32
	F16        []uint16
}

// MatMul computes out[t] = M·x[t] for n vectors x[t] of Cols values, giving n
// vectors of Rows values (see simd.MatMulF16).
func (m *Matrix) MatMul(out, x []float32, n int) {
	if m.F16 != nil {
		simd.MatMulF16(out, m.F16, x, m.Rows, m.Cols, n)
	} else {
		simd.MatMulF32(out, m.F32, x, m.Rows, m.Cols, n)
	}
}

// Row copies row r of the matrix into dst as float32.
func (m *Matrix) Row(dst []float32, r int) {
	if m.F16 != nil {
		simd.WidenF16(dst[:m.Cols], m.F16[r*m.Cols:(r+1)*m.Cols])
	} else {
		copy(dst[:m.Cols], m.F32[r*m.Cols:(r+1)*m.Cols])
	}
}

// Block holds the weights of one transformer block. Its widths are the
// block's own (Config.QDimOf, KVDimOf and HiddenOf).
type Block struct {
	AttnNorm   []float32
	Wq, Wk, Wv Matrix // Dim→QDim, Dim→KVDim, Dim→KVDim
	Bq, Bk, Bv []float32
	Wo         Matrix // QDim→Dim
	FFNNorm    []float32
	Gate, Up   Matrix // Dim→HiddenDim (w1, w3)
	Down       Matrix // HiddenDim→Dim (w2)
}

// Model is a loaded model: its configuration, its weights (views into the
// file's bytes) and its tokenizer.
type Model struct {
	Config
	Embedding  Matrix // VocabSize×Dim
	Blocks     []Block
	OutputNorm []float32
	Output     Matrix // VocabSize×Dim; the embedding itself when tied
	Tokenizer  *tokenizer.Tokenizer
	File       *gguf.File
	// Flushed counts the subnormal half-precision weights set to zero at
	// load (see simd.FlushF16).
	Flushed int
}

// Load reads a model from the bytes of a GGUF file. The weights stay views
// into data, which must not be modified afterwards; Load itself modifies it
// in place to flush subnormal half-precision weights to zero, so that every
// build computes with the same (fast) values.
func Load(data []byte) (*Model, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, err
	}
	return FromGGUF(f)
}

// FromGGUF builds a model from a parsed GGUF file, as Load does.
func FromGGUF(f *gguf.File) (*Model, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, File: f}
	m.Tokenizer, err = tokenizer.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	l := loader{f: f, m: m}
	emb := l.matrix("token_embd.weight", -1, c.Dim)
	if l.err == nil {
		m.VocabSize = emb.Rows
		if m.VocabSize > maxVocab {
			return nil, fmt.Errorf("engine: vocabulary of %d tokens is larger than %d", m.VocabSize, maxVocab)
		}
		if n := m.Tokenizer.Len(); n != m.VocabSize {
			return nil, fmt.Errorf("engine: token_embd.weight has %d rows but the tokenizer has %d tokens", m.VocabSize, n)
		}
	}
	m.Embedding = emb
	m.Blocks = make([]Block, c.Layers)
	for i := range m.Blocks {
		p := fmt.Sprintf("blk.%d.", i)
		ly := &m.Blocks[i]
		qd, kv, hidden := c.QDimOf(i), c.KVDimOf(i), c.HiddenOf(i)
		ly.AttnNorm = l.vector(p+"attn_norm.weight", c.Dim)
		ly.Wq = l.matrix(p+"attn_q.weight", qd, c.Dim)
		ly.Wk = l.matrix(p+"attn_k.weight", kv, c.Dim)
		ly.Wv = l.matrix(p+"attn_v.weight", kv, c.Dim)
		if c.QKVBias {
			ly.Bq = l.vector(p+"attn_q.bias", qd)
			ly.Bk = l.vector(p+"attn_k.bias", kv)
			ly.Bv = l.vector(p+"attn_v.bias", kv)
		}
		ly.Wo = l.matrix(p+"attn_output.weight", c.Dim, qd)
		ly.FFNNorm = l.vector(p+"ffn_norm.weight", c.Dim)
		ly.Gate = l.matrix(p+"ffn_gate.weight", hidden, c.Dim)
		ly.Up = l.matrix(p+"ffn_up.weight", hidden, c.Dim)
		ly.Down = l.matrix(p+"ffn_down.weight", c.Dim, hidden)
	}
	m.OutputNorm = l.vector("output_norm.weight", c.Dim)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = l.matrix("output.weight", m.VocabSize, c.Dim)
	} else {
		m.Output = m.Embedding
	}
	if l.err != nil {
		return nil, l.err
	}
	return m, nil
}

// loader reads tensors by name, checking their shapes, and remembers the
// first error.
type loader struct {
	f   *gguf.File
	m   *Model
	err error
}

func (l *loader) tensor(name string, dims ...int) *gguf.Tensor {
	if l.err != nil {
		return nil
	}
	t, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("engine: tensor %q is missing", name)
		return nil
	}
	ok = len(t.Dims) == len(dims)
	for i := 0; ok && i < len(dims); i++ {
		ok = dims[i] < 0 || t.Dims[i] == uint64(dims[i])
	}
	if !ok {
		l.err = fmt.Errorf("engine: tensor %q has shape %v, want %v", name, t.Dims, dims)
		return nil
	}
	if t.Type != gguf.F32 && t.Type != gguf.F16 {
		l.err = fmt.Errorf("engine: tensor %q has type %v; wisp reads F32 and F16", name, t.Type)
		return nil
	}
	return t
}

// matrix reads a rows×cols matrix; rows < 0 accepts any number of rows.
func (l *loader) matrix(name string, rows, cols int) Matrix {
	t := l.tensor(name, cols, rows)
	if t == nil {
		return Matrix{}
	}
	m := Matrix{Rows: int(t.Dims[1]), Cols: int(t.Dims[0])}
	var err error
	if t.Type == gguf.F16 {
		m.F16, err = t.F16()
		l.m.Flushed += simd.FlushF16(m.F16)
	} else {
		m.F32, err = t.F32()
	}
	if err != nil {
		l.err = fmt.Errorf("engine: tensor %q: %w", name, err)
	}
	return m
}

// vector reads a vector of n values as float32, widening halves.
func (l *loader) vector(name string, n int) []float32 {
	t := l.tensor(name, n)
	if t == nil {
		return nil
	}
	if t.Type == gguf.F32 {
		v, err := t.F32()
		if err != nil {
			l.err = fmt.Errorf("engine: tensor %q: %w", name, err)
		}
		return v
	}
	h, err := t.F16()
	if err != nil {
		l.err = fmt.Errorf("engine: tensor %q: %w", name, err)
		return nil
	}
	v := make([]float32, n)
	simd.WidenF16(v, h)
	return v
}

// Params returns the number of parameters, counting a tied output once.
func (m *Model) Params() int64 {
	var n int64
	for _, t := range m.File.Tensors {
		n += int64(t.Elements())
	}
	return n
}

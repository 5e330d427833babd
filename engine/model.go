package engine

import (
	"fmt"
	"slices"
	"strings"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/simd"
)

// Matrix is a Rows×Cols weight matrix in row-major order, a view into the
// model file's bytes in the file's own format: float32 (F32 is set),
// IEEE half precision or bfloat16 (F16 or BF16 holds the raw bits), or one
// of ggml's quantized block formats (Q holds the blocks of every row, in
// format QType). Exactly one of F32, F16, BF16 and Q is set.
type Matrix struct {
	Rows, Cols int
	F32        []float32
	F16        []uint16
	BF16       []uint16
	Q          []byte
	QType      simd.QType

	// f16Finite says that no half of F16 has exponent 31 (simd.F16Finite),
	// so that products may use simd.MatMulF16Finite; Load sets it.
	f16Finite bool
}

// Type returns the matrix's element type as GGUF names it.
func (m *Matrix) Type() gguf.TensorType {
	switch {
	case m.F16 != nil:
		return gguf.F16
	case m.BF16 != nil:
		return gguf.BF16
	case m.Q != nil:
		return ggufTypeOf(m.QType)
	}
	return gguf.F32
}

// MatMul computes out[t] = M·x[t] for n vectors x[t] of Cols values, giving n
// vectors of Rows values (see simd.MatMulF16 and simd.MatMulQ). For
// quantized weights it quantizes x into a buffer of its own; the forward
// pass quantizes each input once for all the matrices that share it.
func (m *Matrix) MatMul(out, x []float32, n int) {
	m.mul(out, &input{x: x[:n*m.Cols], n: n, cols: m.Cols, q: new(simd.Q8)})
}

// mul computes out[t] = M·x[t] for the vectors of in, quantizing them
// first if M is quantized and they are not yet, split among the goroutines
// of in.threads when it is large enough (see threads.mul).
func (m *Matrix) mul(out []float32, in *input) {
	if in.threads.parts(m.Rows, m.Cols, in.n) > 1 {
		in.threads.mul(m, out, in)
		return
	}
	m.mul1(out, in)
}

// mul1 is mul on the caller's goroutine.
func (m *Matrix) mul1(out []float32, in *input) {
	switch {
	case m.F16 != nil && m.f16Finite:
		simd.MatMulF16Finite(out, m.F16, in.x, m.Rows, m.Cols, in.n)
	case m.F16 != nil:
		simd.MatMulF16(out, m.F16, in.x, m.Rows, m.Cols, in.n)
	case m.BF16 != nil:
		simd.MatMulBF16(out, m.BF16, in.x, m.Rows, m.Cols, in.n)
	case m.Q != nil:
		if !in.quantized {
			simd.QuantizeQ8(in.q, in.x, in.n, in.cols)
			in.quantized = true
		}
		simd.MatMulQ(out, m.QType, m.Q, in.q, m.Rows, m.Cols, in.n)
	default:
		simd.MatMulF32(out, m.F32, in.x, m.Rows, m.Cols, in.n)
	}
}

// input is the input of one or more matrix products: n vectors of cols
// values, and the same vectors in 8-bit blocks once a quantized matrix has
// asked for them.
type input struct {
	x         []float32
	n, cols   int
	q         *simd.Q8
	quantized bool
	threads   *threads // the goroutines of the State's products, or nil
}

// Row copies row r of the matrix into dst as float32 (dequantizing it as
// ggml does).
func (m *Matrix) Row(dst []float32, r int) {
	dst = dst[:m.Cols]
	switch {
	case m.F16 != nil:
		simd.WidenF16(dst, m.F16[r*m.Cols:(r+1)*m.Cols])
	case m.BF16 != nil:
		for i, h := range m.BF16[r*m.Cols : (r+1)*m.Cols] {
			dst[i] = simd.BF16(h)
		}
	case m.Q != nil:
		rb := m.QType.RowBytes(m.Cols)
		simd.Dequantize(m.QType, dst, m.Q[r*rb:(r+1)*rb])
	default:
		copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
	}
}

// The quantized formats wisp multiplies, by their GGUF type.
var quantTypes = map[gguf.TensorType]simd.QType{
	gguf.Q8_0: simd.Q8_0, gguf.Q4_0: simd.Q4_0, gguf.Q4_1: simd.Q4_1,
	gguf.Q5_0: simd.Q5_0, gguf.Q5_1: simd.Q5_1, gguf.Q4_K: simd.Q4_K,
	gguf.Q5_K: simd.Q5_K, gguf.Q6_K: simd.Q6_K,
}

// ggufTypeOf returns the GGUF type of a quantized format.
func ggufTypeOf(q simd.QType) gguf.TensorType {
	for t, v := range quantTypes {
		if v == q {
			return t
		}
	}
	panic("engine: no GGUF type for " + q.String())
}

// ReadableTypes lists the tensor types wisp computes with, in the order
// its errors name them.
var ReadableTypes = []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1,
	gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}

// readableTypes is ReadableTypes as one phrase, for errors.
func readableTypes() string {
	var b strings.Builder
	for i, t := range ReadableTypes {
		switch {
		case i == len(ReadableTypes)-1:
			b.WriteString(" and ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(t.String())
	}
	return b.String()
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
	// Threads is how many goroutines the matrix products of the States
	// made afterwards are split among, each computing whole rows, so that
	// the logits do not depend on it; 0 or 1 is one, at most MaxThreads.
	// Products too small to gain stay on one goroutine. (On GOARCH=wasm,
	// leave it at 1: the split lives in the kernels there.)
	Threads int
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

// FromGGUF builds a model from a parsed GGUF file, as Load does. It runs
// Check first, so that whatever Check refuses it refuses with the same
// error, before it takes a view of any tensor.
func FromGGUF(f *gguf.File) (*Model, error) {
	c, tok, err := check(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, File: f, Tokenizer: tok}
	l := loader{f: f, m: m}
	l.walk()
	if l.err != nil {
		return nil, l.err
	}
	return m, nil
}

// walk reads every tensor of the model into l.m, whose Config and
// Tokenizer are set: as views with l.header false, or, with it true, only
// checking what the header tells (presence, shape, type), which leaves the
// weights empty but sets VocabSize.
func (l *loader) walk() {
	m, c := l.m, &l.m.Config
	emb := l.matrix(TensorName(RoleEmbedding, -1), -1, c.Dim)
	if l.err == nil {
		m.VocabSize = emb.Rows
		if m.VocabSize > MaxVocab {
			l.err = fmt.Errorf("engine: vocabulary of %d tokens is larger than %d", m.VocabSize, MaxVocab)
			return
		}
		if n := m.Tokenizer.Len(); n != m.VocabSize {
			l.err = fmt.Errorf("engine: token_embd.weight has %d rows but the tokenizer has %d tokens", m.VocabSize, n)
			return
		}
	}
	m.Embedding = emb
	m.Blocks = make([]Block, c.Layers)
	_, hasOutput := l.f.Tensor(TensorName(RoleOutput, -1))
	for _, s := range c.Tensors(!hasOutput)[1:] {
		var b *Block
		if s.Layer >= 0 {
			b = &m.Blocks[s.Layer]
		}
		switch s.Role {
		case RoleAttnNorm:
			b.AttnNorm = l.vector(s.Name, s.Cols)
		case RoleQ:
			b.Wq = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleK:
			b.Wk = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleV:
			b.Wv = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleQBias:
			b.Bq = l.vector(s.Name, s.Cols)
		case RoleKBias:
			b.Bk = l.vector(s.Name, s.Cols)
		case RoleVBias:
			b.Bv = l.vector(s.Name, s.Cols)
		case RoleAttnOutput:
			b.Wo = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleFFNNorm:
			b.FFNNorm = l.vector(s.Name, s.Cols)
		case RoleGate:
			b.Gate = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleUp:
			b.Up = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleDown:
			b.Down = l.matrix(s.Name, s.Rows, s.Cols)
		case RoleOutputNorm:
			m.OutputNorm = l.vector(s.Name, s.Cols)
		case RoleOutput:
			m.Output = l.matrix(s.Name, s.Rows, s.Cols)
		}
	}
	if !hasOutput {
		m.Output = m.Embedding
	}
}

// loader reads tensors by name, checking their shapes, and remembers the
// first error. With header set it only checks what a file's header tells
// (see walk).
type loader struct {
	f      *gguf.File
	m      *Model
	header bool
	err    error
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
	if !slices.Contains(ReadableTypes, t.Type) {
		l.err = fmt.Errorf("engine: tensor %q has type %v; wisp reads %s", name, t.Type, readableTypes())
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
	if q, ok := quantTypes[t.Type]; ok {
		// The size that the type and dims give, which is len(t.Data)
		// once parsed: the header alone tells.
		size, _ := gguf.TensorSize(t.Type, t.Dims)
		if want := m.Rows * q.RowBytes(m.Cols); size != uint64(want) {
			l.err = fmt.Errorf("engine: tensor %q: data has %d bytes, %d rows of %d %v weights need %d", name, size, m.Rows, m.Cols, t.Type, want)
			return Matrix{}
		}
	}
	if l.header {
		return m
	}
	var err error
	switch t.Type {
	case gguf.F32:
		m.F32, err = t.F32()
	case gguf.F16:
		m.F16, err = t.F16()
		l.m.Flushed += simd.FlushF16(m.F16)
		m.f16Finite = simd.F16Finite(m.F16)
	case gguf.BF16:
		m.BF16, err = t.BF16()
	default:
		m.QType = quantTypes[t.Type]
		m.Q = t.Data
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
	if t.Type != gguf.F32 && t.Type != gguf.F16 && t.Type != gguf.BF16 {
		l.err = fmt.Errorf("engine: tensor %q: a vector of type %v; norms and biases must be F32, F16 or BF16", name, t.Type)
		return nil
	}
	if l.header {
		return nil
	}
	var v []float32
	var err error
	switch t.Type {
	case gguf.F32:
		v, err = t.F32()
	case gguf.F16, gguf.BF16:
		var h []uint16
		if t.Type == gguf.F16 {
			h, err = t.F16()
		} else {
			h, err = t.BF16()
		}
		if err == nil {
			v = make([]float32, n)
			for i, x := range h {
				if t.Type == gguf.F16 {
					v[i] = simd.F16(x)
				} else {
					v[i] = simd.BF16(x)
				}
			}
		}
	}
	if err != nil {
		l.err = fmt.Errorf("engine: tensor %q: %w", name, err)
	}
	return v
}

// TensorTypes counts the model file's tensors by type, such as
// {"Q4_K": 12, "Q6_K": 3, "F32": 9}.
func (m *Model) TensorTypes() map[string]int {
	n := map[string]int{}
	for _, t := range m.File.Tensors {
		n[t.Type.String()]++
	}
	return n
}

// Params returns the number of parameters, counting a tied output once.
func (m *Model) Params() int64 {
	var n int64
	for _, t := range m.File.Tensors {
		n += int64(t.Elements())
	}
	return n
}

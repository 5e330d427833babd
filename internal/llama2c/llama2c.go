// Package llama2c reads Karpathy's llama2.c checkpoints (the legacy .bin
// format that run.c loads) and their tokenizer.bin, and turns them into a
// GGUF file that wisp and llama.cpp load.
//
// A checkpoint is a header of seven int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
// classifier is stored separately rather than shared with the embedding),
// then float32 weights in run.c's order. A tokenizer.bin is a uint32
// max_token_length, then for each token a float32 score, an int32 length
// and the token's bytes, spaces standing for SentencePiece's U+2581.
package llama2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/internal/fp16"
	"wisp/internal/sharedfiles"
)

// Config is a checkpoint's header.
type Config struct {
	Dim, HiddenDim, Layers, Heads, KVHeads, VocabSize, SeqLen int
	// Shared says the classifier is the token embedding.
	Shared bool
}

// Checkpoint is a parsed checkpoint: its header and views of its weights
// in run.c's order.
type Checkpoint struct {
	Config
	Embedding  []float32 // VocabSize×Dim
	AttnNorm   [][]float32
	Wq, Wk, Wv [][]float32
	Wo         [][]float32
	FFNNorm    [][]float32
	W1, W2, W3 [][]float32 // gate, down, up
	FinalNorm  []float32
	Classifier []float32 // nil when Shared
}

const headerSize = 7 * 4

// ReadCheckpoint parses a checkpoint. The weights are decoded from b.
func ReadCheckpoint(b []byte) (*Checkpoint, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("llama2c: checkpoint of %d bytes is shorter than its %d-byte header", len(b), headerSize)
	}
	h := make([]int32, 7)
	for i := range h {
		h[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	c := Config{Dim: int(h[0]), HiddenDim: int(h[1]), Layers: int(h[2]), Heads: int(h[3]), KVHeads: int(h[4]), VocabSize: int(h[5]), SeqLen: int(h[6])}
	c.Shared = c.VocabSize > 0
	if c.VocabSize < 0 {
		c.VocabSize = -c.VocabSize
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	headSize := c.Dim / c.Heads
	kvDim := c.KVHeads * headSize
	L, D, H, V := int64(c.Layers), int64(c.Dim), int64(c.HiddenDim), int64(c.VocabSize)
	want := V*D + L*D + L*D*D + 2*L*D*int64(kvDim) + L*D*D + L*D + 3*L*D*H + D + int64(c.SeqLen)*int64(headSize)
	if !c.Shared {
		want += V * D
	}
	if have := int64(len(b) - headerSize); have != 4*want {
		problem := "too short (truncated?)"
		if have > 4*want {
			problem = "too long (wrong header?)"
		}
		return nil, fmt.Errorf("llama2c: checkpoint is %s: it holds %d bytes of weights; its header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq_len %d, shared classifier %t) needs %d", problem, have, c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.VocabSize, c.SeqLen, c.Shared, 4*want)
	}
	r := reader{b: b[headerSize:]}
	ck := &Checkpoint{Config: c}
	ck.Embedding = r.next(c.VocabSize * c.Dim)
	ck.AttnNorm = r.layers(c.Layers, c.Dim)
	ck.Wq = r.layers(c.Layers, c.Dim*c.Dim)
	ck.Wk = r.layers(c.Layers, kvDim*c.Dim)
	ck.Wv = r.layers(c.Layers, kvDim*c.Dim)
	ck.Wo = r.layers(c.Layers, c.Dim*c.Dim)
	ck.FFNNorm = r.layers(c.Layers, c.Dim)
	ck.W1 = r.layers(c.Layers, c.HiddenDim*c.Dim)
	ck.W2 = r.layers(c.Layers, c.Dim*c.HiddenDim)
	ck.W3 = r.layers(c.Layers, c.HiddenDim*c.Dim)
	ck.FinalNorm = r.next(c.Dim)
	r.next(c.SeqLen * headSize) // the RoPE tables of old checkpoints, unused
	if !c.Shared {
		ck.Classifier = r.next(c.VocabSize * c.Dim)
	}
	return ck, nil
}

// validate reports a header that no checkpoint (or no model wisp runs) can
// have. The bounds keep the sizes computed from it far from overflow.
func (c *Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{{"dim", c.Dim, 1 << 16}, {"hidden_dim", c.HiddenDim, 1 << 18}, {"n_layers", c.Layers, 1 << 10}, {"n_heads", c.Heads, 1 << 12}, {"n_kv_heads", c.KVHeads, 1 << 12}, {"vocab_size", c.VocabSize, 1 << 22}, {"seq_len", c.SeqLen, 1 << 22}} {
		if f.v <= 0 || f.v > f.max {
			return fmt.Errorf("llama2c: header %s = %d is out of range [1, %d]; is this a llama2.c legacy checkpoint?", f.name, f.v, f.max)
		}
	}
	if c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || (c.Dim/c.Heads)%2 != 0 {
		return fmt.Errorf("llama2c: dim %d, n_heads %d, n_kv_heads %d do not make whole, even-sized heads", c.Dim, c.Heads, c.KVHeads)
	}
	return nil
}

type reader struct{ b []byte }

func (r *reader) next(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(r.b[4*i:]))
	}
	r.b = r.b[4*n:]
	return v
}

func (r *reader) layers(layers, n int) [][]float32 {
	v := make([][]float32, layers)
	for i := range v {
		v[i] = r.next(n)
	}
	return v
}

// Vocab is a parsed tokenizer.bin.
type Vocab struct {
	Tokens []string // as stored: spaces, not U+2581
	Scores []float32
}

// ReadTokenizer parses a tokenizer.bin of n tokens (the checkpoint's
// vocab_size, which the file does not record).
func ReadTokenizer(b []byte, n int) (*Vocab, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("llama2c: tokenizer of %d bytes has no header", len(b))
	}
	maxLen := binary.LittleEndian.Uint32(b)
	if maxLen == 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("llama2c: tokenizer max_token_length %d is out of range; is this a llama2.c tokenizer.bin?", maxLen)
	}
	if n <= 0 || n > len(b)/8 {
		return nil, fmt.Errorf("llama2c: tokenizer of %d bytes cannot hold %d tokens", len(b), n)
	}
	v := &Vocab{Tokens: make([]string, n), Scores: make([]float32, n)}
	off := 4
	for i := range n {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("llama2c: tokenizer ends at token %d of %d", i, n)
		}
		v.Scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		l := binary.LittleEndian.Uint32(b[off+4:])
		off += 8
		if l > maxLen || int(l) > len(b)-off {
			return nil, fmt.Errorf("llama2c: tokenizer token %d has length %d (max_token_length %d, %d bytes left)", i, l, maxLen, len(b)-off)
		}
		v.Tokens[i] = string(b[off : off+int(l)])
		off += int(l)
	}
	if off != len(b) {
		return nil, fmt.Errorf("llama2c: tokenizer has %d bytes left after its %d tokens; was it made for a larger vocabulary than the checkpoint's?", len(b)-off, n)
	}
	return v, nil
}

// Options configures ToGGUF.
type Options struct {
	Type gguf.TensorType // gguf.F32 or gguf.F16 for the matrices; norms stay F32
	Name string          // general.name
}

// Token ids that llama2.c's tokenizers (SentencePiece's defaults) use.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// ToGGUF builds a GGUF file of architecture llama from a checkpoint and its
// tokenizer. Spaces in tokens become U+2581 again, BOS and EOS get their
// SentencePiece names, and "<0xXX>" tokens are marked as byte tokens. The
// stats report what half precision lost (zero for F32).
func ToGGUF(ck *Checkpoint, v *Vocab, opt Options) (*gguf.Builder, fp16.Stats, error) {
	var st fp16.Stats
	if ck == nil || v == nil {
		return nil, st, errors.New("llama2c: ToGGUF needs a checkpoint and a vocabulary")
	}
	if opt.Type != gguf.F32 && opt.Type != gguf.F16 {
		return nil, st, fmt.Errorf("llama2c: cannot write tensors of type %v; choose F32 or F16", opt.Type)
	}
	if err := ck.Config.validate(); err != nil {
		return nil, st, err
	}
	if len(v.Tokens) != ck.VocabSize {
		return nil, st, fmt.Errorf("llama2c: tokenizer has %d tokens, checkpoint %d", len(v.Tokens), ck.VocabSize)
	}
	if len(v.Scores) != len(v.Tokens) {
		return nil, st, fmt.Errorf("llama2c: tokenizer has %d tokens but %d scores", len(v.Tokens), len(v.Scores))
	}
	for _, w := range []struct {
		name string
		v    [][]float32
	}{{"rms_att", ck.AttnNorm}, {"wq", ck.Wq}, {"wk", ck.Wk}, {"wv", ck.Wv}, {"wo", ck.Wo}, {"rms_ffn", ck.FFNNorm}, {"w1", ck.W1}, {"w2", ck.W2}, {"w3", ck.W3}} {
		if len(w.v) != ck.Layers {
			return nil, st, fmt.Errorf("llama2c: checkpoint has %s for %d layers, not %d", w.name, len(w.v), ck.Layers)
		}
	}
	c := ck.Config
	b := gguf.NewBuilder()
	ec := engine.Config{Arch: "llama", Dim: c.Dim, HiddenDim: c.HiddenDim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads,
		HeadDim: c.Dim / c.Heads, VocabSize: c.VocabSize, ContextLen: c.SeqLen, NormEps: 1e-5, RopeBase: 10000}
	ec.SetGGUF(b)
	if opt.Name != "" {
		b.Set("general.name", opt.Name)
	}
	fileType := uint32(0)
	if opt.Type == gguf.F16 {
		fileType = 1
	}
	b.Set("general.file_type", fileType)

	tokens := make([]string, len(v.Tokens))
	types := make([]int32, len(v.Tokens))
	for i, t := range v.Tokens {
		switch {
		case i == unkID:
			tokens[i], types[i] = "<unk>", 2
		case i == bosID:
			tokens[i], types[i] = "<s>", 3
		case i == eosID:
			tokens[i], types[i] = "</s>", 3
		case isByteToken(t):
			tokens[i], types[i] = t, 6
		default:
			tokens[i], types[i] = strings.ReplaceAll(t, " ", "\u2581"), 1
		}
	}
	if err := tokenizer.SetGGUF(b, &tokenizer.Vocab{
		Model: "llama", Tokens: tokens, Scores: v.Scores, Types: types,
		BOS: bosID, EOS: eosID, UNK: unkID, PAD: -1, AddBOS: true, AddSpacePrefix: true,
	}); err != nil {
		return nil, st, fmt.Errorf("llama2c: %w", err)
	}

	var err error
	add := func(name string, w []float32, rows, cols int, matrix bool) {
		if err != nil {
			return
		}
		dims := []uint64{uint64(cols)}
		if rows > 1 || matrix {
			dims = append(dims, uint64(rows))
		}
		if matrix && opt.Type == gguf.F16 {
			h, s := fp16.FromFloat32(w)
			st.Add(s)
			err = b.AddTensor(name, gguf.F16, dims, gguf.F16Bytes(h))
			return
		}
		err = b.AddTensor(name, gguf.F32, dims, gguf.F32Bytes(w))
	}
	// The checkpoint's arrays, by role: llama2.c's w1, w2 and w3 are the
	// gate, down and up matrices.
	layer := map[engine.Role][][]float32{
		engine.RoleAttnNorm: ck.AttnNorm, engine.RoleQ: ck.Wq, engine.RoleK: ck.Wk, engine.RoleV: ck.Wv,
		engine.RoleAttnOutput: ck.Wo, engine.RoleFFNNorm: ck.FFNNorm,
		engine.RoleGate: ck.W1, engine.RoleDown: ck.W2, engine.RoleUp: ck.W3,
	}
	global := map[engine.Role][]float32{
		engine.RoleEmbedding: ck.Embedding, engine.RoleOutputNorm: ck.FinalNorm, engine.RoleOutput: ck.Classifier,
	}
	for _, t := range ec.Tensors(c.Shared) {
		w := global[t.Role]
		if t.Layer >= 0 {
			w = layer[t.Role][t.Layer]
		}
		add(t.Name, w, max(t.Rows, 1), t.Cols, !t.Role.Vector())
	}
	if err != nil {
		return nil, st, fmt.Errorf("llama2c: %w", err)
	}
	return b, st, nil
}

// isByteToken reports whether t names a single byte, like "<0x0A>".
func isByteToken(t string) bool {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return false
	}
	for _, c := range t[3:5] {
		if !strings.ContainsRune("0123456789ABCDEFabcdef", c) {
			return false
		}
	}
	return true
}

// Convert turns the bytes of a checkpoint and its tokenizer into the bytes
// of a GGUF file.
func Convert(model, tok []byte, opt Options) ([]byte, fp16.Stats, error) {
	ck, err := ReadCheckpoint(model)
	if err != nil {
		return nil, fp16.Stats{}, err
	}
	v, err := ReadTokenizer(tok, ck.VocabSize)
	if err != nil {
		return nil, fp16.Stats{}, err
	}
	b, st, err := ToGGUF(ck, v, opt)
	if err != nil {
		return nil, st, err
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, st, fmt.Errorf("llama2c: %w", err)
	}
	return buf.Bytes(), st, nil
}

// Stories260K returns Karpathy's stories260K from the shared folder
// (wisp/internal/sharedfiles) converted to GGUF with matrices of the given
// type (gguf.F32 or gguf.F16), for tests and benchmarks.
func Stories260K(typ gguf.TensorType) ([]byte, error) {
	model, err := sharedfiles.Read("models/stories260K.bin")
	if err != nil {
		return nil, err
	}
	tok, err := sharedfiles.Read("models/tok512.bin")
	if err != nil {
		return nil, err
	}
	b, _, err := Convert(model, tok, Options{Type: typ, Name: "stories260K"})
	return b, err
}

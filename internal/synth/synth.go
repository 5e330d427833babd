// Package synth writes random models of a given shape, for tests and
// benchmarks. Their weights are noise, so their text is gibberish, but they
// exercise exactly the code and the memory traffic of a real model of that
// shape. Every file is marked as random in its metadata (wisp.random).
package synth

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"wisp/engine"
	"wisp/engine/chat"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/internal/fp16"
	"wisp/simd"
)

// Shape is a model's architecture and dimensions.
type Shape struct {
	Arch       string // "llama" or "qwen2"
	Dim        int
	HiddenDim  int
	Layers     int
	Heads      int
	KVHeads    int
	Vocab      int
	ContextLen int
	RopeBase   float32
	Tied       bool // share the embedding with the classifier
	// LayerHidden, LayerHeads and LayerKVHeads, each nil or one entry per
	// block, give blocks widths of their own (as a model pruned per layer
	// has), in place of HiddenDim, Heads and KVHeads; the head size stays
	// Dim/Heads. Build writes a field that is set as an array, and then
	// attention.key_length too.
	LayerHidden, LayerHeads, LayerKVHeads []int
}

// hidden, heads and kvHeads return the widths of block l.
func (s Shape) hidden(l int) int  { return pick(s.LayerHidden, l, s.HiddenDim) }
func (s Shape) heads(l int) int   { return pick(s.LayerHeads, l, s.Heads) }
func (s Shape) kvHeads(l int) int { return pick(s.LayerKVHeads, l, s.KVHeads) }

// perLayer reports whether some block has widths of its own.
func (s Shape) perLayer() bool {
	return s.LayerHidden != nil || s.LayerHeads != nil || s.LayerKVHeads != nil
}

func pick(v []int, l, def int) int {
	if l < len(v) {
		return v[l]
	}
	return def
}

// Shapes are the named shapes of well-known small models.
func Shapes() map[string]Shape {
	return map[string]Shape{
		"stories260K":  {Arch: "llama", Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, ContextLen: 512, RopeBase: 10000, Tied: true},
		"stories15M":   {Arch: "llama", Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, ContextLen: 256, RopeBase: 10000, Tied: true},
		"stories110M":  {Arch: "llama", Dim: 768, HiddenDim: 2048, Layers: 12, Heads: 12, KVHeads: 12, Vocab: 32000, ContextLen: 1024, RopeBase: 10000, Tied: true},
		"smollm2-135m": {Arch: "llama", Dim: 576, HiddenDim: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, ContextLen: 8192, RopeBase: 100000, Tied: true},
		"qwen2.5-0.5b": {Arch: "qwen2", Dim: 896, HiddenDim: 4864, Layers: 24, Heads: 14, KVHeads: 2, Vocab: 151936, ContextLen: 32768, RopeBase: 1000000, Tied: true},
	}
}

// ShapeNames returns the names of Shapes, sorted.
func ShapeNames() []string {
	var names []string
	for n := range Shapes() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params returns the number of parameters of the shape. It is meaningless
// (but does not panic) for a shape that Validate rejects.
func (s Shape) Params() int64 {
	hd := 0
	if s.Heads > 0 {
		hd = s.Dim / s.Heads
	}
	d := int64(s.Dim)
	n := int64(s.Vocab)*d + d
	for l := range max(s.Layers, 0) {
		q, kv, h := int64(s.heads(l))*int64(hd), int64(s.kvHeads(l))*int64(hd), int64(s.hidden(l))
		n += 2*d + 2*d*q + 2*d*kv + 3*d*h
		if s.Arch == "qwen2" {
			n += q + 2*kv
		}
	}
	if !s.Tied {
		n += int64(s.Vocab) * d
	}
	return n
}

// Validate reports a shape the engine cannot run.
func (s Shape) Validate() error {
	switch {
	case s.Arch != "llama" && s.Arch != "qwen2":
		return fmt.Errorf("synth: architecture %q: choose llama or qwen2", s.Arch)
	case s.Dim <= 0 || s.HiddenDim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.ContextLen <= 0:
		return fmt.Errorf("synth: dimensions must be positive: %+v", s)
	case s.Dim > engine.MaxDim || s.HiddenDim > engine.MaxHidden || s.Layers > engine.MaxLayers || s.Heads > engine.MaxHeads || s.KVHeads > engine.MaxHeads || s.Vocab > engine.MaxVocab || s.ContextLen > engine.MaxContext:
		return fmt.Errorf("synth: dimensions exceed the engine's limits (dim %d, hidden %d, layers %d, heads %d, vocab %d, context %d): %+v",
			engine.MaxDim, engine.MaxHidden, engine.MaxLayers, engine.MaxHeads, engine.MaxVocab, engine.MaxContext, s)
	case !(s.RopeBase > 1 && s.RopeBase < 1e12):
		return fmt.Errorf("synth: RoPE base %g is out of range (1, 1e12)", s.RopeBase)
	case s.Dim%s.Heads != 0 || (s.Dim/s.Heads)%2 != 0:
		return fmt.Errorf("synth: dim %d must split into %d heads of even size", s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return fmt.Errorf("synth: %d heads do not split into %d key/value groups", s.Heads, s.KVHeads)
	case s.Vocab < 3+256:
		return fmt.Errorf("synth: vocabulary of %d is smaller than the %d special and byte tokens", s.Vocab, 3+256)
	}
	for _, f := range []struct {
		name  string
		v     []int
		limit int
	}{{"LayerHidden", s.LayerHidden, engine.MaxHidden}, {"LayerHeads", s.LayerHeads, engine.MaxHeads}, {"LayerKVHeads", s.LayerKVHeads, engine.MaxHeads}} {
		if f.v == nil {
			continue
		}
		if len(f.v) != s.Layers {
			return fmt.Errorf("synth: %s has %d entries for %d blocks", f.name, len(f.v), s.Layers)
		}
		for l, x := range f.v {
			if x < 1 || x > f.limit {
				return fmt.Errorf("synth: %s[%d] = %d is out of range [1, %d]", f.name, l, x, f.limit)
			}
		}
	}
	for l := range s.Layers {
		if s.heads(l)%s.kvHeads(l) != 0 {
			return fmt.Errorf("synth: block %d: %d heads do not split into %d key/value groups", l, s.heads(l), s.kvHeads(l))
		}
		if s.heads(l)*(s.Dim/s.Heads) > engine.MaxDim {
			return fmt.Errorf("synth: block %d: %d heads of %d values are more than %d", l, s.heads(l), s.Dim/s.Heads, engine.MaxDim)
		}
	}
	return nil
}

// Options configures Build.
type Options struct {
	// Type is the type of the matrices: F32, F16, BF16 or one of the
	// quantized types wisp reads (random blocks; see RandomBlocks). Norms
	// and biases stay F32.
	Type gguf.TensorType
	Seed uint64
	Name string // general.name; default "random"
	// ChatML makes the last two tokens of the vocabulary ChatML's markers,
	// "<|im_start|>" and "<|im_end|>", as control tokens (the second is
	// EOS), and writes the ChatML chat template (chat.ChatML), as
	// SmolLM2's and Qwen2's files have them: for tests of chat.
	ChatML bool
}

// Build returns a GGUF builder holding a random model of the shape, with a
// SentencePiece-style vocabulary of byte tokens, letters and made-up words.
func Build(s Shape, opt Options) (*gguf.Builder, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, quant := quantTypes[opt.Type]; !quant && opt.Type != gguf.F32 && opt.Type != gguf.F16 && opt.Type != gguf.BF16 {
		return nil, fmt.Errorf("synth: tensor type %v: choose F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K", opt.Type)
	}
	if opt.ChatML && s.Vocab < 261 {
		return nil, fmt.Errorf("synth: a ChatML vocabulary needs at least 261 tokens, not %d", s.Vocab)
	}
	if opt.Name == "" {
		opt.Name = "random"
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
	b := gguf.NewBuilder()
	a := s.Arch
	hd := s.Dim / s.Heads
	c := engine.Config{
		Arch: a, Dim: s.Dim, HiddenDim: s.HiddenDim, Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads,
		HeadDim: hd, VocabSize: s.Vocab, ContextLen: s.ContextLen, NormEps: 1e-5, RopeBase: float64(s.RopeBase),
		RopeNeox: a == "qwen2", QKVBias: a == "qwen2",
	}
	if err := c.SetBlockWidths(s.LayerHidden, s.LayerHeads, s.LayerKVHeads); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	c.SetGGUF(b)
	b.Set("general.name", opt.Name)
	b.Set("wisp.random", true)
	if err := setVocab(b, s.Vocab, opt.ChatML); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}

	var err error
	matrix := func(name string, rows, cols int) {
		if err != nil {
			return
		}
		dims := []uint64{uint64(cols), uint64(rows)}
		if q, ok := quantTypes[opt.Type]; ok {
			var data []byte
			if data, err = RandomBlocks(rng, q, rows, cols); err == nil {
				err = b.AddTensor(name, opt.Type, dims, data)
			} else {
				err = fmt.Errorf("tensor %q: %w", name, err)
			}
			return
		}
		w := make([]float32, rows*cols)
		scale := float32(1 / math.Sqrt(float64(cols)))
		for i := range w {
			w[i] = float32(rng.NormFloat64()) * scale
		}
		if opt.Type == gguf.BF16 {
			h := make([]uint16, len(w))
			for i, v := range w {
				h[i] = uint16(math.Float32bits(v) >> 16) // truncated: noise either way
			}
			err = b.AddTensor(name, gguf.BF16, dims, gguf.F16Bytes(h))
			return
		}
		if opt.Type == gguf.F16 {
			h, _ := fp16.FromFloat32(w)
			err = b.AddTensor(name, gguf.F16, dims, gguf.F16Bytes(h))
		} else {
			err = b.AddTensor(name, gguf.F32, dims, gguf.F32Bytes(w))
		}
	}
	vector := func(name string, n int, mean, spread float64) {
		if err != nil {
			return
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + spread*rng.NormFloat64())
		}
		err = b.AddTensor(name, gguf.F32, []uint64{uint64(n)}, gguf.F32Bytes(v))
	}
	ts := c.Tensors(s.Tied)
	// synth has always drawn (and written) each block's down matrix before
	// its up matrix; the committed oracle fixtures were made from those
	// draws, so it keeps that order.
	for i := range ts {
		if ts[i].Role == engine.RoleUp && ts[i+1].Role == engine.RoleDown {
			ts[i], ts[i+1] = ts[i+1], ts[i]
		}
	}
	for _, t := range ts {
		switch {
		case !t.Role.Vector():
			matrix(t.Name, t.Rows, t.Cols)
		case t.Role == engine.RoleQBias || t.Role == engine.RoleKBias || t.Role == engine.RoleVBias:
			vector(t.Name, t.Cols, 0, 0.1)
		default: // a norm
			vector(t.Name, t.Cols, 1, 0.1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return b, nil
}

// The quantized GGUF types, by their formats.
var quantTypes = map[gguf.TensorType]simd.QType{
	gguf.Q8_0: simd.Q8_0, gguf.Q4_0: simd.Q4_0, gguf.Q4_1: simd.Q4_1,
	gguf.Q5_0: simd.Q5_0, gguf.Q5_1: simd.Q5_1, gguf.Q4_K: simd.Q4_K,
	gguf.Q5_K: simd.Q5_K, gguf.Q6_K: simd.Q6_K,
}

// RandomBlocks returns a rows×cols matrix of random blocks of format q:
// random quants, with each block's scales (and offsets) set so that the
// weights spread about as synth's float weights do (a standard deviation
// of about 1/√cols), jittered by up to a quarter from block to block. cols
// must be a multiple of the format's block length.
func RandomBlocks(rng *rand.Rand, q simd.QType, rows, cols int) ([]byte, error) {
	if cols%q.BlockLen() != 0 {
		return nil, fmt.Errorf("%v needs rows of a multiple of %d weights, not %d", q, q.BlockLen(), cols)
	}
	sigma := 1 / math.Sqrt(float64(cols))
	out := make([]byte, rows*q.RowBytes(cols))
	for j := range out {
		out[j] = byte(rng.Uint32())
	}
	half := func(b []byte, v float64) {
		h, _ := fp16.FromFloat32([]float32{float32(v)})
		b[0], b[1] = byte(h[0]), byte(h[0]>>8)
	}
	// The standard deviations of uniform quants: 8-bit 73.9, 6-bit 18.5,
	// 5-bit 9.2, 4-bit 4.6; k-quant sub-block scales (6-bit) average 31.5.
	// Scales too small for a normal half would be flushed to zero.
	bb := q.BlockBytes()
	for o := 0; o < len(out); o += bb {
		blk := out[o : o+bb]
		j := sigma * (0.75 + 0.5*rng.Float64())
		switch q {
		case simd.Q8_0:
			half(blk, j/73.9)
		case simd.Q4_0:
			half(blk, j/4.6)
		case simd.Q4_1:
			half(blk, j/4.6)
			half(blk[2:], -7.5*j/4.6)
		case simd.Q5_0:
			half(blk, j/9.2)
		case simd.Q5_1:
			half(blk, j/9.2)
			half(blk[2:], -15.5*j/9.2)
		case simd.Q4_K:
			// Random 6-bit scales and mins spread the weights wider
			// than the quants alone: 1.8 measured.
			half(blk, j/(1.8*31.5*4.6))
			half(blk[2:], 7.5*j/(1.8*31.5*4.6))
		case simd.Q5_K:
			half(blk, j/(1.8*31.5*9.2))
			half(blk[2:], 15.5*j/(1.8*31.5*9.2))
		case simd.Q6_K:
			// Sub-block scales 1..16 (root mean square 9.8), so that d
			// stays a normal half.
			for k := range 16 {
				blk[192+k] = byte(1 + rng.IntN(16))
			}
			half(blk[208:], j/(9.8*18.5))
		}
	}
	return out, nil
}

// Bytes returns the GGUF file of a random model of the shape: Build,
// written out.
func Bytes(s Shape, opt Options) ([]byte, error) {
	b, err := Build(s, opt)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return buf.Bytes(), nil
}

// setVocab stores a SentencePiece-style vocabulary of n tokens: <unk>,
// <s>, </s>, the 256 byte tokens, then printable characters and made-up
// words, each word with a lower score the longer it is.
func setVocab(b *gguf.Builder, n int, chatML bool) error {
	tokens := make([]string, 0, n)
	types := make([]int32, 0, n)
	scores := make([]float32, 0, n)
	add := func(t string, typ int32, score float32) {
		tokens = append(tokens, t)
		types = append(types, typ)
		scores = append(scores, score)
	}
	add("<unk>", 2, 0)
	add("<s>", 3, 0)
	add("</s>", 3, 0)
	for i := range 256 {
		add(fmt.Sprintf("<0x%02X>", i), 6, 0)
	}
	seen := map[string]bool{}
	letters := "\u2581etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ.,!?'\"0123456789"
	for _, r := range letters {
		if len(tokens) == n {
			break
		}
		seen[string(r)] = true
		add(string(r), 1, -float32(len(tokens)))
	}
	// Words: every pair, then triple, ... of the common letters, each
	// preceded by the space marker or not.
	common := []rune("etaoinshrdlucmfwypvbgk")
	for k := 0; len(tokens) < n; k++ {
		w := []rune{'\u2581'}
		if k%2 == 1 {
			w = w[:0]
		}
		for x := k / 2; ; x /= len(common) {
			w = append(w, common[x%len(common)])
			if x < len(common) {
				break
			}
		}
		if t := string(w); !seen[t] && len([]rune(t)) > 1 {
			seen[t] = true
			add(t, 1, -float32(len(tokens)))
		}
	}
	eos := 2
	if chatML {
		tokens[n-2], types[n-2] = "<|im_start|>", 3
		tokens[n-1], types[n-1] = "<|im_end|>", 3
		eos = n - 1
		b.Set(chat.KeyTemplate, chat.ChatML)
	}
	return tokenizer.SetGGUF(b, &tokenizer.Vocab{
		Model: "llama", Tokens: tokens, Scores: scores, Types: types,
		BOS: 1, EOS: eos, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true,
	})
}

// Edited returns the bytes of a random model after edit has changed its
// metadata and tensors, for tests of what a reader refuses: edit may set,
// add or drop keys and tensors freely, and a tensor whose Data is nil gets
// zero bytes of the size its type and dims need.
func Edited(s Shape, opt Options, edit func(f *gguf.File)) ([]byte, error) {
	b, err := Build(s, opt)
	if err != nil {
		return nil, err
	}
	f := b.File()
	edit(f)
	out := gguf.NewBuilder()
	for _, kv := range f.KV {
		out.Set(kv.Key, kv.Value)
	}
	for _, t := range f.Tensors {
		data := t.Data
		if data == nil {
			n, err := gguf.TensorSize(t.Type, t.Dims)
			if err != nil {
				return nil, fmt.Errorf("synth: tensor %q: %w", t.Name, err)
			}
			data = make([]byte, n)
		}
		if err := out.AddTensor(t.Name, t.Type, t.Dims, data); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	var buf bytes.Buffer
	if _, err := out.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return buf.Bytes(), nil
}

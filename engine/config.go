package engine

import (
	"errors"
	"fmt"
	"slices"

	"wisp/engine/gguf"
)

// Config holds a model's hyperparameters, read from the GGUF keys of its
// architecture (llama.* or qwen2.*).
//
// Blocks may differ in width (a model pruned per layer): llama.cpp's
// feed_forward_length, attention.head_count and attention.head_count_kv
// may each be an array with one entry per block. HiddenDim, Heads and
// KVHeads are then the largest over the blocks, which is what buffers
// that serve every block are sized by, and HiddenOf, HeadsOf and
// KVHeadsOf give each block's own; for a model of uniform width they are
// the same. The head size HeadDim is the same in every block.
type Config struct {
	Arch       string  // "llama" or "qwen2"
	Dim        int     // embedding length
	HiddenDim  int     // feed-forward length (the largest over blocks)
	Layers     int     // block count
	Heads      int     // attention heads (the largest over blocks)
	KVHeads    int     // key/value heads, grouped-query attention when < Heads (the largest over blocks)
	HeadDim    int     // values per head: attention.key_length, else Dim / Heads
	VocabSize  int     // rows of the token embedding
	ContextLen int     // the longest sequence the model was trained for
	NormEps    float32 // RMSNorm epsilon
	RopeBase   float64 // RoPE frequency base
	// RopeNeox selects the RoPE pair layout: false rotates adjacent pairs
	// (llama.cpp's LLAMA_ROPE_TYPE_NORM, llama2.c's layout), true rotates
	// the two halves of each head (LLAMA_ROPE_TYPE_NEOX, used by qwen2).
	RopeNeox bool
	// QKVBias says whether the attention projections have biases (qwen2).
	QKVBias bool

	// hidden, heads and kvHeads hold every block's widths when some
	// block differs from another; all three are nil for a model of
	// uniform width, whose blocks have HiddenDim, Heads and KVHeads.
	hidden, heads, kvHeads []int
}

// SetBlockWidths gives the blocks the widths of a pruned model: block l
// has hidden[l] FFN neurons, heads[l] attention heads and kvHeads[l]
// key/value heads. A nil slice gives every block the uniform value
// (HiddenDim, Heads or KVHeads); HiddenDim, Heads and KVHeads become the
// largest over the blocks. Slices shorter than Layers are an error.
func (c *Config) SetBlockWidths(hidden, heads, kvHeads []int) error {
	if hidden == nil && heads == nil && kvHeads == nil {
		c.hidden, c.heads, c.kvHeads = nil, nil, nil
		return nil
	}
	fill := func(v []int, def int, what string) ([]int, error) {
		if v == nil {
			return slices.Repeat([]int{def}, c.Layers), nil
		}
		if len(v) < c.Layers {
			return nil, fmt.Errorf("engine: %d %s widths for %d blocks", len(v), what, c.Layers)
		}
		return slices.Clone(v[:c.Layers]), nil
	}
	var err error
	var h, q, kv []int
	if h, err = fill(hidden, c.HiddenDim, "FFN"); err != nil {
		return err
	}
	if q, err = fill(heads, c.Heads, "head"); err != nil {
		return err
	}
	if kv, err = fill(kvHeads, c.KVHeads, "key/value head"); err != nil {
		return err
	}
	c.hidden, c.heads, c.kvHeads = h, q, kv
	if c.Layers > 0 {
		c.HiddenDim, c.Heads, c.KVHeads = slices.Max(h), slices.Max(q), slices.Max(kv)
	}
	return nil
}

// PerLayer reports whether the blocks differ in width.
func (c *Config) PerLayer() bool { return c.hidden != nil }

// HiddenOf returns the feed-forward length of block l.
func (c *Config) HiddenOf(l int) int {
	if c.hidden != nil {
		return c.hidden[l]
	}
	return c.HiddenDim
}

// HeadsOf returns the number of attention heads of block l.
func (c *Config) HeadsOf(l int) int {
	if c.heads != nil {
		return c.heads[l]
	}
	return c.Heads
}

// KVHeadsOf returns the number of key/value heads of block l.
func (c *Config) KVHeadsOf(l int) int {
	if c.kvHeads != nil {
		return c.kvHeads[l]
	}
	return c.KVHeads
}

// QDimOf returns the width of the queries of block l.
func (c *Config) QDimOf(l int) int { return c.HeadsOf(l) * c.HeadDim }

// KVDimOf returns the width of one position's keys (or values) in block l.
func (c *Config) KVDimOf(l int) int { return c.KVHeadsOf(l) * c.HeadDim }

// KVDim is the width of one position's keys (or values) in the cache: the
// largest over blocks.
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

// QDim is the width of the queries of all heads: Dim, unless heads were
// pruned (or the model has heads of their own size); the largest over
// blocks.
func (c *Config) QDim() int { return c.Heads * c.HeadDim }

// Limits on hyperparameters. They are far above any model wisp targets and
// keep a hostile file from asking for absurd allocations; the tools that
// write models (tools/hf, internal/synth) refuse what the engine would.
const (
	MaxDim     = 1 << 16    // embedding length, a head's size, all heads' width
	MaxHidden  = 4 * MaxDim // feed-forward length
	MaxLayers  = 1 << 10    // blocks
	MaxHeads   = 1 << 12    // attention heads, and key/value heads
	MaxVocab   = 1 << 22    // tokens
	MaxContext = 1 << 22    // positions
)

// ConfigFromGGUF reads the hyperparameters of a llama or qwen2 model.
// feed_forward_length, attention.head_count and attention.head_count_kv
// may each be an integer or, as llama.cpp reads them, an array of uint32
// or int32 with one entry per block (see Config); an array of blocks that
// differ in heads needs attention.key_length, since the head size is then
// not Dim / Heads.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String("general.architecture")
	if err != nil {
		return c, err
	}
	switch arch {
	case "llama":
	case "qwen2":
		c.RopeNeox = true
		c.QKVBias = true
	default:
		return c, fmt.Errorf("engine: unsupported architecture %q (wisp runs llama and qwen2)", arch)
	}
	c.Arch = arch
	ints := []struct {
		key string
		dst *int
		max int
	}{
		{"context_length", &c.ContextLen, MaxContext},
		{"embedding_length", &c.Dim, MaxDim},
		{"block_count", &c.Layers, MaxLayers},
	}
	for _, k := range ints {
		key := arch + "." + k.key
		v, err := f.Uint(key)
		if err != nil {
			return c, err
		}
		if v == 0 || v > uint64(k.max) {
			return c, fmt.Errorf("engine: %s = %d is out of range [1, %d]", key, v, k.max)
		}
		*k.dst = int(v)
	}
	// The widths, each one per block, for now.
	hidden, err := perBlock(f, arch+".feed_forward_length", c.Layers, MaxHidden)
	if err != nil {
		return c, err
	}
	heads, err := perBlock(f, arch+".attention.head_count", c.Layers, MaxHeads)
	if err != nil {
		return c, err
	}
	kvHeads, err := perBlock(f, arch+".attention.head_count_kv", c.Layers, MaxHeads)
	if errors.Is(err, gguf.ErrMissing) {
		kvHeads, err = heads, nil // as many key/value heads as heads
	}
	if err != nil {
		return c, err
	}
	for l := range c.Layers {
		if heads[l]%kvHeads[l] != 0 {
			if !uniform(heads) || !uniform(kvHeads) {
				return c, fmt.Errorf("engine: block %d: head count %d is not a multiple of the key/value head count %d", l, heads[l], kvHeads[l])
			}
			return c, fmt.Errorf("engine: head count %d is not a multiple of the key/value head count %d", heads[l], kvHeads[l])
		}
	}
	c.HiddenDim, c.Heads, c.KVHeads = slices.Max(hidden), slices.Max(heads), slices.Max(kvHeads)
	if !uniform(hidden) || !uniform(heads) || !uniform(kvHeads) {
		c.hidden, c.heads, c.kvHeads = hidden, heads, kvHeads
	}

	c.NormEps = 1e-5
	if v, err := f.Float(arch + ".attention.layer_norm_rms_epsilon"); err == nil {
		if !(v > 0 && v < 1) {
			return c, fmt.Errorf("engine: %s.attention.layer_norm_rms_epsilon = %g is out of range (0, 1)", arch, v)
		}
		c.NormEps = float32(v)
	} else if !errors.Is(err, gguf.ErrMissing) {
		return c, err
	}
	c.RopeBase = 10000
	if v, err := f.Float(arch + ".rope.freq_base"); err == nil {
		if !(v > 1 && v < 1e12) {
			return c, fmt.Errorf("engine: %s.rope.freq_base = %g is out of range (1, 1e12)", arch, v)
		}
		c.RopeBase = v
	} else if !errors.Is(err, gguf.ErrMissing) {
		return c, err
	}
	// The head size is attention.key_length when given (a model whose heads
	// were pruned has Heads·HeadDim < Dim), else Dim / Heads.
	if v, err := f.Uint(arch + ".attention.key_length"); err == nil {
		if v == 0 || v > MaxDim {
			return c, fmt.Errorf("engine: %s.attention.key_length = %d is out of range [1, %d]", arch, v, MaxDim)
		}
		c.HeadDim = int(v)
	} else if !errors.Is(err, gguf.ErrMissing) {
		return c, err
	} else {
		if !uniform(heads) {
			return c, fmt.Errorf("engine: %s.attention.head_count differs between blocks but %s.attention.key_length, the head size, is absent", arch, arch)
		}
		if c.Dim%c.Heads != 0 {
			return c, fmt.Errorf("engine: embedding length %d is not a multiple of the head count %d (and attention.key_length is absent)", c.Dim, c.Heads)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim%2 != 0 {
		return c, fmt.Errorf("engine: head size %d is odd; RoPE needs pairs", c.HeadDim)
	}
	if c.QDim() > MaxDim {
		return c, fmt.Errorf("engine: %d heads of %d values are more than %d", c.Heads, c.HeadDim, MaxDim)
	}
	for _, key := range []string{".rope.dimension_count", ".attention.value_length"} {
		if v, err := f.Uint(arch + key); err == nil && v != uint64(c.HeadDim) {
			return c, fmt.Errorf("engine: %s%s = %d but the head size is %d; wisp supports only full-width rotary embeddings and equal key and value sizes", arch, key, v, c.HeadDim)
		}
	}
	return c, nil
}

// SetGGUF sets the keys of b that ConfigFromGGUF reads back as c:
// general.architecture and, under the architecture's name, vocab_size
// (when known), context_length, embedding_length, block_count,
// feed_forward_length, attention.head_count and attention.head_count_kv
// (one number, or an array of one per block when the blocks differ),
// attention.key_length and attention.value_length (when some block's
// heads are not Dim wide), attention.layer_norm_rms_epsilon,
// rope.freq_base and rope.dimension_count. Every tool that writes a model
// sets them here, so that the writers and the reader cannot disagree.
func (c *Config) SetGGUF(b *gguf.Builder) {
	a := c.Arch + "."
	b.Set("general.architecture", c.Arch)
	if c.VocabSize > 0 {
		b.Set(a+"vocab_size", uint32(c.VocabSize))
	}
	b.Set(a+"context_length", uint32(c.ContextLen))
	b.Set(a+"embedding_length", uint32(c.Dim))
	b.Set(a+"block_count", uint32(c.Layers))
	for _, w := range []struct {
		key string
		of  func(l int) int
	}{{"feed_forward_length", c.HiddenOf}, {"attention.head_count", c.HeadsOf}, {"attention.head_count_kv", c.KVHeadsOf}} {
		v := make([]uint32, c.Layers)
		for l := range v {
			v[l] = uint32(w.of(l))
		}
		switch {
		case len(v) == 0:
			b.Set(a+w.key, uint32(0))
		case slices.Min(v) != slices.Max(v):
			b.Set(a+w.key, v)
		default:
			b.Set(a+w.key, v[0])
		}
	}
	narrow := false // some block's heads are not Dim wide
	for l := range c.Layers {
		narrow = narrow || c.HeadsOf(l)*c.HeadDim != c.Dim
	}
	if narrow {
		b.Set(a+"attention.key_length", uint32(c.HeadDim))
		b.Set(a+"attention.value_length", uint32(c.HeadDim))
	}
	b.Set(a+"attention.layer_norm_rms_epsilon", c.NormEps)
	b.Set(a+"rope.freq_base", float32(c.RopeBase))
	b.Set(a+"rope.dimension_count", uint32(c.HeadDim))
}

// perBlock reads key, an integer or an array of one per block, as the
// value of each of the blocks, checking every value is in [1, limit]. It
// returns an error wrapping gguf.ErrMissing if the key is absent. The
// array's length is checked before anything is allocated for it.
func perBlock(f *gguf.File, key string, blocks, limit int) ([]int, error) {
	v, ok := f.Value(key)
	if !ok {
		_, err := f.Uint(key) // the getter's error for a missing key
		return nil, err
	}
	var n int
	var at func(i int) int64
	switch a := v.(type) {
	case []uint32:
		n, at = len(a), func(i int) int64 { return int64(a[i]) }
	case []int32:
		n, at = len(a), func(i int) int64 { return int64(a[i]) }
	default:
		u, err := f.Uint(key)
		if err != nil && isSlice(v) {
			return nil, fmt.Errorf("engine: %w; an array of widths must hold uint32 or int32, one per block", err)
		}
		if err != nil {
			return nil, err
		}
		if u == 0 || u > uint64(limit) {
			return nil, fmt.Errorf("engine: %s = %d is out of range [1, %d]", key, u, limit)
		}
		out := make([]int, blocks)
		for i := range out {
			out[i] = int(u)
		}
		return out, nil
	}
	if n != blocks {
		return nil, fmt.Errorf("engine: %s has %d entries but the model has %d blocks (block_count)", key, n, blocks)
	}
	out := make([]int, n)
	for i := range out {
		x := at(i)
		if x < 1 || x > int64(limit) {
			return nil, fmt.Errorf("engine: %s[%d] = %d (block %d) is out of range [1, %d]", key, i, x, i, limit)
		}
		out[i] = int(x)
	}
	return out, nil
}

// isSlice reports whether v is a GGUF array of any element type.
func isSlice(v any) bool {
	switch v.(type) {
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64, []any:
		return true
	}
	return false
}

// uniform reports whether every value of v is the same.
func uniform(v []int) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

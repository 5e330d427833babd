package engine

import (
	"errors"
	"fmt"

	"wisp/engine/gguf"
)

// Config holds a model's hyperparameters, read from the GGUF keys of its
// architecture (llama.* or qwen2.*).
type Config struct {
	Arch       string  // "llama" or "qwen2"
	Dim        int     // embedding length
	HiddenDim  int     // feed-forward length
	Layers     int     // block count
	Heads      int     // attention heads
	KVHeads    int     // key/value heads (grouped-query attention when < Heads)
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
}

// KVDim is the width of one position's keys (or values) in the cache.
func (c *Config) KVDim() int { return c.KVHeads * c.HeadDim }

// QDim is the width of the queries of all heads: Dim, unless heads were
// pruned (or the model has heads of their own size).
func (c *Config) QDim() int { return c.Heads * c.HeadDim }

// Limits on hyperparameters. They are far above any model wisp targets and
// keep a hostile file from asking for absurd allocations.
const (
	maxDim     = 1 << 16
	maxLayers  = 1 << 10
	maxHeads   = 1 << 12
	maxVocab   = 1 << 22
	maxContext = 1 << 22
)

// ConfigFromGGUF reads the hyperparameters of a llama or qwen2 model.
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
		key      string
		dst      *int
		max      int
		optional bool
	}{
		{"context_length", &c.ContextLen, maxContext, false},
		{"embedding_length", &c.Dim, maxDim, false},
		{"block_count", &c.Layers, maxLayers, false},
		{"feed_forward_length", &c.HiddenDim, maxDim * 4, false},
		{"attention.head_count", &c.Heads, maxHeads, false},
		{"attention.head_count_kv", &c.KVHeads, maxHeads, true},
	}
	for _, k := range ints {
		key := arch + "." + k.key
		v, err := f.Uint(key)
		if err != nil {
			if k.optional && errors.Is(err, gguf.ErrMissing) {
				continue
			}
			return c, err
		}
		if v == 0 || v > uint64(k.max) {
			return c, fmt.Errorf("engine: %s = %d is out of range [1, %d]", key, v, k.max)
		}
		*k.dst = int(v)
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
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
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("engine: head count %d is not a multiple of the key/value head count %d", c.Heads, c.KVHeads)
	}
	// The head size is attention.key_length when given (a model whose heads
	// were pruned has Heads·HeadDim < Dim), else Dim / Heads.
	if v, err := f.Uint(arch + ".attention.key_length"); err == nil {
		if v == 0 || v > maxDim {
			return c, fmt.Errorf("engine: %s.attention.key_length = %d is out of range [1, %d]", arch, v, maxDim)
		}
		c.HeadDim = int(v)
	} else if !errors.Is(err, gguf.ErrMissing) {
		return c, err
	} else {
		if c.Dim%c.Heads != 0 {
			return c, fmt.Errorf("engine: embedding length %d is not a multiple of the head count %d (and attention.key_length is absent)", c.Dim, c.Heads)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim%2 != 0 {
		return c, fmt.Errorf("engine: head size %d is odd; RoPE needs pairs", c.HeadDim)
	}
	if c.QDim() > maxDim {
		return c, fmt.Errorf("engine: %d heads of %d values are more than %d", c.Heads, c.HeadDim, maxDim)
	}
	for _, key := range []string{".rope.dimension_count", ".attention.value_length"} {
		if v, err := f.Uint(arch + key); err == nil && v != uint64(c.HeadDim) {
			return c, fmt.Errorf("engine: %s%s = %d but the head size is %d; wisp supports only full-width rotary embeddings and equal key and value sizes", arch, key, v, c.HeadDim)
		}
	}
	return c, nil
}

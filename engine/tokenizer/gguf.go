package tokenizer

import (
	"errors"
	"fmt"

	"wisp/engine/gguf"
)

// FromGGUF builds a tokenizer from the tokenizer.ggml.* keys of a GGUF
// file: model, pre, tokens, scores, token_type, merges, bos_token_id,
// eos_token_id, unknown_token_id, padding_token_id, add_bos_token,
// add_eos_token and add_space_prefix. Absent keys take llama.cpp's
// defaults for the model: for "llama" BOS 1, EOS 2, UNK 0, AddBOS and
// AddSpacePrefix; for "gpt2" BOS and EOS 11 (as llama.cpp has it, usually
// overridden by the file), no UNK, AddBOS only for Llama-3-style
// pre-tokenizers. A default id outside the vocabulary becomes -1; a stored
// id outside it is ignored, as llama.cpp does.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	var v Vocab
	var err error
	if v.Model, err = f.String("tokenizer.ggml.model"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Pre, err = f.String("tokenizer.ggml.pre"); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	n := len(v.Tokens)

	// Scores are float32, or int32 in some files.
	if v.Scores, err = f.Float32s("tokenizer.ggml.scores"); err != nil && !errors.Is(err, gguf.ErrMissing) {
		is, ierr := f.Int32s("tokenizer.ggml.scores")
		if ierr != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		v.Scores = make([]float32, len(is))
		for i, x := range is {
			v.Scores[i] = float32(x)
		}
	}
	if v.Scores != nil {
		if len(v.Scores) < n {
			return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
		}
		v.Scores = v.Scores[:n]
	}
	if v.Types, err = f.Int32s("tokenizer.ggml.token_type"); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if v.Types != nil {
		if len(v.Types) < n {
			return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
		}
		v.Types = v.Types[:n]
	}
	if v.Merges, err = f.Strings("tokenizer.ggml.merges"); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}

	v.BOS, v.EOS, v.UNK, v.PAD = -1, -1, -1, -1
	switch v.Model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case "gpt2":
		v.BOS, v.EOS = 11, 11
		switch v.Pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
			v.AddBOS = true
		}
	}
	for _, s := range []struct {
		key string
		id  *int
	}{
		{"tokenizer.ggml.bos_token_id", &v.BOS},
		{"tokenizer.ggml.eos_token_id", &v.EOS},
		{"tokenizer.ggml.unknown_token_id", &v.UNK},
		{"tokenizer.ggml.padding_token_id", &v.PAD},
	} {
		if *s.id >= n {
			*s.id = -1
		}
		u, err := f.Uint(s.key)
		if errors.Is(err, gguf.ErrMissing) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if u < uint64(n) {
			*s.id = int(u)
		}
	}
	for _, s := range []struct {
		key string
		b   *bool
	}{
		{"tokenizer.ggml.add_bos_token", &v.AddBOS},
		{"tokenizer.ggml.add_eos_token", &v.AddEOS},
		{"tokenizer.ggml.add_space_prefix", &v.AddSpacePrefix},
	} {
		b, err := f.Bool(s.key)
		if errors.Is(err, gguf.ErrMissing) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		*s.b = b
	}
	return New(v)
}

// SetGGUF sets the tokenizer.ggml.* keys of b that tokenizer.FromGGUF
// reads back as v: model, pre (when not empty), tokens, scores, token_type,
// merges (when present), bos_token_id, eos_token_id, unknown_token_id and
// padding_token_id (those that are not -1), add_bos_token, add_eos_token
// and add_space_prefix. It fails, setting nothing, when v is nil or
// New rejects it. The slices of v are read when b is written.
func SetGGUF(b *gguf.Builder, v *Vocab) error {
	if b == nil || v == nil {
		return errors.New("tokenizer: SetGGUF needs a builder and a vocabulary")
	}
	if _, err := New(*v); err != nil {
		return fmt.Errorf("tokenizer: vocabulary for GGUF: %w", err)
	}
	b.Set("tokenizer.ggml.model", v.Model)
	if v.Pre != "" {
		b.Set("tokenizer.ggml.pre", v.Pre)
	}
	b.Set("tokenizer.ggml.tokens", v.Tokens)
	if v.Scores != nil {
		b.Set("tokenizer.ggml.scores", v.Scores)
	}
	if v.Types != nil {
		b.Set("tokenizer.ggml.token_type", v.Types)
	}
	if v.Merges != nil {
		b.Set("tokenizer.ggml.merges", v.Merges)
	}
	for _, s := range []struct {
		key string
		id  int
	}{{"bos", v.BOS}, {"eos", v.EOS}, {"unknown", v.UNK}, {"padding", v.PAD}} {
		if s.id >= 0 {
			b.Set("tokenizer.ggml."+s.key+"_token_id", uint32(s.id))
		}
	}
	b.Set("tokenizer.ggml.add_bos_token", v.AddBOS)
	b.Set("tokenizer.ggml.add_eos_token", v.AddEOS)
	b.Set("tokenizer.ggml.add_space_prefix", v.AddSpacePrefix)
	return nil
}

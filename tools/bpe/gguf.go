package bpe

import (
	"errors"
	"fmt"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// SetGGUF sets the tokenizer.ggml.* keys of b that tokenizer.FromGGUF
// reads back as v: model, pre (when not empty), tokens, scores, token_type,
// merges (when present), bos_token_id, eos_token_id, unknown_token_id and
// padding_token_id (those that are not -1), add_bos_token, add_eos_token
// and add_space_prefix. It fails, setting nothing, when v is nil or
// tokenizer.New rejects it. The slices of v are read when b is written.
func SetGGUF(b *gguf.Builder, v *tokenizer.Vocab) error {
	if b == nil || v == nil {
		return errors.New("bpe: SetGGUF needs a builder and a vocabulary")
	}
	if _, err := tokenizer.New(*v); err != nil {
		return fmt.Errorf("bpe: vocabulary for GGUF: %w", err)
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

package tokenizer

import (
	"bytes"
	"strings"
	"testing"

	"wisp/engine/gguf"
)

// ggufFile writes kv (key, value pairs) as a GGUF file and parses it back.
func ggufFile(t *testing.T, kv ...any) *gguf.File {
	t.Helper()
	b := gguf.NewBuilder()
	for i := 0; i < len(kv); i += 2 {
		b.Set(kv[i].(string), kv[i+1])
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFromGGUF(t *testing.T) {
	llamaTokens := []string{"<unk>", "<s>", "</s>", "a", "\u2581a"}
	gptTokens := []string{"a", "b", "ab", "<|endoftext|>"}
	tests := []struct {
		name string
		kv   []any
		want Vocab // Tokens, Scores, Types and Merges are not compared
	}{
		{"llama defaults", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", llamaTokens},
			Vocab{Model: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}},
		{"llama default out of range", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", []string{"<unk>", "<s>"}},
			Vocab{Model: "llama", BOS: 1, EOS: -1, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}},
		{"llama stored", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", llamaTokens,
			"tokenizer.ggml.scores", []float32{0, 0, 0, -1, -2}, "tokenizer.ggml.token_type", []int32{2, 3, 3, 1, 1},
			"tokenizer.ggml.bos_token_id", uint32(2), "tokenizer.ggml.eos_token_id", uint32(1),
			"tokenizer.ggml.unknown_token_id", uint32(99), // out of range: ignored
			"tokenizer.ggml.padding_token_id", uint32(0),
			"tokenizer.ggml.add_bos_token", false, "tokenizer.ggml.add_eos_token", true,
			"tokenizer.ggml.add_space_prefix", false},
			Vocab{Model: "llama", BOS: 2, EOS: 1, UNK: 0, PAD: 0, AddEOS: true}},
		{"int32 scores", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", llamaTokens,
			"tokenizer.ggml.scores", []int32{0, 0, 0, -1, -2, 7}},
			Vocab{Model: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}},
		{"gpt2 defaults", []any{"tokenizer.ggml.model", "gpt2", "tokenizer.ggml.pre", "gpt-2",
			"tokenizer.ggml.tokens", gptTokens, "tokenizer.ggml.merges", []string{"a b"}},
			Vocab{Model: "gpt2", Pre: "gpt-2", BOS: -1, EOS: -1, UNK: -1, PAD: -1}},
		{"gpt2 llama3", []any{"tokenizer.ggml.model", "gpt2", "tokenizer.ggml.pre", "llama-bpe",
			"tokenizer.ggml.tokens", gptTokens, "tokenizer.ggml.merges", []string{"a b"},
			"tokenizer.ggml.bos_token_id", uint32(3), "tokenizer.ggml.eos_token_id", uint32(3)},
			Vocab{Model: "gpt2", Pre: "llama-bpe", BOS: 3, EOS: 3, UNK: -1, PAD: -1, AddBOS: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := FromGGUF(ggufFile(t, tc.kv...))
			if err != nil {
				t.Fatal(err)
			}
			got := *tok.Vocab()
			got.Tokens, got.Scores, got.Types, got.Merges = nil, nil, nil, nil
			if got.Model != tc.want.Model || got.Pre != tc.want.Pre || got.BOS != tc.want.BOS || got.EOS != tc.want.EOS ||
				got.UNK != tc.want.UNK || got.PAD != tc.want.PAD || got.AddBOS != tc.want.AddBOS ||
				got.AddEOS != tc.want.AddEOS || got.AddSpacePrefix != tc.want.AddSpacePrefix {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}

	tok, err := FromGGUF(ggufFile(t, "tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", llamaTokens,
		"tokenizer.ggml.scores", []int32{0, 0, 0, -1, -2, 7}))
	if err != nil {
		t.Fatal(err)
	}
	if s := tok.Vocab().Scores; len(s) != 5 || s[4] != -2 {
		t.Errorf("int32 scores read as %v", s)
	}
}

func TestFromGGUFErrors(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "</s>"}
	tests := []struct {
		name string
		kv   []any
		want string
	}{
		{"no model", []any{"tokenizer.ggml.tokens", tokens}, "tokenizer.ggml.model"},
		{"no tokens", []any{"tokenizer.ggml.model", "llama"}, "tokenizer.ggml.tokens"},
		{"tokens not strings", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", []int32{1}}, "tokenizer.ggml.tokens"},
		{"model not a string", []any{"tokenizer.ggml.model", uint32(1), "tokenizer.ggml.tokens", tokens}, "tokenizer.ggml.model"},
		{"pre not a string", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.pre", true, "tokenizer.ggml.tokens", tokens}, "tokenizer.ggml.pre"},
		{"few scores", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens, "tokenizer.ggml.scores", []float32{0}}, "scores"},
		{"scores not numbers", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens, "tokenizer.ggml.scores", []string{"0", "0", "0"}}, "tokenizer.ggml.scores"},
		{"few types", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens, "tokenizer.ggml.token_type", []int32{1}}, "token types"},
		{"bad id", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens, "tokenizer.ggml.bos_token_id", "one"}, "tokenizer.ggml.bos_token_id"},
		{"bad flag", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens, "tokenizer.ggml.add_bos_token", uint8(1)}, "tokenizer.ggml.add_bos_token"},
		{"gpt2 without merges", []any{"tokenizer.ggml.model", "gpt2", "tokenizer.ggml.pre", "gpt-2", "tokenizer.ggml.tokens", tokens}, "merges"},
		{"unknown model", []any{"tokenizer.ggml.model", "t5", "tokenizer.ggml.tokens", tokens}, "t5"},
		{"add_bos without bos", []any{"tokenizer.ggml.model", "llama", "tokenizer.ggml.tokens", tokens[:1]}, "AddBOS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromGGUF(ggufFile(t, tc.kv...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

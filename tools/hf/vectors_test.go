package hf_test

import (
	"wisp/internal/sharedfiles"

	"cmp"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// TestRealVocabularies exports the real Llama 2 and GPT-2 vocabularies as
// Hugging Face's tokenizer.json holds them, converts them, and requires
// the converted tokenizers to reproduce llama.cpp's own test vectors.
//
// For Llama the merges are derived from the SentencePiece scores the way
// Hugging Face's converter does (every split of a piece into two pieces,
// ordered by the piece's score), so this checks that ranking the merges
// recovers SentencePiece's choices on llama.cpp's hard cases.
func TestRealVocabularies(t *testing.T) {
	for _, c := range []struct {
		file string
		arch string
	}{
		{"ggml-vocab-llama-spm.gguf", "llama"},
		{"ggml-vocab-gpt-2.gguf", "llama"},
	} {
		t.Run(c.file, func(t *testing.T) {
			path, err := sharedfiles.Path("tokenizers/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := gguf.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			v := ref.Vocab()
			tj := exportTokenizer(t, v)
			m, _, rep := convertTokenizer(t, tokShape(c.arch, len(v.Tokens)), tj, nil)
			if rep.Tokenizer != v.Model || (v.Model == "gpt2" && rep.Pre != "gpt-2") || len(rep.Warnings) > 0 {
				t.Errorf("report: %q %q %q", rep.Tokenizer, rep.Pre, rep.Warnings)
			}
			texts, ids := readVectors(t, path)
			for i, text := range texts {
				got, err := m.Tokenizer.Encode(text)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, ids[i]) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, text, got, ids[i])
				}
			}
		})
	}
}

// exportTokenizer writes a GGUF vocabulary as the tokenizer.json Hugging
// Face would have for it.
func exportTokenizer(t *testing.T, v *tokenizer.Vocab) map[string]any {
	voc := make(map[string]int, len(v.Tokens))
	for i, tok := range v.Tokens {
		voc[tok] = i
	}
	var added []any
	for i, typ := range v.Types {
		if typ == tokenizer.TypeControl || typ == tokenizer.TypeUnknown {
			added = append(added, map[string]any{"id": i, "content": v.Tokens[i], "special": true})
		}
	}
	if v.Model == "gpt2" {
		return map[string]any{
			"added_tokens":  added,
			"pre_tokenizer": byteLevel(true),
			"decoder":       map[string]any{"type": "ByteLevel"},
			"model":         map[string]any{"type": "BPE", "vocab": voc, "merges": v.Merges},
		}
	}
	type merge struct {
		l, r  string
		score float32
	}
	var ms []merge
	for id, tok := range v.Tokens {
		if v.Types[id] != tokenizer.TypeNormal {
			continue
		}
		var local []merge
		for k := range tok {
			if k == 0 {
				continue
			}
			_, okL := voc[tok[:k]]
			_, okR := voc[tok[k:]]
			if okL && okR {
				local = append(local, merge{tok[:k], tok[k:], v.Scores[id]})
			}
		}
		slices.SortStableFunc(local, func(a, b merge) int {
			return cmp.Or(cmp.Compare(voc[a.l], voc[b.l]), cmp.Compare(voc[a.r], voc[b.r]))
		})
		ms = append(ms, local...)
	}
	slices.SortStableFunc(ms, func(a, b merge) int { return cmp.Compare(b.score, a.score) })
	merges := make([]string, len(ms))
	for i, m := range ms {
		merges[i] = m.l + " " + m.r
	}
	unk := v.Tokens[v.UNK]
	return map[string]any{
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "\u2581"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "\u2581"},
		}},
		"model": map[string]any{"type": "BPE", "byte_fallback": true, "unk_token": unk, "vocab": voc, "merges": merges},
	}
}

// readVectors reads llama.cpp's test strings and the ids it produces.
func readVectors(t *testing.T, path string) ([]string, [][]int) {
	inp, err := os.ReadFile(path + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path + ".out")
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%d inputs, %d outputs", len(texts), len(lines))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
		ids[i] = []int{}
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = append(ids[i], id)
		}
	}
	return texts, ids
}

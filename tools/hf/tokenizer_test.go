package hf_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/internal/synth"
	"wisp/tools/hf"
)

// tokShape is the model every tokenizer test converts along with its
// tokenizer; only its vocabulary size matters.
func tokShape(arch string, vocab int) shape {
	return shape{arch: arch, dim: 8, hidden: 8, layers: 1, heads: 2, kv: 1, vocab: vocab, ctx: 32, theta: 10000, eps: 1e-6}
}

// convertTokenizer converts a tiny model with the given tokenizer files and
// returns the loaded model, the parsed file and the report.
func convertTokenizer(t *testing.T, s shape, tok, tokConfig map[string]any) (*engine.Model, *gguf.File, hf.Report) {
	t.Helper()
	dir := t.TempDir()
	if err := newModel(s, 1, roundNone).write(dir, folder{dtype: "F32", tokenizer: tok, tokConfig: tokConfig}); err != nil {
		t.Fatal(err)
	}
	data, rep := convert(t, dir, hf.Options{Type: gguf.F32})
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return m, f, rep
}

// spmTokens is a hand-built SentencePiece-style vocabulary: <unk>, <s>,
// </s>, 256 byte tokens (ids 3–258), then these.
var spmTokens = []string{
	"\u2581", "h", "e", "l", "o", "w", "r", "d", "a", "b", "c", // 259–269
	"ll", "\u2581h", "ell", "\u2581hell", "\u2581hello", // 270–274
	"\u2581w", "or", "\u2581wor", "ld", "\u2581world", // 275–279
	"bc", "ab", // 280, 281
}

var spmMerges = []string{
	"l l", "\u2581 h", "e ll", "\u2581h ell", "\u2581hell o",
	"\u2581 w", "o r", "\u2581w or", "l d", "\u2581wor ld",
	"b c", "a b", // "bc" before "ab": "abc" is a + bc
}

func spmTokenizerJSON() map[string]any {
	tj := llamaTokenizerJSON(259) // specials and byte tokens
	model := tj["model"].(map[string]any)
	voc := model["vocab"].(map[string]int)
	for i, tok := range spmTokens {
		voc[tok] = 259 + i
	}
	model["merges"] = spmMerges
	tj["added_tokens"] = append(tj["added_tokens"].([]any),
		map[string]any{"id": 282, "content": "<tool>", "special": false},
		map[string]any{"id": 283, "content": "<|im_end|>", "special": false},
	)
	return tj
}

func TestLlamaTokenizer(t *testing.T) {
	m, f, rep := convertTokenizer(t, tokShape("llama", 290), spmTokenizerJSON(), map[string]any{
		"add_bos_token": true, "add_eos_token": false,
		"bos_token": "<s>", "eos_token": map[string]any{"content": "</s>"}, "unk_token": "<unk>",
		"chat_template": "{{ messages }}",
	})
	if rep.Tokenizer != "llama" || rep.Pre != "default" || rep.Vocab != 290 || len(rep.Warnings) != 0 {
		t.Errorf("report: %+v", rep)
	}
	tok := m.Tokenizer
	for _, c := range []struct {
		text string
		want []int
	}{
		{"hello world", []int{274, 279}},
		{"abc", []int{259, 267, 280}},                // merge order from the merges list, not left to right
		{"hé", []int{271, 3 + 0xC3, 3 + 0xA9}},       // é by byte fallback
		{"a<tool>b", []int{259, 267, 282, 259, 268}}, // user-defined token matched in the text (llama.cpp prefixes the next fragment too)
		{"<|im_end|>", []int{259, 3 + '<', 3 + '|'}}, // control tokens are text without parse_special
	} {
		got, err := tok.Encode(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if c.text == "<|im_end|>" {
			got = got[:3]
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	if got, _ := tok.EncodeSpecial("<|im_end|>"); !slices.Equal(got, []int{283}) {
		t.Errorf("EncodeSpecial(<|im_end|>) = %v, want [283]", got)
	}
	if got := tok.Decode([]int{1, 274, 279, 3 + 0x0A}); got != " hello world\n" && got != "hello world\n" {
		t.Errorf("Decode = %q", got)
	}

	types, _ := f.Int32s("tokenizer.ggml.token_type")
	for id, want := range map[int]int32{0: 2, 1: 3, 2: 3, 3: 6, 258: 6, 259: 1, 274: 1, 282: 4, 283: 3, 284: 5, 289: 5} {
		if types[id] != want {
			t.Errorf("token %d type %d, want %d", id, types[id], want)
		}
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	if toks[284] != "[PAD284]" || toks[282] != "<tool>" {
		t.Errorf("tokens 282, 284 = %q, %q", toks[282], toks[284])
	}
	scores, _ := f.Float32s("tokenizer.ggml.scores")
	if scores[270] != -1 || scores[279] != -10 || scores[280] != -11 || scores[281] != -12 || scores[260] != -13 {
		t.Errorf("scores of ll, ▁world, bc, ab, h = %v %v %v %v %v, want -1 -10 -11 -12 -13", scores[270], scores[279], scores[280], scores[281], scores[260])
	}
	for key, want := range map[string]any{
		"tokenizer.ggml.model":            "llama",
		"tokenizer.ggml.bos_token_id":     uint32(1),
		"tokenizer.ggml.eos_token_id":     uint32(2),
		"tokenizer.ggml.unknown_token_id": uint32(0),
		"tokenizer.ggml.add_bos_token":    true,
		"tokenizer.ggml.add_eos_token":    false,
		"tokenizer.ggml.add_space_prefix": true,
		"tokenizer.chat_template":         "{{ messages }}",
	} {
		if got, ok := f.Value(key); !ok || got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
}

// bytesToUnicode is GPT-2's map from bytes to the characters byte-level
// vocabularies spell them with.
func bytesToUnicode() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// bpeTokenizerJSON returns a byte-level tokenizer.json: the 256 byte
// characters as ids 0–255 (so byte b is id b), merged tokens from 256,
// and two added tokens after them.
func bpeTokenizerJSON(pre any, pairs bool) map[string]any {
	b2u := bytesToUnicode()
	voc := map[string]int{}
	for b := range 256 {
		voc[string(b2u[b])] = b
	}
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "1 2"}
	for i, m := range merges {
		voc[strings.ReplaceAll(m, " ", "")] = 256 + i
	}
	var ms any = merges
	if pairs {
		var ps [][]string
		for _, m := range merges {
			ps = append(ps, strings.Split(m, " "))
		}
		ms = ps
	}
	return map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 266, "content": "<|endoftext|>", "special": true},
			map[string]any{"id": 267, "content": "<tool>", "special": false},
		},
		"normalizer":     nil,
		"pre_tokenizer":  pre,
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": false},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model":          map[string]any{"type": "BPE", "byte_fallback": false, "vocab": voc, "merges": ms},
	}
}

func byteLevel(regex bool) map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex}
}

func split(regex string) map[string]any {
	return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated", "invert": false}
}

func TestGPT2Tokenizer(t *testing.T) {
	const (
		llama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
		qwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	)
	seq := func(steps ...any) map[string]any { return map[string]any{"type": "Sequence", "pretokenizers": steps} }
	// "hello world 123": hello=259, Ġworld=264, Ġ=32, 12=265, digits 49–51.
	for _, c := range []struct {
		name    string
		arch    string
		pre     any
		pairs   bool
		wantPre string
		want    []int
		warn    bool
	}{
		{"gpt2", "llama", byteLevel(true), false, "gpt-2", []int{259, 264, 32, 265, 51}, false},
		{"smollm", "llama", seq(map[string]any{"type": "Digits", "individual_digits": true}, byteLevel(true)), true, "smollm", []int{259, 264, 32, 49, 50, 51}, false},
		{"llama3", "llama", seq(split(llama3), byteLevel(false)), true, "llama-bpe", []int{259, 264, 32, 265, 51}, false},
		{"qwen2", "qwen2", seq(split(qwen2), byteLevel(false)), false, "qwen2", []int{259, 264, 32, 49, 50, 51}, false},
		{"unknown/qwen2", "qwen2", map[string]any{"type": "Whitespace"}, true, "qwen2", []int{259, 264, 32, 49, 50, 51}, true},
		{"unknown/llama", "llama", seq(split(`\w+`), byteLevel(false)), false, "gpt-2", []int{259, 264, 32, 265, 51}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, f, rep := convertTokenizer(t, tokShape(c.arch, 270), bpeTokenizerJSON(c.pre, c.pairs), map[string]any{
				"bos_token": nil, "eos_token": "<|endoftext|>", "add_bos_token": false,
			})
			if rep.Tokenizer != "gpt2" || rep.Pre != c.wantPre || (len(rep.Warnings) > 0) != c.warn {
				t.Errorf("report: tokenizer %q, pre %q, warnings %q", rep.Tokenizer, rep.Pre, rep.Warnings)
			}
			tok := m.Tokenizer
			got, err := tok.Encode("hello world 123")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("Encode = %v, want %v", got, c.want)
			}
			if got, _ := tok.Encode("a<tool>"); !slices.Equal(got, []int{'a', 267}) {
				t.Errorf("Encode(a<tool>) = %v, want [97 267]", got)
			}
			if got, _ := tok.EncodeSpecial("hi<|endoftext|>"); !slices.Equal(got, []int{'h', 'i', 266}) {
				t.Errorf("EncodeSpecial = %v, want [104 105 266]", got)
			}
			if got := tok.Decode([]int{259, 264, 32, 265, 51}); got != "hello world 123" {
				t.Errorf("Decode = %q", got)
			}
			if tok.BOS() != 1 || tok.EOS() != 266 || tok.AddBOS() {
				t.Errorf("BOS %d, EOS %d, AddBOS %t; want 1 (config.json), 266 (tokenizer_config.json), false", tok.BOS(), tok.EOS(), tok.AddBOS())
			}
			merges, _ := f.Strings("tokenizer.ggml.merges")
			if len(merges) != 10 || merges[4] != "Ġ w" {
				t.Errorf("merges %q", merges)
			}
			types, _ := f.Int32s("tokenizer.ggml.token_type")
			if types[0] != tokenizer.TypeNormal || types[266] != tokenizer.TypeControl || types[267] != tokenizer.TypeUserDefined || types[268] != tokenizer.TypeUnused {
				t.Errorf("types of 0, 266, 267, 268: %v", []int32{types[0], types[266], types[267], types[268]})
			}
			if _, ok := f.Value("tokenizer.ggml.scores"); ok {
				t.Error("gpt2 vocabulary has scores")
			}
		})
	}
}

// TestTokenizerConfig covers the ways tokenizer_config.json and the
// post-processor set flags, special tokens and chat templates.
func TestTokenizerConfig(t *testing.T) {
	metaspace := func(scheme string) map[string]any {
		tj := spmTokenizerJSON()
		tj["normalizer"] = nil
		tj["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": false}
		return tj
	}
	noTemplate := func() map[string]any {
		tj := spmTokenizerJSON()
		tj["post_processor"] = nil
		return tj
	}
	for _, c := range []struct {
		name      string
		tok       map[string]any
		tokConfig map[string]any
		want      map[string]any // key → value; nil value: absent
	}{
		{"template adds bos", spmTokenizerJSON(), nil, map[string]any{
			"tokenizer.ggml.add_bos_token": true, "tokenizer.ggml.add_eos_token": nil, "tokenizer.chat_template": nil,
		}},
		{"no template, no config", noTemplate(), nil, map[string]any{
			"tokenizer.ggml.add_bos_token": nil, "tokenizer.ggml.add_eos_token": nil,
		}},
		{"config overrides template", spmTokenizerJSON(), map[string]any{"add_bos_token": false, "add_eos_token": true, "eos_token": "</s>"}, map[string]any{
			"tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.add_eos_token": true,
		}},
		{"metaspace first", metaspace("first"), nil, map[string]any{"tokenizer.ggml.add_space_prefix": true}},
		{"metaspace never", metaspace("never"), nil, map[string]any{"tokenizer.ggml.add_space_prefix": false}},
		{"add_prefix_space wins", spmTokenizerJSON(), map[string]any{"add_prefix_space": false}, map[string]any{"tokenizer.ggml.add_space_prefix": false}},
		{"special tokens from config", spmTokenizerJSON(), map[string]any{"bos_token": "</s>", "pad_token": "<unk>", "unk_token": "<s>"}, map[string]any{
			"tokenizer.ggml.bos_token_id": uint32(2), "tokenizer.ggml.eos_token_id": uint32(2),
			"tokenizer.ggml.padding_token_id": uint32(0), "tokenizer.ggml.unknown_token_id": uint32(1),
		}},
		{"named templates", spmTokenizerJSON(), map[string]any{"chat_template": []any{
			map[string]any{"name": "default", "template": "D"}, map[string]any{"name": "tool_use", "template": "T"},
		}}, map[string]any{
			"tokenizer.chat_template": "D", "tokenizer.chat_template.tool_use": "T", "tokenizer.chat_templates": []string{"tool_use"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, f, _ := convertTokenizer(t, tokShape("llama", 290), c.tok, c.tokConfig)
			for key, want := range c.want {
				got, ok := f.Value(key)
				switch {
				case want == nil && ok:
					t.Errorf("%s = %v, want it absent", key, got)
				case want != nil && (!ok || fmt.Sprint(got) != fmt.Sprint(want)):
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
		})
	}
}

// TestMergeRanksMatchScores checks the scores Convert derives from merges
// against a SentencePiece vocabulary's own: synth's vocabulary (scores
// falling with the id, as SentencePiece's BPE models have them) exported
// the way Hugging Face converts one, with a merge for every way to split
// each piece in two, ordered by the merged piece's score. Both tokenizers
// must encode text alike.
func TestMergeRanksMatchScores(t *testing.T) {
	const vocab = 2000
	buf, err := synth.Bytes(synth.Shape{Arch: "llama", Dim: 8, HiddenDim: 8, Layers: 1, Heads: 2, KVHeads: 1, Vocab: vocab, ContextLen: 32, RopeBase: 10000}, synth.Options{Type: gguf.F32})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := engine.Load(buf)
	if err != nil {
		t.Fatal(err)
	}
	toks := orig.Tokenizer.Vocab().Tokens

	tj := llamaTokenizerJSON(259)
	model := tj["model"].(map[string]any)
	voc := model["vocab"].(map[string]int)
	for id, tok := range toks {
		voc[tok] = id
	}
	merges := []string{}
	for _, tok := range toks[259:] {
		r := []rune(tok)
		for k := 1; k < len(r); k++ {
			if _, ok := voc[string(r[:k])]; ok {
				if _, ok := voc[string(r[k:])]; ok {
					merges = append(merges, string(r[:k])+" "+string(r[k:]))
				}
			}
		}
	}
	model["merges"] = merges
	conv, _, _ := convertTokenizer(t, tokShape("llama", vocab), tj, nil)

	rng := rand.New(rand.NewPCG(1, 2))
	letters := []rune("etaoinshrdlucmfwypvbgk  ")
	for range 200 {
		r := make([]rune, 1+rng.IntN(30))
		for i := range r {
			r[i] = letters[rng.IntN(len(letters))]
		}
		text := string(r)
		want, err1 := orig.Tokenizer.Encode(text)
		got, err2 := conv.Tokenizer.Encode(text)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Encode(%q): converted %v, SentencePiece scores %v", text, got, want)
		}
	}
}

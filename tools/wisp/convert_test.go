package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"wisp/internal/llama2c"
	"wisp/internal/sharedfiles"
)

// writeHF writes stories260K as a Hugging Face folder: F32 safetensors with
// the query and key rows in Hugging Face's rotate-half order (the inverse of
// the permutation llama.cpp's converter applies), config.json and a
// byte-fallback BPE tokenizer.json.
func writeHF(t *testing.T, dir string) {
	t.Helper()
	bin, err := sharedfiles.Read("models/stories260K.bin")
	if err != nil {
		t.Fatal(err)
	}
	tokBin, err := sharedfiles.Read("models/tok512.bin")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := llama2c.ReadCheckpoint(bin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := llama2c.ReadTokenizer(tokBin, ck.VocabSize)
	if err != nil {
		t.Fatal(err)
	}
	hd := ck.Dim / ck.Heads
	// unpermute reorders rows from adjacent pairs (2i, 2i+1) to halves
	// (i, i+hd/2) within each head.
	unpermute := func(w []float32, heads, cols int) []float32 {
		out := make([]float32, len(w))
		for h := range heads {
			for i := range hd / 2 {
				for j := range 2 {
					src := (h*hd + 2*i + j) * cols
					dst := (h*hd + j*hd/2 + i) * cols
					copy(out[dst:dst+cols], w[src:src+cols])
				}
			}
		}
		return out
	}
	type tensor struct {
		shape []int
		data  []float32
	}
	ts := map[string]tensor{
		"model.embed_tokens.weight": {[]int{ck.VocabSize, ck.Dim}, ck.Embedding},
		"model.norm.weight":         {[]int{ck.Dim}, ck.FinalNorm},
	}
	kv := ck.KVHeads * hd
	for l := range ck.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts[p+"input_layernorm.weight"] = tensor{[]int{ck.Dim}, ck.AttnNorm[l]}
		ts[p+"self_attn.q_proj.weight"] = tensor{[]int{ck.Dim, ck.Dim}, unpermute(ck.Wq[l], ck.Heads, ck.Dim)}
		ts[p+"self_attn.k_proj.weight"] = tensor{[]int{kv, ck.Dim}, unpermute(ck.Wk[l], ck.KVHeads, ck.Dim)}
		ts[p+"self_attn.v_proj.weight"] = tensor{[]int{kv, ck.Dim}, ck.Wv[l]}
		ts[p+"self_attn.o_proj.weight"] = tensor{[]int{ck.Dim, ck.Dim}, ck.Wo[l]}
		ts[p+"post_attention_layernorm.weight"] = tensor{[]int{ck.Dim}, ck.FFNNorm[l]}
		ts[p+"mlp.gate_proj.weight"] = tensor{[]int{ck.HiddenDim, ck.Dim}, ck.W1[l]}
		ts[p+"mlp.down_proj.weight"] = tensor{[]int{ck.Dim, ck.HiddenDim}, ck.W2[l]}
		ts[p+"mlp.up_proj.weight"] = tensor{[]int{ck.HiddenDim, ck.Dim}, ck.W3[l]}
	}
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var data []byte
	for _, n := range names {
		tn := ts[n]
		begin := len(data)
		for _, x := range tn.data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
		}
		header[n] = map[string]any{"dtype": "F32", "shape": tn.shape, "data_offsets": []int{begin, len(data)}}
	}
	hj, _ := json.Marshal(header)
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	st = append(append(st, hj...), data...)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.safetensors", st)
	cfg, _ := json.Marshal(map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": ck.Dim, "intermediate_size": ck.HiddenDim, "num_hidden_layers": ck.Layers,
		"num_attention_heads": ck.Heads, "num_key_value_heads": ck.KVHeads, "vocab_size": ck.VocabSize,
		"max_position_embeddings": ck.SeqLen, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"tie_word_embeddings": true, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
	})
	write("config.json", cfg)
	vocab := map[string]int{}
	for i, tok := range v.Tokens {
		switch i {
		case 0:
			tok = "<unk>"
		case 1:
			tok = "<s>"
		case 2:
			tok = "</s>"
		default:
			tok = strings.ReplaceAll(tok, " ", "\u2581")
		}
		vocab[tok] = i
	}
	tj, _ := json.Marshal(map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 0, "content": "<unk>", "special": true},
			map[string]any{"id": 1, "content": "<s>", "special": true},
			map[string]any{"id": 2, "content": "</s>", "special": true},
		},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "\u2581"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "\u2581"},
		}},
		"pre_tokenizer": nil,
		"model":         map[string]any{"type": "BPE", "byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>", "vocab": vocab, "merges": []string{}},
	})
	write("tokenizer.json", tj)
}

// TestConvertHuggingFace converts stories260K from a Hugging Face folder and
// requires llama2.c's known-good text: it proves the query/key permutation
// on a real model.
func TestConvertHuggingFace(t *testing.T) {
	want, err := sharedfiles.KnownGood()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hf := filepath.Join(dir, "stories260K-hf")
	os.Mkdir(hf, 0o755)
	writeHF(t, hf)
	for _, typ := range []string{"f32", "f16"} {
		out := filepath.Join(dir, typ+".gguf")
		code, _, stderr := wisp(t, "convert", "--type", typ, "-o", out, hf)
		if code != 0 {
			t.Fatalf("convert --type %s: %s", typ, stderr)
		}
		if !strings.Contains(stderr, "llama") {
			t.Errorf("no report: %q", stderr)
		}
		code, stdout, stderr := wisp(t, "run", "-m", out, "-t", "0", "-n", "200", "-q")
		if code != 0 {
			t.Fatal(stderr)
		}
		if stdout != want {
			t.Errorf("%s from Hugging Face:\ngot  %q\nwant %q", typ, stdout, want)
		}
	}
}

// TestConvertGGUFTypes converts a GGUF between F32 and F16.
func TestConvertGGUFTypes(t *testing.T) {
	dir := t.TempDir()
	f32, f16, back := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf"), filepath.Join(dir, "c.gguf")
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	if code, _, stderr := wisp(t, "convert", "--type", "f32", "-o", f32, "-z", tok, bin); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := wisp(t, "convert", "--type", "f16", "-o", f16, f32); code != 0 || !strings.Contains(stderr, "flushed") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, _, stderr := wisp(t, "convert", "--type", "f32", "-o", back, f16); code != 0 {
		t.Fatal(stderr)
	}
	a, _ := os.Stat(f32)
	b, _ := os.Stat(f16)
	c, _ := os.Stat(back)
	if !(b.Size() < a.Size()*6/10 && c.Size() == a.Size()) {
		t.Errorf("sizes: f32 %d, f16 %d, back to f32 %d", a.Size(), b.Size(), c.Size())
	}
}

// TestConvertQuantized quantizes stories260K from a llama2.c checkpoint and
// from GGUF files of each kind, as a user would: every file loads and
// generates, the report names the types stored and the fallbacks, a
// quantized file converts on (dequantized first, and said so), and an
// unknown type is refused with the list of types.
func TestConvertQuantized(t *testing.T) {
	dir := t.TempDir()
	bin, tok := shared(t, "models/stories260K.bin"), shared(t, "models/tok512.bin")
	path := func(name string) string { return filepath.Join(dir, name+".gguf") }
	if code, _, stderr := wisp(t, "convert", "--type", "q8_0", "-o", path("q8_0"), "-z", tok, bin); code != 0 ||
		!strings.Contains(stderr, "Q8_0") || !strings.Contains(stderr, "fallback: 5 tensors Q8_0 → F16 (rows of 172") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, c := range []struct{ from, to, want string }{
		{"q8_0", "q4_k_m", "dequantized: 28 input tensors were Q8_0"},
		{"q8_0", "bf16", "BF16"},
		{"q4_k_m", "f16", "dequantized"},
	} {
		code, _, stderr := wisp(t, "convert", "--type", c.to, "-o", path(c.to), path(c.from))
		if code != 0 || !strings.Contains(stderr, c.want) {
			t.Fatalf("%s → %s: exit %d: %s", c.from, c.to, code, stderr)
		}
		code, stdout, stderr := wisp(t, "run", "-m", path(c.to), "-n", "8", "-t", "0", "-q", "-p", "Once upon")
		if code != 0 || len(stdout) < len("Once upon")+4 {
			t.Fatalf("run %s: exit %d: %q %s", c.to, code, stdout, stderr)
		}
	}
	a, _ := os.Stat(path("q8_0"))
	b, _ := os.Stat(path("f16"))
	if a.Size() >= b.Size() {
		t.Errorf("q8_0 is %d bytes, f16 %d", a.Size(), b.Size())
	}
	code, _, stderr := wisp(t, "convert", "--type", "iq4_nl", "-o", path("x"), path("q8_0"))
	if code == 0 || !strings.Contains(stderr, "q4_k_m") {
		t.Errorf("iq4_nl: exit %d: %s", code, stderr)
	}
}

package hf_test

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/tools/hf"
)

var errShape = shape{arch: "llama", dim: 8, hidden: 12, layers: 1, heads: 2, kv: 1, vocab: 300, ctx: 32, theta: 10000, eps: 1e-5}

// tensorsOf returns the model's tensors as a checkpoint of dtype holds
// them, in name order.
func (m *model) tensorsOf(dtype string) []stTensor {
	var ts []stTensor
	for _, p := range m.params() {
		shape := []int64{int64(p.cols)}
		if p.rows > 0 {
			shape = []int64{int64(p.rows), int64(p.cols)}
		}
		ts = append(ts, stTensor{p.hf, dtype, shape, encode(m.w[p.hf], dtype)})
	}
	slices.SortFunc(ts, func(a, b stTensor) int { return cmpString(a.name, b.name) })
	return ts
}

// rawSafetensors returns a safetensors file of the given header and data.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	edit(v)
	if err := writeJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMalformed checks that every kind of bad checkpoint gives an error
// naming the file, the tensor where there is one, and the problem.
func TestMalformed(t *testing.T) {
	const (
		single = "model.safetensors"
		shard1 = "model-00001-of-00002.safetensors"
		shard2 = "model-00002-of-00002.safetensors"
		index  = "model.safetensors.index.json"
	)
	// rewrite replaces model.safetensors by the model's tensors after edit.
	rewrite := func(edit func([]stTensor) []stTensor) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, m *model) {
			writeFile(t, filepath.Join(dir, single), safetensorsBytes(edit(m.tensorsOf("F32"))))
		}
	}
	find := func(ts []stTensor, suffix string) *stTensor {
		for i := range ts {
			if strings.HasSuffix(ts[i].name, suffix) {
				return &ts[i]
			}
		}
		panic("no tensor " + suffix)
	}
	raw := func(header string, data []byte) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, _ *model) {
			writeFile(t, filepath.Join(dir, single), rawSafetensors(header, data))
		}
	}
	config := func(edit func(map[string]any)) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, _ *model) { editJSON(t, filepath.Join(dir, "config.json"), edit) }
	}
	tok := func(edit func(map[string]any)) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, _ *model) { editJSON(t, filepath.Join(dir, "tokenizer.json"), edit) }
	}
	vocabOf := func(v map[string]any) map[string]any { return v["model"].(map[string]any)["vocab"].(map[string]any) }
	weightMap := func(edit func(map[string]any)) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, _ *model) {
			editJSON(t, filepath.Join(dir, index), func(v map[string]any) { edit(v["weight_map"].(map[string]any)) })
		}
	}
	remove := func(name string) func(*testing.T, string, *model) {
		return func(t *testing.T, dir string, _ *model) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	norm := make([]byte, 64) // room for two 8-float norms

	for _, c := range []struct {
		name   string
		shards int
		mutate func(*testing.T, string, *model)
		opt    hf.Options
		want   []string
	}{
		// Tensors.
		{"missing tensor", 0, rewrite(func(ts []stTensor) []stTensor {
			return slices.DeleteFunc(ts, func(t stTensor) bool { return t.name == "model.layers.0.mlp.up_proj.weight" })
		}), hf.Options{}, []string{single, `"model.layers.0.mlp.up_proj.weight"`, "missing"}},
		{"shape mismatch", 0, rewrite(func(ts []stTensor) []stTensor {
			k := find(ts, "k_proj.weight")
			k.shape, k.data = []int64{8, 8}, make([]byte, 4*64)
			return ts
		}), hf.Options{}, []string{single, `"model.layers.0.self_attn.k_proj.weight"`, "shape [8 8]", "[4 8]"}},
		{"transposed", 0, rewrite(func(ts []stTensor) []stTensor {
			find(ts, "gate_proj.weight").shape = []int64{8, 12}
			return ts
		}), hf.Options{}, []string{single, "gate_proj.weight", "shape"}},
		{"vector as matrix", 0, rewrite(func(ts []stTensor) []stTensor {
			find(ts, "model.norm.weight").shape = []int64{1, 8}
			return ts
		}), hf.Options{}, []string{single, "model.norm.weight", "shape"}},
		{"unknown dtype", 0, rewrite(func(ts []stTensor) []stTensor {
			find(ts, "o_proj.weight").dtype = "F12"
			return ts
		}), hf.Options{}, []string{single, "o_proj.weight", `unknown dtype "F12"`}},
		{"unsupported dtype", 0, rewrite(func(ts []stTensor) []stTensor {
			u := find(ts, "up_proj.weight")
			u.dtype, u.data = "I8", u.data[:len(u.data)/4]
			return ts
		}), hf.Options{}, []string{single, "up_proj.weight", "dtype I8 is not supported"}},
		{"unexpected tensor", 0, rewrite(func(ts []stTensor) []stTensor {
			return append(ts, stTensor{"model.layers.0.self_attn.q_proj.bias", "F32", []int64{8}, make([]byte, 32)})
		}), hf.Options{}, []string{single, "q_proj.bias", "not part of"}},
		{"rope table is ignored", 0, rewrite(func(ts []stTensor) []stTensor {
			return append(ts, stTensor{"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", []int64{2}, make([]byte, 8)})
		}), hf.Options{}, nil},

		// The safetensors container.
		{"truncated header", 0, func(t *testing.T, dir string, _ *model) {
			writeFile(t, filepath.Join(dir, single), []byte{1, 2, 3, 4, 5})
		}, hf.Options{}, []string{single, "truncated header"}},
		{"header past end", 0, func(t *testing.T, dir string, _ *model) {
			b := rawSafetensors(`{}`, nil)
			binary.LittleEndian.PutUint64(b, 1000)
			writeFile(t, filepath.Join(dir, single), b)
		}, hf.Options{}, []string{single, "truncated header", "1000"}},
		{"absurd header length", 0, func(t *testing.T, dir string, _ *model) {
			b := rawSafetensors(`{}`, nil)
			binary.LittleEndian.PutUint64(b, 1<<40)
			writeFile(t, filepath.Join(dir, single), b)
		}, hf.Options{}, []string{single, "absurd"}},
		{"truncated data", 0, func(t *testing.T, dir string, m *model) {
			ts := m.tensorsOf("F32")
			b := safetensorsBytes(ts)
			writeFile(t, filepath.Join(dir, single), b[:len(b)-10])
		}, hf.Options{}, []string{single, "past the end", "truncated"}},
		{"overlap", 0, raw(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},"b":{"dtype":"F32","shape":[8],"data_offsets":[28,60]}}`, norm),
			hf.Options{}, []string{single, `"a"`, `"b"`, "overlap"}},
		{"reversed offsets", 0, raw(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[32,0]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "end before"}},
		{"offsets disagree with shape", 0, raw(`{"model.norm.weight":{"dtype":"F32","shape":[8],"data_offsets":[0,28]}}`, norm),
			hf.Options{}, []string{single, "model.norm.weight", "hold 28 bytes", "takes 32"}},
		{"negative shape", 0, raw(`{"a":{"dtype":"F32","shape":[-8],"data_offsets":[0,0]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "negative"}},
		{"huge shape", 0, raw(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "absurdly large"}},
		{"missing dtype", 0, raw(`{"a":{"shape":[8],"data_offsets":[0,32]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "no dtype"}},
		{"three offsets", 0, raw(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32,64]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "data_offsets"}},
		{"duplicate name", 0, raw(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},"a":{"dtype":"F32","shape":[8],"data_offsets":[32,64]}}`, norm),
			hf.Options{}, []string{single, `"a"`, "twice"}},
		{"header not JSON", 0, raw(`[1, 2]`, norm), hf.Options{}, []string{single, "not a JSON object"}},
		{"header is broken JSON", 0, raw(`{"a": {"dtype": `, norm), hf.Options{}, []string{single, "header"}},
		{"header has trailing data", 0, raw(`{} {}`, norm), hf.Options{}, []string{single, "after its JSON object"}},

		// Shards.
		{"index lacks a tensor", 2, weightMap(func(w map[string]any) { delete(w, "model.norm.weight") }),
			hf.Options{}, []string{index, `"model.norm.weight"`, "weight_map"}},
		{"index names a missing shard", 2, remove(shard2), hf.Options{}, []string{shard2}},
		{"index points to the wrong shard", 2, weightMap(func(w map[string]any) { w["model.norm.weight"] = shard1 }),
			hf.Options{}, []string{shard1, `"model.norm.weight"`, "missing"}},
		{"shard holds an unindexed tensor", 2, func(t *testing.T, dir string, _ *model) {
			path := filepath.Join(dir, shard2)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := hf.ParseSafetensors(b)
			if err != nil {
				t.Fatal(err)
			}
			var ts []stTensor
			for _, p := range parsed {
				ts = append(ts, stTensor{p.Name, p.DType, p.Shape, p.Data})
			}
			ts = append(ts, stTensor{"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", []int64{2}, make([]byte, 8)})
			writeFile(t, path, safetensorsBytes(ts))
		}, hf.Options{}, []string{shard2, "rotary_emb.inv_freq", "not in model.safetensors.index.json"}},
		{"shard outside the folder", 2, weightMap(func(w map[string]any) { w["model.norm.weight"] = "../" + shard1 }),
			hf.Options{}, []string{index, "not a file name"}},
		{"index without weight_map", 2, func(t *testing.T, dir string, _ *model) {
			writeFile(t, filepath.Join(dir, index), []byte(`{"metadata": {}}`))
		}, hf.Options{}, []string{index, "weight_map"}},
		{"no weights", 0, remove(single), hf.Options{}, []string{single, index}},

		// config.json.
		{"no config", 0, remove("config.json"), hf.Options{}, []string{"config.json"}},
		{"config not JSON", 0, func(t *testing.T, dir string, _ *model) {
			writeFile(t, filepath.Join(dir, "config.json"), []byte("{"))
		}, hf.Options{}, []string{"config.json"}},
		{"config lacks hidden_size", 0, config(func(c map[string]any) { delete(c, "hidden_size") }),
			hf.Options{}, []string{"config.json", "hidden_size", "missing"}},
		{"config lacks rms_norm_eps", 0, config(func(c map[string]any) { delete(c, "rms_norm_eps") }),
			hf.Options{}, []string{"config.json", "rms_norm_eps", "missing"}},
		{"config lacks architectures", 0, config(func(c map[string]any) { delete(c, "architectures") }),
			hf.Options{}, []string{"config.json", "architectures"}},
		{"config has a fraction", 0, config(func(c map[string]any) { c["num_hidden_layers"] = 1.5 }),
			hf.Options{}, []string{"config.json", "num_hidden_layers"}},
		{"config has a string", 0, config(func(c map[string]any) { c["intermediate_size"] = "12" }),
			hf.Options{}, []string{"config.json", "intermediate_size"}},
		{"absurd vocabulary", 0, config(func(c map[string]any) { c["vocab_size"] = 1 << 40 }),
			hf.Options{}, []string{"config.json", "vocab_size"}},
		{"uneven heads", 0, config(func(c map[string]any) { c["num_attention_heads"] = 3 }),
			hf.Options{}, []string{"config.json", "num_attention_heads 3"}},
		{"rope scaling", 0, config(func(c map[string]any) {
			c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0}
		}), hf.Options{}, []string{"config.json", "rope_scaling", "llama3"}},
		{"rope parameters", 0, config(func(c map[string]any) {
			c["rope_parameters"] = map[string]any{"rope_type": "yarn", "rope_theta": 1e4}
		}), hf.Options{}, []string{"config.json", "rope_parameters", "yarn"}},
		{"other architecture", 0, config(func(c map[string]any) { c["architectures"] = []string{"GPT2LMHeadModel"} }),
			hf.Options{}, []string{"config.json", "GPT2LMHeadModel", "LlamaForCausalLM"}},
		{"odd head_dim", 0, config(func(c map[string]any) { c["head_dim"] = 64 }),
			hf.Options{}, []string{"config.json", "head_dim"}},
		{"attention bias", 0, config(func(c map[string]any) { c["attention_bias"] = true }),
			hf.Options{}, []string{"config.json", "attention_bias"}},
		{"sliding window", 0, config(func(c map[string]any) { c["use_sliding_window"] = true }),
			hf.Options{}, []string{"config.json", "use_sliding_window"}},
		{"gelu", 0, config(func(c map[string]any) { c["hidden_act"] = "gelu" }),
			hf.Options{}, []string{"config.json", "gelu"}},
		{"quantized", 0, config(func(c map[string]any) { c["quantization_config"] = map[string]any{"bits": 4} }),
			hf.Options{}, []string{"config.json", "quantization_config"}},

		// The tokenizer.
		{"no tokenizer", 0, remove("tokenizer.json"), hf.Options{}, []string{"tokenizer.json"}},
		{"unigram", 0, tok(func(v map[string]any) { v["model"].(map[string]any)["type"] = "Unigram" }),
			hf.Options{}, []string{"tokenizer.json", `"Unigram"`}},
		{"token beyond vocab_size", 0, tok(func(v map[string]any) { vocabOf(v)["zz"] = 300 }),
			hf.Options{}, []string{"tokenizer.json", `"zz"`, "vocab_size 300"}},
		{"two tokens one id", 0, tok(func(v map[string]any) { vocabOf(v)["zz"] = 5 }),
			hf.Options{}, []string{"tokenizer.json", `"zz"`, "same id 5"}},
		{"merge of unknown tokens", 0, tok(func(v map[string]any) {
			v["model"].(map[string]any)["merges"] = []string{"q z"}
		}), hf.Options{}, []string{"tokenizer.json", "merge 0", `"qz"`}},
		{"malformed merge", 0, tok(func(v map[string]any) {
			v["model"].(map[string]any)["merges"] = []string{"abc"}
		}), hf.Options{}, []string{"tokenizer.json", "merge 0"}},
		{"bad tokenizer_config", 0, func(t *testing.T, dir string, _ *model) {
			writeFile(t, filepath.Join(dir, "tokenizer_config.json"), []byte(`["x"]`))
		}, hf.Options{}, []string{"tokenizer_config.json"}},

		// Options.
		{"quantized output", 0, nil, hf.Options{Type: gguf.Q8_0}, []string{"F32 or F16"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(errShape, 3, roundNone)
			dir := t.TempDir()
			if err := m.write(dir, folder{dtype: "F32", shards: c.shards}); err != nil {
				t.Fatal(err)
			}
			if c.mutate != nil {
				c.mutate(t, dir, m)
			}
			_, _, err := hf.Convert(dir, c.opt)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

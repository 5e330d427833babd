// Package hf converts Hugging Face checkpoints of Llama and Qwen2 models
// into GGUF files that wisp and llama.cpp load.
//
// A checkpoint is a folder holding config.json (LlamaForCausalLM or
// Qwen2ForCausalLM), the weights in model.safetensors or in shards listed
// by model.safetensors.index.json (F32, F16 or BF16), tokenizer.json and,
// when present, tokenizer_config.json. Convert maps the weights to
// llama.cpp's tensor names and layout, and the tokenizer to its
// tokenizer.ggml.* keys, as llama.cpp's convert_hf_to_gguf.py does:
//
//   - For llama, the rows of q_proj and k_proj are permuted from the
//     "rotate half" order Hugging Face's RoPE uses (pairs i and i+d/2 of
//     each head of size d) to the adjacent pairs (2i, 2i+1) of llama.cpp's
//     normal RoPE. Qwen2 runs with llama.cpp's NeoX RoPE, which rotates
//     halves, and keeps its rows.
//   - Matrices are stored as the chosen type (F32 or F16: round to nearest
//     even, subnormal halves flushed to zero, see wisp/internal/fp16); norms
//     and biases stay F32.
//
// Every problem with the input is an error that names the file and, for
// weights, the tensor.
package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/fp16"
)

// Options configures Convert.
type Options struct {
	Type gguf.TensorType // gguf.F32 or gguf.F16 for the matrices; norms and biases stay F32
	Name string          // general.name; omitted when empty
	// Progress, when set, is called after each tensor with the number of
	// tensors converted so far and the total.
	Progress func(done, total int)
}

// Report says what Convert did.
type Report struct {
	Arch      string                  // "llama" or "qwen2"
	Tensors   int                     // tensors written
	Types     map[gguf.TensorType]int // tensors written, by GGUF type
	Sources   map[string]int          // tensors read, by safetensors dtype
	Params    int64                   // parameters written (a tied output counted once)
	FP16      fp16.Stats              // what half precision lost, over every tensor stored as F16
	Tokenizer string                  // tokenizer.ggml.model: "llama" or "gpt2"
	Pre       string                  // tokenizer.ggml.pre
	Vocab     int                     // tokens, padded to config.json's vocab_size
	Warnings  []string                // things converted on a guess, or ignored
}

// weight is one tensor Convert writes.
type weight struct {
	gguf    string // GGUF name
	hf      string // Hugging Face name
	rows    int    // 0 for a vector
	cols    int
	permute int // for llama's q and k: the number of heads whose rows to permute
	data    []byte
	typ     gguf.TensorType
}

// hfNames are the Hugging Face names of the tensors of each role, after
// "model.layers.N." for a block's.
var hfNames = map[engine.Role]string{
	engine.RoleEmbedding: "model.embed_tokens.weight", engine.RoleAttnNorm: "input_layernorm.weight",
	engine.RoleQ: "self_attn.q_proj.weight", engine.RoleK: "self_attn.k_proj.weight", engine.RoleV: "self_attn.v_proj.weight",
	engine.RoleQBias: "self_attn.q_proj.bias", engine.RoleKBias: "self_attn.k_proj.bias", engine.RoleVBias: "self_attn.v_proj.bias",
	engine.RoleAttnOutput: "self_attn.o_proj.weight", engine.RoleFFNNorm: "post_attention_layernorm.weight",
	engine.RoleGate: "mlp.gate_proj.weight", engine.RoleUp: "mlp.up_proj.weight", engine.RoleDown: "mlp.down_proj.weight",
	engine.RoleOutputNorm: "model.norm.weight", engine.RoleOutput: "lm_head.weight",
}

// weights lists the tensors of a model in the order Convert writes them,
// engine.Config.Tensors's, with their Hugging Face names. llama's Q and K
// rows are permuted from Hugging Face's rotary layout to llama.cpp's.
func weights(c *Config) []*weight {
	ec := c.engine()
	var ws []*weight
	for _, t := range ec.Tensors(c.Tied) {
		h := hfNames[t.Role]
		if t.Layer >= 0 {
			h = fmt.Sprintf("model.layers.%d.%s", t.Layer, h)
		}
		permute := 0
		if c.Arch == "llama" && t.Role == engine.RoleQ {
			permute = c.Heads
		} else if c.Arch == "llama" && t.Role == engine.RoleK {
			permute = c.KVHeads
		}
		ws = append(ws, &weight{gguf: t.Name, hf: h, rows: t.Rows, cols: t.Cols, permute: permute})
	}
	return ws
}

// ignorable reports tensors a checkpoint may hold that the model does not
// need: RoPE tables some exporters save, and the output matrix of a model
// whose output is tied to its embedding.
func ignorable(name string, c *Config) bool {
	return strings.HasSuffix(name, ".rotary_emb.inv_freq") || (c.Tied && name == "lm_head.weight")
}

// Convert reads the Hugging Face checkpoint in dir and returns a GGUF
// builder holding the converted model, ready for WriteTo, with a report.
//
// The safetensors files are read one at a time and their tensors converted
// one by one; the builder keeps the converted tensors (and, for F32
// weights written as F32, views of the file they came from).
func Convert(dir string, opt Options) (*gguf.Builder, Report, error) {
	rep := Report{Types: map[gguf.TensorType]int{}, Sources: map[string]int{}}
	if opt.Type != gguf.F32 && opt.Type != gguf.F16 {
		return nil, rep, fmt.Errorf("hf: cannot write tensors of type %v; choose F32 or F16", opt.Type)
	}
	read := func(name string, optional bool) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("hf: %w", err)
		}
		return b, nil
	}

	b, err := read("config.json", false)
	if err != nil {
		return nil, rep, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, rep, fmt.Errorf("hf: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	rep.Arch = cfg.Arch

	// The tokenizer first: it is quick to check, the weights are not.
	tokJSON, err := read("tokenizer.json", false)
	if err != nil {
		return nil, rep, err
	}
	tokConfig, err := read("tokenizer_config.json", true)
	if err != nil {
		return nil, rep, err
	}
	jinja, err := read("chat_template.jinja", true)
	if err != nil {
		return nil, rep, err
	}
	voc, err := convertTokenizer(filepath.Join(dir, "tokenizer.json"), tokJSON, filepath.Join(dir, "tokenizer_config.json"), tokConfig, jinja, cfg)
	if err != nil {
		return nil, rep, fmt.Errorf("hf: %w", err)
	}
	rep.Tokenizer, rep.Pre, rep.Vocab = voc.model, voc.pre, len(voc.tokens)
	rep.Warnings = append(rep.Warnings, voc.warnings...)

	ws := weights(cfg)
	shards, err := locate(dir, ws, cfg)
	if err != nil {
		return nil, rep, err
	}
	done := 0
	for _, sh := range shards {
		if err := sh.convert(dir, cfg, opt.Type, &rep, func() {
			done++
			if opt.Progress != nil {
				opt.Progress(done, len(ws))
			}
		}); err != nil {
			return nil, rep, err
		}
	}

	g := gguf.NewBuilder()
	ec := cfg.engine()
	ec.SetGGUF(g)
	if opt.Name != "" {
		g.Set("general.name", opt.Name)
	}
	fileType := uint32(0)
	if opt.Type == gguf.F16 {
		fileType = 1
	}
	g.Set("general.file_type", fileType)
	voc.set(g)
	for _, w := range ws {
		dims := []uint64{uint64(w.cols)}
		if w.rows > 0 {
			dims = append(dims, uint64(w.rows))
		}
		if err := g.AddTensor(w.gguf, w.typ, dims, w.data); err != nil {
			return nil, rep, fmt.Errorf("hf: %w", err)
		}
		rep.Tensors++
		rep.Types[w.typ]++
		rep.Params += int64(w.cols) * int64(max(w.rows, 1))
	}
	return g, rep, nil
}

// shard is one safetensors file and the weights it holds.
type shard struct {
	file    string
	weights []*weight
	indexed map[string]bool // every name the index puts in this file; nil without an index
}

// locate finds the file of every weight: model.safetensors, or the
// shards model.safetensors.index.json names. It returns the shards in
// the order of their first weight.
func locate(dir string, ws []*weight, cfg *Config) ([]*shard, error) {
	const single, index = "model.safetensors", "model.safetensors.index.json"
	b, err := os.ReadFile(filepath.Join(dir, index))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, single)); err != nil {
			return nil, fmt.Errorf("hf: %s holds neither %s nor %s: %w", dir, single, index, err)
		}
		return []*shard{{file: single, weights: ws}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	path := filepath.Join(dir, index)
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("hf: %s: %w", path, err)
	}
	if idx.WeightMap == nil {
		return nil, fmt.Errorf("hf: %s has no weight_map", path)
	}
	byFile := map[string]*shard{}
	var shards []*shard
	get := func(file string) (*shard, error) {
		if sh, ok := byFile[file]; ok {
			return sh, nil
		}
		if file == "" || file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return nil, fmt.Errorf("hf: %s: shard name %q is not a file name in the folder", path, file)
		}
		sh := &shard{file: file, indexed: map[string]bool{}}
		byFile[file] = sh
		return sh, nil
	}
	want := map[string]bool{}
	for _, w := range ws {
		want[w.hf] = true
		file, ok := idx.WeightMap[w.hf]
		if !ok {
			return nil, fmt.Errorf("hf: %s: tensor %q is missing from weight_map", path, w.hf)
		}
		sh, err := get(file)
		if err != nil {
			return nil, err
		}
		if len(sh.weights) == 0 {
			shards = append(shards, sh)
		}
		sh.weights = append(sh.weights, w)
	}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !want[name] && !ignorable(name, cfg) {
			return nil, fmt.Errorf("hf: %s: tensor %q is not part of a %s model", path, name, cfg.HFArch)
		}
		sh, err := get(idx.WeightMap[name])
		if err != nil {
			return nil, err
		}
		sh.indexed[name] = true
	}
	return shards, nil
}

// convert reads the shard and converts its weights.
func (sh *shard) convert(dir string, cfg *Config, typ gguf.TensorType, rep *Report, progress func()) error {
	path := filepath.Join(dir, sh.file)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	ts, err := ParseSafetensors(b)
	if err != nil {
		return fmt.Errorf("hf: %s: %w", path, err)
	}
	byName := make(map[string]*Tensor, len(ts))
	wanted := make(map[string]bool, len(sh.weights))
	for _, w := range sh.weights {
		wanted[w.hf] = true
	}
	for i := range ts {
		t := &ts[i]
		byName[t.Name] = t
		switch {
		case sh.indexed != nil && !sh.indexed[t.Name]:
			return fmt.Errorf("hf: %s: tensor %q is not in model.safetensors.index.json's weight_map for this file", path, t.Name)
		case !wanted[t.Name] && !ignorable(t.Name, cfg) && sh.indexed == nil:
			return fmt.Errorf("hf: %s: tensor %q is not part of a %s model", path, t.Name, cfg.HFArch)
		}
	}
	for _, w := range sh.weights {
		t, ok := byName[w.hf]
		if !ok {
			return fmt.Errorf("hf: %s: tensor %q is missing", path, w.hf)
		}
		if err := w.convert(t, typ, &rep.FP16); err != nil {
			return fmt.Errorf("hf: %s: tensor %q: %w", path, w.hf, err)
		}
		rep.Sources[t.DType]++
		progress()
	}
	return nil
}

// convert checks t against the weight's shape and stores its data as the
// weight's type: typ for a matrix, F32 for a vector.
func (w *weight) convert(t *Tensor, typ gguf.TensorType, st *fp16.Stats) error {
	want := []int64{int64(w.cols)}
	if w.rows > 0 {
		want = []int64{int64(w.rows), int64(w.cols)}
	}
	if !slices.Equal(t.Shape, want) {
		return fmt.Errorf("shape %v, but config.json calls for %v", t.Shape, want)
	}
	w.typ = gguf.F32
	if w.rows > 0 {
		w.typ = typ
	}
	if t.DType == "F32" && w.typ == gguf.F32 && w.permute == 0 {
		w.data = t.Data // already what GGUF stores: little-endian float32
		return nil
	}
	v := make([]float32, t.Elements())
	if err := toFloat32(v, t); err != nil {
		return err
	}
	if w.permute > 0 {
		v = permuteRows(v, w.permute, w.rows, w.cols)
	}
	if w.typ == gguf.F16 {
		h := make([]uint16, len(v))
		st.Add(fp16.Convert(h, v))
		w.data = gguf.F16Bytes(h)
	} else {
		w.data = gguf.F32Bytes(v)
	}
	return nil
}

// permuteRows reorders the rows of a rows×cols matrix of heads attention
// heads from Hugging Face's RoPE layout to llama.cpp's: in each head of d
// rows, row j·d/2 + i (half j, pair i) moves to row 2i + j. This is
// llama.cpp's LlamaModel.permute, reshape (heads, 2, d/2, cols) → swap
// axes 1 and 2 → reshape back.
func permuteRows(w []float32, heads, rows, cols int) []float32 {
	d := rows / heads
	half := d / 2
	out := make([]float32, len(w))
	for h := range heads {
		for j := range 2 {
			for i := range half {
				src := (h*d + j*half + i) * cols
				dst := (h*d + 2*i + j) * cols
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out
}

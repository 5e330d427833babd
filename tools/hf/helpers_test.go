package hf_test

// Helpers that build tiny Hugging Face checkpoints, and the same models
// directly as GGUF in llama.cpp's layout, from one set of random weights.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/x448/float16"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/fp16"
	"wisp/tools/hf"
)

// shape is a model's hyperparameters.
type shape struct {
	arch                                  string // "llama" or "qwen2"
	dim, hidden, layers, heads, kv, vocab int
	ctx                                   int
	tied                                  bool
	theta, eps                            float64
}

func (s shape) headDim() int { return s.dim / s.heads }
func (s shape) kvDim() int   { return s.kv * s.headDim() }

// param is one tensor of a model, named as GGUF and as Hugging Face name it.
type param struct {
	gguf, hf   string
	rows, cols int // rows 0 for a vector
	ropeHeads  int // heads of a q or k matrix (llama's permutation), else 0
}

func (s shape) params() []param {
	var ps []param
	add := func(g, h string, rows, cols, rope int) {
		ps = append(ps, param{g, h, rows, cols, rope})
	}
	add("token_embd.weight", "model.embed_tokens.weight", s.vocab, s.dim, 0)
	for l := range s.layers {
		g, h := fmt.Sprintf("blk.%d.", l), fmt.Sprintf("model.layers.%d.", l)
		add(g+"attn_norm.weight", h+"input_layernorm.weight", 0, s.dim, 0)
		add(g+"attn_q.weight", h+"self_attn.q_proj.weight", s.dim, s.dim, s.heads)
		add(g+"attn_k.weight", h+"self_attn.k_proj.weight", s.kvDim(), s.dim, s.kv)
		add(g+"attn_v.weight", h+"self_attn.v_proj.weight", s.kvDim(), s.dim, 0)
		if s.arch == "qwen2" {
			add(g+"attn_q.bias", h+"self_attn.q_proj.bias", 0, s.dim, 0)
			add(g+"attn_k.bias", h+"self_attn.k_proj.bias", 0, s.kvDim(), 0)
			add(g+"attn_v.bias", h+"self_attn.v_proj.bias", 0, s.kvDim(), 0)
		}
		add(g+"attn_output.weight", h+"self_attn.o_proj.weight", s.dim, s.dim, 0)
		add(g+"ffn_norm.weight", h+"post_attention_layernorm.weight", 0, s.dim, 0)
		add(g+"ffn_gate.weight", h+"mlp.gate_proj.weight", s.hidden, s.dim, 0)
		add(g+"ffn_up.weight", h+"mlp.up_proj.weight", s.hidden, s.dim, 0)
		add(g+"ffn_down.weight", h+"mlp.down_proj.weight", s.dim, s.hidden, 0)
	}
	add("output_norm.weight", "model.norm.weight", 0, s.dim, 0)
	if !s.tied {
		add("output.weight", "lm_head.weight", s.vocab, s.dim, 0)
	}
	return ps
}

// model is a random model: its weights in Hugging Face's layout, keyed by
// Hugging Face name.
type model struct {
	shape
	w map[string][]float32
}

// newModel makes random weights, each rounded by round (to the values a
// BF16 or F16 checkpoint can hold).
func newModel(s shape, seed uint64, round func(float32) float32) *model {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &model{shape: s, w: map[string][]float32{}}
	for _, p := range s.params() {
		n := p.cols * max(p.rows, 1)
		v := make([]float32, n)
		for i := range v {
			x := rng.NormFloat64()
			switch {
			case p.rows > 0:
				x /= math.Sqrt(float64(p.cols))
			case p.hf[len(p.hf)-4:] == "bias":
				x *= 0.1
			default: // norm
				x = 1 + 0.1*x
			}
			v[i] = round(float32(x))
		}
		m.w[p.hf] = v
	}
	return m
}

func roundNone(x float32) float32 { return x }

// roundBF16 rounds to the nearest bfloat16, ties to even.
func roundBF16(x float32) float32 {
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// roundF16 rounds to the nearest normal half (subnormals become zero,
// which the converter's F16 output would do too).
func roundF16(x float32) float32 {
	h := float16.Fromfloat32(x)
	if h.Bits()&0x7c00 == 0 {
		return 0
	}
	return h.Float32()
}

// llamaRows returns w with the rows of each head reordered from Hugging
// Face's layout to llama.cpp's. Written from the definition, independently
// of the converter: llama.cpp rotates rows (2i, 2i+1) of a head where
// Hugging Face rotates rows (i, i+d/2), so HF row j·d/2+i is GGUF row 2i+j.
func llamaRows(w []float32, heads, rows, cols int) []float32 {
	d := rows / heads
	out := make([]float32, len(w))
	for r := range rows {
		h, k := r/d, r%d
		j, i := k/(d/2), k%(d/2) // HF: half j, pair i
		dst := h*d + 2*i + j
		copy(out[dst*cols:(dst+1)*cols], w[r*cols:(r+1)*cols])
	}
	return out
}

// vocabTokens is the SentencePiece-style vocabulary of the model tests:
// <unk>, <s>, </s>, the byte tokens, "▁", letters, then "▁"+letter words.
func vocabTokens(n int) []string {
	toks := []string{"<unk>", "<s>", "</s>"}
	for b := range 256 {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
	}
	letters := []rune("abcdefghijklmnopqrstuvwxyz")
	toks = append(toks, "\u2581")
	for _, r := range letters {
		toks = append(toks, string(r))
	}
	for _, r := range letters {
		toks = append(toks, "\u2581"+string(r))
	}
	for i := 0; len(toks) < n; i++ {
		toks = append(toks, fmt.Sprintf("\u2581w%d", i))
	}
	return toks[:n]
}

// llamaTokenizerJSON returns a byte-fallback BPE tokenizer.json over
// vocabTokens(n), as Hugging Face converts Llama 2's tokenizer.
func llamaTokenizerJSON(n int) map[string]any {
	toks := vocabTokens(n)
	voc := map[string]int{}
	merges := []string{}
	for i, t := range toks {
		voc[t] = i
		if r := []rune(t); len(r) == 2 && r[0] == '\u2581' {
			merges = append(merges, "\u2581 "+string(r[1]))
		}
	}
	return map[string]any{
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
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
			}},
		"decoder": map[string]any{"type": "Sequence"},
		"model": map[string]any{
			"type": "BPE", "byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>",
			"vocab": voc, "merges": merges,
		},
	}
}

// configJSON returns the config.json of the shape.
func (s shape) configJSON() map[string]any {
	c := map[string]any{
		"hidden_size":             s.dim,
		"intermediate_size":       s.hidden,
		"num_hidden_layers":       s.layers,
		"num_attention_heads":     s.heads,
		"num_key_value_heads":     s.kv,
		"vocab_size":              s.vocab,
		"max_position_embeddings": s.ctx,
		"rms_norm_eps":            s.eps,
		"rope_theta":              s.theta,
		"tie_word_embeddings":     s.tied,
		"hidden_act":              "silu",
		"bos_token_id":            1,
		"eos_token_id":            2,
		"torch_dtype":             "bfloat16",
		"rope_scaling":            nil,
	}
	if s.arch == "qwen2" {
		c["architectures"] = []string{"Qwen2ForCausalLM"}
		c["model_type"] = "qwen2"
		c["use_sliding_window"] = false
	} else {
		c["architectures"] = []string{"LlamaForCausalLM"}
		c["model_type"] = "llama"
		c["attention_bias"] = false
	}
	return c
}

// stTensor is a tensor to write into a safetensors file.
type stTensor struct {
	name  string
	dtype string
	shape []int64
	data  []byte
}

// safetensorsBytes encodes tensors as a safetensors file, data in order.
func safetensorsBytes(ts []stTensor) []byte {
	var hdr bytes.Buffer
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	off := 0
	for _, t := range ts {
		shape, _ := json.Marshal(t.shape)
		name, _ := json.Marshal(t.name)
		fmt.Fprintf(&hdr, `,%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, t.dtype, shape, off, off+len(t.data))
		off += len(t.data)
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(hdr.Len()))
	out = append(out, hdr.Bytes()...)
	for _, t := range ts {
		out = append(out, t.data...)
	}
	return out
}

// encode returns v as dtype's bytes; v must hold exactly representable
// values.
func encode(v []float32, dtype string) []byte {
	var b []byte
	for _, x := range v {
		switch dtype {
		case "F32":
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		case "F16":
			b = binary.LittleEndian.AppendUint16(b, float16.Fromfloat32(x).Bits())
		case "BF16":
			b = binary.LittleEndian.AppendUint16(b, uint16(math.Float32bits(x)>>16))
		default:
			panic("encode: dtype " + dtype)
		}
	}
	return b
}

// folder says how to write a model as a Hugging Face checkpoint.
type folder struct {
	dtype  string // "F32", "F16" or "BF16"
	shards int    // 0 or 1: model.safetensors; more: an index and that many files
	// tokenizer.json and tokenizer_config.json; nil means the defaults
	// (llamaTokenizerJSON, none).
	tokenizer, tokConfig map[string]any
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// write writes m into dir as a Hugging Face checkpoint.
func (m *model) write(dir string, f folder) error {
	if err := writeJSON(filepath.Join(dir, "config.json"), m.configJSON()); err != nil {
		return err
	}
	tok := f.tokenizer
	if tok == nil {
		tok = llamaTokenizerJSON(m.vocab)
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer.json"), tok); err != nil {
		return err
	}
	if f.tokConfig != nil {
		if err := writeJSON(filepath.Join(dir, "tokenizer_config.json"), f.tokConfig); err != nil {
			return err
		}
	}
	var ts []stTensor
	for _, p := range m.params() {
		shape := []int64{int64(p.cols)}
		if p.rows > 0 {
			shape = []int64{int64(p.rows), int64(p.cols)}
		}
		ts = append(ts, stTensor{p.hf, f.dtype, shape, encode(m.w[p.hf], f.dtype)})
	}
	// Files hold their tensors in name order, as PyTorch writes them.
	slices.SortFunc(ts, func(a, b stTensor) int { return cmpString(a.name, b.name) })
	if f.shards <= 1 {
		return os.WriteFile(filepath.Join(dir, "model.safetensors"), safetensorsBytes(ts), 0o644)
	}
	weightMap := map[string]string{}
	per := (len(ts) + f.shards - 1) / f.shards
	for i := 0; i < f.shards; i++ {
		part := ts[min(i*per, len(ts)):min((i+1)*per, len(ts))]
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, f.shards)
		for _, t := range part {
			weightMap[t.name] = name
		}
		if err := os.WriteFile(filepath.Join(dir, name), safetensorsBytes(part), 0o644); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "model.safetensors.index.json"), map[string]any{
		"metadata":   map[string]any{"total_size": 0},
		"weight_map": weightMap,
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// directGGUF builds the model as GGUF in llama.cpp's layout without the
// converter: q and k rows of llama reordered by llamaRows, matrices of type
// typ, vectors F32, and the vocabTokens vocabulary.
func (m *model) directGGUF(typ gguf.TensorType) ([]byte, error) {
	b := gguf.NewBuilder()
	a := m.arch
	b.Set("general.architecture", a)
	b.Set(a+".context_length", uint32(m.ctx))
	b.Set(a+".embedding_length", uint32(m.dim))
	b.Set(a+".feed_forward_length", uint32(m.hidden))
	b.Set(a+".block_count", uint32(m.layers))
	b.Set(a+".attention.head_count", uint32(m.heads))
	b.Set(a+".attention.head_count_kv", uint32(m.kv))
	b.Set(a+".attention.layer_norm_rms_epsilon", float32(m.eps))
	b.Set(a+".rope.freq_base", float32(m.theta))
	toks := vocabTokens(m.vocab)
	types := make([]int32, len(toks))
	for i := range types {
		types[i] = 1
	}
	b.Set("tokenizer.ggml.model", "llama")
	b.Set("tokenizer.ggml.tokens", toks)
	b.Set("tokenizer.ggml.token_type", types)
	for _, p := range m.params() {
		v := m.w[p.hf]
		if a == "llama" && p.ropeHeads > 0 {
			v = llamaRows(v, p.ropeHeads, p.rows, p.cols)
		}
		dims := []uint64{uint64(p.cols)}
		t := gguf.F32
		data := gguf.F32Bytes(v)
		if p.rows > 0 {
			dims = append(dims, uint64(p.rows))
			if typ == gguf.F16 {
				h, _ := fp16.FromFloat32(v)
				t, data = gguf.F16, gguf.F16Bytes(h)
			}
		}
		if err := b.AddTensor(p.gguf, t, dims, data); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// convert converts the checkpoint in dir and returns the GGUF bytes.
func convert(t testing.TB, dir string, opt hf.Options) ([]byte, hf.Report) {
	t.Helper()
	b, rep, err := hf.Convert(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), rep
}

// logits loads a GGUF file in the engine and returns the logits after each
// of the tokens.
func logits(t testing.TB, data []byte, tokens []int) []float32 {
	t.Helper()
	m, err := engine.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState(0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.ForwardAll(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(out)
}

// testTokens returns n token ids below vocab, the first and last included.
func testTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 3))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	ids[1], ids[n-2] = 0, vocab-1
	return ids
}

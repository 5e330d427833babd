package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"wisp/engine"
)

// Config is what Convert reads from a model's config.json.
type Config struct {
	Arch       string // GGUF architecture: "llama" or "qwen2"
	HFArch     string // architectures[0], e.g. "LlamaForCausalLM"
	Dim        int    // hidden_size
	HiddenDim  int    // intermediate_size
	Layers     int    // num_hidden_layers
	Heads      int    // num_attention_heads
	KVHeads    int    // num_key_value_heads (num_attention_heads when absent)
	VocabSize  int    // vocab_size
	ContextLen int    // max_position_embeddings
	NormEps    float64
	RopeTheta  float64 // rope_theta (10000 when absent)
	Tied       bool    // tie_word_embeddings
	BOS, EOS   int     // bos_token_id, eos_token_id; -1 when absent or not a single id
}

// HeadDim is the size of one attention head.
func (c *Config) HeadDim() int { return c.Dim / c.Heads }

// engine returns the engine's description of the model, whose SetGGUF
// writes its hyperparameters and whose Tensors lists its weights.
func (c *Config) engine() engine.Config {
	return engine.Config{
		Arch: c.Arch, Dim: c.Dim, HiddenDim: c.HiddenDim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads,
		HeadDim: c.HeadDim(), VocabSize: c.VocabSize, ContextLen: c.ContextLen, NormEps: float32(c.NormEps),
		RopeBase: c.RopeTheta, RopeNeox: c.Arch == "qwen2", QKVBias: c.Arch == "qwen2",
	}
}

// architectures maps the Hugging Face class names wisp converts to GGUF
// architectures.
var architectures = map[string]string{
	"LlamaForCausalLM": "llama",
	"Qwen2ForCausalLM": "qwen2",
}

// jsonObject is a parsed JSON object whose values are decoded on demand.
type jsonObject map[string]json.RawMessage

// parseObject parses b as one JSON object.
func parseObject(b []byte) (jsonObject, error) {
	var o jsonObject
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&o); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("not a JSON object")
		}
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return o, nil
}

// has reports whether key is present and not null.
func (o jsonObject) has(key string) bool {
	v, ok := o[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// number returns the numeric value of key.
func (o jsonObject) number(key string) (float64, error) {
	var f float64
	if err := json.Unmarshal(o[key], &f); err != nil {
		return 0, fmt.Errorf("%q is %s, not a number", key, o[key])
	}
	return f, nil
}

// integer returns the value of key, which must be a whole number in
// [1, max].
func (o jsonObject) integer(key string, max int) (int, error) {
	if !o.has(key) {
		return 0, fmt.Errorf("%q is missing", key)
	}
	f, err := o.number(key)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < 1 || f > float64(max) {
		return 0, fmt.Errorf("%q = %s is not a whole number in [1, %d]", key, o[key], max)
	}
	return int(f), nil
}

// boolean returns the value of key, or def when it is absent.
func (o jsonObject) boolean(key string, def bool) (bool, error) {
	if !o.has(key) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(o[key], &b); err != nil {
		return false, fmt.Errorf("%q is %s, not true or false", key, o[key])
	}
	return b, nil
}

// str returns the string value of key, or "" when it is absent.
func (o jsonObject) str(key string) (string, error) {
	if !o.has(key) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o[key], &s); err != nil {
		return "", fmt.Errorf("%q is %s, not a string", key, o[key])
	}
	return s, nil
}

// tokenID returns key's value if it is a single token id, or -1 (absent,
// null, or a list of ids as some configs give for eos_token_id).
func (o jsonObject) tokenID(key string) int {
	var id int64
	if !o.has(key) || json.Unmarshal(o[key], &id) != nil || id < 0 || id >= engine.MaxVocab {
		return -1
	}
	return int(id)
}

// ParseConfig reads a config.json of a LlamaForCausalLM or
// Qwen2ForCausalLM model. It rejects what wisp cannot run faithfully: RoPE
// scaling, partial rotary embeddings, heads of another size than
// hidden_size/num_attention_heads, activations other than SiLU, biases
// other than Qwen2's on q, k and v, sliding-window attention and quantized
// weights.
func ParseConfig(b []byte) (*Config, error) {
	o, err := parseObject(b)
	if err != nil {
		return nil, err
	}
	c := &Config{BOS: o.tokenID("bos_token_id"), EOS: o.tokenID("eos_token_id")}

	var archs []string
	if !o.has("architectures") {
		return nil, fmt.Errorf("\"architectures\" is missing; wisp converts %s", supported())
	}
	if err := json.Unmarshal(o["architectures"], &archs); err != nil || len(archs) == 0 {
		return nil, fmt.Errorf("\"architectures\" is %s, not a list of class names", o["architectures"])
	}
	c.HFArch = archs[0]
	var ok bool
	if c.Arch, ok = architectures[c.HFArch]; !ok || len(archs) != 1 {
		return nil, fmt.Errorf("architecture %v is not supported; wisp converts %s", archs, supported())
	}
	if mt, err := o.str("model_type"); err != nil {
		return nil, err
	} else if mt != "" && mt != c.Arch {
		return nil, fmt.Errorf("model_type %q does not match architecture %s", mt, c.HFArch)
	}

	for _, f := range []struct {
		key string
		dst *int
		max int
	}{
		{"hidden_size", &c.Dim, engine.MaxDim},
		{"intermediate_size", &c.HiddenDim, engine.MaxHidden},
		{"num_hidden_layers", &c.Layers, engine.MaxLayers},
		{"num_attention_heads", &c.Heads, engine.MaxHeads},
		{"vocab_size", &c.VocabSize, engine.MaxVocab},
		{"max_position_embeddings", &c.ContextLen, engine.MaxContext},
	} {
		if *f.dst, err = o.integer(f.key, f.max); err != nil {
			return nil, err
		}
	}
	c.KVHeads = c.Heads
	if o.has("num_key_value_heads") {
		if c.KVHeads, err = o.integer("num_key_value_heads", engine.MaxHeads); err != nil {
			return nil, err
		}
	}
	if c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || c.HeadDim()%2 != 0 {
		return nil, fmt.Errorf("hidden_size %d, num_attention_heads %d and num_key_value_heads %d do not make whole, even-sized heads shared evenly", c.Dim, c.Heads, c.KVHeads)
	}
	if !o.has("rms_norm_eps") {
		return nil, fmt.Errorf("\"rms_norm_eps\" is missing")
	}
	if c.NormEps, err = o.number("rms_norm_eps"); err != nil {
		return nil, err
	}
	if !(c.NormEps > 0 && c.NormEps < 1) {
		return nil, fmt.Errorf("rms_norm_eps = %g is out of range (0, 1)", c.NormEps)
	}
	c.RopeTheta = 10000
	if o.has("rope_theta") {
		if c.RopeTheta, err = o.number("rope_theta"); err != nil {
			return nil, err
		}
	}
	if c.Tied, err = o.boolean("tie_word_embeddings", false); err != nil {
		return nil, err
	}

	// Features wisp does not implement.
	if o.has("rope_scaling") && !defaultRope(o["rope_scaling"]) {
		return nil, fmt.Errorf("rope_scaling %s is not supported: wisp implements plain RoPE only", compact(o["rope_scaling"]))
	}
	if o.has("rope_parameters") { // transformers 5 moved rope_theta here
		p, err := parseObject(o["rope_parameters"])
		if err != nil {
			return nil, fmt.Errorf("\"rope_parameters\": %w", err)
		}
		if rt, err := p.str("rope_type"); err != nil {
			return nil, fmt.Errorf("\"rope_parameters\": %w", err)
		} else if rt != "" && rt != "default" {
			return nil, fmt.Errorf("rope_parameters %s is not supported: wisp implements plain RoPE only", compact(o["rope_parameters"]))
		}
		if p.has("rope_theta") {
			if c.RopeTheta, err = p.number("rope_theta"); err != nil {
				return nil, fmt.Errorf("\"rope_parameters\": %w", err)
			}
		}
	}
	if !(c.RopeTheta > 1 && c.RopeTheta < 1e12) {
		return nil, fmt.Errorf("rope_theta = %g is out of range (1, 1e12)", c.RopeTheta)
	}
	if o.has("partial_rotary_factor") {
		if f, err := o.number("partial_rotary_factor"); err != nil || f != 1 {
			return nil, fmt.Errorf("partial_rotary_factor %s is not supported: wisp rotates whole heads", o["partial_rotary_factor"])
		}
	}
	if o.has("head_dim") {
		if hd, err := o.integer("head_dim", engine.MaxDim); err != nil || hd != c.HeadDim() {
			return nil, fmt.Errorf("head_dim %s is not supported: wisp needs hidden_size / num_attention_heads = %d", o["head_dim"], c.HeadDim())
		}
	}
	if act, err := o.str("hidden_act"); err != nil {
		return nil, err
	} else if act != "" && act != "silu" {
		return nil, fmt.Errorf("hidden_act %q is not supported: wisp implements SwiGLU (silu)", act)
	}
	for _, key := range []string{"attention_bias", "mlp_bias", "use_sliding_window"} {
		on, err := o.boolean(key, false)
		if err != nil {
			return nil, err
		}
		if on && !(key == "attention_bias" && c.Arch == "qwen2") {
			return nil, fmt.Errorf("%s = true is not supported for %s", key, c.HFArch)
		}
	}
	if o.has("quantization_config") {
		return nil, fmt.Errorf("quantized checkpoints (quantization_config) are not supported; convert the F32, F16 or BF16 weights")
	}
	return c, nil
}

// defaultRope reports whether a rope_scaling value asks for no scaling:
// {"rope_type": "default"} (or "type"), as some configs spell it.
func defaultRope(v json.RawMessage) bool {
	p, err := parseObject(v)
	if err != nil {
		return false
	}
	for _, key := range []string{"rope_type", "type"} {
		if t, err := p.str(key); err == nil && t == "default" {
			return true
		}
	}
	return false
}

func supported() string {
	names := make([]string, 0, len(architectures))
	for n := range architectures {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " and ")
}

// compact returns a JSON value on one line, shortened if long.
func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return "(invalid JSON)"
	}
	s := b.String()
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

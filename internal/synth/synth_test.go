package synth_test

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
)

// small shapes: every architecture, grouped and multi-head attention, tied
// and untied.
var small = map[string]synth.Shape{
	"llama/gqa/tied":    {Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, RopeBase: 10000, Tied: true},
	"llama/mha/untied":  {Arch: "llama", Dim: 24, HiddenDim: 40, Layers: 3, Heads: 3, KVHeads: 3, Vocab: 270, ContextLen: 32, RopeBase: 10000},
	"qwen2/mqa/tied":    {Arch: "qwen2", Dim: 32, HiddenDim: 36, Layers: 2, Heads: 4, KVHeads: 1, Vocab: 280, ContextLen: 48, RopeBase: 1e6, Tied: true},
	"qwen2/gqa/untied":  {Arch: "qwen2", Dim: 48, HiddenDim: 64, Layers: 1, Heads: 6, KVHeads: 2, Vocab: 259, ContextLen: 16, RopeBase: 1e6},
	"llama/minimal":     {Arch: "llama", Dim: 2, HiddenDim: 1, Layers: 1, Heads: 1, KVHeads: 1, Vocab: 259, ContextLen: 1, RopeBase: 2, Tied: true},
	"named/stories260K": synth.Shapes()["stories260K"],
	// Blocks of their own widths, as pruning per layer leaves them; the
	// scalar widths are the largest, as the engine reports them.
	"llama/per-layer": {Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 3, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, RopeBase: 10000,
		LayerHidden: []int{48, 17, 30}, LayerHeads: []int{4, 2, 4}, LayerKVHeads: []int{2, 1, 1}},
	"qwen2/per-layer-ffn": {Arch: "qwen2", Dim: 48, HiddenDim: 64, Layers: 2, Heads: 6, KVHeads: 2, Vocab: 259, ContextLen: 16, RopeBase: 1e6, Tied: true,
		LayerHidden: []int{9, 64}},
}

// widths returns the feed-forward length, heads and key/value heads of
// block l of s.
func widths(s synth.Shape, l int) (hidden, heads, kv int) {
	hidden, heads, kv = s.HiddenDim, s.Heads, s.KVHeads
	if s.LayerHidden != nil {
		hidden = s.LayerHidden[l]
	}
	if s.LayerHeads != nil {
		heads = s.LayerHeads[l]
	}
	if s.LayerKVHeads != nil {
		kv = s.LayerKVHeads[l]
	}
	return hidden, heads, kv
}

func build(t testing.TB, s synth.Shape, opt synth.Options) []byte {
	t.Helper()
	b, err := synth.Build(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestShapes(t *testing.T) {
	shapes := synth.Shapes()
	names := synth.ShapeNames()
	if !slices.IsSorted(names) || len(names) != len(shapes) {
		t.Errorf("ShapeNames() = %v; want the %d names of Shapes, sorted", names, len(shapes))
	}
	for _, n := range names {
		s, ok := shapes[n]
		if !ok {
			t.Errorf("ShapeNames has %q, Shapes does not", n)
			continue
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	shapes["stories260K"] = synth.Shape{}
	if synth.Shapes()["stories260K"].Dim != 64 {
		t.Error("Shapes returns a map shared between calls")
	}
}

func TestParamsKnown(t *testing.T) {
	tests := []struct {
		name string
		want int64
	}{
		// Counted by hand from the published configurations.
		{"stories260K", 260_032},
		{"stories15M", 15_191_712},   // "15M"
		{"stories110M", 109_529_856}, // "110M"
		{"smollm2-135m", 134_515_008},
		{"qwen2.5-0.5b", 494_032_768}, // Qwen reports 0.49B
	}
	for _, tt := range tests {
		s, ok := synth.Shapes()[tt.name]
		if !ok {
			t.Errorf("no shape %q", tt.name)
			continue
		}
		if got := s.Params(); got != tt.want {
			t.Errorf("%s: Params() = %d; want %d", tt.name, got, tt.want)
		}
	}
	s := synth.Shapes()["stories15M"]
	s.Tied = false
	if got, want := s.Params(), int64(15_191_712+32000*288); got != want {
		t.Errorf("untied stories15M: Params() = %d; want %d", got, want)
	}
	if got := (synth.Shape{}).Params(); got != 0 {
		t.Errorf("zero Shape: Params() = %d; want 0", got)
	}
}

// expectedDims gives the GGUF dims ([cols, rows]) of every tensor of s.
func expectedDims(s synth.Shape) map[string][]uint64 {
	d, v := uint64(s.Dim), uint64(s.Vocab)
	want := map[string][]uint64{
		"token_embd.weight":  {d, v},
		"output_norm.weight": {d},
	}
	if !s.Tied {
		want["output.weight"] = []uint64{d, v}
	}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		hidden, heads, kvHeads := widths(s, l)
		h, q, kv := uint64(hidden), uint64(heads*(s.Dim/s.Heads)), uint64(kvHeads*(s.Dim/s.Heads))
		want[p+"attn_norm.weight"] = []uint64{d}
		want[p+"attn_q.weight"] = []uint64{d, q}
		want[p+"attn_k.weight"] = []uint64{d, kv}
		want[p+"attn_v.weight"] = []uint64{d, kv}
		want[p+"attn_output.weight"] = []uint64{q, d}
		want[p+"ffn_norm.weight"] = []uint64{d}
		want[p+"ffn_gate.weight"] = []uint64{d, h}
		want[p+"ffn_down.weight"] = []uint64{h, d}
		want[p+"ffn_up.weight"] = []uint64{d, h}
		if s.Arch == "qwen2" {
			want[p+"attn_q.bias"] = []uint64{q}
			want[p+"attn_k.bias"] = []uint64{kv}
			want[p+"attn_v.bias"] = []uint64{kv}
		}
	}
	return want
}

func TestBuildTensors(t *testing.T) {
	shapes := map[string]synth.Shape{"named/stories15M": synth.Shapes()["stories15M"]}
	for n, s := range small {
		shapes[n] = s
	}
	for name, s := range shapes {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
			if name == "named/stories15M" && typ == gguf.F32 {
				continue // one copy of 15M parameters is enough
			}
			t.Run(name+"/"+typ.String(), func(t *testing.T) {
				f, err := gguf.Parse(build(t, s, synth.Options{Type: typ, Seed: 1}))
				if err != nil {
					t.Fatal(err)
				}
				want := expectedDims(s)
				var total int64
				for _, tn := range f.Tensors {
					total += int64(tn.Elements())
					dims, ok := want[tn.Name]
					if !ok {
						t.Errorf("unexpected tensor %s", tn.Name)
						continue
					}
					delete(want, tn.Name)
					if !slices.Equal(tn.Dims, dims) {
						t.Errorf("%s: dims %v; want %v", tn.Name, tn.Dims, dims)
					}
					wantType := gguf.F32
					if len(dims) == 2 {
						wantType = typ
					}
					if tn.Type != wantType {
						t.Errorf("%s: type %v; want %v", tn.Name, tn.Type, wantType)
					}
				}
				for n := range want {
					t.Errorf("missing tensor %s", n)
				}
				if p := s.Params(); total != p {
					t.Errorf("tensors hold %d elements; Params() = %d", total, p)
				}
			})
		}
	}
}

func TestBuildLoads(t *testing.T) {
	for name, s := range small {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
			t.Run(name+"/"+typ.String(), func(t *testing.T) {
				data := build(t, s, synth.Options{Type: typ, Seed: 3})
				m, err := engine.Load(data)
				if err != nil {
					t.Fatal(err)
				}
				c := m.Config
				if c.Arch != s.Arch || c.Dim != s.Dim || c.HiddenDim != s.HiddenDim || c.Layers != s.Layers ||
					c.Heads != s.Heads || c.KVHeads != s.KVHeads || c.VocabSize != s.Vocab || c.ContextLen != s.ContextLen ||
					c.RopeBase != float64(s.RopeBase) {
					t.Errorf("loaded config %+v; want shape %+v", c, s)
				}
				for l := range s.Layers {
					hidden, heads, kv := widths(s, l)
					if c.HiddenOf(l) != hidden || c.HeadsOf(l) != heads || c.KVHeadsOf(l) != kv || c.HeadDim != s.Dim/s.Heads {
						t.Errorf("block %d: loaded %d neurons, %d heads, %d key/value heads of %d; want %d, %d, %d of %d",
							l, c.HiddenOf(l), c.HeadsOf(l), c.KVHeadsOf(l), c.HeadDim, hidden, heads, kv, s.Dim/s.Heads)
					}
				}
				if c.PerLayer() != (s.LayerHidden != nil || s.LayerHeads != nil || s.LayerKVHeads != nil) {
					t.Errorf("PerLayer() = %v for %+v", c.PerLayer(), s)
				}
				if m.Tokenizer == nil {
					t.Fatal("no tokenizer")
				}
				f := m.File
				if r, err := f.Bool("wisp.random"); err != nil || !r {
					t.Errorf("wisp.random = %v, %v; want true", r, err)
				}
				if n, err := f.String("general.name"); err != nil || n != "random" {
					t.Errorf("general.name = %q, %v; want the default \"random\"", n, err)
				}
				sess, err := m.NewSession(option.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := sess.Prompt(""); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestBuildOptions(t *testing.T) {
	s := small["llama/gqa/tied"]
	a := build(t, s, synth.Options{Seed: 5})
	if b := build(t, s, synth.Options{Seed: 5}); !bytes.Equal(a, b) {
		t.Error("the same seed gave different files")
	}
	if b := build(t, s, synth.Options{Seed: 6}); bytes.Equal(a, b) {
		t.Error("seeds 5 and 6 gave the same file")
	}
	f, err := gguf.Parse(build(t, s, synth.Options{Seed: 5, Name: "tiny test"}))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.String("general.name"); n != "tiny test" {
		t.Errorf("general.name = %q, %v; want \"tiny test\"", n, err)
	}
	for _, typ := range []gguf.TensorType{gguf.Q2_K, gguf.IQ4_NL, gguf.F64} {
		if _, err := synth.Build(s, synth.Options{Type: typ}); err == nil || !strings.Contains(err.Error(), typ.String()) {
			t.Errorf("Build with type %v: error %v; want one naming the type", typ, err)
		}
	}
}

// TestWeights checks the weights' scale: matrices of standard deviation
// 1/sqrt(cols), norms around 1, biases around 0.
func TestWeights(t *testing.T) {
	s := synth.Shape{Arch: "qwen2", Dim: 256, HiddenDim: 1024, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 400, ContextLen: 8, RopeBase: 1e6}
	f, err := gguf.Parse(build(t, s, synth.Options{Seed: 9}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		mean, std float64
	}{
		{"token_embd.weight", 0, 1 / 16.0},
		{"blk.0.ffn_down.weight", 0, 1 / 32.0},
		{"blk.0.ffn_up.weight", 0, 1 / 16.0},
		{"blk.0.attn_norm.weight", 1, 0.1},
		{"blk.0.attn_q.bias", 0, 0.1},
		{"output_norm.weight", 1, 0.1},
	}
	for _, tt := range tests {
		tn, ok := f.Tensor(tt.name)
		if !ok {
			t.Errorf("no tensor %s", tt.name)
			continue
		}
		v, err := tn.F32()
		if err != nil {
			t.Fatal(err)
		}
		var sum, sq float64
		for _, x := range v {
			sum += float64(x)
		}
		mean := sum / float64(len(v))
		for _, x := range v {
			sq += (float64(x) - mean) * (float64(x) - mean)
		}
		std := math.Sqrt(sq / float64(len(v)))
		se := tt.std / math.Sqrt(float64(len(v)))
		if math.Abs(mean-tt.mean) > 5*se || math.Abs(std-tt.std) > 0.2*tt.std {
			t.Errorf("%s: mean %.4f, std %.4f; want %g, %g", tt.name, mean, std, tt.mean, tt.std)
		}
	}
}

func TestVocabulary(t *testing.T) {
	for _, n := range []int{259, 260, 300, 330, 512, 5000, 32000, 151936} {
		s := synth.Shape{Arch: "llama", Dim: 2, HiddenDim: 1, Layers: 1, Heads: 1, KVHeads: 1, Vocab: n, ContextLen: 1, RopeBase: 10000, Tied: true}
		f, err := gguf.Parse(build(t, s, synth.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := f.Strings("tokenizer.ggml.tokens")
		if err != nil {
			t.Fatal(err)
		}
		scores, err1 := f.Float32s("tokenizer.ggml.scores")
		types, err2 := f.Int32s("tokenizer.ggml.token_type")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if len(tokens) != n || len(scores) != n || len(types) != n {
			t.Errorf("vocab %d: %d tokens, %d scores, %d types", n, len(tokens), len(scores), len(types))
			continue
		}
		seen := map[string]int{}
		for i, tok := range tokens {
			if j, dup := seen[tok]; dup {
				t.Errorf("vocab %d: token %d %q repeats token %d", n, i, tok, j)
			}
			seen[tok] = i
			if tok == "" {
				t.Errorf("vocab %d: token %d is empty", n, i)
			}
			wantType := int32(1)
			switch {
			case i == 0:
				wantType = 2
			case i < 3:
				wantType = 3
			case i < 259:
				wantType = 6
				if want := fmt.Sprintf("<0x%02X>", i-3); tok != want {
					t.Errorf("vocab %d: token %d = %q; want %q", n, i, tok, want)
				}
			}
			if types[i] != wantType {
				t.Errorf("vocab %d: token %d %q has type %d; want %d", n, i, tok, types[i], wantType)
			}
		}
		if tokens[0] != "<unk>" || tokens[1] != "<s>" || tokens[2] != "</s>" {
			t.Errorf("vocab %d: specials %q", n, tokens[:3])
		}
		if n > 259 && tokens[259] != "\u2581" {
			t.Errorf("vocab %d: token 259 = %q; want the space marker", n, tokens[259])
		}
		for _, key := range []string{"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"} {
			if _, err := f.Uint(key); err != nil {
				t.Errorf("vocab %d: %v", n, err)
			}
		}
	}
}

func TestValidateRejects(t *testing.T) {
	good := small["llama/gqa/tied"]
	tests := []struct {
		name string
		edit func(*synth.Shape)
		err  string
	}{
		{"unknown arch", func(s *synth.Shape) { s.Arch = "gpt2" }, "architecture"},
		{"empty arch", func(s *synth.Shape) { s.Arch = "" }, "architecture"},
		{"zero dim", func(s *synth.Shape) { s.Dim = 0 }, "positive"},
		{"negative hidden", func(s *synth.Shape) { s.HiddenDim = -1 }, "positive"},
		{"zero layers", func(s *synth.Shape) { s.Layers = 0 }, "positive"},
		{"zero heads", func(s *synth.Shape) { s.Heads = 0 }, "positive"},
		{"zero kv heads", func(s *synth.Shape) { s.KVHeads = 0 }, "positive"},
		{"zero context", func(s *synth.Shape) { s.ContextLen = 0 }, "positive"},
		{"heads do not divide dim", func(s *synth.Shape) { s.Heads = 5 }, "heads"},
		{"odd head size", func(s *synth.Shape) { s.Dim, s.Heads, s.KVHeads = 12, 4, 4 }, "even"},
		{"kv heads do not divide heads", func(s *synth.Shape) { s.KVHeads = 3 }, "key/value"},
		{"more kv heads than heads", func(s *synth.Shape) { s.KVHeads = 8 }, "key/value"},
		{"vocab too small", func(s *synth.Shape) { s.Vocab = 258 }, "vocabulary"},
		{"huge dim", func(s *synth.Shape) { s.Dim, s.Heads, s.KVHeads = 1<<17, 1<<10, 1<<10 }, "limits"},
		{"huge vocab", func(s *synth.Shape) { s.Vocab = 1<<22 + 1 }, "limits"},
		{"huge layers", func(s *synth.Shape) { s.Layers = 1 << 20 }, "limits"},
		{"zero rope base", func(s *synth.Shape) { s.RopeBase = 0 }, "RoPE"},
		{"rope base 1", func(s *synth.Shape) { s.RopeBase = 1 }, "RoPE"},
		{"NaN rope base", func(s *synth.Shape) { s.RopeBase = float32(math.NaN()) }, "RoPE"},
		{"per-layer hidden too short", func(s *synth.Shape) { s.LayerHidden = []int{48} }, "LayerHidden has 1 entries for 2 blocks"},
		{"per-layer zero heads", func(s *synth.Shape) { s.LayerHeads = []int{4, 0} }, "LayerHeads[1] = 0"},
		{"per-layer huge hidden", func(s *synth.Shape) { s.LayerHidden = []int{1 << 20, 1} }, "LayerHidden[0]"},
		{"per-layer kv heads do not divide heads", func(s *synth.Shape) { s.LayerHeads = []int{4, 3} }, "block 1: 3 heads do not split into 2"},
		{"per-layer too many heads", func(s *synth.Shape) { s.Dim, s.LayerHeads, s.LayerKVHeads = 128, []int{4, 1 << 12}, []int{2, 1} }, "4096 heads of 32 values are more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "synth: ") {
				t.Errorf("Validate() = %v; want a synth error about %s", err, tt.err)
			}
			if _, berr := synth.Build(s, synth.Options{}); berr == nil {
				t.Error("Build accepted the shape")
			}
			s.Params() // must not panic
		})
	}
}

func Example() {
	s := synth.Shapes()["stories260K"]
	b, err := synth.Build(s, synth.Options{Type: gguf.F16, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		fmt.Println(err)
		return
	}
	m, err := engine.Load(buf.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	random, _ := m.File.Bool("wisp.random")
	fmt.Println(s.Params(), "parameters; layers:", m.Layers, "random:", random)
	// Output: 260032 parameters; layers: 5 random: true
}

// TestQuantizedWeights checks that random quantized and BF16 models load
// and that their weights spread as synth's float weights do, and that a
// shape whose rows are not whole blocks is refused with the reason.
func TestQuantizedWeights(t *testing.T) {
	s := synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 512, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 8, RopeBase: 1e4}
	for _, typ := range []gguf.TensorType{gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K} {
		data := build(t, s, synth.Options{Type: typ, Seed: 3})
		m, err := engine.Load(data)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		w := m.Blocks[0].Down
		if w.Type() != typ {
			t.Fatalf("%v: ffn_down is %v", typ, w.Type())
		}
		row := make([]float32, w.Cols)
		var ss float64
		for r := range w.Rows {
			w.Row(row, r)
			for _, v := range row {
				ss += float64(v) * float64(v)
			}
		}
		std, want := math.Sqrt(ss/float64(w.Rows*w.Cols)), 1/math.Sqrt(float64(w.Cols))
		if std < 0.7*want || std > 1.4*want {
			t.Errorf("%v: weights' standard deviation %.4g, want about %.4g", typ, std, want)
		}
	}
	odd := s
	odd.HiddenDim = 100
	if _, err := synth.Build(odd, synth.Options{Type: gguf.Q4_K}); err == nil || !strings.Contains(err.Error(), "256") {
		t.Errorf("Q4_K with rows of 100: %v, want an error about 256", err)
	}
}

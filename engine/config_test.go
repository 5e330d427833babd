package engine_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
)

// configFile writes the metadata of a llama model of 3 blocks, changed by
// edit (setting a key to nil removes it), as a GGUF file without tensors
// (ConfigFromGGUF reads none).
func configFile(t testing.TB, edit func(set func(key string, v any))) []byte {
	t.Helper()
	keys := []string{"context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv"}
	vals := map[string]any{
		"context_length": uint32(64), "embedding_length": uint32(32), "block_count": uint32(3),
		"feed_forward_length": uint32(48), "attention.head_count": uint32(4), "attention.head_count_kv": uint32(2),
	}
	if edit != nil {
		edit(func(key string, v any) {
			if _, ok := vals[key]; !ok {
				keys = append(keys, key)
			}
			vals[key] = v
		})
	}
	b := gguf.NewBuilder()
	b.Set("general.architecture", "llama")
	for _, k := range keys {
		if vals[k] != nil {
			b.Set("llama."+k, vals[k])
		}
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parseConfig(t testing.TB, data []byte) (engine.Config, error) {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return engine.ConfigFromGGUF(f)
}

// TestConfigPerLayer checks that feed_forward_length, head_count and
// head_count_kv are read as a single integer or as one per block, alone
// or mixed, and that the scalar fields are the largest widths.
func TestConfigPerLayer(t *testing.T) {
	type widths struct{ hidden, heads, kv []int }
	tests := []struct {
		name     string
		edit     func(set func(string, any))
		perLayer bool
		want     widths
		headDim  int
	}{
		{"scalars", nil, false, widths{[]int{48, 48, 48}, []int{4, 4, 4}, []int{2, 2, 2}}, 8},
		{"every key an array", func(set func(string, any)) {
			set("feed_forward_length", []uint32{48, 7, 100})
			set("attention.head_count", []uint32{4, 2, 6})
			set("attention.head_count_kv", []uint32{2, 1, 3})
			set("attention.key_length", uint32(8))
			set("attention.value_length", uint32(8))
		}, true, widths{[]int{48, 7, 100}, []int{4, 2, 6}, []int{2, 1, 3}}, 8},
		{"equal arrays are uniform", func(set func(string, any)) {
			set("feed_forward_length", []uint32{48, 48, 48})
			set("attention.head_count", []int32{4, 4, 4})
		}, false, widths{[]int{48, 48, 48}, []int{4, 4, 4}, []int{2, 2, 2}}, 8},
		{"mixed: an array of neurons, scalar heads", func(set func(string, any)) {
			set("feed_forward_length", []int32{5, 48, 20})
		}, true, widths{[]int{5, 48, 20}, []int{4, 4, 4}, []int{2, 2, 2}}, 8},
		{"mixed: scalar heads, an array of key/value heads", func(set func(string, any)) {
			set("attention.head_count_kv", []uint32{2, 4, 1})
		}, true, widths{[]int{48, 48, 48}, []int{4, 4, 4}, []int{2, 4, 1}}, 8},
		{"key/value heads default to the heads of each block", func(set func(string, any)) {
			set("attention.head_count", []uint32{2, 4, 1})
			set("attention.head_count_kv", nil)
			set("attention.key_length", uint32(4))
		}, true, widths{[]int{48, 48, 48}, []int{2, 4, 1}, []int{2, 4, 1}}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(t, configFile(t, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			if c.PerLayer() != tt.perLayer {
				t.Errorf("PerLayer() = %v, want %v", c.PerLayer(), tt.perLayer)
			}
			if c.HeadDim != tt.headDim {
				t.Errorf("HeadDim %d, want %d", c.HeadDim, tt.headDim)
			}
			var maxHidden, maxHeads, maxKV int
			for l := range 3 {
				h, q, kv := tt.want.hidden[l], tt.want.heads[l], tt.want.kv[l]
				maxHidden, maxHeads, maxKV = max(maxHidden, h), max(maxHeads, q), max(maxKV, kv)
				if c.HiddenOf(l) != h || c.HeadsOf(l) != q || c.KVHeadsOf(l) != kv {
					t.Errorf("block %d: %d neurons, %d heads, %d key/value heads; want %d, %d, %d", l, c.HiddenOf(l), c.HeadsOf(l), c.KVHeadsOf(l), h, q, kv)
				}
				if c.QDimOf(l) != q*tt.headDim || c.KVDimOf(l) != kv*tt.headDim {
					t.Errorf("block %d: QDimOf %d, KVDimOf %d", l, c.QDimOf(l), c.KVDimOf(l))
				}
			}
			if c.HiddenDim != maxHidden || c.Heads != maxHeads || c.KVHeads != maxKV {
				t.Errorf("HiddenDim %d, Heads %d, KVHeads %d; want the largest, %d, %d, %d", c.HiddenDim, c.Heads, c.KVHeads, maxHidden, maxHeads, maxKV)
			}
			if c.QDim() != maxHeads*tt.headDim || c.KVDim() != maxKV*tt.headDim {
				t.Errorf("QDim %d, KVDim %d", c.QDim(), c.KVDim())
			}
		})
	}
}

// TestConfigPerLayerErrors checks that bad per-block widths get errors
// naming the key and the block.
func TestConfigPerLayerErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(set func(string, any))
		want string
	}{
		{"array too short", func(set func(string, any)) { set("feed_forward_length", []uint32{48, 48}) },
			"llama.feed_forward_length has 2 entries but the model has 3 blocks"},
		{"array too long", func(set func(string, any)) { set("attention.head_count_kv", []uint32{2, 2, 2, 2}) },
			"llama.attention.head_count_kv has 4 entries but the model has 3 blocks"},
		{"hostile length", func(set func(string, any)) { set("feed_forward_length", make([]uint32, 100000)) },
			"has 100000 entries but the model has 3 blocks"},
		{"empty array", func(set func(string, any)) { set("attention.head_count", []uint32{}) },
			"llama.attention.head_count has 0 entries"},
		{"zero entry", func(set func(string, any)) { set("feed_forward_length", []uint32{48, 0, 48}) },
			"llama.feed_forward_length[1] = 0 (block 1) is out of range [1, 262144]"},
		{"negative entry", func(set func(string, any)) { set("attention.head_count", []int32{4, 4, -4}) },
			"llama.attention.head_count[2] = -4 (block 2) is out of range [1, 4096]"},
		{"huge entry", func(set func(string, any)) { set("attention.head_count_kv", []uint32{1 << 31, 2, 2}) },
			"llama.attention.head_count_kv[0] = 2147483648 (block 0) is out of range"},
		{"zero scalar", func(set func(string, any)) { set("attention.head_count_kv", uint32(0)) },
			"llama.attention.head_count_kv = 0 is out of range"},
		{"heads not a multiple in one block", func(set func(string, any)) {
			set("attention.head_count", []uint32{4, 3, 4})
			set("attention.key_length", uint32(8))
		}, "block 1: head count 3 is not a multiple of the key/value head count 2"},
		{"mixed, not a multiple", func(set func(string, any)) { set("attention.head_count_kv", []uint32{2, 3, 2}) },
			"block 1: head count 4 is not a multiple of the key/value head count 3"},
		{"heads differ without a head size", func(set func(string, any)) { set("attention.head_count", []uint32{4, 2, 4}) },
			"attention.head_count differs between blocks but llama.attention.key_length, the head size, is absent"},
		{"array of floats", func(set func(string, any)) { set("feed_forward_length", []float32{48, 48, 48}) },
			"an array of widths must hold uint32 or int32"},
		{"array of uint64", func(set func(string, any)) { set("attention.head_count", []uint64{4, 4, 4}) },
			"llama.attention.head_count"},
		{"string", func(set func(string, any)) { set("attention.head_count", "4") },
			"llama.attention.head_count"},
		{"too many values in one block", func(set func(string, any)) {
			set("attention.head_count", []uint32{4, 4096, 4})
			set("attention.head_count_kv", []uint32{2, 1, 2})
			set("attention.key_length", uint32(32))
		}, "4096 heads of 32 values are more than 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(t, configFile(t, tt.edit))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzConfig checks that ConfigFromGGUF never panics and that whatever it
// accepts is consistent: every block's widths are positive, at most the
// largest, with whole groups of heads.
func FuzzConfig(f *testing.F) {
	f.Add(configFile(f, nil))
	f.Add(configFile(f, func(set func(string, any)) {
		set("feed_forward_length", []uint32{48, 7, 100})
		set("attention.head_count", []uint32{4, 2, 6})
		set("attention.head_count_kv", []int32{2, 1, 3})
		set("attention.key_length", uint32(8))
	}))
	f.Add(configFile(f, func(set func(string, any)) { set("attention.head_count_kv", []uint32{2, 4, 1}) }))
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := gguf.Parse(in)
		if err != nil {
			return
		}
		c, err := engine.ConfigFromGGUF(file)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "engine: ") && !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error without a prefix: %v", err)
			}
			return
		}
		if c.HeadDim < 2 || c.HeadDim%2 != 0 || c.QDim() > 1<<16 {
			t.Fatalf("head size %d, %d heads", c.HeadDim, c.Heads)
		}
		var hidden, heads, kv int
		for l := range c.Layers {
			h, q, k := c.HiddenOf(l), c.HeadsOf(l), c.KVHeadsOf(l)
			if h < 1 || h > c.HiddenDim || q < 1 || q > c.Heads || k < 1 || k > c.KVHeads || q%k != 0 {
				t.Fatalf("block %d: %d neurons, %d heads, %d key/value heads; largest %d, %d, %d", l, h, q, k, c.HiddenDim, c.Heads, c.KVHeads)
			}
			hidden, heads, kv = max(hidden, h), max(heads, q), max(kv, k)
		}
		if hidden != c.HiddenDim || heads != c.Heads || kv != c.KVHeads {
			t.Fatalf("largest widths %d, %d, %d; the config says %d, %d, %d", hidden, heads, kv, c.HiddenDim, c.Heads, c.KVHeads)
		}
	})
}

// TestConfigSetGGUF checks that ConfigFromGGUF reads back what SetGGUF
// writes, for uniform models of both architectures, blocks of different
// widths and heads narrower than the embedding.
func TestConfigSetGGUF(t *testing.T) {
	base := engine.Config{Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 8,
		VocabSize: 100, ContextLen: 64, NormEps: 1e-6, RopeBase: 500000}
	qwen := base
	qwen.Arch, qwen.RopeNeox, qwen.QKVBias = "qwen2", true, true
	narrow := base
	narrow.Heads, narrow.KVHeads = 2, 1 // 2 heads of 8: 16 < Dim
	tests := []struct {
		name                  string
		c                     engine.Config
		hidden, heads, groups []int
	}{
		{name: "llama", c: base},
		{name: "qwen2", c: qwen},
		{name: "narrow heads", c: narrow},
		{name: "per block", c: base, hidden: []int{48, 16, 32}, heads: []int{4, 2, 4}, groups: []int{2, 1, 2}},
		{name: "per block FFN only", c: base, hidden: []int{8, 48, 48}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.c
			if err := want.SetBlockWidths(tt.hidden, tt.heads, tt.groups); err != nil {
				t.Fatal(err)
			}
			b := gguf.NewBuilder()
			want.SetGGUF(b)
			var buf bytes.Buffer
			if _, err := b.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			got, err := parseConfig(t, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			got.VocabSize = want.VocabSize // from the embedding's rows, not a key
			if got.PerLayer() != want.PerLayer() {
				t.Fatalf("PerLayer %v, want %v", got.PerLayer(), want.PerLayer())
			}
			for l := range want.Layers {
				if got.HiddenOf(l) != want.HiddenOf(l) || got.HeadsOf(l) != want.HeadsOf(l) || got.KVHeadsOf(l) != want.KVHeadsOf(l) {
					t.Errorf("block %d: widths %d/%d/%d, want %d/%d/%d", l, got.HiddenOf(l), got.HeadsOf(l), got.KVHeadsOf(l),
						want.HiddenOf(l), want.HeadsOf(l), want.KVHeadsOf(l))
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

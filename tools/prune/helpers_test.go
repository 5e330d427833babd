package prune_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/llama2c"
	"wisp/internal/synth"
	"wisp/tools/eval"
	"wisp/tools/prune"
)

// Small random models: llama with grouped-query attention and an untied
// classifier, and qwen2 with its attention biases. Heads of 8 values make
// every group a whole number of the kernels' 8-lane blocks.
var (
	llamaGQA = synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 3, Heads: 8, KVHeads: 2, Vocab: 300, ContextLen: 128, RopeBase: 10000}
	qwen2    = synth.Shape{Arch: "qwen2", Dim: 48, HiddenDim: 80, Layers: 3, Heads: 6, KVHeads: 3, Vocab: 300, ContextLen: 128, RopeBase: 1e6, Tied: true}
)

// synthModel returns the bytes of a random model.
func synthModel(t testing.TB, s synth.Shape, typ gguf.TensorType) []byte {
	t.Helper()
	buf, err := synth.Bytes(s, synth.Options{Type: typ, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// stories returns stories260K as GGUF bytes of the type (a fresh copy).
func stories(t testing.TB, typ gguf.TensorType) []byte {
	t.Helper()
	b, err := llama2c.Stories260K(typ)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit parses a copy of an F32 model and lets f change its tensors in
// place, returning the new bytes.
func edit(t testing.TB, data []byte, f func(tensor func(name string) []float32)) []byte {
	t.Helper()
	data = slices.Clone(data)
	file, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	f(func(name string) []float32 {
		tt, ok := file.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %q", name)
		}
		w, err := tt.F32()
		if err != nil {
			t.Fatal(err)
		}
		return w
	})
	return data
}

// zeroCols zeroes columns of a rows×cols matrix.
func zeroCols(w []float32, cols int, which []int) {
	for r := 0; r < len(w)/cols; r++ {
		for _, c := range which {
			w[r*cols+c] = 0
		}
	}
}

// zeroRows zeroes rows of a matrix of cols columns.
func zeroRows(w []float32, cols int, which []int) {
	for _, r := range which {
		clear(w[r*cols : (r+1)*cols])
	}
}

// span returns [lo, hi).
func span(lo, hi int) []int {
	var v []int
	for i := lo; i < hi; i++ {
		v = append(v, i)
	}
	return v
}

// except returns [0, n) without the given indices.
func except(n int, drop []int) []int {
	var v []int
	for i := range n {
		if !slices.Contains(drop, i) {
			v = append(v, i)
		}
	}
	return v
}

func load(t testing.TB, data []byte) *engine.Model {
	t.Helper()
	m, err := engine.Load(slices.Clone(data))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func source(t testing.TB, data []byte) *prune.Source {
	t.Helper()
	s, err := prune.Load(slices.Clone(data))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prompt is a fixed sequence of n tokens starting with BOS.
func prompt(m *engine.Model, n int) []int {
	ids := []int{m.Tokenizer.BOS()}
	for i := 1; i < n; i++ {
		ids = append(ids, 3+(i*37+11)%(m.VocabSize-3))
	}
	return ids
}

// logits returns the logits after every token of ids.
func logits(t testing.TB, m *engine.Model, ids []int) []float32 {
	t.Helper()
	st, err := m.NewState(len(ids))
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for i := 0; i < len(ids); i += engine.MaxBatch {
		l, err := st.ForwardAll(ids[i:min(len(ids), i+engine.MaxBatch)])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l...)
	}
	return out
}

// sameBits reports the first logit that differs in its bits.
func sameBits(t testing.TB, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d logits, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d = %v, want %v to the bit", i, got[i], want[i])
		}
	}
}

// near checks that logits agree within a small tolerance, and reports the
// largest difference.
func near(t testing.TB, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d logits, want %d", len(got), len(want))
	}
	var worst float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		worst = max(worst, d)
		if !(d <= 1e-4*(1+math.Abs(float64(want[i])))) {
			t.Fatalf("logit %d = %v, want %v", i, got[i], want[i])
		}
	}
	return worst
}

// storyTexts are calibration and held-out stories sampled from
// stories260K, made once for all tests.
var storyTexts = sync.OnceValues(func() ([2]string, error) {
	data, err := llama2c.Stories260K(gguf.F32)
	if err != nil {
		return [2]string{}, err
	}
	m, err := engine.Load(data)
	if err != nil {
		return [2]string{}, err
	}
	opt := func(seed uint64) option.Options {
		return option.Options{Context: 256, Temperature: 1, Seed: seed}
	}
	calib, err := eval.Samples(m, 12, opt(1000))
	if err != nil {
		return [2]string{}, err
	}
	held, err := eval.Samples(m, 5, opt(1))
	return [2]string{calib, held}, err
})

func calibText(t testing.TB) (calib, held string) {
	t.Helper()
	s, err := storyTexts()
	if err != nil {
		t.Fatal(err)
	}
	return s[0], s[1]
}

// checkShapes checks every tensor of a GGUF file against the dimensions
// its metadata gives, independently of the engine, and the pruning
// history against them.
func checkShapes(t testing.TB, data []byte) {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	must := func(v uint64, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	arch, err := f.String("general.architecture")
	if err != nil {
		t.Fatal(err)
	}
	a := arch + "."
	dim := must(f.Uint(a + "embedding_length"))
	layers := must(f.Uint(a + "block_count"))
	// widths reads a width that is one number, or an array of one per
	// block whose entries differ (an array is written only then).
	perLayer := false
	widths := func(key string) []int {
		t.Helper()
		out := make([]int, layers)
		if v, err := f.Int32s(a + key); err == nil {
			if len(v) != layers {
				t.Fatalf("%s has %d entries for %d blocks", key, len(v), layers)
			}
			if slices.Min(v) == slices.Max(v) {
				t.Errorf("%s is an array of equal widths %v; a single number says it", key, v)
			}
			for i, x := range v {
				out[i] = int(x)
			}
			perLayer = true
			return out
		}
		n := must(f.Uint(a + key))
		for i := range out {
			out[i] = n
		}
		return out
	}
	ffs, headss, kvs := widths("feed_forward_length"), widths("attention.head_count"), widths("attention.head_count_kv")
	hd := dim / headss[0]
	if _, ok := f.Value(a + "attention.key_length"); ok {
		hd = must(f.Uint(a + "attention.key_length"))
		if v := must(f.Uint(a + "attention.value_length")); v != hd {
			t.Errorf("value_length %d, key_length %d", v, hd)
		}
	} else if slices.Min(headss) != slices.Max(headss) || headss[0]*hd != dim {
		t.Errorf("%v heads of %d values for an embedding length %d, and key_length is missing", headss, hd, dim)
	}
	if _, ok := f.Value(a + "rope.dimension_count"); ok {
		if v := must(f.Uint(a + "rope.dimension_count")); v != hd {
			t.Errorf("rope.dimension_count %d, head size %d", v, hd)
		}
	}
	if flag, err := f.Bool("wisp.prune.per_layer"); perLayer && (err != nil || !flag) {
		t.Errorf("per-layer widths but wisp.prune.per_layer = %v, %v", flag, err)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		t.Fatal(err)
	}
	vocab := len(tokens)
	want := map[string][]uint64{
		"token_embd.weight":  {uint64(dim), uint64(vocab)},
		"output_norm.weight": {uint64(dim)},
	}
	d := uint64(dim)
	for l := range layers {
		p := fmt.Sprintf("blk.%d.", l)
		q, k, h := uint64(headss[l]*hd), uint64(kvs[l]*hd), uint64(ffs[l])
		if headss[l]%kvs[l] != 0 {
			t.Errorf("block %d: %d heads in %d groups", l, headss[l], kvs[l])
		}
		want[p+"attn_norm.weight"] = []uint64{d}
		want[p+"attn_q.weight"] = []uint64{d, q}
		want[p+"attn_k.weight"] = []uint64{d, k}
		want[p+"attn_v.weight"] = []uint64{d, k}
		want[p+"attn_output.weight"] = []uint64{q, d}
		want[p+"ffn_norm.weight"] = []uint64{d}
		want[p+"ffn_gate.weight"] = []uint64{d, h}
		want[p+"ffn_up.weight"] = []uint64{d, h}
		want[p+"ffn_down.weight"] = []uint64{h, d}
		if arch == "qwen2" {
			want[p+"attn_q.bias"] = []uint64{q}
			want[p+"attn_k.bias"] = []uint64{k}
			want[p+"attn_v.bias"] = []uint64{k}
		}
	}
	var elems uint64
	for _, tt := range f.Tensors {
		elems += tt.Elements()
		w, ok := want[tt.Name]
		if tt.Name == "output.weight" {
			w, ok = []uint64{d, uint64(vocab)}, true
		}
		if !ok {
			t.Errorf("unexpected tensor %q", tt.Name)
			continue
		}
		if !slices.Equal(tt.Dims, w) {
			t.Errorf("tensor %q has dims %v, the metadata says %v", tt.Name, tt.Dims, w)
		}
		delete(want, tt.Name)
	}
	for name := range want {
		t.Errorf("tensor %q is missing", name)
	}

	// The history.
	if _, ok := f.Value("wisp.prune.method"); !ok {
		return
	}
	if v := must(f.Uint("wisp.prune.params_after")); v != int(elems) {
		t.Errorf("params_after %d, the tensors hold %d", v, elems)
	}
	sha, err := f.String("wisp.prune.source_sha256")
	if err != nil || len(sha) != 64 {
		t.Errorf("source_sha256 %q, %v", sha, err)
	}
	// indices checks a history key that lists, block after block, the
	// indices kept: per[b] of them, increasing, below below.
	indices := func(key string, per []int, below int) {
		t.Helper()
		v, err := f.Int32s(key)
		if errors.Is(err, gguf.ErrMissing) {
			if slices.Min(per) != below {
				t.Errorf("%s is missing but %v of %d are kept", key, per, below)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range per {
			total += n
		}
		if len(v) != total {
			t.Fatalf("%s has %d entries, want %v", key, len(v), per)
		}
		for _, n := range per {
			row := v[:n]
			v = v[n:]
			for i, x := range row {
				if x < 0 || int(x) >= below || (i > 0 && x <= row[i-1]) {
					t.Fatalf("%s: %v is not increasing indices below %d", key, row, below)
				}
			}
		}
	}
	indices("wisp.prune.ffn_kept", ffs, must(f.Uint("wisp.prune.feed_forward_length_before")))
	indices("wisp.prune.groups_kept", kvs, must(f.Uint("wisp.prune.head_count_kv_before")))
	before := must(f.Uint("wisp.prune.block_count_before"))
	indices("wisp.prune.layers_kept", []int{layers}, before)
	if layers < before {
		kept, _ := f.Int32s("wisp.prune.layers_kept")
		removed, err := f.Int32s("wisp.prune.layers_removed")
		if err != nil || len(kept)+len(removed) != before {
			t.Errorf("layers_kept %v and layers_removed %v (%v) do not make %d blocks", kept, removed, err, before)
		}
	}
}

package prune_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
	"wisp/tools/eval"
	"wisp/tools/prune"
)

// models are the models the tests prune.
func models(t *testing.T) []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"stories260K-f32", stories(t, gguf.F32)},
		{"stories260K-f16", stories(t, gguf.F16)},
		{"llama-gqa-f16", synthModel(t, llamaGQA, gguf.F16)},
		{"qwen2-f32", synthModel(t, qwen2, gguf.F32)},
	}
}

// TestPrunedLoads prunes every model to several targets and checks that
// the result loads, runs, has the shapes its metadata says, keeps the
// tensor types and records its history.
func TestPrunedLoads(t *testing.T) {
	calib, _ := calibText(t)
	calib = calib[:2000]
	targets := []prune.Targets{
		{FFN: 0.5},
		{Heads: 0.5},
		{Layers: 0.6},
		{FFN: 0.7, Heads: 0.5, Layers: 0.7},
		{Params: 0.75},
		{Params: 0.4},
	}
	for _, mod := range models(t) {
		src := source(t, mod.data)
		sc, err := src.Score(prune.Wanda, calib, prune.ScoreOptions{MaxTokens: 300})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			t.Run(fmt.Sprintf("%s/%+v", mod.name, tg), func(t *testing.T) {
				sh, err := src.Plan(tg, prune.Wanda)
				if err != nil {
					t.Fatal(err)
				}
				sel, err := sc.Select(sh)
				if err != nil {
					t.Fatal(err)
				}
				out, err := src.Apply(sel)
				if err != nil {
					t.Fatal(err)
				}
				checkShapes(t, out)
				if size, err := src.FileSize(sh, prune.Wanda); err != nil || size != int64(len(out)) {
					t.Errorf("FileSize %d, %v; the file has %d bytes", size, err, len(out))
				}
				m := load(t, out)
				if m.Layers != sh.Layers || m.KVHeads != sh.Groups || m.HiddenDim != sh.FFN {
					t.Errorf("loaded %d blocks, %d groups, %d neurons; planned %+v", m.Layers, m.KVHeads, m.HiddenDim, sh)
				}
				if got := m.Params(); got != src.Params(sh) {
					t.Errorf("%d parameters, Params said %d", got, src.Params(sh))
				}
				for _, l := range logits(t, m, prompt(m, 20)) {
					if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
						t.Fatalf("logit %v", l)
					}
				}
				f, _ := gguf.Parse(out)
				for _, tt := range f.Tensors {
					orig, ok := src.Model.File.Tensor(tt.Name)
					if ok && orig.Type != tt.Type {
						t.Errorf("tensor %q is %v, was %v", tt.Name, tt.Type, orig.Type)
					}
				}
				method, _ := f.String("wisp.prune.method")
				cs, _ := f.String("wisp.prune.calibration_sha256")
				sha, _ := f.String("wisp.prune.source_sha256")
				if method != "wanda" || cs != sc.CalibSHA256 || sha != src.SHA256 {
					t.Errorf("history: method %q, calibration %q, source %q", method, cs, sha)
				}
				// Everything else is copied.
				for _, kv := range src.Model.File.KV {
					if strings.HasPrefix(kv.Key, "tokenizer.") || strings.HasPrefix(kv.Key, "general.") {
						if v, ok := f.Value(kv.Key); !ok || fmt.Sprint(v) != fmt.Sprint(kv.Value) {
							t.Errorf("key %q was not copied", kv.Key)
						}
					}
				}
			})
		}
	}
}

// TestNothingPruned checks that keeping everything gives the original
// logits to the bit.
func TestNothingPruned(t *testing.T) {
	for _, mod := range models(t) {
		want := logits(t, load(t, mod.data), prompt(load(t, mod.data), 40))
		for _, tg := range []prune.Targets{{}, {FFN: 1, Heads: 1, Layers: 1}, {Params: 1}} {
			src := source(t, mod.data)
			sh, err := src.Plan(tg, prune.Magnitude)
			if err != nil {
				t.Fatal(err)
			}
			if sh != src.Full() {
				t.Errorf("%s: %+v planned %+v, want the full %+v", mod.name, tg, sh, src.Full())
			}
			sc, err := src.Score(prune.Magnitude, "", prune.ScoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sel, err := sc.Select(sh)
			if err != nil {
				t.Fatal(err)
			}
			out, err := src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			m := load(t, out)
			sameBits(t, logits(t, m, prompt(m, 40)), want)
		}
	}
}

// TestDeadNeurons prunes feed-forward neurons whose column of the down
// matrix is zero, so that they add nothing: the logits must not change.
// When the neurons are the last ones of each block, and the rest a whole
// number of 8-lane blocks, the sums are the same to the bit.
func TestDeadNeurons(t *testing.T) {
	for _, s := range []struct {
		name  string
		data  []byte
		exact bool
		dead  func(l int) []int
	}{
		{"llama-trailing", synthModel(t, llamaGQA, gguf.F32), true, func(int) []int { return span(80, 96) }},
		{"llama-scattered", synthModel(t, llamaGQA, gguf.F32), false, func(l int) []int { return []int{l, 17 + l, 40, 41, 63 - 2*l, 95 - l} }},
		{"qwen2-trailing", synthModel(t, qwen2, gguf.F32), true, func(int) []int { return span(72, 80) }},
		{"qwen2-scattered", synthModel(t, qwen2, gguf.F32), false, func(l int) []int { return []int{3 * l, 30 + l, 79 - l} }},
		{"stories-scattered", stories(t, gguf.F32), false, func(l int) []int { return []int{l, 50 + l, 100 + 3*l, 171 - l} }},
	} {
		t.Run(s.name, func(t *testing.T) {
			layers := load(t, s.data).Layers
			hidden := load(t, s.data).HiddenDim
			data := edit(t, s.data, func(tensor func(string) []float32) {
				for l := range layers {
					zeroCols(tensor(fmt.Sprintf("blk.%d.ffn_down.weight", l)), hidden, s.dead(l))
				}
			})
			orig := load(t, data)
			ids := prompt(orig, 40)
			want := logits(t, orig, ids)
			src := source(t, data)
			sel := prune.Selection{Layers: span(0, layers)}
			for l := range layers {
				sel.FFN = append(sel.FFN, except(hidden, s.dead(l)))
				sel.Groups = append(sel.Groups, span(0, src.Full().Groups))
			}
			out, err := src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			checkShapes(t, out)
			m := load(t, out)
			if s.exact {
				sameBits(t, logits(t, m, ids), want)
			} else {
				t.Logf("largest difference %.3g", near(t, logits(t, m, ids), want))
			}
		})
	}
}

// TestDeadUnitsScoreLowest checks that both methods drop neurons and
// groups whose weights are all zero, and a block that does nothing.
func TestDeadUnitsScoreLowest(t *testing.T) {
	base := synthModel(t, llamaGQA, gguf.F32)
	c := llamaGQA
	hd := c.Dim / c.Heads
	qPer := c.Heads / c.KVHeads * hd
	deadFFN := func(l int) []int { return []int{l, 30 + l, 64 + 2*l} }
	data := edit(t, base, func(tensor func(string) []float32) {
		for l := range c.Layers {
			p := fmt.Sprintf("blk.%d.", l)
			zeroRows(tensor(p+"ffn_gate.weight"), c.Dim, deadFFN(l))
			zeroRows(tensor(p+"ffn_up.weight"), c.Dim, deadFFN(l))
			zeroCols(tensor(p+"ffn_down.weight"), c.HiddenDim, deadFFN(l))
			g := l % c.KVHeads // the dead group
			zeroRows(tensor(p+"attn_q.weight"), c.Dim, span(g*qPer, (g+1)*qPer))
			zeroRows(tensor(p+"attn_k.weight"), c.Dim, span(g*hd, (g+1)*hd))
			zeroRows(tensor(p+"attn_v.weight"), c.Dim, span(g*hd, (g+1)*hd))
			zeroCols(tensor(p+"attn_output.weight"), c.Dim, span(g*qPer, (g+1)*qPer))
		}
		// Block 1 adds nothing to the stream.
		clear(tensor("blk.1.attn_output.weight"))
		clear(tensor("blk.1.ffn_down.weight"))
	})
	want := logits(t, load(t, data), prompt(load(t, data), 30))
	src := source(t, data)
	for _, method := range []prune.Method{prune.Wanda, prune.Magnitude} {
		sc, err := src.Score(method, "the cat sat on the mat and the dog ran to the park", prune.ScoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sel, err := sc.Select(prune.Shape{Layers: 2, Groups: 1, FFN: c.HiddenDim - 3})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sel.Layers, []int{0, 2}) {
			t.Errorf("%s kept blocks %v, want [0 2]", method, sel.Layers)
		}
		for i, l := range sel.Layers {
			if want := except(c.HiddenDim, deadFFN(l)); !slices.Equal(sel.FFN[i], want) {
				t.Errorf("%s block %d kept neurons %v, want %v", method, l, sel.FFN[i], want)
			}
			if want := []int{1 - l%c.KVHeads}; !slices.Equal(sel.Groups[i], want) {
				t.Errorf("%s block %d kept groups %v, want %v", method, l, sel.Groups[i], want)
			}
		}
		// Only the dropped block and neurons go: the logits stay close
		// (not bit-equal: the dead units sit between live ones).
		sel.Groups = [][]int{{0, 1}, {0, 1}}
		out, err := src.Apply(sel)
		if err != nil {
			t.Fatal(err)
		}
		m := load(t, out)
		near(t, logits(t, m, prompt(m, 30)), want)
		f, _ := gguf.Parse(out)
		if r, _ := f.Int32s("wisp.prune.layers_removed"); !slices.Equal(r, []int32{1}) {
			t.Errorf("layers_removed %v, want [1]", r)
		}
	}
}

// TestDroppedBlockExact checks that dropping a block that adds nothing
// leaves the logits unchanged to the bit.
func TestDroppedBlockExact(t *testing.T) {
	for _, base := range [][]byte{synthModel(t, qwen2, gguf.F32), stories(t, gguf.F32)} {
		data := edit(t, base, func(tensor func(string) []float32) {
			clear(tensor("blk.2.attn_output.weight"))
			clear(tensor("blk.2.ffn_down.weight"))
		})
		orig := load(t, data)
		want := logits(t, orig, prompt(orig, 40))
		src := source(t, data)
		sc, err := src.Score(prune.Wanda, "Once upon a time, there was a little girl named Lily.", prune.ScoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sh, err := src.Plan(prune.Targets{Layers: float64(orig.Layers-1) / float64(orig.Layers)}, prune.Wanda)
		if err != nil {
			t.Fatal(err)
		}
		sel, err := sc.Select(sh)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(sel.Layers, 2) || len(sel.Layers) != orig.Layers-1 {
			t.Fatalf("kept blocks %v; block 2 does nothing", sel.Layers)
		}
		out, err := src.Apply(sel)
		if err != nil {
			t.Fatal(err)
		}
		checkShapes(t, out)
		m := load(t, out)
		sameBits(t, logits(t, m, prompt(m, 40)), want)
	}
}

// TestHeadPruning checks that a model without some key/value groups
// computes what the original computes with those groups' columns of the
// output matrix zeroed. When a group's columns are a whole number of the
// kernels' 8-lane blocks (heads of 8 values or more, as in real models),
// every remaining product lands in the same lane as before and the sums
// agree to the bit; heads of 4 values agree within rounding.
func TestHeadPruning(t *testing.T) {
	mha := synth.Shape{Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 2, Heads: 8, KVHeads: 8, Vocab: 300, ContextLen: 64, RopeBase: 10000, Tied: true}
	for _, s := range []struct {
		name string
		data []byte
		drop func(l int) []int
	}{
		{"llama-last", synthModel(t, llamaGQA, gguf.F32), func(int) []int { return []int{1} }},
		{"llama-first", synthModel(t, llamaGQA, gguf.F32), func(int) []int { return []int{0} }},
		{"qwen2-last", synthModel(t, qwen2, gguf.F32), func(int) []int { return []int{2} }},
		{"qwen2-varied", synthModel(t, qwen2, gguf.F32), func(l int) []int { return []int{l % 3} }},
		{"stories-last2", stories(t, gguf.F32), func(int) []int { return []int{2, 3} }},
		{"stories-varied", stories(t, gguf.F32), func(l int) []int { return []int{l % 4, (l + 2) % 4} }},
		{"mha-heads-of-4", synthModel(t, mha, gguf.F32), func(l int) []int { return []int{1, 4 + l, 6} }},
	} {
		t.Run(s.name, func(t *testing.T) {
			src := source(t, s.data)
			c := src.Model.Config
			width := c.Heads / c.KVHeads * c.HeadDim
			data := edit(t, s.data, func(tensor func(string) []float32) {
				for l := range c.Layers {
					var cols []int
					for _, g := range s.drop(l) {
						cols = append(cols, span(g*width, (g+1)*width)...)
					}
					zeroCols(tensor(fmt.Sprintf("blk.%d.attn_output.weight", l)), c.QDim(), cols)
				}
			})
			ref := load(t, data)
			ids := prompt(ref, 40)
			want := logits(t, ref, ids)
			sel := prune.Selection{Layers: span(0, c.Layers)}
			for l := range c.Layers {
				sel.FFN = append(sel.FFN, span(0, c.HiddenDim))
				sel.Groups = append(sel.Groups, except(c.KVHeads, s.drop(l)))
			}
			out, err := src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			checkShapes(t, out)
			m := load(t, out)
			if m.QDim() == m.Dim || m.HeadDim != c.HeadDim {
				t.Fatalf("pruned model has %d heads of %d values for a stream of %d", m.Heads, m.HeadDim, m.Dim)
			}
			if width%8 == 0 {
				sameBits(t, logits(t, m, ids), want)
			} else {
				t.Logf("largest difference %.3g", near(t, logits(t, m, ids), want))
			}
		})
	}
}

// TestBudget checks that budget plans land at or just under the budget:
// one more neuron per block would exceed it.
func TestBudget(t *testing.T) {
	f32, f16 := source(t, stories(t, gguf.F32)), source(t, stories(t, gguf.F16))
	total := f32.Model.Params()
	for _, c := range []struct {
		src    *prune.Source
		tg     prune.Targets
		budget int64
		bytes  bool
	}{
		{f32, prune.Targets{Params: 0.9}, int64(0.9 * float64(total)), false},
		{f32, prune.Targets{Params: 0.75}, int64(0.75 * float64(total)), false},
		{f32, prune.Targets{Params: 0.6}, int64(0.6 * float64(total)), false},
		{f32, prune.Targets{Params: 0.3}, int64(0.3 * float64(total)), false},
		{f32, prune.Targets{Params: 200000}, 200000, false},
		{f16, prune.Targets{Params: 0.5}, int64(0.5 * float64(total)), false},
		{f16, prune.Targets{Bytes: 400000}, 400000, true},
		{f32, prune.Targets{Bytes: 600000}, 600000, true},
	} {
		sh, err := c.src.Plan(c.tg, prune.Wanda)
		if err != nil {
			t.Fatalf("%+v: %v", c.tg, err)
		}
		measure := func(sh prune.Shape) int64 {
			if !c.bytes {
				return c.src.Params(sh)
			}
			n, err := c.src.FileSize(sh, prune.Wanda)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		got := measure(sh)
		t.Logf("%+v: %+v, %d of a budget of %d", c.tg, sh, got, c.budget)
		if got > c.budget {
			t.Errorf("%+v: plan %+v measures %d, over the budget of %d", c.tg, sh, got, c.budget)
		}
		if more := (prune.Shape{Layers: sh.Layers, Groups: sh.Groups, FFN: sh.FFN + 1}); sh.FFN < c.src.Full().FFN && measure(more) <= c.budget {
			t.Errorf("%+v: plan %+v leaves room for %+v", c.tg, sh, more)
		}
		// Width first: blocks go only when a quarter of the width is too
		// much.
		full := c.src.Full()
		if sh.Layers < full.Layers && measure(prune.Shape{Layers: sh.Layers + 1, Groups: 1, FFN: full.FFN / 4}) <= c.budget {
			t.Errorf("%+v: plan %+v drops a block needlessly", c.tg, sh)
		}
		if c.bytes {
			sc, err := c.src.Score(prune.Magnitude, "", prune.ScoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sel, _ := sc.Select(sh)
			sel.Method, sel.CalibSHA256 = prune.Wanda, strings.Repeat("ab", 32)
			out, err := c.src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(out)) != got {
				t.Errorf("%+v: the file has %d bytes, FileSize said %d", c.tg, len(out), got)
			}
		}
	}
}

// TestWandaBeatsMagnitude prunes stories260K to the same shapes by both
// methods and compares their divergence from the original on held-out
// stories.
func TestWandaBeatsMagnitude(t *testing.T) {
	calib, held := calibText(t)
	src := source(t, stories(t, gguf.F32))
	wanda, err := src.Score(prune.Wanda, calib, prune.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mag, err := src.Score(prune.Magnitude, "", prune.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := src.Plan(prune.Targets{Params: 0.75}, prune.Wanda)
	if err != nil {
		t.Fatal(err)
	}
	kl := func(sc *prune.Scores) eval.Result {
		sel, err := sc.Select(sh)
		if err != nil {
			t.Fatal(err)
		}
		out, err := src.Apply(sel)
		if err != nil {
			t.Fatal(err)
		}
		r, err := eval.Compare(src.Model, load(t, out), held, eval.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	w, m := kl(wanda), kl(mag)
	t.Logf("%+v on %d held-out tokens after %d calibration tokens: KL wanda %.4f, magnitude %.4f (%.0f%% lower); top-1 %.3f vs %.3f",
		sh, w.Tokens, wanda.Tokens, w.KL, m.KL, 100*(1-w.KL/m.KL), w.Top1, m.Top1)
	if !(w.KL < m.KL) {
		t.Errorf("Wanda's KL %.4f is not below magnitude's %.4f", w.KL, m.KL)
	}
}

// TestErrors checks that bad targets, methods, texts and selections give
// errors that say what is wrong.
func TestErrors(t *testing.T) {
	src := source(t, stories(t, gguf.F32))
	for _, c := range []struct {
		tg   prune.Targets
		m    prune.Method
		want string
	}{
		{prune.Targets{FFN: -0.5}, prune.Wanda, "FFN fraction -0.5 is out of range"},
		{prune.Targets{Heads: 1.5}, prune.Wanda, "heads fraction 1.5 is out of range"},
		{prune.Targets{Layers: math.NaN()}, prune.Wanda, "layers fraction NaN is out of range"},
		{prune.Targets{Params: 1e9}, prune.Wanda, "more than the model's 260032"},
		{prune.Targets{Params: -3}, prune.Wanda, "not a positive number"},
		{prune.Targets{Params: math.Inf(1)}, prune.Wanda, "not a positive number"},
		{prune.Targets{Bytes: 1 << 40}, prune.Wanda, "more than the model's file"},
		{prune.Targets{Bytes: -1}, prune.Wanda, "negative"},
		{prune.Targets{Bytes: 1000}, prune.Wanda, "less than the"},
		{prune.Targets{Params: 0.01}, prune.Wanda, "budget of 2600 parameters is less than the"},
		{prune.Targets{Params: 0.5, Bytes: 1000}, prune.Wanda, "not both"},
		{prune.Targets{FFN: 0.5, Params: 0.5}, prune.Wanda, "not both"},
		{prune.Targets{FFN: 0.5}, "sparsegpt", `unknown method "sparsegpt"`},
	} {
		_, err := src.Plan(c.tg, c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan(%+v, %q) = %v, want an error containing %q", c.tg, c.m, err, c.want)
		}
	}
	for _, c := range []struct {
		m    prune.Method
		text string
		opt  prune.ScoreOptions
		want string
	}{
		{prune.Wanda, "", prune.ScoreOptions{}, "calibration text is empty"},
		{"", "text", prune.ScoreOptions{}, `unknown method ""`},
		{prune.Wanda, "text", prune.ScoreOptions{MaxTokens: -1}, "negative"},
		{prune.Wanda, "text", prune.ScoreOptions{Window: 1}, "window of 1 tokens"},
		{prune.Wanda, "text", prune.ScoreOptions{Window: 100000}, "window of 100000 tokens"},
	} {
		_, err := src.Score(c.m, c.text, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Score(%q, %q, %+v) = %v, want an error containing %q", c.m, c.text, c.opt, err, c.want)
		}
	}
	full := func() prune.Selection {
		return prune.Selection{Layers: span(0, 5), FFN: slices.Repeat([][]int{span(0, 172)}, 5), Groups: slices.Repeat([][]int{span(0, 4)}, 5)}
	}
	for _, c := range []struct {
		change func(*prune.Selection)
		want   string
	}{
		{func(s *prune.Selection) { s.Layers = []int{0, 2, 1, 3, 4} }, "not increasing"},
		{func(s *prune.Selection) { s.Layers = []int{0, 1, 2, 3, 5} }, "not increasing indices below 5"},
		{func(s *prune.Selection) { s.FFN[2] = span(0, 100) }, "must be uniform"},
		{func(s *prune.Selection) { s.Groups[0] = []int{0, 1, 2, 9} }, "groups of block 0"},
		{func(s *prune.Selection) { s.FFN = s.FFN[:4] }, "neurons for 4"},
		{func(s *prune.Selection) { s.Layers = nil; s.FFN = nil; s.Groups = nil }, "outside [1, 5]"},
		{func(s *prune.Selection) { s.Method = "random" }, `unknown method "random"`},
	} {
		sel := full()
		c.change(&sel)
		_, err := src.Apply(sel)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply: %v, want an error containing %q", err, c.want)
		}
	}
	sc, _ := src.Score(prune.Magnitude, "", prune.ScoreOptions{})
	if _, err := sc.Select(prune.Shape{Layers: 6, Groups: 1, FFN: 1}); err == nil {
		t.Error("Select of 6 blocks of 5 succeeded")
	}
	if _, err := sc.Select(prune.Shape{Layers: 5, Groups: 5, FFN: 1}); err == nil {
		t.Error("Select of 5 groups of 4 succeeded")
	}
	if _, err := prune.Load([]byte("GGUF nonsense")); err == nil || !strings.HasPrefix(err.Error(), "prune: gguf:") {
		t.Errorf("Load of nonsense: %v", err)
	}
	// A block tensor the pruner does not know.
	b, _ := engine.Load(stories(t, gguf.F32))
	b.File.Tensors[3].Name = "blk.0.attn_gate.weight"
	if _, err := prune.NewSource(b, "", 0); err == nil || !strings.Contains(err.Error(), `"blk.0.attn_gate.weight": wisp does not know how to prune it`) {
		t.Errorf("unknown tensor: %v", err)
	}
}

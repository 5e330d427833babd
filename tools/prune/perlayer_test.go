package prune_test

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
	"wisp/internal/fp16"
	"wisp/internal/synth"
	"wisp/tools/prune"
)

// widthsOf returns how many neurons and groups each block of a selection
// keeps.
func widthsOf(sel prune.Selection) (ffn, groups []int) {
	for i := range sel.Layers {
		ffn = append(ffn, len(sel.FFN[i]))
		groups = append(groups, len(sel.Groups[i]))
	}
	return ffn, groups
}

// TestPerLayerDeadUnits builds a model whose blocks differ in importance:
// half the neurons and three of the four groups of block 0 and a few
// neurons of block 1 are dead (all their weights zero), block 2 is whole.
// Pruning per layer to as many units as are alive must drop exactly the
// dead ones, so the blocks end up with different widths, and the logits
// stay those of the original; the uniform plan of the same size cannot.
func TestPerLayerDeadUnits(t *testing.T) {
	shape := synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 3, Heads: 8, KVHeads: 4, Vocab: 300, ContextLen: 128, RopeBase: 10000}
	hd, qPer := shape.Dim/shape.Heads, shape.Heads/shape.KVHeads*(shape.Dim/shape.Heads)
	deadFFN := [][]int{nil, {5, 17, 30, 31, 50, 63, 70, 88, 95}, nil}
	for j := 0; j < shape.HiddenDim; j += 2 {
		deadFFN[0] = append(deadFFN[0], j)
	}
	deadGroups := [][]int{{0, 2, 3}, nil, nil}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
		t.Run(typ.String(), func(t *testing.T) {
			data := edit(t, synthModel(t, shape, gguf.F32), func(tensor func(string) []float32) {
				for l := range shape.Layers {
					p := fmt.Sprintf("blk.%d.", l)
					zeroRows(tensor(p+"ffn_gate.weight"), shape.Dim, deadFFN[l])
					zeroRows(tensor(p+"ffn_up.weight"), shape.Dim, deadFFN[l])
					zeroCols(tensor(p+"ffn_down.weight"), shape.HiddenDim, deadFFN[l])
					for _, g := range deadGroups[l] {
						zeroRows(tensor(p+"attn_q.weight"), shape.Dim, span(g*qPer, (g+1)*qPer))
						zeroRows(tensor(p+"attn_k.weight"), shape.Dim, span(g*hd, (g+1)*hd))
						zeroRows(tensor(p+"attn_v.weight"), shape.Dim, span(g*hd, (g+1)*hd))
						zeroCols(tensor(p+"attn_output.weight"), shape.Dim, span(g*qPer, (g+1)*qPer))
					}
				}
			})
			if typ == gguf.F16 {
				data = toF16(t, data)
			}
			orig := load(t, data)
			ids := prompt(orig, 40)
			want := logits(t, orig, ids)
			src := source(t, data)
			// 231 of 288 neurons and 9 of 12 groups are alive: 77 and 3
			// per block in the uniform plan.
			tg := prune.Targets{FFN: 77.0 / 96, Heads: 0.75}
			for _, method := range []prune.Method{prune.Wanda, prune.Magnitude} {
				sc, err := src.Score(method, "the cat sat on the mat and the dog ran to the park", prune.ScoreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				sel, err := src.SelectPerLayer(sc, tg)
				if err != nil {
					t.Fatal(err)
				}
				if !sel.PerLayer || !slices.Equal(sel.Layers, []int{0, 1, 2}) {
					t.Fatalf("%s: PerLayer %v, blocks %v", method, sel.PerLayer, sel.Layers)
				}
				for l := range shape.Layers {
					if w := except(shape.HiddenDim, deadFFN[l]); !slices.Equal(sel.FFN[l], w) {
						t.Errorf("%s: block %d kept neurons %v, want the live %v", method, l, sel.FFN[l], w)
					}
					if w := except(shape.KVHeads, deadGroups[l]); !slices.Equal(sel.Groups[l], w) {
						t.Errorf("%s: block %d kept groups %v, want the live %v", method, l, sel.Groups[l], w)
					}
				}
				out, err := src.Apply(sel)
				if err != nil {
					t.Fatal(err)
				}
				checkShapes(t, out)
				m := load(t, out)
				if !m.PerLayer() || m.HiddenOf(0) != 48 || m.HiddenOf(1) != 87 || m.HiddenOf(2) != 96 ||
					m.KVHeadsOf(0) != 1 || m.KVHeadsOf(1) != 4 || m.HeadsOf(0) != 2 || m.HeadDim != hd {
					t.Errorf("%s: loaded blocks of %d, %d, %d neurons and %d, %d, %d groups of %d",
						method, m.HiddenOf(0), m.HiddenOf(1), m.HiddenOf(2), m.KVHeadsOf(0), m.KVHeadsOf(1), m.KVHeadsOf(2), m.HeadDim)
				}
				if got, wantP := m.Params(), src.Model.Params()-int64(57*3*64+3*(2*qPer+2*hd)*64); got != wantP {
					t.Errorf("%s: %d parameters, want %d", method, got, wantP)
				}
				near(t, logits(t, m, ids), want)
				f, _ := gguf.Parse(out)
				if v, err := f.Int32s("llama.feed_forward_length"); err != nil || !slices.Equal(v, []int32{48, 87, 96}) {
					t.Errorf("feed_forward_length %v, %v", v, err)
				}
				if v, err := f.Int32s("llama.attention.head_count"); err != nil || !slices.Equal(v, []int32{2, 8, 8}) {
					t.Errorf("head_count %v, %v", v, err)
				}
				generate(t, m)
			}

			// The uniform plan of the same size keeps dead units in block
			// 0 and drops live ones elsewhere.
			sc, _ := src.Score(prune.Magnitude, "", prune.ScoreOptions{})
			sh, err := src.Plan(tg, prune.Magnitude)
			if err != nil {
				t.Fatal(err)
			}
			sel, _ := sc.Select(sh)
			out, err := src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			m := load(t, out)
			var worst float64
			for i, v := range logits(t, m, ids) {
				worst = max(worst, math.Abs(float64(v)-float64(want[i])))
			}
			if worst < 1e-2 {
				t.Errorf("the uniform plan changes the logits by only %.3g", worst)
			}
		})
	}
}

// toF16 rewrites an F32 model with its matrices in half precision.
func toF16(t testing.TB, data []byte) []byte {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	b := gguf.NewBuilder()
	for _, kv := range f.KV {
		if kv.Key != gguf.AlignmentKey {
			b.Set(kv.Key, kv.Value)
		}
	}
	for _, tt := range f.Tensors {
		d := tt.Data
		typ := tt.Type
		if len(tt.Dims) == 2 {
			v, err := tt.F32()
			if err != nil {
				t.Fatal(err)
			}
			h, _ := fp16.FromFloat32(v)
			d, typ = gguf.F16Bytes(h), gguf.F16
		}
		if err := b.AddTensor(tt.Name, typ, tt.Dims, d); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// generate samples a few tokens from the model.
func generate(t testing.TB, m *engine.Model) {
	t.Helper()
	s, err := m.NewSession(option.Options{Context: 64, MaxTokens: 20, Temperature: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prompt("the cat"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := s.Next(); err != nil {
			break
		}
	}
	for _, l := range s.Logits() {
		if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
			t.Fatalf("logit %v", l)
		}
	}
}

// TestPerLayerBudget checks that per-layer selections meet the targets the
// uniform plan meets: the same blocks and groups in all, as many neurons
// as fit the budget (one more would not), and that the file loads.
func TestPerLayerBudget(t *testing.T) {
	calib, _ := calibText(t)
	f32, f16 := source(t, stories(t, gguf.F32)), source(t, stories(t, gguf.F16))
	scores := map[*prune.Source]*prune.Scores{}
	for _, src := range []*prune.Source{f32, f16} {
		sc, err := src.Score(prune.Wanda, calib, prune.ScoreOptions{MaxTokens: 400})
		if err != nil {
			t.Fatal(err)
		}
		scores[src] = sc
	}
	total := f32.Model.Params()
	dim := int64(f32.Model.Dim)
	// A budget the uniform plan fills to the byte, which the per-layer
	// metadata (arrays and wisp.prune.per_layer) would overflow.
	exact, err := f32.FileSize(prune.Shape{Layers: 5, Groups: 3, FFN: 120}, prune.Wanda)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src    *prune.Source
		tg     prune.Targets
		budget int64
		bytes  bool
	}{
		{f32, prune.Targets{Params: 0.9}, int64(0.9 * float64(total)), false},
		{f32, prune.Targets{Params: 0.75}, int64(0.75 * float64(total)), false},
		{f32, prune.Targets{Params: 0.3}, int64(0.3 * float64(total)), false},
		{f32, prune.Targets{Params: 200000}, 200000, false},
		{f16, prune.Targets{Params: 0.5}, int64(0.5 * float64(total)), false},
		{f16, prune.Targets{Bytes: 400000}, 400000, true},
		{f32, prune.Targets{Bytes: 600000}, 600000, true},
		{f32, prune.Targets{Bytes: exact}, exact, true},
		{f32, prune.Targets{FFN: 0.6, Heads: 0.5, Layers: 0.8}, 0, false},
	} {
		t.Run(fmt.Sprintf("%+v", c.tg), func(t *testing.T) {
			sh, err := c.src.Plan(c.tg, prune.Wanda)
			if err != nil {
				t.Fatal(err)
			}
			sel, err := c.src.SelectPerLayer(scores[c.src], c.tg)
			if err != nil {
				t.Fatal(err)
			}
			ffn, groups := widthsOf(sel)
			var nFFN, nGroups int
			for i := range ffn {
				nFFN += ffn[i]
				nGroups += groups[i]
			}
			uniform, _ := scores[c.src].Select(sh)
			if !slices.Equal(sel.Layers, uniform.Layers) || nGroups != sh.Layers*sh.Groups {
				t.Errorf("kept blocks %v and %d groups; the uniform plan %v and %d", sel.Layers, nGroups, uniform.Layers, sh.Layers*sh.Groups)
			}
			out, err := c.src.Apply(sel)
			if err != nil {
				t.Fatal(err)
			}
			checkShapes(t, out)
			m := load(t, out)
			t.Logf("plan %+v; per layer %d neurons %v, groups %v: %d parameters, %d bytes", sh, nFFN, ffn, groups, m.Params(), len(out))
			switch {
			case c.budget == 0: // fractions: the same totals
				if nFFN != sh.Layers*sh.FFN {
					t.Errorf("%d neurons, the uniform plan %d", nFFN, sh.Layers*sh.FFN)
				}
			case c.bytes:
				es := int64(4)
				if c.src == f16 {
					es = 2
				}
				// One more neuron adds 3·Dim values and an index.
				if n := int64(len(out)); n > c.budget || (nFFN < sh.Layers*172 && c.budget-n >= 3*dim*es+4+3*32) {
					t.Errorf("%d bytes for a budget of %d", n, c.budget)
				}
			default:
				if p := m.Params(); p > c.budget || (nFFN < sh.Layers*172 && c.budget-p >= 3*dim) {
					t.Errorf("%d parameters for a budget of %d", p, c.budget)
				}
				if m.Params() < c.src.Params(sh) {
					t.Errorf("%d parameters, fewer than the uniform plan's %d", m.Params(), c.src.Params(sh))
				}
			}
			generate(t, m)
		})
	}
}

// TestPerLayerErrors checks the errors of per-layer selections.
func TestPerLayerErrors(t *testing.T) {
	src := source(t, stories(t, gguf.F32))
	sc, _ := src.Score(prune.Magnitude, "", prune.ScoreOptions{})
	full := func() prune.Selection {
		return prune.Selection{Layers: span(0, 5), FFN: slices.Repeat([][]int{span(0, 172)}, 5), Groups: slices.Repeat([][]int{span(0, 4)}, 5)}
	}
	for _, c := range []struct {
		change func(*prune.Selection)
		want   string
	}{
		{func(s *prune.Selection) { s.FFN[2] = span(0, 100) }, "must be uniform unless PerLayer"},
		{func(s *prune.Selection) { s.Groups[4] = []int{1} }, "must be uniform unless PerLayer"},
		{func(s *prune.Selection) { s.PerLayer, s.FFN[2] = true, nil }, "keeps 0 neurons and 4 groups in block 2"},
		{func(s *prune.Selection) { s.PerLayer, s.Groups[1] = true, []int{} }, "keeps 172 neurons and 0 groups in block 1"},
		{func(s *prune.Selection) { s.PerLayer, s.FFN[3] = true, []int{5, 3} }, "neurons of block 3"},
		{func(s *prune.Selection) { s.PerLayer, s.Groups[0] = true, []int{4} }, "groups of block 0"},
	} {
		sel := full()
		c.change(&sel)
		_, err := src.Apply(sel)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply: %v, want an error containing %q", err, c.want)
		}
	}
	// The same non-uniform selection is fine per layer.
	sel := full()
	sel.PerLayer, sel.FFN[2], sel.Groups[4] = true, span(0, 100), []int{1}
	out, err := src.Apply(sel)
	if err != nil {
		t.Fatal(err)
	}
	checkShapes(t, out)

	if _, err := src.SelectPerLayer(nil, prune.Targets{FFN: 0.5}); err == nil {
		t.Error("SelectPerLayer without scores succeeded")
	}
	if _, err := src.SelectPerLayer(sc, prune.Targets{Params: 0.01}); err == nil || !strings.Contains(err.Error(), "less than the") {
		t.Errorf("SelectPerLayer of a tiny budget: %v", err)
	}
	other := source(t, synthModel(t, llamaGQA, gguf.F32))
	osc, _ := other.Score(prune.Magnitude, "", prune.ScoreOptions{})
	if _, err := src.SelectPerLayer(osc, prune.Targets{FFN: 0.5}); err == nil || !strings.Contains(err.Error(), "the model has 5 blocks") {
		t.Errorf("SelectPerLayer with another model's scores: %v", err)
	}

	// A model pruned per layer is not pruned again.
	if _, err := prune.Load(out); err == nil || !strings.Contains(err.Error(), "blocks differ in width") {
		t.Errorf("Load of a per-layer model: %v", err)
	}
}

// TestPerLayerScale checks that scores are compared across blocks
// relative to their block's: blocks whose scores differ only in scale keep
// as many units each, while a block whose weakest units are weaker than
// the rest of its scores suggest loses them first.
func TestPerLayerScale(t *testing.T) {
	src := source(t, synthModel(t, llamaGQA, gguf.F32))
	c := llamaGQA
	scores := func(scale []float64, weak int) *prune.Scores {
		sc := &prune.Scores{Method: prune.Magnitude, Layers: []float64{3, 2, 1}}
		for b, s := range scale {
			ffn := make([]float64, c.HiddenDim)
			for j := range ffn {
				ffn[j] = s * (1 + float64((j*37)%c.HiddenDim)/float64(c.HiddenDim))
				if b == 2 && j < weak {
					ffn[j] /= 1000
				}
			}
			sc.FFN = append(sc.FFN, ffn)
			sc.Groups = append(sc.Groups, []float64{s, 2 * s})
		}
		return sc
	}
	for _, tc := range []struct {
		name  string
		sc    *prune.Scores
		tg    prune.Targets
		ffn   []int
		group []int
	}{
		{"scaled alike", scores([]float64{1, 100, 0.01}, 0), prune.Targets{FFN: 0.5}, []int{48, 48, 48}, []int{2, 2, 2}},
		{"scaled alike, heads", scores([]float64{1e-3, 1, 1e3}, 0), prune.Targets{Heads: 0.5}, []int{96, 96, 96}, []int{1, 1, 1}},
		// 216 neurons kept in all: the 40 weak ones of block 2 go first,
		// then blocks 0 and 1, alike, share the rest of the cut.
		{"weak units in block 2", scores([]float64{1, 100, 0.01}, 40), prune.Targets{FFN: 0.75}, []int{80, 80, 56}, []int{2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := src.SelectPerLayer(tc.sc, tc.tg)
			if err != nil {
				t.Fatal(err)
			}
			ffn, groups := widthsOf(sel)
			t.Logf("neurons %v, groups %v", ffn, groups)
			if !slices.Equal(ffn, tc.ffn) || !slices.Equal(groups, tc.group) {
				t.Errorf("kept %v neurons and %v groups, want %v and %v", ffn, groups, tc.ffn, tc.group)
			}
			if !slices.Equal(sel.FFN[0], sel.FFN[1]) {
				t.Errorf("blocks 0 and 1, whose scores differ only in scale, kept different neurons")
			}
			if ffn[2] == 56 && !slices.Equal(sel.FFN[2], span(40, 96)) {
				t.Errorf("block 2 kept %v, not its strong neurons", sel.FFN[2])
			}
		})
	}
}

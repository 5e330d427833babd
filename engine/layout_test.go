package engine_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

func TestTensors(t *testing.T) {
	c := engine.Config{Arch: "qwen2", Dim: 8, HiddenDim: 12, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 2, VocabSize: 30, QKVBias: true}
	if err := c.SetBlockWidths([]int{12, 6}, []int{4, 2}, []int{2, 1}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Tensors(false) {
		got = append(got, fmt.Sprintf("%s %d %dx%d", s.Name, s.Layer, s.Rows, s.Cols))
	}
	block := func(l, q, kv, h int) []string {
		p := fmt.Sprintf("blk.%d.", l)
		return []string{
			fmt.Sprintf("%sattn_norm.weight %d 0x8", p, l), fmt.Sprintf("%sattn_q.weight %d %dx8", p, l, q),
			fmt.Sprintf("%sattn_k.weight %d %dx8", p, l, kv), fmt.Sprintf("%sattn_v.weight %d %dx8", p, l, kv),
			fmt.Sprintf("%sattn_q.bias %d 0x%d", p, l, q), fmt.Sprintf("%sattn_k.bias %d 0x%d", p, l, kv),
			fmt.Sprintf("%sattn_v.bias %d 0x%d", p, l, kv), fmt.Sprintf("%sattn_output.weight %d 8x%d", p, l, q),
			fmt.Sprintf("%sffn_norm.weight %d 0x8", p, l), fmt.Sprintf("%sffn_gate.weight %d %dx8", p, l, h),
			fmt.Sprintf("%sffn_up.weight %d %dx8", p, l, h), fmt.Sprintf("%sffn_down.weight %d 8x%d", p, l, h),
		}
	}
	want := []string{"token_embd.weight -1 30x8"}
	want = append(want, block(0, 8, 4, 12)...)
	want = append(want, block(1, 4, 2, 6)...)
	want = append(want, "output_norm.weight -1 0x8", "output.weight -1 30x8")
	if !slices.Equal(got, want) {
		t.Errorf("Tensors:\n%q\nwant\n%q", got, want)
	}
	if n := len(c.Tensors(true)); n != len(want)-1 {
		t.Errorf("tied: %d tensors, want %d (no output.weight)", n, len(want)-1)
	}
	if c.HiddenDim != 12 || c.Heads != 4 || c.KVHeads != 2 {
		t.Errorf("widths' maxima %d %d %d", c.HiddenDim, c.Heads, c.KVHeads)
	}
	if err := c.SetBlockWidths([]int{1}, nil, nil); err == nil {
		t.Error("SetBlockWidths took one width for two blocks")
	}
}

// TestTensorsAreTheFile checks that a file written from Tensors (by synth)
// loads, and that the loaded model's configuration lists the file's
// tensors, names and shapes, for uniform, per-layer, biased and tied shapes.
func TestTensorsAreTheFile(t *testing.T) {
	s := synth.Shapes()["stories260K"]
	perLayer := s
	perLayer.LayerHidden, perLayer.LayerHeads, perLayer.LayerKVHeads = []int{96, 48, 32, 64, 80}, []int{8, 4, 8, 2, 8}, []int{4, 2, 4, 2, 4}
	qwen := s
	qwen.Arch, qwen.Tied = "qwen2", true
	for name, shape := range map[string]synth.Shape{"uniform": s, "per layer": perLayer, "qwen2 tied": qwen} {
		t.Run(name, func(t *testing.T) {
			b, err := synth.Build(shape, synth.Options{Type: gguf.F32})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := b.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			m, err := engine.Load(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			file := map[string]string{}
			for _, ft := range m.File.Tensors {
				file[ft.Name] = fmt.Sprint(ft.Dims)
			}
			specs := m.Config.Tensors(shape.Tied)
			if len(specs) != len(file) {
				t.Errorf("%d specs, %d tensors in the file", len(specs), len(file))
			}
			for _, sp := range specs {
				if got, want := file[sp.Name], fmt.Sprint(sp.Dims()); got != want {
					t.Errorf("%s: the file has %s, Tensors says %s", sp.Name, got, want)
				}
			}
		})
	}
}

package retype

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/llama2c"
	"wisp/internal/synth"
	"wisp/tools/quant"
)

func write(t *testing.T, b *gguf.Builder) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRoundTrip converts stories260K F32 → F16 → F32 → F16 and checks that
// the F16 files are identical, that F16 → F32 is exact, and that the
// results load and agree with a direct F16 conversion.
func TestRoundTrip(t *testing.T) {
	src, err := llama2c.Stories260K(gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	f32, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	b, rep, err := Convert(f32, scheme(t, "f16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Total(); st.Values == 0 || st.MaxAbsErr == 0 || st.MaxAbsErr > 1e-3 {
		t.Errorf("stats %+v", st)
	}
	h1 := write(t, b)
	fh, err := gguf.Parse(h1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range fh.Tensors {
		if want := map[bool]gguf.TensorType{true: gguf.F16, false: gguf.F32}[len(tn.Dims) >= 2]; tn.Type != want {
			t.Errorf("%s: type %v, want %v", tn.Name, tn.Type, want)
		}
	}
	if ft, _ := fh.Uint("general.file_type"); ft != 1 {
		t.Errorf("general.file_type %d", ft)
	}
	b, _, err = Convert(fh, scheme(t, "f32"), nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := gguf.Parse(write(t, b))
	if err != nil {
		t.Fatal(err)
	}
	b, rep, err = Convert(back, scheme(t, "f16"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := rep.Total(); st.MaxAbsErr != 0 {
		t.Errorf("F16 → F32 → F16 lost %v", st.MaxAbsErr)
	}
	if h2 := write(t, b); !bytes.Equal(h1, h2) {
		t.Error("F16 → F32 → F16 changed the file")
	}
	// The F16 file converted by llama2c directly gives the same logits.
	direct, err := llama2c.Stories260K(gguf.F16)
	if err != nil {
		t.Fatal(err)
	}
	logits := func(b []byte) []float32 {
		m, err := engine.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := m.NewState(8)
		l, err := st.Forward([]int{1, 400, 300})
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), l...)
	}
	a, d := logits(h1), logits(direct)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(d[i]) {
			t.Fatalf("logit %d: retyped %v, direct %v", i, a[i], d[i])
		}
	}
}

func scheme(t *testing.T, name string) quant.Scheme {
	t.Helper()
	s, err := quant.ParseScheme(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestQuantized converts stories260K to every scheme: each file loads,
// its tensors have the planned types, its logits stay near F32's (closer
// for the types with more bits), and converting it back to F32 and again
// to the same scheme from the dequantized values gives a file that still
// loads (quantized input is accepted).
func TestQuantized(t *testing.T) {
	for _, model := range []string{"stories260K", "rows-of-256"} {
		t.Run(model, func(t *testing.T) { testQuantized(t, model) })
	}
}

func testQuantized(t *testing.T, model string) {
	var src []byte
	var err error
	if model == "stories260K" {
		// dim 64: the k-quants fall back to the formats of blocks of 32.
		src, err = llama2c.Stories260K(gguf.F32)
	} else {
		src, err = synth.Bytes(synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, ContextLen: 64, RopeBase: 10000}, synth.Options{Seed: 5})
	}
	if err != nil {
		t.Fatal(err)
	}
	f32, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	logits := func(b []byte) []float32 {
		t.Helper()
		m, err := engine.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := m.NewState(8)
		l, err := st.Forward([]int{1, 400, 300, 20})
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), l...)
	}
	ref := logits(src)
	span := slices.Max(ref) - slices.Min(ref)
	// The largest logit difference allowed, as a share of the logits'
	// range: loose bounds by bits a weight (random models amplify the
	// weights' errors more than trained ones; measured here at most 0.019,
	// 0.050, 0.143 and 0.242 for 8, 6, 5 and 4 bits).
	bound := map[string]float64{"f32": 0, "f16": 0.002, "bf16": 0.01, "q8_0": 0.03, "q6_k": 0.08, "q5_k": 0.2, "q5_k_m": 0.2,
		"q5_1": 0.2, "q5_0": 0.2, "q4_k": 0.35, "q4_k_m": 0.35, "q4_1": 0.35, "q4_0": 0.35}
	for _, s := range quant.Schemes() {
		t.Run(s.Name(), func(t *testing.T) {
			b, rep, err := Convert(f32, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := write(t, b)
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if ft, _ := f.Uint("general.file_type"); ft != uint64(s.FileType()) {
				t.Errorf("general.file_type %d, want %d", ft, s.FileType())
			}
			var plan []quant.Tensor
			for _, tn := range f32.Tensors {
				plan = append(plan, quant.Tensor{Name: tn.Name, Dims: tn.Dims})
			}
			for i, c := range s.Plan(plan) {
				if f.Tensors[i].Type != c.Type {
					t.Errorf("%s: type %v, planned %v", f.Tensors[i].Name, f.Tensors[i].Type, c.Type)
				}
			}
			for _, tn := range f.Tensors {
				if rep.Types[tn.Type] == nil {
					t.Errorf("%s is %v, and the report has no %v row", tn.Name, tn.Type, tn.Type)
				}
			}
			if model == "rows-of-256" && f.Tensors[len(f.Tensors)-1].Type == gguf.F32 && !s.Mixture() && s.Base() != gguf.F32 {
				t.Errorf("%s: nothing of type %v", s.Name(), s.Base())
			}
			got := logits(data)
			worst := 0.0
			for i := range ref {
				worst = max(worst, math.Abs(float64(got[i]-ref[i]))/float64(span))
			}
			t.Logf("%s: %d bytes, max logit difference %.4f of the range", s.Name(), len(data), worst)
			if worst > bound[s.Name()] {
				t.Errorf("logits differ from F32's by %.4f of the range, more than %.4f", worst, bound[s.Name()])
			}
			// From the quantized file, back to F32: exact dequantization.
			back, rep2, err := Convert(f, scheme(t, "f32"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, q := quant.QType(s.Base()); q && len(rep2.Dequantized) == 0 {
				t.Error("the report does not say the input was dequantized")
			}
			if l := logits(write(t, back)); s.Name() == "f32" || s.Name() == "f16" || s.Name() == "bf16" {
				for i := range l {
					if math.Float32bits(l[i]) != math.Float32bits(got[i]) && s.Name() != "bf16" {
						t.Fatalf("logit %d changed on widening to F32: %v, %v", i, l[i], got[i])
					}
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	b := gguf.NewBuilder()
	b.Set("general.architecture", "llama")
	b.AddTensor("q", gguf.Q8_0, []uint64{32, 1}, make([]byte, 34))
	f, err := gguf.Parse(write(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Convert(f, quant.Scheme{}, nil); err == nil {
		t.Error("conversion without a scheme accepted")
	}
	// A NaN weight cannot be quantized: the error names the tensor.
	nan := gguf.NewBuilder()
	nan.Set("general.architecture", "llama")
	v := make([]float32, 64)
	v[40] = float32(math.NaN())
	nan.AddTensor("blk.0.attn_q.weight", gguf.F32, []uint64{32, 2}, gguf.F32Bytes(v))
	_, _, err = Convert(nan.File(), scheme(t, "q8_0"), nil)
	if err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN weight: %v", err)
	}
	if _, err := quant.ParseScheme("q2_k"); err == nil || !strings.Contains(err.Error(), "q4_k_m") {
		t.Errorf("q2_k: %v", err)
	}
}

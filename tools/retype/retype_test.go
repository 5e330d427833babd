package retype

import (
	"bytes"
	"math"
	"testing"

	"github.com/x448/float16"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/sharedfiles"
)

func TestHalf(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		want := float16.Frombits(h).Float32()
		got := half(h)
		if math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("half(%#04x) = %v, want %v", h, got, want)
		}
	}
}

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
	src, err := sharedfiles.Stories260K(gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	f32, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	b, st, err := Convert(f32, gguf.F16)
	if err != nil {
		t.Fatal(err)
	}
	if st.Values == 0 || st.MaxAbsErr == 0 || st.MaxAbsErr > 1e-3 {
		t.Errorf("stats %v", st)
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
	b, _, err = Convert(fh, gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	back, err := gguf.Parse(write(t, b))
	if err != nil {
		t.Fatal(err)
	}
	b, st, err = Convert(back, gguf.F16)
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxAbsErr != 0 {
		t.Errorf("F16 → F32 → F16 lost %v", st.MaxAbsErr)
	}
	if h2 := write(t, b); !bytes.Equal(h1, h2) {
		t.Error("F16 → F32 → F16 changed the file")
	}
	// The F16 file converted by llama2c directly gives the same logits.
	direct, err := sharedfiles.Stories260K(gguf.F16)
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

func TestErrors(t *testing.T) {
	b := gguf.NewBuilder()
	b.Set("general.architecture", "llama")
	b.AddTensor("q", gguf.Q8_0, []uint64{32, 1}, make([]byte, 34))
	f, err := gguf.Parse(write(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Convert(f, gguf.F16); err == nil {
		t.Error("a Q8_0 tensor was converted")
	}
	if _, _, err := Convert(f, gguf.Q8_0); err == nil {
		t.Error("conversion to Q8_0 accepted")
	}
}

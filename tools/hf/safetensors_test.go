package hf_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"wisp/tools/hf"
)

func TestParseSafetensors(t *testing.T) {
	ts := []stTensor{
		{"b.weight", "F32", []int64{2, 3}, encode([]float32{1, 2, 3, 4, 5, 6}, "F32")},
		{"a.half", "F16", []int64{4}, encode([]float32{1, -2, 0.5, 65504}, "F16")},
		{"c.brain", "BF16", []int64{1, 1, 2}, encode([]float32{3, -0.25}, "BF16")},
		{"scalar", "I64", []int64{}, make([]byte, 8)},
		{"empty", "F32", []int64{0, 5}, nil},
	}
	got, err := hf.ParseSafetensors(safetensorsBytes(ts))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(got), len(ts))
	}
	for i, w := range ts {
		g := got[i]
		if g.Name != w.name || g.DType != w.dtype || !slices.Equal(g.Shape, w.shape) || !bytes.Equal(g.Data, w.data) {
			t.Errorf("tensor %d = %q %s %v %d bytes, want %q %s %v %d bytes", i, g.Name, g.DType, g.Shape, len(g.Data), w.name, w.dtype, w.shape, len(w.data))
		}
	}
	if n := got[2].Elements(); n != 2 {
		t.Errorf("Elements = %d, want 2", n)
	}
	if n := got[3].Elements(); n != 1 {
		t.Errorf("scalar Elements = %d, want 1", n)
	}

	// Gaps between tensors and padding after the header are allowed.
	gap := rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}   `, []byte{0, 0, 0, 0, 7, 9, 0})
	got, err = hf.ParseSafetensors(gap)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, []byte{7, 9}) {
		t.Errorf("gap: %v, %v", got, err)
	}
	// An empty header.
	if got, err := hf.ParseSafetensors(rawSafetensors(`{}`, nil)); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
}

// FuzzParseSafetensors checks that no input panics the parser or makes it
// return a tensor whose bytes disagree with its dtype and shape.
func FuzzParseSafetensors(f *testing.F) {
	f.Add(safetensorsBytes([]stTensor{
		{"w", "F32", []int64{2, 2}, make([]byte, 16)},
		{"b", "BF16", []int64{3}, make([]byte, 6)},
	}))
	f.Add(rawSafetensors(`{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},"b":{"dtype":"F32","shape":[8],"data_offsets":[28,60]}}`, make([]byte, 64)))
	f.Add(rawSafetensors(`{"a":{"dtype":"I8","shape":[],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	size := map[string]int64{"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := hf.ParseSafetensors(b)
		if err != nil {
			return
		}
		n := binary.LittleEndian.Uint64(b)
		data := b[8+n:]
		for _, tn := range ts {
			sz, ok := size[tn.DType]
			if !ok {
				t.Fatalf("tensor %q has dtype %q", tn.Name, tn.DType)
			}
			if int64(len(tn.Data)) != tn.Elements()*sz {
				t.Fatalf("tensor %q: %d bytes for %d elements of %s", tn.Name, len(tn.Data), tn.Elements(), tn.DType)
			}
			if len(tn.Data) > 0 && !inside(tn.Data, data) {
				t.Fatalf("tensor %q: data outside the file's data section", tn.Name)
			}
		}
	})
}

// inside reports whether sub, non-empty, lies within data.
func inside(sub, data []byte) bool {
	for i := range data {
		if &data[i] == &sub[0] {
			return len(data)-i >= len(sub)
		}
	}
	return false
}

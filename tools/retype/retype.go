// Package retype converts the matrices of a GGUF model between F32 and F16,
// keeping everything else (metadata, norms, biases) as it is.
package retype

import (
	"fmt"
	"math"

	"wisp/engine/gguf"
	"wisp/tools/fp16"
)

// Convert returns a builder holding f with every weight matrix (a tensor of
// two or more dimensions) stored as typ, F32 or F16. Vectors (norms, biases)
// stay F32, as llama.cpp stores them. general.file_type is updated. The
// stats report what half precision lost.
func Convert(f *gguf.File, typ gguf.TensorType) (*gguf.Builder, fp16.Stats, error) {
	var st fp16.Stats
	if typ != gguf.F32 && typ != gguf.F16 {
		return nil, st, fmt.Errorf("retype: cannot write tensors of type %v; choose F32 or F16", typ)
	}
	b := gguf.NewBuilder()
	for _, kv := range f.KV {
		b.Set(kv.Key, kv.Value)
	}
	fileType := uint32(0)
	if typ == gguf.F16 {
		fileType = 1
	}
	b.Set("general.file_type", fileType)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		want := typ
		if len(t.Dims) < 2 {
			want = gguf.F32
		}
		data, s, err := convertTensor(t, want)
		if err != nil {
			return nil, st, fmt.Errorf("retype: tensor %q: %w", t.Name, err)
		}
		st.Add(s)
		if err := b.AddTensor(t.Name, want, t.Dims, data); err != nil {
			return nil, st, fmt.Errorf("retype: %w", err)
		}
	}
	return b, st, nil
}

func convertTensor(t *gguf.Tensor, want gguf.TensorType) ([]byte, fp16.Stats, error) {
	var st fp16.Stats
	switch {
	case t.Type == want:
		return t.Data, st, nil
	case t.Type == gguf.F32 && want == gguf.F16:
		v, err := t.F32()
		if err != nil {
			return nil, st, err
		}
		h, s := fp16.FromFloat32(v)
		return gguf.F16Bytes(h), s, nil
	case t.Type == gguf.F16 && want == gguf.F32:
		h, err := t.F16()
		if err != nil {
			return nil, st, err
		}
		v := make([]float32, len(h))
		for i, x := range h {
			v[i] = half(x)
		}
		return gguf.F32Bytes(v), st, nil
	}
	return nil, st, fmt.Errorf("type %v cannot be converted (wisp converts F32 and F16)", t.Type)
}

// half returns the exact float32 value of an IEEE half.
func half(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10&0x1f), float64(h&0x3ff)
	switch e {
	case 0:
		return sign * float32(math.Ldexp(m, -24))
	case 31:
		if m != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * float32(math.Ldexp(1024+m, e-25))
}

// Package retype stores the tensors of a GGUF model as another scheme of
// types (tools/quant: F32, F16, BF16, a quantized type, or one of
// llama.cpp's mixtures), keeping the metadata as it is.
package retype

import (
	"fmt"

	"wisp/engine/gguf"
	"wisp/tools/quant"
)

// Convert returns a builder holding f with every tensor stored as the
// scheme chooses (quant.Scheme.Plan: vectors stay F32, matrices get the
// scheme's type, or a fallback where their rows are not whole blocks).
// A tensor already of the chosen type is copied byte for byte; any other
// is widened to float32 (dequantized, if it was quantized) and stored
// again. general.file_type (and general.quantization_version) are set for
// the scheme. The report says what each type cost. progress, if not nil,
// is called after each tensor with the number done and the total.
func Convert(f *gguf.File, s quant.Scheme, progress func(done, total int)) (*gguf.Builder, *quant.Report, error) {
	rep := &quant.Report{}
	if s.IsZero() {
		return nil, rep, fmt.Errorf("retype: no scheme given")
	}
	b := gguf.NewBuilder()
	for _, kv := range f.KV {
		b.Set(kv.Key, kv.Value)
	}
	s.SetFileType(b)
	plan := make([]quant.Tensor, len(f.Tensors))
	for i, t := range f.Tensors {
		plan[i] = quant.Tensor{Name: t.Name, Dims: t.Dims}
	}
	choices := s.Plan(plan)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		c := choices[i]
		data := t.Data
		if t.Type == c.Type {
			rep.Keep(t.Name, c, t.Dims, data)
		} else {
			v, err := quant.Decode(t.Type, t.Data, int(t.Elements()))
			if err != nil {
				return nil, rep, fmt.Errorf("retype: tensor %q: %w", t.Name, err)
			}
			if _, q := quant.QType(t.Type); q {
				rep.NoteDequantized(t.Type)
			}
			if data, err = rep.Encode(t.Name, c, t.Dims, v); err != nil {
				return nil, rep, fmt.Errorf("retype: %w", err)
			}
		}
		if err := b.AddTensor(t.Name, c.Type, t.Dims, data); err != nil {
			return nil, rep, fmt.Errorf("retype: %w", err)
		}
		if progress != nil {
			progress(i+1, len(f.Tensors))
		}
	}
	return b, rep, nil
}

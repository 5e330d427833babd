package host

import (
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// Models of every quantized type and BF16 join the shapes whose logits must
// match the native engine's bit for bit (TestLogitsMatchNative): every row
// length is a multiple of 256, so that the k-quants apply.
func init() {
	s := synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 256, RopeBase: 10000, Tied: true}
	q := synth.Shape{Arch: "qwen2", Dim: 256, HiddenDim: 768, Layers: 1, Heads: 8, KVHeads: 4, Vocab: 301, ContextLen: 256, RopeBase: 1e6}
	for _, typ := range []gguf.TensorType{gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1, gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K} {
		shape := s
		if typ == gguf.Q4_K || typ == gguf.Q6_K {
			shape = q
		}
		shapes = append(shapes, struct {
			name  string
			shape synth.Shape
			typ   gguf.TensorType
		}{shape.Arch + "-" + typ.String(), shape, typ})
	}
}

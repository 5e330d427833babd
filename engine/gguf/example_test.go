package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"wisp/engine/gguf"
)

func ExampleBuilder() {
	b := gguf.NewBuilder()
	b.Set("general.architecture", "llama")
	b.Set("llama.block_count", uint32(2))
	b.Set("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>"})
	norm := gguf.F32Bytes([]float32{1, 1, 0.5, 2})
	if err := b.AddTensor("output_norm.weight", gguf.F32, []uint64{4}, norm); err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	arch, _ := f.String("general.architecture")
	blocks, _ := f.Uint("llama.block_count")
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	fmt.Println(arch, blocks, tokens)

	t, _ := f.Tensor("output_norm.weight")
	w, err := t.F32() // a view of buf's bytes, not a copy
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.Type, t.Dims, w)

	_, err = f.Uint("llama.context_length")
	fmt.Println(err)
	// Output:
	// llama 2 [<unk> <s> </s>]
	// output_norm.weight F32 [4] [1 1 0.5 2]
	// gguf: key "llama.context_length": key not found
}

package hf_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/tools/hf"
)

func ExampleConvert() {
	// A tiny random Llama checkpoint in BF16, as Hugging Face saves one.
	dir, err := os.MkdirTemp("", "hf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s := shape{arch: "llama", dim: 16, hidden: 24, layers: 2, heads: 2, kv: 1, vocab: 300, ctx: 64, theta: 10000, eps: 1e-5, tied: true}
	if err := newModel(s, 1, roundBF16).write(dir, folder{dtype: "BF16"}); err != nil {
		log.Fatal(err)
	}

	b, rep, err := hf.Convert(dir, hf.Options{Type: gguf.F16, Name: "tiny"})
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := b.WriteTo(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d tensors (%d F16, %d F32) from %d BF16, %d parameters\n",
		rep.Arch, rep.Tensors, rep.Types[gguf.F16], rep.Types[gguf.F32], rep.Sources["BF16"], rep.Params)
	fmt.Printf("tokenizer %s, %d tokens; %d weights overflowed in F16\n", rep.Tokenizer, rep.Vocab, rep.FP16.Overflowed)

	m, err := engine.Load(out.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	ids, _ := m.Tokenize("hi")
	fmt.Println(m.Arch, m.Layers, "layers, prompt", ids)
	// Output:
	// llama, 20 tensors (15 F16, 5 F32) from 20 BF16, 8720 parameters
	// tokenizer llama, 300 tokens; 0 weights overflowed in F16
	// llama 2 layers, prompt [1 293 268]
}

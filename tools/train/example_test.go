package train_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"wisp/engine"
	"wisp/engine/tokenizer"
	"wisp/tools/bpe"
	"wisp/tools/train"
)

func Example() {
	text := strings.Repeat("In the beginning God created the heaven and the earth. ", 50)

	// A tokenizer trained on the text, and the text as tokens.
	v, err := bpe.Train(strings.NewReader(text), bpe.Options{VocabSize: 300})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tokenizer.New(*v)
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode(text)
	if err != nil {
		log.Fatal(err)
	}
	data := make([]int32, len(ids))
	for i, id := range ids {
		data[i] = int32(id)
	}

	// A tiny model, trained for a few steps.
	m, err := train.New(train.Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, Vocab: len(v.Tokens), ContextLen: 32, Tied: true}, 1)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := train.NewTrainer(m, data, train.Options{
		SeqLen: 32, Batch: 4, Steps: 30, LR: 1e-2, MinLR: 1e-3, Warmup: 3, WeightDecay: 0.1, Clip: 1, Seed: 1, BOS: v.BOS,
	})
	if err != nil {
		log.Fatal(err)
	}
	var first, last train.Stats
	for i := range 30 {
		s, err := tr.Step()
		if err != nil {
			log.Fatal(err)
		}
		if i == 0 {
			first = s
		}
		last = s
	}
	fmt.Println("loss fell by more than half:", last.Loss < first.Loss/2)

	// The result is a GGUF model the engine runs.
	b, err := m.Builder(v, "example")
	if err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := b.WriteTo(&file); err != nil {
		log.Fatal(err)
	}
	em, err := engine.Load(file.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(em.Arch, em.Layers, "layers,", em.Params(), "parameters")
	// Output:
	// loss fell by more than half: true
	// llama 2 layers, 30240 parameters
}

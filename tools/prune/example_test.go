package prune_test

import (
	"fmt"
	"log"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
	"wisp/tools/prune"
)

func Example() {
	// A small random model stands in for a real one.
	shape := synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 128, Layers: 4, Heads: 8, KVHeads: 4, Vocab: 300, ContextLen: 256, RopeBase: 10000, Tied: true}
	file, err := synth.Bytes(shape, synth.Options{Type: gguf.F16, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}

	src, err := prune.Load(file)
	if err != nil {
		log.Fatal(err)
	}
	// Keep 75 % of the parameters, choosing units by their activations on
	// a calibration text.
	sh, err := src.Plan(prune.Targets{Params: 0.75}, prune.Wanda)
	if err != nil {
		log.Fatal(err)
	}
	scores, err := src.Score(prune.Wanda, "the cat sat on the mat, and the dog ran in the park.", prune.ScoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	sel, err := scores.Select(sh)
	if err != nil {
		log.Fatal(err)
	}
	out, err := src.Apply(sel)
	if err != nil {
		log.Fatal(err)
	}

	m, err := engine.Load(out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d → %d parameters\n", src.Model.Params(), m.Params())
	fmt.Printf("%d blocks, %d of %d heads, %d of %d neurons\n", m.Layers, m.Heads, shape.Heads, m.HiddenDim, shape.HiddenDim)
	// Output:
	// 167232 → 124992 parameters
	// 4 blocks, 6 of 8 heads, 89 of 128 neurons
}

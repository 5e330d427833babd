package train

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkStep measures training throughput of a model of about 5M
// parameters (dim 256, 6 layers, 8 heads, hidden 688, vocabulary 2048) on
// micro-batches of 8 sequences of 256 tokens: tokens/s, and tokens per
// CPU-second, which other processes on the machine disturb less.
func BenchmarkStep(b *testing.B) {
	c := Config{Dim: 256, HiddenDim: 688, Layers: 6, Heads: 8, Vocab: 2048, ContextLen: 256, Tied: true}
	m, err := New(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]int32, 100000)
	for i := range data {
		data[i] = int32(rng.IntN(c.Vocab))
	}
	opt := Options{SeqLen: 256, Batch: 8, Steps: 1 << 20, LR: 1e-3, BOS: 1, Threads: 2}
	tr, err := NewTrainer(m, data, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if _, err := tr.Step(); err != nil {
			b.Fatal(err)
		}
	}
	tokens := float64(b.N * opt.Batch * opt.SeqLen)
	b.ReportMetric(tokens/b.Elapsed().Seconds(), "tokens/s")
	if used := cpuTime() - cpu; used > 0 {
		b.ReportMetric(tokens/used.Seconds(), "tokens/cpu-s")
	}
}

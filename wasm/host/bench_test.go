package host

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
)

// stories15M returns a random model of the shape of TinyStories-15M, made
// once.
var stories15M = sync.OnceValues(func() ([]byte, error) {
	return synth.Bytes(synth.Shapes()["stories15M"], synth.Options{Type: gguf.F16, Seed: 1})
})

// BenchmarkDecode measures decoding on the stories15M shape (F16), natively
// and in wazero: each iteration evaluates a prompt of 8 tokens (untimed),
// then generates 64 tokens greedily.
func BenchmarkDecode(b *testing.B) {
	const promptLen, steps = 8, 64
	data, err := stories15M()
	if err != nil {
		b.Fatal(err)
	}
	ids := []int{1}
	for i := 1; i < promptLen; i++ {
		ids = append(ids, 300+37*i)
	}
	opts := option.Options{Context: promptLen + steps + 1, MaxTokens: steps}
	ctx := context.Background()

	// report runs the iterations and reports the rates. run evaluates the
	// prompt with the benchmark's timer stopped, then the steps, and returns
	// the prompt's time and how many tokens the steps generated.
	report := func(b *testing.B, run func() (prefill time.Duration, tokens int, err error)) {
		var prefill time.Duration
		tokens := 0
		for b.Loop() {
			p, n, err := run()
			if err != nil {
				b.Fatal(err)
			}
			prefill += p
			tokens += n
		}
		b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
		b.ReportMetric(float64(b.N*promptLen)/prefill.Seconds(), "prefill-tok/s")
	}

	b.Run("native", func(b *testing.B) {
		m, err := engine.Load(bytes.Clone(data))
		if err != nil {
			b.Fatal(err)
		}
		report(b, func() (time.Duration, int, error) {
			b.StopTimer()
			t0 := time.Now()
			s, err := m.NewSession(option.Options{Context: opts.Context, MaxTokens: opts.MaxTokens})
			if err != nil {
				return 0, 0, err
			}
			if _, err := s.PromptTokens(ids); err != nil {
				return 0, 0, err
			}
			prefill := time.Since(t0)
			b.StartTimer()
			n := 0
			for {
				_, err := s.Next()
				if err == io.EOF {
					return prefill, n, nil
				}
				if err != nil {
					return 0, 0, err
				}
				n++
			}
		})
	})

	b.Run("wazero", func(b *testing.B) {
		r := newRuntime(b)
		m, err := r.Load(ctx, data)
		if err != nil {
			b.Fatal(err)
		}
		report(b, func() (time.Duration, int, error) {
			b.StopTimer()
			t0 := time.Now()
			if _, err := m.PromptTokens(ctx, ids, opts); err != nil {
				return 0, 0, err
			}
			prefill := time.Since(t0)
			b.StartTimer()
			n := 0
			for {
				_, err := m.Next(ctx)
				if err == io.EOF {
					return prefill, n, nil
				}
				if err != nil {
					return 0, 0, err
				}
				n++
			}
		})
	})
}

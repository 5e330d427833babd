package host

import (
	"context"
	"runtime"
	"testing"
	"time"

	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
)

// threadsMemory is the tests' memory limit with threads: wazero allocates
// the whole maximum of a shared memory up front, and after a few 4 GiB
// ones in a process a New took 40 s.
const threadsMemory = 256 << 20

// TestThreadsBitIdentical runs the engine with its matrix products split
// among 2 and 3 kernel threads (wazero's threads, helper goroutines on a
// shared memory) and checks that the prompt's logits and every decoded
// step's are the bits of one thread: with every product split that has
// rows enough (minWork 1) and with the default threshold.
func TestThreadsBitIdentical(t *testing.T) {
	ctx := context.Background()
	odd := synth.Shape{Arch: "qwen2", Dim: 100, HiddenDim: 171, Layers: 2, Heads: 5, KVHeads: 1, Vocab: 1001, ContextLen: 96, RopeBase: 10000, Tied: true}
	blocks := synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 768, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 1003, ContextLen: 96, RopeBase: 10000}
	cases := []struct {
		shape synth.Shape
		typ   gguf.TensorType
	}{{odd, gguf.F16}, {odd, gguf.F32}, {odd, gguf.BF16}, {blocks, gguf.Q4_K}, {blocks, gguf.Q8_0}}
	prompt := make([]int, 37) // two batches of several vectors
	for i := range prompt {
		prompt[i] = (i*7919 + 3) % 1000
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			data := synthModel(t, c.shape, c.typ, 3)
			run := func(threads, minWork int) []float32 {
				t.Helper()
				r, err := New(ctx, moduleWasm, &Options{Cache: testCache, Threads: threads, minWork: minWork, MemoryLimit: threadsMemory})
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := r.Close(ctx); err != nil {
						t.Errorf("Close: %v", err)
					}
				}()
				if got := r.Threads(); got != max(threads, 1) {
					t.Fatalf("Threads() = %d, want %d", got, threads)
				}
				m, err := r.Load(ctx, data)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.PromptTokens(ctx, prompt, option.Options{Context: 96, MaxTokens: 6}); err != nil {
					t.Fatal(err)
				}
				var out []float32
				for {
					logits, err := m.Logits(ctx)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, logits...)
					if _, err := m.Next(ctx); err != nil {
						break
					}
				}
				return out
			}
			want := run(1, 0)
			for _, threads := range []int{2, 3} {
				for _, minWork := range []int{1, 0} {
					got := run(threads, minWork)
					if i, ok := sameBits(got, want); !ok {
						t.Fatalf("%d threads, minWork %d: logit %d differs (%d values, want %d)", threads, minWork, i, len(got), len(want))
					}
				}
			}
		})
	}
}

// TestThreadsStop checks that closing a Runtime ends its helper goroutines.
func TestThreadsStop(t *testing.T) {
	ctx := context.Background()
	data := synthModel(t, shapes[0].shape, gguf.F16, 5)
	before := runtime.NumGoroutine()
	for i := range 3 {
		r, err := New(ctx, moduleWasm, &Options{Cache: testCache, Threads: 4, minWork: 1, MemoryLimit: threadsMemory})
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Load(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 { // and once with no product ever dispatched
			if err := m.Generate(ctx, "the cat", option.Options{Context: 64, MaxTokens: 5}, func(string) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after closing:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

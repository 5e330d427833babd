package host

import (
	"context"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/wasm/abi"
	"wisp/wasm/sharedmem"
)

// TestSharedMemoryModule runs the engine module rewritten to import a
// shared memory (what the page's kernel workers are to share) in wazero's
// threads mode: it loads a model and generates the same text, with every
// logit the same, as the module with its own memory.
func TestSharedMemoryModule(t *testing.T) {
	ctx := context.Background()
	m := abi.SharedMemory
	shared, err := sharedmem.Share(moduleWasm, sharedmem.Import{Module: m.Module, Name: m.Name}, m.MinPages, m.MaxPages)
	if err != nil {
		t.Fatal(err)
	}
	if _, lo, hi, ok := sharedmem.Memory(shared); !ok || hi != m.MaxPages || lo != m.MinPages {
		t.Fatalf("the rewritten module imports no shared memory (%d–%d pages)", lo, hi)
	}
	data := synthModel(t, shapes[0].shape, gguf.F16, 5)
	run := func(wasm []byte) (string, []float32) {
		t.Helper()
		r, err := New(ctx, wasm, &Options{Cache: testCache})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		m, err := r.Load(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := m.Generate(ctx, "the cat", option.Options{Context: 96, MaxTokens: 30}, func(p string) error {
			b.WriteString(p)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		logits, err := m.Logits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b.String(), logits
	}
	// Go's runtime grows the shared memory as it grows its own: far past
	// its start, and up to the maximum.
	r, err := New(ctx, shared, &Options{Cache: testCache})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	before := r.mod.Memory().Size()
	if _, err := r.alloc(ctx, 512<<20); err != nil {
		t.Fatalf("allocating 512 MiB in the shared memory: %v", err)
	}
	if after := r.mod.Memory().Size(); after < 512<<20 || after <= before {
		t.Errorf("the memory grew from %d to %d bytes for 512 MiB", before, after)
	}

	wantText, wantLogits := run(moduleWasm)
	gotText, gotLogits := run(shared)
	if gotText != wantText || wantText == "" {
		t.Errorf("shared memory: %q\nown memory:    %q", gotText, wantText)
	}
	for i := range wantLogits {
		if gotLogits[i] != wantLogits[i] {
			t.Fatalf("logit %d: %v with a shared memory, %v with its own", i, gotLogits[i], wantLogits[i])
		}
	}
}

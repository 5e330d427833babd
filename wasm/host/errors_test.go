package host

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
	"wisp/simd"
	"wisp/wasm/abi"
)

// wantError checks that err is the module's error with the status and a
// message containing each of the words.
func wantError(t *testing.T, err error, status int32, words ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want an *Error with status %d", err, status)
	}
	if e.Status != status {
		t.Errorf("status = %d, want %d (%v)", e.Status, status, err)
	}
	for _, w := range words {
		if !strings.Contains(e.Msg, w) {
			t.Errorf("error %q does not mention %q", e.Msg, w)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	good := synthModel(t, shapes[0].shape, gguf.F16, 1)
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	badArch := synthModel(t, shapes[0].shape, gguf.F16, 1)
	i := bytes.Index(badArch, []byte("llama"))
	copy(badArch[i:], "lxama")
	r := newRuntime(t)
	for _, tc := range []struct {
		name  string
		data  []byte
		words []string
	}{
		{"garbage", garbage, []string{"gguf"}},
		{"gguf-magic-only", []byte("GGUF\x03\x00\x00\x00"), []string{"gguf"}},
		{"truncated", good[:len(good)/2], []string{"gguf"}},
		{"header-only", good[:200], []string{"gguf"}},
		{"unknown-architecture", badArch, []string{"architecture", "lxama"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Load(ctx, tc.data)
			wantError(t, err, abi.StatusFailed, tc.words...)
		})
	}
	if _, err := r.Load(ctx, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Load(nil) = %v, want an error about an empty file", err)
	}
	// The instance survives every failure.
	m, err := r.Load(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(ctx, good); err == nil {
		t.Error("a second Load succeeded")
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prompt(ctx, "a", option.Options{}); err == nil {
		t.Error("Prompt on a closed model succeeded")
	}
	if _, err := r.Load(ctx, good); err != nil {
		t.Fatalf("Load after Close: %v", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	m, err := r.Load(ctx, synthModel(t, shapes[0].shape, gguf.F16, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Next(ctx); err == nil {
		t.Fatal("Next before a prompt succeeded")
	} else {
		wantError(t, err, abi.StatusUsage, "before a prompt")
	}
	if _, err := m.Logits(ctx); err == nil {
		t.Error("Logits before a prompt succeeded")
	}
	long := strings.Repeat("the cat sat on the mat ", 20)
	for _, tc := range []struct {
		name   string
		do     func() error
		status int32
		words  []string
	}{
		{"prompt-longer-than-context", func() error {
			_, err := m.Prompt(ctx, long, option.Options{Context: 16})
			return err
		}, abi.StatusFailed, []string{"prompt", "context holds 16"}},
		{"invalid-utf8-prompt", func() error {
			_, err := m.Prompt(ctx, "caf\xc3", option.Options{})
			return err
		}, abi.StatusFailed, []string{"UTF-8", "offset 3"}},
		{"invalid-utf8-tokenize", func() error {
			_, err := m.Tokenize(ctx, "\xffabc", true)
			return err
		}, abi.StatusFailed, []string{"UTF-8", "offset 0"}},
		{"token-outside-vocabulary", func() error {
			_, err := m.PromptTokens(ctx, []int{1, 5, 320}, option.Options{})
			return err
		}, abi.StatusFailed, []string{"320", "vocabulary"}},
		{"negative-token", func() error {
			_, err := m.PromptTokens(ctx, []int{1, -4}, option.Options{})
			return err
		}, abi.StatusFailed, []string{"-4"}},
		{"empty-token-prompt", func() error {
			_, err := m.PromptTokens(ctx, nil, option.Options{})
			return err
		}, abi.StatusFailed, []string{"empty prompt"}},
		{"context-longer-than-model", func() error {
			_, err := m.Prompt(ctx, "a", option.Options{Context: 100000})
			return err
		}, abi.StatusFailed, []string{"100000", "256"}},
		{"negative-temperature", func() error {
			_, err := m.Prompt(ctx, "a", option.Options{Temperature: -1})
			return err
		}, abi.StatusFailed, []string{"temperature"}},
		{"negative-max-tokens", func() error {
			_, err := m.Prompt(ctx, "a", option.Options{MaxTokens: -1})
			return err
		}, abi.StatusFailed, []string{"maxTokens"}},
		{"empty-stop", func() error {
			_, err := m.Prompt(ctx, "a", option.Options{Stop: []string{""}})
			return err
		}, abi.StatusFailed, []string{"stop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.do(), tc.status, tc.words...)
			// A failed prompt leaves no session behind.
			if _, err := m.Next(ctx); err == nil {
				t.Error("Next after a failed prompt succeeded")
			}
		})
	}
	_, err = r.status(ctx, "wisp_prompt_tokens", 0, 1<<30)
	wantError(t, err, abi.StatusUsage, "do not fit")
	if _, err := m.Prompt(ctx, "the cat", option.Options{MaxTokens: 3}); err != nil {
		t.Fatalf("Prompt after the errors: %v", err)
	}
	for range 3 {
		if _, err := m.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // stepping past the end keeps saying so
		if piece, err := m.Next(ctx); err == nil || piece != "" || m.Done() != "length" {
			t.Fatalf("Next past the end = %q, %v (%s)", piece, err, m.Done())
		}
	}
}

// TestABIErrors calls the exports with arguments no host should pass.
func TestABIErrors(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	call := func(name string, args ...uint64) error {
		_, err := r.status(ctx, name, args...)
		return err
	}
	for _, tc := range []struct {
		name   string
		err    error
		status int32
		words  []string
	}{
		{"free-unknown", call("wisp_free", 12345), abi.StatusUsage, []string{"no buffer"}},
		{"load-outside-buffers", call("wisp_load", 4096, 100), abi.StatusUsage, []string{"not inside a buffer"}},
		{"prompt-no-model", call("wisp_prompt", 0, 0), abi.StatusUsage, []string{"no model"}},
		{"tokenize-no-model", call("wisp_tokenize", 0, 0, 1), abi.StatusUsage, []string{"no model"}},
		{"step-no-model", call("wisp_step"), abi.StatusUsage, []string{"no model"}},
		{"options-not-json", func() error {
			return r.with(ctx, []byte(`{"temperature": "hot"}`), func(addr uint32) error {
				return call("wisp_options", uint64(addr), 22)
			})
		}(), abi.StatusFailed, []string{"options", "temperature"}},
		{"options-unknown-field", func() error {
			return r.with(ctx, []byte(`{"temprature": 1}`), func(addr uint32) error {
				return call("wisp_options", uint64(addr), 17)
			})
		}(), abi.StatusFailed, []string{"temprature"}},
		{"alloc-zero", r.errOrNil(r.alloc(ctx, 0)), abi.StatusUsage, []string{"0 bytes"}},
		{"alloc-too-big", r.errOrNil(r.alloc(ctx, 0xfff00000)), abi.StatusMemory, []string{"4.00 GiB"}},
		{"alloc-no-room", r.errOrNil(r.alloc(ctx, 0xfe000000-1)), abi.StatusMemory, []string{"free"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.err, tc.status, tc.words...)
		})
	}
	// A buffer range that runs past the end of its buffer.
	addr, err := r.alloc(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, call("wisp_load", uint64(addr)+8, 16), abi.StatusUsage, "not inside")
	if err := call("wisp_free", uint64(addr)); err != nil {
		t.Fatal(err)
	}
	wantError(t, call("wisp_free", uint64(addr)), abi.StatusUsage, "no buffer")
}

// errOrNil drops an address, keeping the error.
func (r *Runtime) errOrNil(_ uint32, err error) error { return err }

func TestSessionTooBig(t *testing.T) {
	// A context of 2^22 positions: the key/value cache alone takes 4 GiB.
	s := synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 300, ContextLen: 1 << 22, RopeBase: 10000}
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, synthModel(t, s, gguf.F16, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Prompt(ctx, "a", option.Options{})
	wantError(t, err, abi.StatusMemory, "4.00 GiB", "shorter context")
	if _, err := m.Prompt(ctx, "a", option.Options{Context: 64}); err != nil {
		t.Errorf("Prompt with a short context: %v", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	ctx := context.Background()
	r, err := New(ctx, moduleWasm, &Options{Cache: testCache, MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	_, err = r.alloc(ctx, 48<<20)
	wantError(t, err, abi.StatusMemory, "64.0 MiB", "free")
	// A model refused from its header, before a buffer is asked for.
	model := synthModel(t, shapes[0].shape, gguf.F16, 1)
	_, err = r.Load(ctx, append(model, make([]byte, 48<<20)...))
	wantError(t, err, abi.StatusMemory, "64.0 MiB", "free", "a session of 256 positions")

	// Memory exhausted behind the module's back ends the instance, with a
	// clear error and no panic in the host.
	if _, err := r.status(ctx, "wisp_memory_limit", 1024); err != nil {
		t.Fatal(err)
	}
	if _, err := r.alloc(ctx, 40<<20); err != nil {
		t.Fatal(err)
	}
	_, err = r.alloc(ctx, 40<<20)
	if err == nil || !strings.Contains(err.Error(), "unusable") || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("alloc beyond the real limit: %v", err)
	}
	var trap *TrapError
	if !errors.As(err, &trap) || trap.Op != "wisp_alloc" || !strings.Contains(trap.Stderr, "fatal error: out of memory") {
		t.Errorf("error %#v is not the TrapError of wisp_alloc", err)
	}
	if _, err := r.Load(ctx, make([]byte, 100)); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Errorf("Load after a trap: %v", err)
	}
	for _, limit := range []int64{-1, 1 << 20, 5 << 30} {
		if _, err := New(ctx, moduleWasm, &Options{Cache: testCache, MemoryLimit: limit}); err == nil {
			t.Errorf("New with a memory limit of %d succeeded", limit)
		}
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		wasm []byte
		word string
	}{
		{"not-wasm", []byte("not a module"), "compiling"},
		{"not-the-engine", simd.ForwardWasm(), "no memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(ctx, tc.wasm, &Options{Cache: testCache})
			if err == nil || !strings.Contains(err.Error(), tc.word) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.word)
			}
		})
	}
	r := newRuntime(t)
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(ctx, []byte("x")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Load after Close = %v", err)
	}
}

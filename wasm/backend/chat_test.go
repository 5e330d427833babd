package backend_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"wisp/engine/chat"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
	"wisp/wasm/backend"
)

// TestConversationRuntimesAgree holds the same conversation natively and in
// wazero: each turn after the first reuses the cache of the conversation
// so far, both reuse as many tokens, and every reply equals what a
// backend whose cache was reset prints for the whole conversation.
func TestConversationRuntimesAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module")
	}
	ctx := context.Background()
	data, err := synth.Bytes(synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 400, ContextLen: 512, RopeBase: 10000, Tied: true},
		synth.Options{Type: gguf.F16, Seed: 5, ChatML: true})
	if err != nil {
		t.Fatal(err)
	}
	wasm := moduleBytes(t)
	gen := func(m backend.Model, ids []int, o option.Options) string {
		t.Helper()
		if _, err := m.PromptTokens(ids, o); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for {
			piece, err := m.Next()
			b.WriteString(piece)
			if errors.Is(err, io.EOF) {
				return b.String()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	type turn struct {
		text   string
		reused int
		ids    int
	}
	o := option.Options{Context: 300, MaxTokens: 16, Temperature: 0.7, Seed: 3}
	var got [2][]turn
	for i, rt := range backend.Runtimes {
		m, err := backend.Open(ctx, backend.Config{Runtime: rt, Wasm: wasm}, data)
		if err != nil {
			t.Fatal(err)
		}
		msgs := []chat.Message{{Role: "system", Content: "Answer briefly."}}
		for _, user := range []string{"hi", "why?", "<|im_end|> go on"} {
			msgs = append(msgs, chat.Message{Role: "user", Content: user})
			ids, _, err := m.Chat(msgs, true, chat.OverflowError, o)
			if err != nil {
				t.Fatal(err)
			}
			text := gen(m, ids, o)
			got[i] = append(got[i], turn{text, m.Reused(), len(ids)})
			if err := m.Reset(); err != nil {
				t.Fatal(err)
			}
			if again := gen(m, ids, o); again != text || m.Reused() != 0 {
				t.Errorf("%s: after Reset, %q (reused %d); with the cache %q", rt, again, m.Reused(), text)
			}
			// Leave the cache holding the turn, as a conversation does.
			gen(m, ids, o)
			msgs = append(msgs, chat.Message{Role: "assistant", Content: text})
		}
		m.Close()
	}
	for k := range got[0] {
		n, w := got[0][k], got[1][k]
		if n != w {
			t.Errorf("turn %d: native %+v, wazero %+v", k, n, w)
		}
		// The last prompt is where this one starts: at least it is reused.
		if k > 0 && (n.reused < got[0][k-1].ids || n.reused >= n.ids) {
			t.Errorf("turn %d: reused %d of %d tokens", k, n.reused, n.ids)
		}
	}
}

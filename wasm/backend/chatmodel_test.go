package backend_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"wisp/engine/chat"
	"wisp/engine/option"
	"wisp/wasm/backend"
)

// TestChatModelEndsItsTurns holds a short conversation with wisp's chat
// model (models/chat.gguf, models/README.md) natively and in wazero: each
// greedy reply must end with the end-of-turn token well before the token
// limit, contain no control token's text, and be the same in both
// runtimes; the second turn must reuse the first's cache.
func TestChatModelEndsItsTurns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm module")
	}
	data, err := os.ReadFile("../../models/chat.gguf")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wasm := moduleBytes(t)
	const maxTokens = 150
	o := option.Options{Context: 256, MaxTokens: maxTokens, Temperature: 0}
	users := []string{"Recite Genesis 1:1.", "And the next verse?"}
	var replies [2][]string
	for i, rt := range backend.Runtimes {
		m, err := backend.Open(ctx, backend.Config{Runtime: rt, Wasm: wasm}, data)
		if err != nil {
			t.Fatal(err)
		}
		msgs := []chat.Message{{Role: "system", Content: "You answer from the King James Bible."}}
		prompt := 0
		for k, user := range users {
			msgs = append(msgs, chat.Message{Role: "user", Content: user})
			ids, _, err := m.Chat(msgs, true, chat.OverflowError, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.PromptTokens(ids, o); err != nil {
				t.Fatal(err)
			}
			if k > 0 && m.Reused() < prompt {
				t.Errorf("%s: turn %d reused %d tokens of the %d before it", rt, k, m.Reused(), prompt)
			}
			var b strings.Builder
			for {
				piece, err := m.Next()
				b.WriteString(piece)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			reply := b.String()
			t.Logf("%s: %q → %q (%d tokens, %s)", rt, user, reply, m.Generated(), m.Done())
			if m.Done() != "eos" || m.Generated() >= maxTokens || strings.TrimSpace(reply) == "" {
				t.Errorf("%s: turn %d ended by %q after %d tokens with %q: want a reply ended by <|im_end|> before %d tokens", rt, k, m.Done(), m.Generated(), reply, maxTokens)
			}
			if strings.Contains(reply, "<|im_") || strings.Contains(reply, "<s>") || strings.Contains(reply, "</s>") {
				t.Errorf("%s: turn %d: reply %q contains a control token's text", rt, k, reply)
			}
			replies[i] = append(replies[i], reply)
			msgs = append(msgs, chat.Message{Role: "assistant", Content: reply})
			prompt = len(ids)
		}
		m.Close()
	}
	for k := range users {
		if replies[0][k] != replies[1][k] {
			t.Errorf("turn %d: native %q, wazero %q", k, replies[0][k], replies[1][k])
		}
	}
}

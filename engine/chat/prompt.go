package chat

import (
	"fmt"

	"wisp/engine/tokenizer"
)

// What a conversation that does not fit in the context gets, by
// PromptOptions.Overflow.
const (
	// OverflowError is an error that says how many tokens the conversation
	// takes and how many the context has room for. It is the default.
	OverflowError = "error"
	// OverflowDropOldest drops the oldest messages after the leading
	// system messages, a turn at a time (so that what is left starts with
	// a user message), until the conversation fits; the last message is
	// never dropped, and if it alone does not fit the result is
	// OverflowError's error.
	OverflowDropOldest = "drop-oldest"
)

// Roles are the roles a conversation's messages may have.
var Roles = []string{"system", "user", "assistant", "tool"}

// PromptOptions say how Formatter.Prompt renders a conversation and fits
// it in a context.
type PromptOptions struct {
	// AddGenerationPrompt ends the prompt with the start of an assistant
	// turn (add_generation_prompt).
	AddGenerationPrompt bool
	// Context is the positions the prompt and the reply share; 0 means no
	// limit.
	Context int
	// Reserve is the positions kept free for the reply (see Reserve); the
	// conversation fits when its tokens and Reserve fit in Context.
	Reserve int
	// Overflow is OverflowError ("" is the same) or OverflowDropOldest.
	Overflow string
}

// Reserve returns the positions a reply of at most maxTokens tokens (0:
// until the context is full) is kept in a context of ctx positions: the
// conversation may take the rest. It is maxTokens, but at most half the
// context and at least one position.
func Reserve(ctx, maxTokens int) int {
	r := ctx / 2
	if maxTokens > 0 {
		r = min(r, maxTokens)
	}
	return max(r, 1)
}

// Prompt renders the conversation with the model's template and encodes
// it with tok (control tokens from the template only, see
// Rendered.Encode), with BOS first when the tokenizer asks for one and the
// template wrote none (as llama.cpp does, and as a plain prompt gets it).
// A conversation longer than opt.Context minus opt.Reserve is handled as
// opt.Overflow says; dropped says how many messages were left out.
// Roles other than Roles, and empty conversations, are errors.
func (fm *Formatter) Prompt(tok *tokenizer.Tokenizer, messages []Message, opt PromptOptions) (ids []int, dropped int, err error) {
	switch opt.Overflow {
	case "", OverflowError, OverflowDropOldest:
	default:
		return nil, 0, fmt.Errorf("chat: overflow %q: choose %q or %q", opt.Overflow, OverflowError, OverflowDropOldest)
	}
	if len(messages) == 0 {
		return nil, 0, fmt.Errorf("chat: the conversation has no messages")
	}
	for i, m := range messages {
		known := false
		for _, r := range Roles {
			known = known || m.Role == r
		}
		if !known {
			return nil, 0, fmt.Errorf("chat: message %d has role %q: choose system, user, assistant or tool", i, m.Role)
		}
	}
	encode := func(msgs []Message) ([]int, error) {
		r, err := fm.Render(msgs, opt.AddGenerationPrompt)
		if err != nil {
			return nil, err
		}
		ids, err := r.Encode(tok)
		if err != nil {
			return nil, err
		}
		if tok.AddBOS() && tok.BOS() >= 0 && (len(ids) == 0 || ids[0] != tok.BOS()) {
			ids = append([]int{tok.BOS()}, ids...)
		}
		return ids, nil
	}
	room := opt.Context - opt.Reserve
	sys := 0
	for sys < len(messages)-1 && messages[sys].Role == "system" {
		sys++
	}
	msgs := messages
	for {
		if ids, err = encode(msgs); err != nil {
			return nil, 0, err
		}
		if opt.Context <= 0 || len(ids) <= room {
			return ids, len(messages) - len(msgs), nil
		}
		if opt.Overflow != OverflowDropOldest || len(msgs) <= sys+1 {
			break
		}
		// Drop the oldest message after the system prompt, and then
		// whatever precedes the next user message, keeping the last.
		rest := msgs[sys+1:]
		for len(rest) > 1 && rest[0].Role != "user" {
			rest = rest[1:]
		}
		msgs = append(append([]Message(nil), msgs[:sys]...), rest...)
	}
	what := "the conversation"
	if len(msgs) < len(messages) {
		what = fmt.Sprintf("the conversation, even with its %d oldest messages dropped,", len(messages)-len(msgs))
	}
	hint := `, or set overflow to "drop-oldest"`
	if opt.Overflow == OverflowDropOldest {
		hint = ""
	}
	return nil, 0, fmt.Errorf("chat: %s is %d tokens but the context of %d positions has room for %d beside the %d kept for the reply; shorten it, raise the context%s",
		what, len(ids), opt.Context, max(room, 0), opt.Reserve, hint)
}

package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"wisp/engine/option"
	"wisp/wasm/abi"
)

// Info describes a loaded model.
type Info = abi.Info

// Model is a model loaded in a Runtime, with at most one generation going
// on: each Prompt starts a new one.
type Model struct {
	r      *Runtime
	info   Info
	token  int
	done   string
	closed bool
}

// Info describes the model.
func (m *Model) Info() Info { return m.info }

// lock locks the runtime and checks that the model is still loaded.
func (m *Model) lock() error {
	m.r.mu.Lock()
	if m.closed {
		m.r.mu.Unlock()
		return errors.New("host: the model is closed")
	}
	return nil
}

// Close unloads the model, freeing its memory in the instance for another.
func (m *Model) Close(ctx context.Context) error {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed, m.r.model = true, nil
	_, err := m.r.status(ctx, "wisp_unload")
	return err
}

// Tokenize encodes text as token ids; with bos, BOS comes first when the
// model asks for it, as in a prompt.
func (m *Model) Tokenize(ctx context.Context, text string, bos bool) ([]int, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	var raw []byte
	err := m.r.with(ctx, []byte(text), func(addr uint32) error {
		flag := uint64(0)
		if bos {
			flag = 1
		}
		if _, err := m.r.status(ctx, "wisp_tokenize", uint64(addr), uint64(len(text)), flag); err != nil {
			return err
		}
		var err error
		raw, err = m.r.read(ctx, "wisp_tokens_ptr", "wisp_tokens_len", 4)
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(raw)/4)
	for i := range ids {
		ids[i] = int(int32(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return ids, nil
}

// Prompt starts a generation with the options: it tokenizes the text (BOS
// first when the model asks for it), evaluates it, and returns it as the
// model prints it.
func (m *Model) Prompt(ctx context.Context, text string, opts option.Options) (echo string, err error) {
	return m.prompt(ctx, opts, "wisp_prompt", []byte(text), len(text))
}

// PromptTokens is Prompt for token ids.
func (m *Model) PromptTokens(ctx context.Context, ids []int, opts option.Options) (echo string, err error) {
	b := make([]byte, 4*len(ids))
	for i, id := range ids {
		if id < math.MinInt32 || id > math.MaxInt32 {
			return "", fmt.Errorf("host: token %d is out of range", id)
		}
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(id)))
	}
	return m.prompt(ctx, opts, "wisp_prompt_tokens", b, len(ids))
}

func (m *Model) prompt(ctx context.Context, opts option.Options, name string, data []byte, n int) (string, error) {
	if err := m.lock(); err != nil {
		return "", err
	}
	defer m.r.mu.Unlock()
	m.token, m.done = -1, ""
	js, err := json.Marshal(opts)
	if err != nil {
		return "", fmt.Errorf("host: options: %w", err)
	}
	err = m.r.with(ctx, js, func(addr uint32) error {
		_, err := m.r.status(ctx, "wisp_options", uint64(addr), uint64(len(js)))
		return err
	})
	if err != nil {
		return "", err
	}
	var echo []byte
	err = m.r.with(ctx, data, func(addr uint32) error {
		if _, err := m.r.status(ctx, name, uint64(addr), uint64(n)); err != nil {
			return err
		}
		echo, err = m.r.read(ctx, "wisp_piece_ptr", "wisp_piece_len", 1)
		return err
	})
	return string(echo), err
}

// Next generates one token and returns the text it completes, which may be
// empty. At the end it returns io.EOF, with the last of the text; Done then
// says why.
func (m *Model) Next(ctx context.Context) (piece string, err error) {
	if err := m.lock(); err != nil {
		return "", err
	}
	defer m.r.mu.Unlock()
	m.token = -1
	st, err := m.r.status(ctx, "wisp_step")
	if err != nil {
		return "", err
	}
	b, err := m.r.read(ctx, "wisp_piece_ptr", "wisp_piece_len", 1)
	if err != nil {
		return "", err
	}
	tok, err := m.r.call(ctx, "wisp_token")
	if err != nil {
		return "", err
	}
	m.token = int(int32(uint32(tok)))
	if st != abi.StatusDone {
		return string(b), nil
	}
	done, err := m.r.read(ctx, "wisp_done_ptr", "wisp_done_len", 1)
	if err != nil {
		return "", err
	}
	m.done = string(done)
	return string(b), io.EOF
}

// Token returns the token that the last Next sampled, or -1 if it sampled
// none (generation had reached its length or the context's end).
func (m *Model) Token() int {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	return m.token
}

// Done returns why generation ended ("eos", "stop", "length" or
// "context"), or "" while it goes on.
func (m *Model) Done() string {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	return m.done
}

// Logits returns a copy of the logits that the last token was sampled
// from, or after a prompt those that the next will be sampled from.
func (m *Model) Logits(ctx context.Context) ([]float32, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.r.mu.Unlock()
	p, err := m.r.call(ctx, "wisp_logits_ptr")
	if err != nil {
		return nil, err
	}
	if p == 0 {
		return nil, errors.New("host: no logits before a prompt")
	}
	n, err := m.r.call(ctx, "wisp_vocab_size")
	if err != nil {
		return nil, err
	}
	b, err := m.r.view(uint32(p), 4*uint64(uint32(n)))
	if err != nil {
		return nil, err
	}
	l := make([]float32, len(b)/4)
	for i := range l {
		l[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return l, nil
}

// Generate evaluates the prompt with the options, then generates tokens
// until the end, passing the text of each to emit as soon as it is
// complete UTF-8 (the prompt's own text is not passed). It stops early if
// ctx is done or emit returns an error, and returns that error.
func (m *Model) Generate(ctx context.Context, prompt string, opts option.Options, emit func(piece string) error) error {
	if _, err := m.Prompt(ctx, prompt, opts); err != nil {
		return err
	}
	for {
		piece, err := m.Next(ctx)
		if piece != "" {
			if err := emit(piece); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Chat renders the conversation with the model's chat template (ChatML for
// a model without one) into prompt tokens, fitting it in the context that
// opts ask for as req.Overflow says (wisp_chat); dropped counts the
// messages left out. Pass the tokens to PromptTokens with the same opts.
func (m *Model) Chat(ctx context.Context, req abi.ChatRequest, opts option.Options) (ids []int, dropped int, err error) {
	if err := m.lock(); err != nil {
		return nil, 0, err
	}
	defer m.r.mu.Unlock()
	js, err := json.Marshal(opts)
	if err != nil {
		return nil, 0, fmt.Errorf("host: options: %w", err)
	}
	err = m.r.with(ctx, js, func(addr uint32) error {
		_, err := m.r.status(ctx, "wisp_options", uint64(addr), uint64(len(js)))
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, 0, fmt.Errorf("host: chat request: %w", err)
	}
	var raw []byte
	err = m.r.with(ctx, body, func(addr uint32) error {
		st, err := m.r.status(ctx, "wisp_chat", uint64(addr), uint64(len(body)))
		if err != nil {
			return err
		}
		dropped = int(st)
		raw, err = m.r.read(ctx, "wisp_tokens_ptr", "wisp_tokens_len", 4)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	ids = make([]int, len(raw)/4)
	for i := range ids {
		ids[i] = int(int32(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return ids, dropped, nil
}

// Reused returns how many tokens of the last prompt were already in the
// session's cache, and were not evaluated again.
func (m *Model) Reused(ctx context.Context) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.r.mu.Unlock()
	n, err := m.r.call(ctx, "wisp_reused")
	return int(int32(uint32(n))), err
}

// Reset drops the session and its cache: the next prompt evaluates all
// its tokens.
func (m *Model) Reset(ctx context.Context) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.r.mu.Unlock()
	_, err := m.r.status(ctx, "wisp_reset")
	return err
}

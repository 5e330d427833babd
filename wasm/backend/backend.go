// Package backend runs a model natively (wisp/engine) or as the wasm module
// with its SIMD128 kernels in wazero (wisp/wasm/host) behind one interface
// that uses the engine's names, so that a command picks the runtime by name
// and drives both alike: wisp run and the benchmark's runners do. Both give
// the same text, byte for byte, for the same model and options.
package backend

import (
	"context"
	"fmt"

	"wisp/engine"
	"wisp/engine/chat"
	"wisp/engine/option"
	"wisp/wasm/abi"
	"wisp/wasm/host"
)

// Runtimes are the names Open knows.
var Runtimes = []string{"native", "wazero"}

// A Model is a model loaded in one runtime, with at most one generation at
// a time: each PromptTokens starts a new one, on a session that keeps the
// cache of what the new prompt shares with the tokens it has evaluated
// (engine.Session.Reprompt). It is not meant for concurrent use.
type Model interface {
	// ContextLen returns the positions the model was trained for.
	ContextLen() int
	// Tokenize encodes a prompt as a generation evaluates it: with BOS
	// first when the model asks for it.
	Tokenize(prompt string) ([]int, error)
	// PromptTokens starts a generation with the options: it evaluates the
	// tokens, but those at the start that the session's cache already
	// holds, and returns their text as the model prints it.
	PromptTokens(ids []int, o option.Options) (echo string, err error)
	// Chat renders a conversation with the model's chat template (ChatML
	// for a model without one) into prompt tokens that fit the context o
	// asks for, as overflow says (chat.OverflowError or
	// chat.OverflowDropOldest); dropped counts the messages left out.
	Chat(messages []chat.Message, addGenerationPrompt bool, overflow string, o option.Options) (ids []int, dropped int, err error)
	// Reused returns how many tokens of the last prompt the cache held.
	Reused() int
	// Reset drops the session and its cache.
	Reset() error
	// Next generates one token and returns the text it completes, which
	// may be empty. At the end it returns io.EOF, with the last of the
	// text; Done then says why.
	Next() (string, error)
	// Generated returns how many tokens the generation has sampled.
	Generated() int
	// Done returns why generation ended (engine.DoneEOS, DoneStop,
	// DoneLength or DoneContext), or "" while it goes on.
	Done() string
	// Close frees the model, and in wazero the instance that holds it.
	Close() error
}

// Config chooses the runtime.
type Config struct {
	// Runtime is one of Runtimes.
	Runtime string
	// Wasm is the engine module (wisp/wasm/module, see host.BuildModule),
	// which wazero needs.
	Wasm []byte
	// Host configures the wazero instance (nil is fine).
	Host *host.Options
	// Threads is how many threads split each large matrix product by rows
	// (engine.Model.Threads natively); 0 or 1 is one, at most MaxThreads.
	// It is a load-time setting, not a generation option: the threads
	// and their buffers are made with the model.
	Threads int
}

// MaxThreads is the most threads Config.Threads may ask for.
const MaxThreads = engine.MaxThreads

// Open loads the GGUF model in data into the runtime. Natively the model's
// weights stay views into data, which must not change while the model is
// in use; wazero copies it into the instance.
func Open(ctx context.Context, cfg Config, data []byte) (Model, error) {
	switch cfg.Runtime {
	case "native":
		if cfg.Threads < 0 || cfg.Threads > MaxThreads {
			return nil, fmt.Errorf("backend: %d threads: choose 1 to %d", cfg.Threads, MaxThreads)
		}
		m, err := engine.Load(data)
		if err != nil {
			return nil, err
		}
		m.Threads = cfg.Threads
		return &native{m: m}, nil
	case "wazero":
		var hopts host.Options
		if cfg.Host != nil {
			hopts = *cfg.Host
		}
		if cfg.Threads != 0 {
			hopts.Threads = cfg.Threads
		}
		rt, err := host.New(ctx, cfg.Wasm, &hopts)
		if err != nil {
			return nil, err
		}
		m, err := rt.Load(ctx, data)
		if err != nil {
			rt.Close(ctx)
			return nil, err
		}
		return &wazero{ctx: ctx, rt: rt, m: m}, nil
	}
	return nil, fmt.Errorf("runtime %q: choose native or wazero", cfg.Runtime)
}

// native runs the engine in this process.
type native struct {
	m  *engine.Model
	s  *engine.Session
	fm *chat.Formatter
}

func (b *native) ContextLen() int                       { return b.m.ContextLen }
func (b *native) Tokenize(prompt string) ([]int, error) { return b.m.Tokenize(prompt) }
func (b *native) Next() (string, error)                 { return b.s.Next() }
func (b *native) Generated() int                        { return b.s.Generated() }
func (b *native) Done() string                          { return b.s.Done() }
func (b *native) Close() error                          { b.m, b.s = nil, nil; return nil }

func (b *native) PromptTokens(ids []int, o option.Options) (string, error) {
	if b.s != nil {
		if ctx, err := b.m.Positions(o.Context); err == nil && ctx == b.s.Context() {
			echo, err := b.s.Reprompt(ids, o)
			if err != nil {
				b.s = nil
			}
			return echo, err
		}
	}
	s, err := b.m.NewSession(o)
	if err != nil {
		return "", err
	}
	b.s = s
	return s.PromptTokens(ids)
}

func (b *native) Chat(messages []chat.Message, addGen bool, overflow string, o option.Options) ([]int, int, error) {
	if b.fm == nil {
		fm, err := chat.FromGGUF(b.m.File, b.m.Tokenizer)
		if err != nil {
			return nil, 0, err
		}
		b.fm = fm
	}
	if err := o.Validate(); err != nil {
		return nil, 0, fmt.Errorf("engine: %w", err)
	}
	ctx, err := b.m.Positions(o.Context)
	if err != nil {
		return nil, 0, err
	}
	return b.fm.Prompt(b.m.Tokenizer, messages, chat.PromptOptions{
		AddGenerationPrompt: addGen,
		Context:             ctx,
		Reserve:             chat.Reserve(ctx, o.MaxTokens),
		Overflow:            overflow,
	})
}

func (b *native) Reused() int {
	if b.s == nil {
		return 0
	}
	return b.s.Reused()
}

func (b *native) Reset() error { b.s = nil; return nil }

// wazero runs the engine's wasm module in wazero.
type wazero struct {
	ctx       context.Context
	rt        *host.Runtime
	m         *host.Model
	generated int
}

func (b *wazero) ContextLen() int { return b.m.Info().ContextLength }
func (b *wazero) Generated() int  { return b.generated }
func (b *wazero) Done() string    { return b.m.Done() }
func (b *wazero) Close() error    { return b.rt.Close(b.ctx) }

func (b *wazero) Tokenize(prompt string) ([]int, error) {
	return b.m.Tokenize(b.ctx, prompt, true)
}

func (b *wazero) PromptTokens(ids []int, o option.Options) (string, error) {
	b.generated = 0
	return b.m.PromptTokens(b.ctx, ids, o)
}

func (b *wazero) Chat(messages []chat.Message, addGen bool, overflow string, o option.Options) ([]int, int, error) {
	req := abi.ChatRequest{AddGenerationPrompt: addGen, Overflow: overflow, Messages: make([]abi.Message, len(messages))}
	for i, m := range messages {
		req.Messages[i] = abi.Message{Role: m.Role, Content: m.Content}
	}
	return b.m.Chat(b.ctx, req, o)
}

func (b *wazero) Reused() int {
	n, _ := b.m.Reused(b.ctx)
	return n
}

func (b *wazero) Reset() error { return b.m.Reset(b.ctx) }

func (b *wazero) Next() (string, error) {
	piece, err := b.m.Next(b.ctx)
	if b.m.Token() >= 0 {
		b.generated++
	}
	return piece, err
}

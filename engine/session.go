package engine

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"wisp/engine/option"
	"wisp/engine/sample"
	"wisp/engine/tokenizer"
)

// Why generation ended, as reported by Session.Done.
const (
	DoneEOS     = "eos"     // the model produced an end-of-generation (or other control) token
	DoneStop    = "stop"    // the text reached one of the stop strings
	DoneLength  = "length"  // MaxTokens tokens were generated
	DoneContext = "context" // the context is full
)

// A Session generates text: it evaluates a prompt, then picks tokens one at
// a time and streams their text as soon as it is complete UTF-8.
type Session struct {
	m       *Model
	tok     *tokenizer.Tokenizer
	state   *State
	sampler *sample.Sampler
	opt     option.Options

	tokens    []int     // every token evaluated or pending, prompt included
	logits    []float32 // the logits after the last evaluated token
	pending   int       // a sampled token not yet evaluated, or -1
	generated int
	done      string
	reused    int // positions of the last prompt whose cache was kept
	evaluated int // tokens the last prompt evaluated

	dec     *tokenizer.Decoder
	strip   bool   // strip a leading space from the next text (it follows BOS)
	held    string // text withheld because it may begin a stop string
	maxStop int
}

// NewSession starts a session on the model with the options.
func (m *Model) NewSession(opt option.Options) (*Session, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	st, err := m.NewState(opt.Context)
	if err != nil {
		return nil, err
	}
	smp, err := sample.New(opt)
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, tok: m.Tokenizer, state: st, sampler: smp, opt: opt, pending: -1}
	for _, stop := range opt.Stop {
		s.maxStop = max(s.maxStop, len(stop))
	}
	s.dec = s.tok.NewDecoder()
	return s, nil
}

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// Tokens returns every token of the session so far, prompt included.
func (s *Session) Tokens() []int { return s.tokens }

// Generated returns how many tokens Next has sampled.
func (s *Session) Generated() int { return s.generated }

// Reused returns how many tokens of the last prompt were already in the
// cache and were not evaluated again: for PromptTokens, the positions the
// session held before; for Reprompt, the common prefix kept.
func (s *Session) Reused() int { return s.reused }

// Evaluated returns how many tokens the last prompt evaluated.
func (s *Session) Evaluated() int { return s.evaluated }

// Context returns the positions the session holds.
func (s *Session) Context() int { return s.state.Context() }

// Done returns why generation ended (DoneEOS, DoneStop, DoneLength or
// DoneContext), or "" while it goes on.
func (s *Session) Done() string { return s.done }

// Tokenize encodes a prompt as a session evaluates it: with BOS first when
// the model asks for it.
func (m *Model) Tokenize(prompt string) ([]int, error) {
	ids, err := m.Tokenizer.Encode(prompt)
	if err != nil {
		return nil, err
	}
	if m.Tokenizer.AddBOS() && m.Tokenizer.BOS() >= 0 {
		ids = append([]int{m.Tokenizer.BOS()}, ids...)
	}
	return ids, nil
}

// Prompt tokenizes the prompt and evaluates it (see PromptTokens).
func (s *Session) Prompt(prompt string) (echo string, err error) {
	ids, err := s.m.Tokenize(prompt)
	if err != nil {
		return "", err
	}
	return s.PromptTokens(ids)
}

// PromptTokens evaluates the tokens after whatever the session already
// holds, in batches, and returns their text as the model would print it
// (control tokens hidden, the space after BOS stripped, an incomplete
// UTF-8 sequence at the end held back until the next token completes it).
// A prompt that does not fit in the context is an error.
func (s *Session) PromptTokens(ids []int) (echo string, err error) {
	if len(ids) == 0 { // checked here too, as the pending token is not the prompt
		return "", s.m.CheckPrompt(ids, 0, 0)
	}
	if s.pending >= 0 {
		ids = append([]int{s.pending}, ids...)
		s.pending = -1
	}
	s.reused, s.evaluated = s.state.Pos(), len(ids)
	s.logits, err = s.state.Forward(ids)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(s.text(id))
	}
	s.tokens = append(s.tokens, ids...)
	return b.String(), nil
}

// Reprompt starts a new generation on the session, as a new session with
// the options would start on the prompt ids, but keeps the key/value cache
// of the longest common prefix of the tokens the session has evaluated and
// ids: it evaluates only the rest, and at least the last token, whose
// logits the first sample needs. The sampler, the decoder, the stop
// strings and the counters start again from opt; Reused and Evaluated say
// how many tokens were kept and evaluated. The text, the logits and the
// echo (all of ids, as PromptTokens returns it) are those of a new session,
// bit for bit. opt must ask for the session's context (Context).
func (s *Session) Reprompt(ids []int, opt option.Options) (echo string, err error) {
	if err := opt.Validate(); err != nil {
		return "", fmt.Errorf("engine: %w", err)
	}
	ctx, err := s.m.Positions(opt.Context)
	if err != nil {
		return "", err
	}
	if ctx != s.state.Context() {
		return "", fmt.Errorf("engine: Reprompt with a context of %d positions on a session of %d; start a new session", ctx, s.state.Context())
	}
	// Checked before the cache is cut, so that a bad prompt leaves the
	// session as it was.
	if err := s.m.CheckPrompt(ids, 0, ctx); err != nil {
		return "", err
	}
	smp, err := sample.New(opt)
	if err != nil {
		return "", err
	}
	// The cache holds the first Pos tokens; a sampled token still pending
	// is not among them. (After a failed PromptTokens the cache may hold
	// positions past the tokens, which are not kept.)
	have := s.tokens[:min(len(s.tokens), s.state.Pos())]
	keep := 0
	for keep < len(have) && keep < len(ids) && have[keep] == ids[keep] {
		keep++
	}
	keep = min(keep, len(ids)-1)
	if err := s.state.Truncate(keep); err != nil {
		return "", err
	}
	s.tokens = append(s.tokens[:0], ids[:keep]...)
	s.opt, s.sampler = opt, smp
	s.maxStop = 0
	for _, stop := range opt.Stop {
		s.maxStop = max(s.maxStop, len(stop))
	}
	s.logits, s.pending, s.generated, s.done = nil, -1, 0, ""
	s.dec, s.strip, s.held = s.tok.NewDecoder(), false, ""
	s.reused, s.evaluated = keep, len(ids)-keep
	if s.logits, err = s.state.Forward(ids[keep:]); err != nil {
		s.logits = nil
		s.state.Truncate(0)
		s.tokens = s.tokens[:0]
		return "", err
	}
	s.tokens = append(s.tokens, ids[keep:]...)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(s.text(id))
	}
	return b.String(), nil
}

// text returns the text that token id completes, as printed.
func (s *Session) text(id int) string {
	if id == s.tok.BOS() {
		s.strip = true
		return ""
	}
	t := s.dec.Next(id)
	if s.strip && t != "" {
		s.strip = false
		t = strings.TrimPrefix(t, " ")
	}
	return t
}

// Next generates one token and returns the text it completes, which may be
// empty (part of a UTF-8 sequence, a control token, text held back because
// it may begin a stop string). At the end it returns io.EOF, with the last
// of the text; Done then says why.
func (s *Session) Next() (string, error) {
	if s.done != "" {
		return "", io.EOF
	}
	if s.logits == nil {
		return "", errors.New("engine: Next before a prompt")
	}
	if s.opt.MaxTokens > 0 && s.generated >= s.opt.MaxTokens {
		return s.finish(DoneLength, "")
	}
	if s.pending >= 0 {
		if s.state.Pos() >= s.state.Context() {
			return s.finish(DoneContext, "")
		}
		var err error
		if s.logits, err = s.state.Forward([]int{s.pending}); err != nil {
			return "", err
		}
		s.pending = -1
	}
	id := s.sampler.Sample(s.logits, s.tokens)
	s.tokens = append(s.tokens, id)
	s.pending = id
	s.generated++
	if s.tok.IsEOG(id) || s.tok.IsControl(id) || id == s.tok.BOS() {
		return s.finish(DoneEOS, "")
	}
	t := s.held + s.text(id)
	s.held = ""
	if s.maxStop == 0 {
		return t, nil
	}
	for _, stop := range s.opt.Stop {
		if i := strings.Index(t, stop); i >= 0 {
			s.done = DoneStop
			return t[:i], io.EOF
		}
	}
	// Hold back the longest tail that could begin a stop string.
	keep := len(t)
	for _, stop := range s.opt.Stop {
		for n := min(len(stop)-1, len(t)); n > 0; n-- {
			if strings.HasSuffix(t, stop[:n]) {
				keep = min(keep, len(t)-n)
				break
			}
		}
	}
	for keep > 0 && keep < len(t) && !utf8.RuneStart(t[keep]) {
		keep--
	}
	s.held = t[keep:]
	return t[:keep], nil
}

// finish ends generation, returning the held-back text and io.EOF.
func (s *Session) finish(why, extra string) (string, error) {
	s.done = why
	t := s.held + extra + s.dec.Flush()
	s.held = ""
	return t, io.EOF
}

// Rest generates until the session ends (Done says why) and returns all
// the text it generated, as the pieces of Next would add up. On an error
// it returns the text generated before it.
func (s *Session) Rest() (string, error) {
	var b strings.Builder
	for {
		t, err := s.Next()
		b.WriteString(t)
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// Logits returns the logits after the last evaluated token (nil before a
// prompt). They are overwritten by the next call of Next.
func (s *Session) Logits() []float32 { return s.logits }

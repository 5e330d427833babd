package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"unicode/utf8"
	"unsafe"

	"wisp/engine"
	"wisp/engine/chat"
	"wisp/engine/option"
	"wisp/simd"
	"wisp/wasm/abi"
)

// Memory limits. A wasm32 instance addresses at most 4 GiB, and a host may
// allow less (wisp_memory_limit says how much). Requests that would leave
// less than headroom free are refused with an error instead of ending in
// the Go runtime's fatal "out of memory".
const (
	addressSpace = 4 << 30
	headroom     = 32 << 20
)

// inst is the instance's state: a reactor instance is one engine, driven
// through the exports.
var inst = newState()

// state is one instance of the engine: its buffers, model and session, and
// the outputs of the last call.
type state struct {
	bufs map[uint32][]byte // live wisp_alloc buffers by address

	buf   []byte // the buffer the model's weights are views into
	model *engine.Model
	info  []byte // the model's abi.Info as JSON

	opts   option.Options
	sess   *engine.Session
	format *chat.Formatter // the model's chat template, parsed at the first wisp_chat

	limit uint64 // the bytes of memory the instance may grow to

	errText   string
	errStatus int32 // the status of the last export that acted, when negative
	piece     string
	token     int32
	tokens    []int32
	detok     string // the text of wisp_detokenize
}

func newState() *state {
	s := &state{bufs: map[uint32][]byte{}, token: -1}
	s.setLimit(addressSpace)
	return s
}

// setLimit sets the memory the instance may grow to, and makes the garbage
// collector work harder as memory fills up rather than grow past it.
func (s *state) setLimit(n uint64) {
	s.limit = n
	debug.SetMemoryLimit(int64(max(n, 3*headroom) - 2*headroom))
}

// setLimitMiB sets the memory limit in MiB.
func (s *state) setLimitMiB(mib uint32) error {
	if mib == 0 || mib > addressSpace>>20 {
		return usage("wisp: memory limit of %d MiB is out of range [1, %d]", mib, addressSpace>>20)
	}
	s.setLimit(uint64(mib) << 20)
	return nil
}

// statusError is an error with the status its export returns.
type statusError struct {
	status int32
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// usage returns an abi.StatusUsage error.
func usage(format string, args ...any) error {
	return &statusError{abi.StatusUsage, fmt.Errorf(format, args...)}
}

// run runs an export's body: it clears the error text, and turns an error
// or a panic into a negative status and the error text. A panic also ends
// the session, whose state may be inconsistent.
func (s *state) run(name string, f func() (int32, error)) (status int32) {
	defer func() {
		if r := recover(); r != nil {
			s.sess = nil
			s.errText = fmt.Sprintf("wisp: internal error in %s: %v", name, r)
			status, s.errStatus = abi.StatusPanic, abi.StatusPanic
		}
	}()
	s.errText, s.errStatus = "", abi.StatusOK
	status, err := f()
	if err != nil {
		s.errText, s.errStatus = err.Error(), abi.StatusFailed
		var se *statusError
		if errors.As(err, &se) {
			s.errStatus = se.status
		}
		return s.errStatus
	}
	return status
}

// ok adapts a body that returns only an error.
func ok(err error) (int32, error) { return abi.StatusOK, err }

// room returns an error unless n more bytes fit in memory.
func (s *state) room(what string, n uint64) error { return s.roomBeside(what, n, 0) }

// roomBeside returns an error unless n bytes fit in memory beside what it
// holds, except for held bytes that count among the n.
func (s *state) roomBeside(what string, n, held uint64) error {
	if n > s.limit {
		return &statusError{abi.StatusMemory, fmt.Errorf("wisp: %s does not fit in the %s of memory the module may use", what, size(s.limit))}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := ms.Sys - ms.HeapIdle
	used -= min(held, used)
	if used+n+headroom > s.limit {
		return &statusError{abi.StatusMemory, fmt.Errorf("wisp: %s needs %s but only %s of the %s of memory the module may use are free", what, size(n), size(s.limit-min(used+headroom, s.limit)), size(s.limit))}
	}
	return nil
}

// size formats a number of bytes.
func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// addr returns the address of a byte in memory.
func addr(p *byte) uint32 { return uint32(uintptr(unsafe.Pointer(p))) }

// alloc makes a buffer of n bytes and returns its address.
func (s *state) alloc(n uint32) (uint32, error) {
	if n == 0 {
		return 0, usage("wisp: wisp_alloc of 0 bytes")
	}
	if err := s.room("a buffer of "+size(uint64(n)), uint64(n)); err != nil {
		return 0, err
	}
	b := make([]byte, n)
	a := addr(&b[0])
	s.bufs[a] = b
	return a, nil
}

// free drops the buffer that starts at a.
func (s *state) free(a uint32) error {
	if _, ok := s.bufs[a]; !ok {
		if s.buf != nil && a == addr(&s.buf[0]) {
			return usage("wisp: wisp_free of the loaded model's buffer; call wisp_unload instead")
		}
		return usage("wisp: wisp_free(%#x): no buffer starts there", a)
	}
	delete(s.bufs, a)
	return nil
}

// find returns the live buffer holding [a, a+n) and the bytes there. An
// empty range needs no buffer.
func (s *state) find(a, n uint32) (whole, b []byte, err error) {
	if n == 0 {
		return nil, nil, nil
	}
	end := uint64(a) + uint64(n)
	for start, buf := range s.bufs {
		if a >= start && end <= uint64(start)+uint64(len(buf)) {
			return buf, buf[a-start : end-uint64(start)], nil
		}
	}
	return nil, nil, usage("wisp: [%#x, %#x) is not inside a buffer from wisp_alloc", a, end)
}

// text returns the UTF-8 text in [a, a+n).
func (s *state) text(a, n uint32) (string, error) {
	_, b, err := s.find(a, n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("wisp: the text is not valid UTF-8 (at byte offset %d)", invalidAt(b))
	}
	return string(b), nil
}

// invalidAt returns the offset of the first invalid UTF-8 sequence in b.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// needModel returns an error when no model is loaded.
func (s *state) needModel(name string) error {
	if s.model == nil {
		return usage("wisp: %s with no model loaded; call wisp_load first", name)
	}
	return nil
}

// load loads the model in [a, a+n), which becomes the model's on success.
func (s *state) load(a, n uint32) error {
	if s.model != nil {
		return usage("wisp: a model is already loaded; call wisp_unload first")
	}
	if n == 0 {
		return errors.New("wisp: the model file is empty")
	}
	whole, b, err := s.find(a, n)
	if err != nil {
		return err
	}
	m, err := engine.Load(b)
	if err != nil {
		return err
	}
	// The buffer is among the bytes the model needs.
	if err := s.fits(uint64(len(b)), m.ContextLen, m.StateBytes, uint64(len(whole))); err != nil {
		return err
	}
	info, err := json.Marshal(modelInfo(m, len(b)))
	if err != nil {
		return err
	}
	delete(s.bufs, addr(&whole[0]))
	s.buf, s.model, s.info = whole, m, info
	return nil
}

// minContext is the context of the shortest session a model must have room
// for, beside its file, to be loaded (or less, if the model's context is
// shorter): a model that cannot hold even that is refused before its bytes
// are fetched.
const minContext = 256

// fits returns an error unless a model of fileSize bytes fits in memory
// with a session of minContext positions (or its whole context, if
// shorter), whose bytes stateBytes gives; held of those bytes are already
// in memory. The early check of a header (wisp_check) and wisp_load refuse
// a model with this error.
func (s *state) fits(fileSize uint64, contextLen int, stateBytes func(ctx int) uint64, held uint64) error {
	ctx := min(contextLen, minContext)
	need := fileSize + stateBytes(ctx)
	return s.roomBeside(fmt.Sprintf("a model of %s with a session of %d positions", size(fileSize), ctx), need, held)
}

// check checks the first n bytes at a of a model file of fileSize bytes
// (< 0: unknown) as wisp_load would check the whole file: it returns 0 when
// the model can be loaded as far as its header and size tell, the fewest
// bytes to pass next when the header runs past them, or wisp_load's error.
func (s *state) check(a, n uint32, fileSize int64) (int32, error) {
	if s.model != nil {
		return 0, usage("wisp: a model is already loaded; call wisp_unload first")
	}
	_, b, err := s.find(a, n)
	if err != nil {
		return 0, err
	}
	if fileSize == 0 {
		return 0, errors.New("wisp: the model file is empty")
	}
	h, err := engine.CheckHeader(b, fileSize)
	if err != nil {
		if need, more := engine.MoreBytes(err, len(b), fileSize); more {
			return int32(min(need, math.MaxInt32)), nil
		}
		return 0, err
	}
	return abi.StatusOK, s.fits(h.Size, h.ContextLen, h.StateBytes, 0)
}

// modelInfo describes a model loaded from a file of the given size.
func modelInfo(m *engine.Model, fileSize int) abi.Info {
	name, _ := m.File.String("general.name")
	return abi.Info{
		Architecture:  m.Arch,
		Name:          name,
		Params:        m.Params(),
		FileSize:      int64(fileSize),
		ContextLength: m.ContextLen,
		VocabSize:     m.VocabSize,
		Dim:           m.Dim,
		HiddenDim:     m.HiddenDim,
		Layers:        m.Layers,
		Heads:         m.Heads,
		KVHeads:       m.KVHeads,
		HeadDim:       m.HeadDim,
		F16:           m.Embedding.F16 != nil,
		TensorTypes:   m.TensorTypes(),
		Flushed:       m.Flushed,
		BOS:           m.Tokenizer.BOS(),
		EOS:           m.Tokenizer.EOS(),
		Kernels:       simd.Kernels(),
	}
}

// unload drops the model and everything that depends on it.
func (s *state) unload() {
	s.endSession()
	s.model, s.buf, s.info, s.tokens, s.format = nil, nil, nil, nil, nil
	runtime.GC() // make the model's memory reusable at once
}

// tokenize encodes the text in [a, a+n).
func (s *state) tokenize(a, n uint32, bos bool) error {
	s.tokens = s.tokens[:0]
	if err := s.needModel("wisp_tokenize"); err != nil {
		return err
	}
	text, err := s.text(a, n)
	if err != nil {
		return err
	}
	var ids []int
	if bos {
		ids, err = s.model.Tokenize(text)
	} else {
		ids, err = s.model.Tokenizer.Encode(text)
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		s.tokens = append(s.tokens, int32(id))
	}
	return nil
}

// setOptions reads option.Options as JSON from [a, a+n); n == 0 resets them.
func (s *state) setOptions(a, n uint32) error {
	_, b, err := s.find(a, n)
	if err != nil {
		return err
	}
	var o option.Options
	if n > 0 {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&o); err != nil {
			return fmt.Errorf("wisp: options: %w", err)
		}
		if d.More() {
			return errors.New("wisp: options: more than one JSON value")
		}
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("wisp: %w", err)
	}
	s.opts = o
	return nil
}

// endSession drops the session and its outputs.
func (s *state) endSession() {
	s.sess, s.piece, s.token = nil, "", -1
}

// newSession makes a session with the options.
func (s *state) newSession() (*engine.Session, error) {
	m := s.model
	ctx, err := m.Positions(s.opts.Context)
	if err != nil {
		return nil, err
	}
	runtime.GC() // return the last session's cache before making another
	if err := s.room(fmt.Sprintf("a session of %d positions", ctx), m.StateBytes(ctx)); err != nil {
		return nil, fmt.Errorf("%w; ask for a shorter context", err)
	}
	return m.NewSession(s.opts)
}

// prompt starts a generation on the text in [a, a+n).
func (s *state) prompt(a, n uint32) error {
	s.piece, s.token = "", -1
	if err := s.needModel("wisp_prompt"); err != nil {
		return err
	}
	text, err := s.text(a, n)
	if err != nil {
		return err
	}
	ids, err := s.model.Tokenize(text)
	if err != nil {
		return err
	}
	return s.promptIDs(ids)
}

// promptTokens starts a generation on the n int32 ids at a.
func (s *state) promptTokens(a, n uint32) error {
	s.piece, s.token = "", -1
	if err := s.needModel("wisp_prompt_tokens"); err != nil {
		return err
	}
	ids, err := s.ids("wisp_prompt_tokens", a, n)
	if err != nil {
		return err
	}
	return s.promptIDs(ids)
}

// ids reads n little-endian int32 ids at a.
func (s *state) ids(name string, a, n uint32) ([]int, error) {
	if n > math.MaxUint32/4 {
		return nil, usage("wisp: %s of %d ids do not fit in memory", name, n)
	}
	_, b, err := s.find(a, 4*n)
	if err != nil {
		return nil, err
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = int(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return ids, nil
}

// detokenize decodes the n int32 ids at a into text (tokenizer.Decode:
// control tokens print nothing, invalid UTF-8 becomes U+FFFD).
func (s *state) detokenize(a, n uint32) error {
	s.detok = ""
	if err := s.needModel("wisp_detokenize"); err != nil {
		return err
	}
	ids, err := s.ids("wisp_detokenize", a, n)
	if err != nil {
		return err
	}
	if err := s.model.CheckTokens(ids); err != nil {
		return err
	}
	s.detok = s.model.Tokenizer.Decode(ids)
	return nil
}

// promptIDs starts a generation on the tokens: on the session, which
// keeps the cache of what it shares with them (engine.Session.Reprompt),
// when it has the context the options ask for, else on a new one. A
// generation that fails to start leaves no session to step.
func (s *state) promptIDs(ids []int) error {
	if s.sess != nil {
		if ctx, err := s.model.Positions(s.opts.Context); err != nil || ctx != s.sess.Context() {
			s.endSession()
		}
	}
	if s.sess != nil {
		echo, err := s.sess.Reprompt(ids, s.opts)
		if err != nil {
			s.endSession()
			return err
		}
		s.piece = echo
		return nil
	}
	sess, err := s.newSession()
	if err != nil {
		return err
	}
	echo, err := sess.PromptTokens(ids)
	if err != nil {
		return err
	}
	s.sess, s.piece = sess, echo
	return nil
}

// chat renders the conversation of the abi.ChatRequest in [a, a+n) with
// the model's chat template (or ChatML, for a model without one) into
// prompt tokens, which wisp_tokens_ptr and wisp_tokens_len give; it fits
// the conversation in the context the options ask for, keeping room for
// MaxTokens (chat.Reserve), and returns how many messages it dropped.
func (s *state) chat(a, n uint32) (int32, error) {
	s.tokens = s.tokens[:0]
	if err := s.needModel("wisp_chat"); err != nil {
		return 0, err
	}
	_, b, err := s.find(a, n)
	if err != nil {
		return 0, err
	}
	var req abi.ChatRequest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return 0, fmt.Errorf("wisp: chat request: %w", err)
	}
	if d.More() {
		return 0, errors.New("wisp: chat request: more than one JSON value")
	}
	if s.format == nil {
		if s.format, err = chat.FromGGUF(s.model.File, s.model.Tokenizer); err != nil {
			return 0, err
		}
	}
	ctx, err := s.model.Positions(s.opts.Context)
	if err != nil {
		return 0, err
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	ids, dropped, err := s.format.Prompt(s.model.Tokenizer, msgs, chat.PromptOptions{
		AddGenerationPrompt: req.AddGenerationPrompt,
		Context:             ctx,
		Reserve:             chat.Reserve(ctx, s.opts.MaxTokens),
		Overflow:            req.Overflow,
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		s.tokens = append(s.tokens, int32(id))
	}
	return int32(dropped), nil
}

// step generates one token.
func (s *state) step() (int32, error) {
	s.piece, s.token = "", -1
	if s.sess == nil {
		if s.model == nil {
			return 0, usage("wisp: wisp_step with no model loaded; call wisp_load and wisp_prompt first")
		}
		return 0, usage("wisp: wisp_step before a prompt; call wisp_prompt first")
	}
	before := len(s.sess.Tokens())
	piece, err := s.sess.Next()
	if t := s.sess.Tokens(); len(t) > before {
		s.token = int32(t[len(t)-1])
	}
	s.piece = piece
	switch {
	case err == io.EOF:
		return abi.StatusDone, nil
	case err != nil:
		return 0, err
	}
	return abi.StatusOK, nil
}

// done returns why generation ended.
func (s *state) done() string {
	if s.sess == nil {
		return ""
	}
	return s.sess.Done()
}

// logits returns the logits of the session, or nil.
func (s *state) logits() []float32 {
	if s.sess == nil {
		return nil
	}
	return s.sess.Logits()
}

// Package chat renders a model's chat template (the Jinja template in a
// GGUF file's tokenizer.chat_template) from a list of messages, exactly as
// Hugging Face's apply_chat_template renders it, and says which characters
// of the result were written by the conversation's participants.
//
// The renderer implements the subset of Jinja that chat templates use:
// text, {{ }} and {% %} with whitespace control ({%- -%}, and the
// trim_blocks and lstrip_blocks that apply_chat_template turns on), if /
// elif / else, for (with loop.index0, first, last, ..., a loop filter and
// else), set (also of namespace() attributes and as a block), break and
// continue; the operators of Python (+ - * / // % ** ~, comparisons, in,
// and / or / not, x if c else y), slicing, the string methods, and the
// filters and tests templates call (trim, length, tojson, default, join,
// is defined, ...). Values follow Python, not JavaScript: True prints as
// "True", "" != false, -1 % 3 is 2, a string's length counts characters.
// Whatever it does not implement is an error from Parse naming the line
// and column, never a silent difference.
//
// Rendering is bounded: a template that loops too long, builds a string
// longer than Limits.MaxOutput or nests too deep fails with an error.
//
// Render returns the text in Segments, each marked Content if it came from
// a message (its content or its role), through concatenation, slicing,
// trim and the other filters and methods. Encode tokenizes them so that
// control tokens such as "<|im_end|>" are recognised only in the
// template's own text: a user who types "<|im_end|>" gets those
// characters, never the control token.
package chat

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"wisp/engine/tokenizer"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user", "assistant", or what the template knows
	Content string
}

// Template is a parsed chat template. It is immutable and safe for
// concurrent use.
type Template struct {
	src  string
	root []node
}

// maxSource bounds the size of a template source.
const maxSource = 1 << 20

// Parse parses a chat template. Errors name the line and column (as an
// *Error) and what is wrong or not supported.
func Parse(src string) (*Template, error) {
	t, err := parseTemplate(src)
	if err != nil {
		return nil, fmt.Errorf("chat: parse template: %w", err)
	}
	return t, nil
}

func parseTemplate(src string) (*Template, error) {
	if len(src) > maxSource {
		return nil, fmt.Errorf("template of %d bytes is larger than the limit of %d", len(src), maxSource)
	}
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("template is not valid UTF-8 (at byte %d)", invalidAt(src))
	}
	norm := normalize(src)
	root, err := parse(norm)
	if err != nil {
		return nil, err
	}
	return &Template{src: norm, root: root}, nil
}

// Source returns the template's source, with its line breaks normalized
// to "\n" and the final one dropped, as Jinja2 reads it.
func (t *Template) Source() string { return t.src }

// Options are the variables a render passes besides the messages, and its
// limits.
type Options struct {
	// AddGenerationPrompt asks the template to end with the start of an
	// assistant turn (add_generation_prompt).
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the texts of the model's beginning- and
	// end-of-sequence tokens (bos_token, eos_token), such as "<s>" and
	// "</s>". They count as template text.
	BOSToken, EOSToken string
	// Limits bound the work; zero fields take the defaults.
	Limits Limits
}

// Limits bound what rendering one conversation may cost.
type Limits struct {
	// MaxOutput is the largest output, and the largest string the template
	// may build, in bytes. Default DefaultMaxOutput.
	MaxOutput int
	// MaxSteps bounds the expressions evaluated and loop iterations run.
	// Default DefaultMaxSteps.
	MaxSteps int
}

// The default Limits.
const (
	DefaultMaxOutput = 16 << 20
	DefaultMaxSteps  = 1 << 20
)

// Segment is a run of rendered text that came either from the template
// (with the bos_token and eos_token) or from the messages.
type Segment struct {
	Text string
	// Content is true for text from a message: its content or its role.
	// Such text must never be read as control tokens.
	Content bool
}

// Rendered is a rendered conversation: its segments alternate between
// template text and message text, and none is empty.
type Rendered struct {
	Segments []Segment
}

// String returns the whole rendered text.
func (r *Rendered) String() string {
	var b strings.Builder
	for _, s := range r.Segments {
		b.WriteString(s.Text)
	}
	return b.String()
}

// TokenizerSegments returns the segments as the tokenizer takes them:
// template text with special tokens recognised, message text without.
func (r *Rendered) TokenizerSegments() []tokenizer.Segment {
	out := make([]tokenizer.Segment, len(r.Segments))
	for i, s := range r.Segments {
		out[i] = tokenizer.Segment{Text: s.Text, Special: !s.Content}
	}
	return out
}

// Encode tokenizes the rendered conversation with tok: control and
// user-defined tokens are recognised in the template's text only (see
// tokenizer.EncodeSegments). It adds no BOS: a template that wants one
// writes bos_token.
func (r *Rendered) Encode(tok *tokenizer.Tokenizer) ([]int, error) {
	ids, err := tok.EncodeSegments(r.TokenizerSegments())
	if err != nil {
		return nil, fmt.Errorf("chat: encode rendered conversation: %w", err)
	}
	return ids, nil
}

// Render renders the conversation. The template sees messages (each with
// role and content), add_generation_prompt, bos_token and eos_token, and
// tools and documents as None, as apply_chat_template passes them. An
// error from the template's raise_exception is an *Error with Raised set.
func (t *Template) Render(messages []Message, opt Options) (*Rendered, error) {
	return t.renderVars(nil, messages, opt)
}

// renderVars is Render with extra variables (for tests).
func (t *Template) renderVars(extra map[string]value, messages []Message, opt Options) (*Rendered, error) {
	lim := opt.Limits
	if lim.MaxOutput <= 0 {
		lim.MaxOutput = DefaultMaxOutput
	}
	if lim.MaxSteps <= 0 {
		lim.MaxSteps = DefaultMaxSteps
	}
	msgs := make([]value, len(messages))
	for i, m := range messages {
		for _, f := range []struct{ name, s string }{{"role", m.Role}, {"content", m.Content}} {
			if !utf8.ValidString(f.s) {
				return nil, fmt.Errorf("chat: message %d: %s is not valid UTF-8 (at byte %d)", i, f.name, invalidAt(f.s))
			}
			if len(f.s) > lim.MaxOutput {
				return nil, fmt.Errorf("chat: message %d: %s of %d bytes is longer than the output limit of %d", i, f.name, len(f.s), lim.MaxOutput)
			}
		}
		d := newDict(2)
		d.set("role", strValue(tainted(m.Role)))
		d.set("content", strValue(tainted(m.Content)))
		msgs[i] = dictValue(d)
	}
	vars := map[string]value{
		"messages":              listValue(msgs),
		"add_generation_prompt": boolValue(opt.AddGenerationPrompt),
		"bos_token":             strValue(plain(opt.BOSToken)),
		"eos_token":             strValue(plain(opt.EOSToken)),
		"tools":                 {k: vNone},
		"documents":             {k: vNone},
	}
	for k, v := range extra {
		vars[k] = v
	}
	ev := &evaluator{
		src:      t.src,
		out:      tbuilder{limit: lim.MaxOutput},
		scopes:   []map[string]value{vars},
		maxSteps: lim.MaxSteps,
		maxLen:   lim.MaxOutput,
	}
	if _, err := ev.exec(t.root); err != nil {
		return nil, fmt.Errorf("chat: render template: %w", err)
	}
	return segments(ev.out.tstr()), nil
}

// segments splits s at the edges of its tainted spans.
func segments(s tstr) *Rendered {
	r := &Rendered{}
	p := 0
	for _, sp := range s.spans {
		if sp.lo > p {
			r.Segments = append(r.Segments, Segment{Text: s.s[p:sp.lo]})
		}
		r.Segments = append(r.Segments, Segment{Text: s.s[sp.lo:sp.hi], Content: true})
		p = sp.hi
	}
	if p < len(s.s) {
		r.Segments = append(r.Segments, Segment{Text: s.s[p:]})
	}
	return r
}

// Error is a template error: a parse error, an error while rendering, or
// the template's own raise_exception.
type Error struct {
	Line, Col int // 1-based position in the template; 0 when unknown
	Msg       string
	// Raised is true when the template called raise_exception(Msg), as
	// templates do for conversations they cannot render (roles that do
	// not alternate, a role they do not know).
	Raised bool
}

// Error formats the error with its position, or as a raised exception.
func (e *Error) Error() string {
	switch {
	case e.Raised:
		return "template raised an exception: " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

// ErrRaised matches (with errors.Is) every error from raise_exception.
var ErrRaised = errors.New("template raised an exception")

// Is makes errors.Is(err, ErrRaised) true for raised errors.
func (e *Error) Is(target error) bool { return target == ErrRaised && e.Raised }

func newError(src string, pos int, format string, args ...any) *Error {
	line, col := 1, 1
	if pos > len(src) {
		pos = len(src)
	}
	for _, r := range src[:pos] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func invalidAt(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(s)
}

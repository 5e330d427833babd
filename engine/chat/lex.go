package chat

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The lexer follows Python Jinja2's (jinja2/lexer.py) with the environment
// Hugging Face's apply_chat_template builds: trim_blocks and lstrip_blocks
// on, keep_trailing_newline off, the default delimiters.

type tokKind uint8

const (
	tEOF tokKind = iota
	tData
	tVarBegin
	tVarEnd
	tBlockBegin
	tBlockEnd
	tName
	tInt
	tFloat
	tString
	tOp
)

type token struct {
	kind tokKind
	val  string // data text, name, literal text (strings unescaped), operator
	pos  int    // byte offset in the normalized source
}

// normalize does what Jinja2 does to a template source before lexing:
// str.splitlines() and a join with "\n", which turns every line break
// Python knows ("\r\n", "\r", "\v", "\f", "\x1c"-"\x1e", U+0085, U+2028,
// U+2029) into "\n" and drops one trailing line break.
func normalize(src string) string {
	var b strings.Builder
	b.Grow(len(src))
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRuneInString(src[i:])
		switch r {
		case '\r':
			if i+1 < len(src) && src[i+1] == '\n' {
				n = 2
			}
			b.WriteByte('\n')
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			b.WriteByte('\n')
		default:
			b.WriteString(src[i : i+n])
		}
		i += n
	}
	s := b.String()
	return strings.TrimSuffix(s, "\n")
}

// isSpace is Python's str.isspace for one character (also what \s matches
// in Python's re).
func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

func trimRightSpace(s string) string { return strings.TrimRightFunc(s, isSpace) }

func trimLeftSpace(s string) string { return strings.TrimLeftFunc(s, isSpace) }

// lexer holds the state of one tokenization.
type lexer struct {
	src  string
	toks []token
}

func lex(src string) ([]token, error) {
	l := &lexer{src: src}
	if err := l.run(); err != nil {
		return nil, err
	}
	l.toks = append(l.toks, token{kind: tEOF, pos: len(src)})
	return l.toks, nil
}

func (l *lexer) errAt(pos int, format string, args ...any) error {
	return newError(l.src, pos, format, args...)
}

// nextTag finds the next "{{", "{%" or "{#" at or after p.
func (l *lexer) nextTag(p int) int {
	for {
		i := strings.IndexByte(l.src[p:], '{')
		if i < 0 {
			return -1
		}
		i += p
		if i+1 < len(l.src) {
			switch l.src[i+1] {
			case '{', '%', '#':
				return i
			}
		}
		p = i + 1
	}
}

func (l *lexer) run() error {
	src := l.src
	p := 0
	lineStarting := true
	for p < len(src) {
		i := l.nextTag(p)
		if i < 0 {
			l.toks = append(l.toks, token{kind: tData, val: src[p:], pos: p})
			break
		}
		text := src[p:i]
		kind := src[i+1]
		j := i + 2
		var sign byte
		if j < len(src) && (src[j] == '-' || src[j] == '+') {
			sign = src[j]
			j++
		}
		switch {
		case sign == '-':
			text = trimRightSpace(text)
		case sign != '+' && kind != '{':
			// lstrip_blocks: drop spaces between the start of the line and
			// a block or comment tag.
			lpos := strings.LastIndexByte(text, '\n') + 1
			if (lpos > 0 || lineStarting) && lpos < len(text) && strings.TrimLeftFunc(text[lpos:], isSpace) == "" {
				text = text[:lpos]
			}
		}
		if text != "" {
			l.toks = append(l.toks, token{kind: tData, val: text, pos: p})
		}
		if kind == '#' {
			end := strings.Index(src[j:], "#}")
			if end < 0 {
				return l.errAt(i, "comment is not closed with #}")
			}
			end += j
			p = end + 2
			switch {
			case end > j && src[end-1] == '-':
				p = l.skipSpace(p)
			case end > j && src[end-1] == '+':
			case p < len(src) && src[p] == '\n':
				p++ // trim_blocks
			}
			lineStarting = p > 0 && src[p-1] == '\n'
			continue
		}
		begin, end := tVarBegin, tVarEnd
		if kind == '%' {
			begin, end = tBlockBegin, tBlockEnd
		}
		l.toks = append(l.toks, token{kind: begin, pos: i})
		q, err := l.tag(j, end, i)
		if err != nil {
			return err
		}
		p = q
		lineStarting = p > 0 && src[p-1] == '\n'
	}
	return nil
}

func (l *lexer) skipSpace(p int) int {
	for p < len(l.src) {
		r, n := utf8.DecodeRuneInString(l.src[p:])
		if !isSpace(r) {
			break
		}
		p += n
	}
	return p
}

// operators, longest first.
var operators = [...]string{"//", "**", "==", "!=", ">=", "<=",
	"+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}

// tag lexes the inside of a tag from p up to and including its end, and
// returns the position after it (after the whitespace it strips).
func (l *lexer) tag(p int, end tokKind, start int) (int, error) {
	src := l.src
	depth := 0 // open brackets: an end delimiter inside them is not one
	for {
		if depth == 0 {
			if end == tVarEnd {
				if strings.HasPrefix(src[p:], "-}}") {
					l.toks = append(l.toks, token{kind: tVarEnd, pos: p})
					return l.skipSpace(p + 3), nil
				}
				if strings.HasPrefix(src[p:], "}}") {
					l.toks = append(l.toks, token{kind: tVarEnd, pos: p})
					return p + 2, nil
				}
			} else {
				switch {
				case strings.HasPrefix(src[p:], "-%}"):
					l.toks = append(l.toks, token{kind: tBlockEnd, pos: p})
					return l.skipSpace(p + 3), nil
				case strings.HasPrefix(src[p:], "+%}"):
					l.toks = append(l.toks, token{kind: tBlockEnd, pos: p})
					return p + 3, nil
				case strings.HasPrefix(src[p:], "%}"):
					l.toks = append(l.toks, token{kind: tBlockEnd, pos: p})
					p += 2
					if p < len(src) && src[p] == '\n' {
						p++ // trim_blocks
					}
					return p, nil
				}
			}
		}
		if p >= len(src) {
			what := "}}"
			if end == tBlockEnd {
				what = "%}"
			}
			return 0, l.errAt(start, "tag is not closed with %s", what)
		}
		r, n := utf8.DecodeRuneInString(src[p:])
		switch {
		case isSpace(r):
			p += n
		case r == '\'' || r == '"':
			s, q, err := l.str(p)
			if err != nil {
				return 0, err
			}
			l.toks = append(l.toks, token{kind: tString, val: s, pos: p})
			p = q
		case r >= '0' && r <= '9':
			q, isFloat := l.number(p)
			kind := tInt
			if isFloat {
				kind = tFloat
			}
			l.toks = append(l.toks, token{kind: kind, val: strings.ReplaceAll(src[p:q], "_", ""), pos: p})
			p = q
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			q := p + 1
			for q < len(src) && (src[q] == '_' || src[q] >= 'a' && src[q] <= 'z' || src[q] >= 'A' && src[q] <= 'Z' || src[q] >= '0' && src[q] <= '9') {
				q++
			}
			l.toks = append(l.toks, token{kind: tName, val: src[p:q], pos: p})
			p = q
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(src[p:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return 0, l.errAt(p, "unexpected character %q", r)
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return 0, l.errAt(p, "unexpected %q", op)
				}
				depth--
			}
			l.toks = append(l.toks, token{kind: tOp, val: op, pos: p})
			p += len(op)
		}
	}
}

// number scans an integer or float literal (digits may be grouped with _).
func (l *lexer) number(p int) (int, bool) {
	src := l.src
	digits := func(q int) int {
		for q < len(src) && (src[q] >= '0' && src[q] <= '9' || src[q] == '_' && q+1 < len(src) && src[q+1] >= '0' && src[q+1] <= '9') {
			q++
		}
		return q
	}
	q := digits(p)
	isFloat := false
	if q+1 < len(src) && src[q] == '.' && src[q+1] >= '0' && src[q+1] <= '9' {
		q = digits(q + 1)
		isFloat = true
	}
	if q < len(src) && (src[q] == 'e' || src[q] == 'E') {
		e := q + 1
		if e < len(src) && (src[e] == '+' || src[e] == '-') {
			e++
		}
		if e < len(src) && src[e] >= '0' && src[e] <= '9' {
			q = digits(e)
			isFloat = true
		}
	}
	return q, isFloat
}

// str scans a string literal at p and unescapes it as Python's
// "unicode-escape" codec does (which is what Jinja2 applies): \n, \t, \\,
// \', \", \a, \b, \f, \r, \v, octal \ooo, \xhh, \uXXXX, \UXXXXXXXX, a
// backslash before a newline joins the lines, and an unknown escape keeps
// its backslash.
func (l *lexer) str(p int) (string, int, error) {
	src := l.src
	quote := src[p]
	var b strings.Builder
	q := p + 1
	for {
		if q >= len(src) {
			return "", 0, l.errAt(p, "string literal is not closed")
		}
		c := src[q]
		if c == quote {
			return b.String(), q + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			q++
			continue
		}
		if q+1 >= len(src) {
			return "", 0, l.errAt(p, "string literal is not closed")
		}
		e := src[q+1]
		q += 2
		switch e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			for k := 0; k < 2 && q < len(src) && src[q] >= '0' && src[q] <= '7'; k++ {
				v = v*8 + int(src[q]-'0')
				q++
			}
			b.WriteRune(rune(v))
		case 'x', 'u', 'U':
			n := 2
			if e == 'u' {
				n = 4
			} else if e == 'U' {
				n = 8
			}
			if q+n > len(src) {
				return "", 0, l.errAt(q-2, "truncated \\%c escape", e)
			}
			v, err := strconv.ParseUint(src[q:q+n], 16, 32)
			if err != nil || v > utf8.MaxRune || v >= 0xd800 && v < 0xe000 {
				return "", 0, l.errAt(q-2, "invalid \\%c escape %q", e, src[q-2:q+n])
			}
			b.WriteRune(rune(v))
			q += n
		case 'N':
			return "", 0, l.errAt(q-2, "\\N{...} escapes are not supported")
		default:
			b.WriteByte('\\')
			q-- // the character after the backslash is read as itself
		}
	}
}

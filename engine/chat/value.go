package chat

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tstr is a string that knows which of its bytes came from messages (are
// "tainted"): spans holds those byte ranges, sorted, disjoint and never
// touching. Every operation that builds a string from others carries the
// spans along, so that the rendered output can say which of its characters
// were written by a user.
type tstr struct {
	s     string
	spans []span
}

type span struct{ lo, hi int }

func plain(s string) tstr { return tstr{s: s} }

func tainted(s string) tstr {
	if s == "" {
		return tstr{}
	}
	return tstr{s: s, spans: []span{{0, len(s)}}}
}

func (t tstr) isTainted() bool { return len(t.spans) > 0 }

// whole is s with every byte tainted when any byte of t is: for results
// that cannot be mapped back onto their inputs character by character.
func (t tstr) whole(s string) tstr {
	if t.isTainted() {
		return tainted(s)
	}
	return plain(s)
}

// cut returns t.s[lo:hi] with its spans.
func (t tstr) cut(lo, hi int) tstr {
	r := tstr{s: t.s[lo:hi]}
	for _, sp := range t.spans {
		a, b := max(sp.lo, lo), min(sp.hi, hi)
		if a < b {
			r.spans = append(r.spans, span{a - lo, b - lo})
		}
	}
	return r
}

// appendSpans adds spans shifted by off to dst, joining touching ones.
func appendSpans(dst []span, src []span, off int) []span {
	for _, sp := range src {
		sp.lo += off
		sp.hi += off
		if n := len(dst); n > 0 && dst[n-1].hi == sp.lo {
			dst[n-1].hi = sp.hi
			continue
		}
		dst = append(dst, sp)
	}
	return dst
}

func concat(a, b tstr) tstr {
	r := tstr{s: a.s + b.s}
	if a.isTainted() || b.isTainted() {
		r.spans = appendSpans(append([]span(nil), a.spans...), b.spans, len(a.s))
	}
	return r
}

// tbuilder builds a tstr piece by piece, within a size limit.
type tbuilder struct {
	b     strings.Builder
	spans []span
	limit int
}

func (w *tbuilder) write(t tstr) error {
	if w.b.Len()+len(t.s) > w.limit {
		return errTooLong
	}
	w.spans = appendSpans(w.spans, t.spans, w.b.Len())
	w.b.WriteString(t.s)
	return nil
}

func (w *tbuilder) writePlain(s string) error { return w.write(plain(s)) }

func (w *tbuilder) tstr() tstr { return tstr{s: w.b.String(), spans: w.spans} }

// Values, with Python's types and Jinja2's Undefined.

type vkind uint8

const (
	vUndef vkind = iota
	vNone
	vBool
	vInt
	vFloat
	vStr
	vList
	vDict
	vFunc
	vLoop
)

type value struct {
	k  vkind
	b  bool
	i  int64
	f  float64
	s  tstr    // vStr; for vUndef, the name that was not found
	l  []value // vList (never modified once built)
	d  *dict   // vDict
	fn *function
	lp *loopState // vLoop
}

// dict is an insertion-ordered map with string keys. Namespaces are dicts
// whose attributes "set" may assign; nothing else is ever modified.
type dict struct {
	keys []string
	m    map[string]value
	ns   bool
}

func newDict(n int) *dict { return &dict{m: make(map[string]value, n)} }

func (d *dict) set(k string, v value) {
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

type function struct {
	name string
	call func(ev *evaluator, args []value, kw []kwValue) (value, error)
}

type kwValue struct {
	name string
	v    value
}

// undefined is Jinja2's Undefined for a name not found; using it as a
// value is the error "'name' is undefined".
func undefined(name string) value { return undefinedMsg("'" + name + "' is undefined") }

// undefinedMsg is an Undefined whose use is the error msg.
func undefinedMsg(msg string) value { return value{k: vUndef, s: plain(msg)} }

func boolValue(b bool) value      { return value{k: vBool, b: b} }
func intValue(i int64) value      { return value{k: vInt, i: i} }
func floatValue(f float64) value  { return value{k: vFloat, f: f} }
func strValue(s tstr) value       { return value{k: vStr, s: s} }
func listValue(l []value) value   { return value{k: vList, l: l} }
func dictValue(d *dict) value     { return value{k: vDict, d: d} }
func funcValue(f *function) value { return value{k: vFunc, fn: f} }
func (v value) isNumber() bool    { return v.k == vInt || v.k == vFloat || v.k == vBool }
func (v value) isIntegral() bool  { return v.k == vInt || v.k == vBool }

// typeName is Python's name for the value's type, for error messages.
func (v value) typeName() string {
	switch v.k {
	case vUndef:
		return "undefined"
	case vNone:
		return "NoneType"
	case vBool:
		return "bool"
	case vInt:
		return "int"
	case vFloat:
		return "float"
	case vStr:
		return "str"
	case vList:
		return "list"
	case vDict:
		if v.d.ns {
			return "Namespace"
		}
		return "dict"
	case vFunc:
		return "function"
	case vLoop:
		return "LoopContext"
	}
	return "?"
}

// truth is Python's bool(v); Undefined is false.
func (v value) truth() bool {
	switch v.k {
	case vBool:
		return v.b
	case vInt:
		return v.i != 0
	case vFloat:
		return v.f != 0
	case vStr:
		return v.s.s != ""
	case vList:
		return len(v.l) > 0
	case vDict:
		return v.d.ns || len(v.d.keys) > 0
	case vFunc, vLoop:
		return true
	}
	return false
}

func (v value) num() float64 {
	switch v.k {
	case vInt:
		return float64(v.i)
	case vBool:
		if v.b {
			return 1
		}
		return 0
	}
	return v.f
}

func (v value) int() int64 {
	if v.k == vBool {
		if v.b {
			return 1
		}
		return 0
	}
	return v.i
}

// formatFloat is Python's repr of a float: the shortest digits that read
// back the same, in exponent form below 1e-4 and from 1e16 on, and
// always with a point or an exponent.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+16 and e-05 as Python does.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyRepr appends Python's repr of a string: single quotes unless the
// string has a single quote and no double one.
func pyRepr(b *strings.Builder, s string) {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f && r < 0xa0:
			b.WriteString(`\x`)
			b.WriteString(hex2(int(r)))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
}

func hex2(n int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[n>>4&15], digits[n&15]})
}

// runeOffsets returns the byte offset of every character of s and len(s)
// last, for indexing strings by character as Python does.
func runeOffsets(s string) []int {
	offs := make([]int, 0, utf8.RuneCountInString(s)+1)
	for i := range s {
		offs = append(offs, i)
	}
	return append(offs, len(s))
}

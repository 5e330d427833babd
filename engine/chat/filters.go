package chat

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// knownFilter lists the filters the renderer implements; Parse rejects
// the others.
func knownFilter(name string) bool {
	switch name {
	case "trim", "length", "count", "upper", "lower", "capitalize", "title", "tojson", "string",
		"default", "d", "first", "last", "join", "list", "replace", "items", "safe", "int", "float",
		"abs", "reverse", "selectattr", "rejectattr", "map", "unique":
		return true
	}
	return false
}

// knownTest lists the tests ("x is name") the renderer implements.
func knownTest(name string) bool {
	switch name {
	case "defined", "undefined", "none", "string", "number", "integer", "float", "mapping",
		"sequence", "iterable", "boolean", "true", "false", "odd", "even", "divisibleby",
		"eq", "equalto", "ne", "in", "sameas", "callable":
		return true
	}
	return false
}

func (ev *evaluator) filter(name string, x value, args []value, kw []kwValue, pos int) (value, error) {
	switch name {
	case "safe":
		return x, nil
	case "default", "d":
		def, ok := arg(args, kw, 0, "default_value")
		if !ok {
			def = strValue(plain(""))
		}
		b, _ := arg(args, kw, 1, "boolean")
		if x.k == vUndef || b.truth() && !x.truth() {
			return def, nil
		}
		return x, nil
	case "length", "count":
		switch x.k {
		case vUndef:
			return intValue(0), nil
		case vStr:
			return intValue(int64(utf8.RuneCountInString(x.s.s))), ev.charge(pos, len(x.s.s))
		case vList:
			return intValue(int64(len(x.l))), nil
		case vDict:
			return intValue(int64(len(x.d.keys))), nil
		}
		return value{}, errors.New("object of type '" + x.typeName() + "' has no len()")
	case "string":
		s, err := ev.str(x, pos)
		return strValue(s), err
	case "tojson":
		indent := -1
		if v, ok := arg(args, kw, 0, "indent"); ok && v.k != vNone {
			if !v.isIntegral() || v.int() < 0 || v.int() > 64 {
				return value{}, errors.New("indent must be a small non-negative integer")
			}
			indent = int(v.int())
		}
		sortKeys := false
		if v, ok := arg(args, kw, 1, "sort_keys"); ok {
			sortKeys = v.truth()
		}
		w := &jsonWriter{ev: ev, pos: pos, indent: indent, sortKeys: sortKeys}
		if err := w.write(x, 0); err != nil {
			return value{}, err
		}
		if w.b.Len() > ev.maxLen {
			return value{}, ev.tooLong(pos)
		}
		if err := ev.charge(pos, w.b.Len()); err != nil {
			return value{}, err
		}
		if w.taint {
			return strValue(tainted(w.b.String())), nil
		}
		return strValue(plain(w.b.String())), nil
	case "first", "last":
		items, err := ev.iterate(x, pos)
		if err != nil {
			return value{}, err
		}
		if len(items) == 0 {
			return undefinedMsg("no " + name + " item, sequence was empty"), nil
		}
		if name == "first" {
			return items[0], nil
		}
		return items[len(items)-1], nil
	case "list":
		return ev.listOf(x, pos)
	case "items":
		if x.k == vUndef {
			return listValue(nil), nil
		}
		if x.k != vDict {
			return value{}, errors.New("can only get items of a mapping, not " + x.typeName())
		}
		return dictItems(x.d), nil
	case "reverse":
		if x.k == vStr {
			return ev.evalSlice(&sliceExpr{x: &literalExpr{v: x}, step: &literalExpr{v: intValue(-1)}, pos: pos})
		}
		items, err := ev.iterate(x, pos)
		if err != nil {
			return value{}, err
		}
		out := make([]value, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return listValue(out), nil
	case "join":
		sep, _, err := strArg(args, kw, 0, "d")
		if err != nil {
			return value{}, err
		}
		attr, haveAttr, err := strArg(args, kw, 1, "attribute")
		if err != nil {
			return value{}, err
		}
		items, err := ev.iterate(x, pos)
		if err != nil {
			return value{}, err
		}
		w := tbuilder{limit: ev.maxLen}
		for i, it := range items {
			if haveAttr {
				if it, err = ev.getattrPath(it, attr.s, pos); err != nil {
					return value{}, err
				}
			}
			s, err := ev.str(it, pos)
			if err != nil {
				return value{}, err
			}
			if i > 0 {
				if err := w.write(sep); err != nil {
					return value{}, ev.tooLong(pos)
				}
			}
			if err := w.write(s); err != nil {
				return value{}, ev.tooLong(pos)
			}
		}
		return strValue(w.tstr()), ev.charge(pos, w.b.Len())
	case "int", "float", "abs":
		return numFilter(name, x, args, kw)
	case "selectattr", "rejectattr", "map", "unique":
		return ev.seqFilter(name, x, args, kw, pos)
	}
	// The string filters: Jinja2 applies them to str(x).
	s, err := ev.str(x, pos)
	if err != nil {
		return value{}, err
	}
	if err := ev.charge(pos, len(s.s)); err != nil {
		return value{}, err
	}
	switch name {
	case "trim":
		chars, ok, err := strArg(args, kw, 0, "chars")
		if err != nil {
			return value{}, err
		}
		return strValue(strip(s, chars, ok, true, true)), nil
	case "upper", "lower", "capitalize", "title":
		return strValue(caseMap(s, name)), nil
	case "replace":
		return replaceValue(ev, s, args, kw)
	}
	return value{}, errors.New("unsupported filter")
}

// getattrPath follows "a.b.c" as Jinja2's attribute= arguments do.
func (ev *evaluator) getattrPath(v value, path string, pos int) (value, error) {
	for _, part := range strings.Split(path, ".") {
		var err error
		if i, perr := strconv.ParseInt(part, 10, 64); perr == nil {
			v, err = ev.getitem(v, intValue(i), pos)
		} else {
			v, err = ev.getitem(v, strValue(plain(part)), pos)
		}
		if err != nil {
			return value{}, err
		}
	}
	return v, nil
}

func (ev *evaluator) seqFilter(name string, x value, args []value, kw []kwValue, pos int) (value, error) {
	items, err := ev.iterate(x, pos)
	if err != nil {
		return value{}, err
	}
	var out []value
	switch name {
	case "unique":
		for _, it := range items {
			seen := false
			for _, o := range out {
				if eq, err := ev.equal(it, o, pos); err != nil {
					return value{}, err
				} else if eq {
					seen = true
					break
				}
			}
			if !seen {
				out = append(out, it)
			}
		}
	case "map":
		attr, ok, err := strArg(args, kw, 0, "attribute")
		if err != nil {
			return value{}, err
		}
		if !ok || len(args) > 0 {
			return value{}, errors.New("only map(attribute=...) is supported")
		}
		def, haveDef := arg(nil, kw, 0, "default")
		for _, it := range items {
			v, err := ev.getattrPath(it, attr.s, pos)
			if err != nil {
				return value{}, err
			}
			if v.k == vUndef && haveDef {
				v = def
			}
			out = append(out, v)
		}
	default: // selectattr, rejectattr
		if len(args) < 1 || args[0].k != vStr {
			return value{}, errors.New(name + " needs an attribute name")
		}
		test := "truth"
		if len(args) > 1 {
			if args[1].k != vStr || !knownTest(args[1].s.s) {
				return value{}, errors.New(name + ": unsupported test")
			}
			test = args[1].s.s
		}
		for _, it := range items {
			v, err := ev.getattrPath(it, args[0].s.s, pos)
			if err != nil {
				return value{}, err
			}
			ok := v.truth()
			if test != "truth" {
				if ok, err = ev.test(test, v, args[2:], pos); err != nil {
					return value{}, err
				}
			}
			if ok == (name == "selectattr") {
				out = append(out, it)
			}
		}
	}
	return listValue(out), nil
}

func numFilter(name string, x value, args []value, kw []kwValue) (value, error) {
	switch name {
	case "abs":
		switch {
		case x.isIntegral():
			i := x.int()
			if i == math.MinInt64 {
				return value{}, errors.New("integer overflow")
			}
			if i < 0 {
				i = -i
			}
			return intValue(i), nil
		case x.k == vFloat:
			return floatValue(math.Abs(x.f)), nil
		}
		return value{}, errors.New("bad operand type for abs(): '" + x.typeName() + "'")
	case "int":
		def, ok := arg(args, kw, 0, "default")
		if !ok {
			def = intValue(0)
		}
		switch {
		case x.isIntegral():
			return intValue(x.int()), nil
		case x.k == vFloat:
			if math.IsNaN(x.f) || math.Abs(x.f) >= 1<<63 {
				return def, nil
			}
			return intValue(int64(x.f)), nil
		case x.k == vStr:
			s := strings.TrimFunc(x.s.s, isSpace)
			if i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64); err == nil {
				return intValue(i), nil
			}
			if f, err := strconv.ParseFloat(s, 64); err == nil && math.Abs(f) < 1<<63 {
				return intValue(int64(f)), nil
			}
		}
		return def, nil
	}
	def, ok := arg(args, kw, 0, "default")
	if !ok {
		def = floatValue(0)
	}
	switch {
	case x.isNumber():
		return floatValue(x.num()), nil
	case x.k == vStr:
		if f, err := strconv.ParseFloat(strings.TrimFunc(x.s.s, isSpace), 64); err == nil {
			return floatValue(f), nil
		}
	}
	return def, nil
}

func (ev *evaluator) test(name string, x value, args []value, pos int) (bool, error) {
	one := func() (value, error) {
		if len(args) != 1 {
			return value{}, errors.New("takes one argument")
		}
		return args[0], nil
	}
	switch name {
	case "defined":
		return x.k != vUndef, nil
	case "undefined":
		return x.k == vUndef, nil
	case "none":
		return x.k == vNone, nil
	case "string":
		return x.k == vStr, nil
	case "number":
		return x.isNumber(), nil
	case "integer":
		return x.k == vInt, nil
	case "float":
		return x.k == vFloat, nil
	case "boolean":
		return x.k == vBool, nil
	case "true":
		return x.k == vBool && x.b, nil
	case "false":
		return x.k == vBool && !x.b, nil
	case "mapping":
		return x.k == vDict, nil
	case "sequence", "iterable":
		return x.k == vStr || x.k == vList || x.k == vDict, nil
	case "callable":
		return x.k == vFunc, nil
	case "odd", "even":
		if !x.isIntegral() {
			return false, errors.New("needs an integer, not " + x.typeName())
		}
		return (x.int()%2 != 0) == (name == "odd"), nil
	case "divisibleby":
		d, err := one()
		if err != nil {
			return false, err
		}
		if !x.isIntegral() || !d.isIntegral() || d.int() == 0 {
			return false, errors.New("needs a non-zero integer")
		}
		return x.int()%d.int() == 0, nil
	case "eq", "equalto", "ne":
		y, err := one()
		if err != nil {
			return false, err
		}
		eq, err := ev.equal(x, y, pos)
		return eq == (name != "ne"), err
	case "in":
		y, err := one()
		if err != nil {
			return false, err
		}
		return ev.contains(y, x, pos)
	case "sameas":
		y, err := one()
		if err != nil {
			return false, err
		}
		switch {
		case x.k != y.k:
			return false, nil
		case x.k == vNone || x.k == vUndef:
			return true, nil
		case x.k == vBool:
			return x.b == y.b, nil
		case x.k == vDict:
			return x.d == y.d, nil
		}
		return false, nil
	}
	return false, errors.New("unsupported test")
}

// jsonWriter writes what Hugging Face's tojson filter writes: Python's
// json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys),
// not Jinja2's own tojson (which escapes <, >, & and ' for HTML).
type jsonWriter struct {
	ev       *evaluator
	pos      int
	b        strings.Builder
	indent   int // -1: on one line, with ", " and ": "
	sortKeys bool
	taint    bool
}

func (w *jsonWriter) newline(level int) {
	if w.indent >= 0 {
		w.b.WriteByte('\n')
		w.b.WriteString(strings.Repeat(" ", w.indent*level))
	}
}

func (w *jsonWriter) sep() {
	if w.indent >= 0 {
		w.b.WriteByte(',')
	} else {
		w.b.WriteString(", ")
	}
}

func (w *jsonWriter) write(v value, level int) error {
	if err := w.ev.step(w.pos); err != nil {
		return err
	}
	if w.b.Len() > w.ev.maxLen {
		return w.ev.tooLong(w.pos)
	}
	if level > maxDepth {
		return w.ev.errAt(w.pos, "value nests deeper than %d levels", maxDepth)
	}
	switch v.k {
	case vNone:
		w.b.WriteString("null")
	case vBool:
		if v.b {
			w.b.WriteString("true")
		} else {
			w.b.WriteString("false")
		}
	case vInt:
		w.b.WriteString(itoa(v.i))
	case vFloat:
		switch {
		case math.IsNaN(v.f):
			w.b.WriteString("NaN")
		case math.IsInf(v.f, 1):
			w.b.WriteString("Infinity")
		case math.IsInf(v.f, -1):
			w.b.WriteString("-Infinity")
		default:
			w.b.WriteString(formatFloat(v.f))
		}
	case vStr:
		w.taint = w.taint || v.s.isTainted()
		jsonString(&w.b, v.s.s)
	case vList:
		if len(v.l) == 0 {
			w.b.WriteString("[]")
			return nil
		}
		w.b.WriteByte('[')
		for i, x := range v.l {
			if i > 0 {
				w.sep()
			}
			w.newline(level + 1)
			if err := w.write(x, level+1); err != nil {
				return err
			}
		}
		w.newline(level)
		w.b.WriteByte(']')
	case vDict:
		if v.d.ns {
			return w.ev.errAt(w.pos, "Object of type Namespace is not JSON serializable")
		}
		if len(v.d.keys) == 0 {
			w.b.WriteString("{}")
			return nil
		}
		keys := v.d.keys
		if w.sortKeys {
			keys = sortedKeys(v.d)
		}
		w.b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.sep()
			}
			w.newline(level + 1)
			jsonString(&w.b, k)
			w.b.WriteString(": ")
			if err := w.write(v.d.m[k], level+1); err != nil {
				return err
			}
		}
		w.newline(level)
		w.b.WriteByte('}')
	default:
		return w.ev.errAt(w.pos, "Object of type %s is not JSON serializable", v.typeName())
	}
	return nil
}

// jsonString writes s as Python's json.dumps(ensure_ascii=False) does.
func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteString(hex2(int(r)))
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

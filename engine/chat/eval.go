package chat

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// errTooLong is returned by a tbuilder over its limit; the evaluator turns
// it into an *Error that names the limit.
var errTooLong = errors.New("output too long")

// The renderer's control flow out of loop bodies.
type flow uint8

const (
	flowNormal flow = iota
	flowBreak
	flowContinue
)

// maxItems bounds the length of any list a template builds.
const maxItems = 1 << 16

type evaluator struct {
	src      string
	out      tbuilder
	scopes   []map[string]value
	steps    int
	maxSteps int
	maxLen   int // bytes of any string, and of the output
	depth    int // nesting of recursive value operations
}

func (ev *evaluator) errAt(pos int, format string, args ...any) error {
	return newError(ev.src, pos, format, args...)
}

// step charges one unit of work against the limit.
func (ev *evaluator) step(pos int) error {
	ev.steps++
	if ev.steps > ev.maxSteps {
		return ev.errAt(pos, "rendering takes more than %d steps (Limits.MaxSteps): is the template looping without end?", ev.maxSteps)
	}
	return nil
}

// charge charges the work of handling n bytes of string: a step per 256
// bytes, so that the bytes copied or scanned are bounded by MaxSteps too.
func (ev *evaluator) charge(pos, n int) error {
	ev.steps += n >> 8
	return ev.step(pos)
}

// offsets is runeOffsets, charged: a step per 8 bytes, since it allocates
// an int per character.
func (ev *evaluator) offsets(s string, pos int) ([]int, error) {
	ev.steps += len(s) >> 3
	if err := ev.step(pos); err != nil {
		return nil, err
	}
	return runeOffsets(s), nil
}

func (ev *evaluator) tooLong(pos int) error {
	return ev.errAt(pos, "a string would be longer than %d bytes (Limits.MaxOutput)", ev.maxLen)
}

func (ev *evaluator) lookup(name string) (value, bool) {
	for i := len(ev.scopes) - 1; i >= 0; i-- {
		if v, ok := ev.scopes[i][name]; ok {
			return v, true
		}
	}
	return value{}, false
}

func (ev *evaluator) exec(nodes []node) (flow, error) {
	for _, n := range nodes {
		f, err := ev.execOne(n)
		if err != nil || f != flowNormal {
			return f, err
		}
	}
	return flowNormal, nil
}

func (ev *evaluator) execOne(n node) (flow, error) {
	switch n := n.(type) {
	case *textNode:
		if err := ev.out.writePlain(n.text); err != nil {
			return 0, ev.tooLong(0)
		}
	case *outputNode:
		v, err := ev.eval(n.x)
		if err != nil {
			return 0, err
		}
		s, err := ev.str(v, n.pos)
		if err != nil {
			return 0, err
		}
		if err := ev.out.write(s); err != nil {
			return 0, ev.tooLong(n.pos)
		}
	case *ifNode:
		for i, c := range n.conds {
			v, err := ev.eval(c)
			if err != nil {
				return 0, err
			}
			if v.truth() {
				return ev.exec(n.bodies[i])
			}
		}
		return ev.exec(n.els)
	case *forNode:
		return ev.execFor(n)
	case *setNode:
		return flowNormal, ev.execSet(n)
	case *loopCtlNode:
		if n.brk {
			return flowBreak, nil
		}
		return flowContinue, nil
	}
	return flowNormal, nil
}

func (ev *evaluator) execSet(n *setNode) error {
	var v value
	if n.x != nil {
		var err error
		if v, err = ev.eval(n.x); err != nil {
			return err
		}
	} else {
		// A block set captures its body's output as a string.
		saved := ev.out
		ev.out = tbuilder{limit: ev.maxLen}
		_, err := ev.exec(n.body)
		body := ev.out.tstr()
		ev.out = saved
		if err != nil {
			return err
		}
		v = strValue(body)
	}
	if n.attr == "" {
		ev.scopes[len(ev.scopes)-1][n.name] = v
		return nil
	}
	ns, ok := ev.lookup(n.name)
	if !ok || ns.k != vDict || !ns.d.ns {
		return ev.errAt(n.pos, "cannot assign attribute %q of %s: only a namespace() has attributes to set", n.attr, n.name)
	}
	ns.d.set(n.attr, v)
	return nil
}

func (ev *evaluator) execFor(n *forNode) (flow, error) {
	seq, err := ev.eval(n.iter)
	if err != nil {
		return 0, err
	}
	items, err := ev.iterate(seq, n.iter.position())
	if err != nil {
		return 0, err
	}
	// One map serves every iteration, cleared in between: each iteration
	// starts with no variables of its own, as in Jinja2.
	s := make(map[string]value, len(n.targets)+1)
	scope := func(item value) (map[string]value, error) {
		clear(s)
		if len(n.targets) == 1 {
			s[n.targets[0]] = item
			return s, nil
		}
		parts, err := ev.iterate(item, n.pos)
		if err != nil {
			return nil, err
		}
		if len(parts) != len(n.targets) {
			return nil, ev.errAt(n.pos, "cannot unpack %d values into %d loop variables", len(parts), len(n.targets))
		}
		for i, t := range n.targets {
			s[t] = parts[i]
		}
		return s, nil
	}
	if n.cond != nil {
		// The loop filter runs first: loop.length and friends count only
		// the items it keeps.
		var kept []value
		for _, it := range items {
			if err := ev.step(n.pos); err != nil {
				return 0, err
			}
			s, err := scope(it)
			if err != nil {
				return 0, err
			}
			ev.scopes = append(ev.scopes, s)
			c, err := ev.eval(n.cond)
			ev.scopes = ev.scopes[:len(ev.scopes)-1]
			if err != nil {
				return 0, err
			}
			if c.truth() {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return ev.exec(n.els)
	}
	for i, it := range items {
		if err := ev.step(n.pos); err != nil {
			return 0, err
		}
		s, err := scope(it)
		if err != nil {
			return 0, err
		}
		s["loop"] = value{k: vLoop, lp: &loopState{items: items, i: i}}
		ev.scopes = append(ev.scopes, s)
		f, err := ev.exec(n.body)
		ev.scopes = ev.scopes[:len(ev.scopes)-1]
		if err != nil {
			return 0, err
		}
		if f == flowBreak {
			break
		}
	}
	return flowNormal, nil
}

// loopState is the "loop" variable of a for loop, whose attributes are
// computed when read.
type loopState struct {
	items []value
	i     int
}

func (lp *loopState) attr(name string) value {
	n, i := len(lp.items), lp.i
	switch name {
	case "index":
		return intValue(int64(i + 1))
	case "index0":
		return intValue(int64(i))
	case "revindex":
		return intValue(int64(n - i))
	case "revindex0":
		return intValue(int64(n - i - 1))
	case "first":
		return boolValue(i == 0)
	case "last":
		return boolValue(i == n-1)
	case "length":
		return intValue(int64(n))
	case "depth":
		return intValue(1)
	case "depth0":
		return intValue(0)
	case "previtem":
		if i > 0 {
			return lp.items[i-1]
		}
	case "nextitem":
		if i < n-1 {
			return lp.items[i+1]
		}
	case "cycle":
		return funcValue(&function{name: "loop.cycle", call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if len(args) == 0 {
				return value{}, errors.New("loop.cycle needs at least one argument")
			}
			return args[i%len(args)], nil
		}})
	}
	return undefinedMsg("'LoopContext object' has no attribute '" + name + "'")
}

// iterate lists what "for" visits in v: a list's items, a dict's keys, a
// string's characters; Undefined is empty.
func (ev *evaluator) iterate(v value, pos int) ([]value, error) {
	switch v.k {
	case vUndef:
		return nil, nil
	case vList:
		return v.l, nil
	case vDict:
		out := make([]value, len(v.d.keys))
		for i, k := range v.d.keys {
			out[i] = strValue(plain(k))
		}
		return out, nil
	case vStr:
		// A value per character: a step each.
		ev.steps += utf8.RuneCountInString(v.s.s)
		if err := ev.step(pos); err != nil {
			return nil, err
		}
		offs := runeOffsets(v.s.s)
		out := make([]value, len(offs)-1)
		for i := range out {
			out[i] = strValue(v.s.cut(offs[i], offs[i+1]))
		}
		return out, nil
	}
	return nil, ev.errAt(pos, "'%s' object is not iterable", v.typeName())
}

func (ev *evaluator) eval(e expr) (value, error) {
	if err := ev.step(e.position()); err != nil {
		return value{}, err
	}
	switch e := e.(type) {
	case *literalExpr:
		return e.v, nil
	case *nameExpr:
		if v, ok := ev.lookup(e.name); ok {
			return v, nil
		}
		if f := global(e.name); f != nil {
			return funcValue(f), nil
		}
		return undefined(e.name), nil
	case *attrExpr:
		x, err := ev.eval(e.x)
		if err != nil {
			return value{}, err
		}
		return ev.getattr(x, e.name, e.pos)
	case *itemExpr:
		x, err := ev.eval(e.x)
		if err != nil {
			return value{}, err
		}
		i, err := ev.eval(e.index)
		if err != nil {
			return value{}, err
		}
		return ev.getitem(x, i, e.pos)
	case *sliceExpr:
		return ev.evalSlice(e)
	case *callExpr:
		return ev.evalCall(e)
	case *filterExpr:
		x, err := ev.eval(e.x)
		if err != nil {
			return value{}, err
		}
		args, kw, err := ev.evalArgs(e.args, e.kw)
		if err != nil {
			return value{}, err
		}
		v, err := ev.filter(e.name, x, args, kw, e.pos)
		if err != nil {
			return value{}, ev.wrap(err, e.pos, "filter "+e.name)
		}
		return v, nil
	case *testExpr:
		x, err := ev.eval(e.x)
		if err != nil {
			return value{}, err
		}
		args, _, err := ev.evalArgs(e.args, nil)
		if err != nil {
			return value{}, err
		}
		b, err := ev.test(e.name, x, args, e.pos)
		if err != nil {
			return value{}, ev.wrap(err, e.pos, "test "+e.name)
		}
		return boolValue(b != e.negate), nil
	case *unaryExpr:
		x, err := ev.eval(e.x)
		if err != nil {
			return value{}, err
		}
		switch e.op {
		case "not":
			return boolValue(!x.truth()), nil
		case "-":
			switch {
			case x.isIntegral():
				if x.int() == math.MinInt64 {
					return value{}, ev.errAt(e.pos, "integer overflow")
				}
				return intValue(-x.int()), nil
			case x.k == vFloat:
				return floatValue(-x.f), nil
			}
		case "+":
			if x.isNumber() {
				if x.k == vBool {
					return intValue(x.int()), nil
				}
				return x, nil
			}
		}
		if err := ev.defined(x, e.pos); err != nil {
			return value{}, err
		}
		return value{}, ev.errAt(e.pos, "bad operand type for unary %s: '%s'", e.op, x.typeName())
	case *binaryExpr:
		l, err := ev.eval(e.l)
		if err != nil {
			return value{}, err
		}
		switch e.op {
		case "and":
			if !l.truth() {
				return l, nil
			}
			return ev.eval(e.r)
		case "or":
			if l.truth() {
				return l, nil
			}
			return ev.eval(e.r)
		}
		r, err := ev.eval(e.r)
		if err != nil {
			return value{}, err
		}
		return ev.arith(e.op, l, r, e.pos)
	case *compareExpr:
		l, err := ev.eval(e.first)
		if err != nil {
			return value{}, err
		}
		for i, op := range e.ops {
			r, err := ev.eval(e.rest[i])
			if err != nil {
				return value{}, err
			}
			ok, err := ev.compare(op, l, r, e.pos)
			if err != nil {
				return value{}, err
			}
			if !ok {
				return boolValue(false), nil
			}
			l = r
		}
		return boolValue(true), nil
	case *condExpr:
		c, err := ev.eval(e.cond)
		if err != nil {
			return value{}, err
		}
		if c.truth() {
			return ev.eval(e.yes)
		}
		if e.no == nil {
			return undefinedMsg("the inline if expression on false has no else"), nil
		}
		return ev.eval(e.no)
	case *listExpr:
		l := make([]value, len(e.items))
		for i, x := range e.items {
			v, err := ev.eval(x)
			if err != nil {
				return value{}, err
			}
			l[i] = v
		}
		return listValue(l), nil
	case *dictExpr:
		d := newDict(len(e.keys))
		for i := range e.keys {
			k, err := ev.eval(e.keys[i])
			if err != nil {
				return value{}, err
			}
			if k.k != vStr {
				return value{}, ev.errAt(e.keys[i].position(), "dict keys must be strings here, not %s", k.typeName())
			}
			v, err := ev.eval(e.vals[i])
			if err != nil {
				return value{}, err
			}
			d.set(k.s.s, v)
		}
		return dictValue(d), nil
	}
	return value{}, ev.errAt(e.position(), "cannot evaluate %T", e)
}

// wrap gives err, returned by a filter, test, function or method, the
// template position, unless it already has one.
func (ev *evaluator) wrap(err error, pos int, what string) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return ev.errAt(pos, "%s: %v", what, err)
}

// defined returns the error Jinja2 raises for using Undefined as a value.
func (ev *evaluator) defined(v value, pos int) error {
	if v.k == vUndef {
		return ev.errAt(pos, "%s", v.s.s)
	}
	return nil
}

func (ev *evaluator) evalArgs(args []expr, kw []kwArg) ([]value, []kwValue, error) {
	var av []value
	for _, a := range args {
		v, err := ev.eval(a)
		if err != nil {
			return nil, nil, err
		}
		av = append(av, v)
	}
	var kv []kwValue
	for _, k := range kw {
		v, err := ev.eval(k.x)
		if err != nil {
			return nil, nil, err
		}
		kv = append(kv, kwValue{name: k.name, v: v})
	}
	return av, kv, nil
}

func (ev *evaluator) evalCall(e *callExpr) (value, error) {
	fn, err := ev.eval(e.fn)
	if err != nil {
		return value{}, err
	}
	args, kw, err := ev.evalArgs(e.args, e.kw)
	if err != nil {
		return value{}, err
	}
	if fn.k != vFunc {
		if err := ev.defined(fn, e.pos); err != nil {
			return value{}, err
		}
		return value{}, ev.errAt(e.pos, "'%s' object is not callable", fn.typeName())
	}
	v, err := fn.fn.call(ev, args, kw)
	if err != nil {
		return value{}, ev.wrap(err, e.pos, fn.fn.name)
	}
	return v, nil
}

func (ev *evaluator) getattr(x value, name string, pos int) (value, error) {
	switch x.k {
	case vUndef:
		return value{}, ev.defined(x, pos)
	case vDict:
		if !x.d.ns {
			if m := dictMethod(x.d, name); m != nil {
				return funcValue(m), nil
			}
		}
		if v, ok := x.d.m[name]; ok {
			return v, nil
		}
	case vStr:
		if m := strMethod(x.s, name); m != nil {
			return funcValue(m), nil
		}
	case vLoop:
		return x.lp.attr(name), nil
	}
	return undefinedMsg(fmt.Sprintf("'%s object' has no attribute '%s'", x.typeName(), name)), nil
}

func (ev *evaluator) getitem(x, i value, pos int) (value, error) {
	switch x.k {
	case vUndef:
		return value{}, ev.defined(x, pos)
	case vList:
		if i.isIntegral() {
			n := int64(len(x.l))
			j := i.int()
			if j < 0 {
				j += n
			}
			if j >= 0 && j < n {
				return x.l[j], nil
			}
			return undefinedMsg(fmt.Sprintf("'list object' has no element %d", i.int())), nil
		}
	case vStr:
		if i.isIntegral() {
			offs, err := ev.offsets(x.s.s, pos)
			if err != nil {
				return value{}, err
			}
			n := int64(len(offs) - 1)
			j := i.int()
			if j < 0 {
				j += n
			}
			if j >= 0 && j < n {
				return strValue(x.s.cut(offs[j], offs[j+1])), nil
			}
			return undefinedMsg(fmt.Sprintf("'str object' has no element %d", i.int())), nil
		}
	case vDict:
		if i.k == vStr {
			if err := ev.charge(pos, len(i.s.s)); err != nil {
				return value{}, err
			}
			if v, ok := x.d.m[i.s.s]; ok {
				return v, nil
			}
			return ev.getattr(x, i.s.s, pos)
		}
	}
	if i.k == vStr {
		return ev.getattr(x, i.s.s, pos)
	}
	return undefinedMsg(fmt.Sprintf("'%s object' has no element %s", x.typeName(), i.typeName())), nil
}

// sliceIndices is Python's slice.indices: the positions a[lo:hi:step]
// visits in a sequence of n.
func sliceIndices(n int64, lo, hi, step *int64) ([]int64, error) {
	st := int64(1)
	if step != nil {
		st = *step
	}
	if st == 0 {
		return nil, errors.New("slice step cannot be zero")
	}
	clamp := func(p *int64, def, lower, upper int64) int64 {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
			if v < lower {
				v = lower
			}
		} else if v > upper {
			v = upper
		}
		return v
	}
	var out []int64
	if st > 0 {
		a, b := clamp(lo, 0, 0, n), clamp(hi, n, 0, n)
		for i := a; i < b; i += st {
			out = append(out, i)
		}
	} else {
		a, b := clamp(lo, n-1, -1, n-1), clamp(hi, -1, -1, n-1)
		for i := a; i > b; i += st {
			out = append(out, i)
		}
	}
	return out, nil
}

func (ev *evaluator) evalSlice(e *sliceExpr) (value, error) {
	x, err := ev.eval(e.x)
	if err != nil {
		return value{}, err
	}
	var bounds [3]*int64
	for k, b := range []expr{e.lo, e.hi, e.step} {
		if b == nil {
			continue
		}
		v, err := ev.eval(b)
		if err != nil {
			return value{}, err
		}
		if v.k == vNone {
			continue
		}
		if !v.isIntegral() {
			return value{}, ev.errAt(b.position(), "slice indices must be integers or None, not %s", v.typeName())
		}
		i := v.int()
		bounds[k] = &i
	}
	switch x.k {
	case vUndef:
		return value{}, ev.defined(x, e.pos)
	case vList:
		idx, err := sliceIndices(int64(len(x.l)), bounds[0], bounds[1], bounds[2])
		if err != nil {
			return value{}, ev.errAt(e.pos, "%v", err)
		}
		out := make([]value, len(idx))
		for k, i := range idx {
			out[k] = x.l[i]
		}
		return listValue(out), nil
	case vStr:
		offs, err := ev.offsets(x.s.s, e.pos)
		if err != nil {
			return value{}, err
		}
		idx, err := sliceIndices(int64(len(offs)-1), bounds[0], bounds[1], bounds[2])
		if err != nil {
			return value{}, ev.errAt(e.pos, "%v", err)
		}
		if len(idx) == 0 {
			return strValue(plain("")), nil
		}
		if bounds[2] == nil || *bounds[2] == 1 {
			return strValue(x.s.cut(offs[idx[0]], offs[idx[len(idx)-1]+1])), nil
		}
		w := tbuilder{limit: ev.maxLen}
		for _, i := range idx {
			if err := w.write(x.s.cut(offs[i], offs[i+1])); err != nil {
				return value{}, ev.tooLong(e.pos)
			}
		}
		return strValue(w.tstr()), nil
	}
	return value{}, ev.errAt(e.pos, "'%s' object is not subscriptable", x.typeName())
}

// str is Python's str(v) as Jinja2 prints it; Undefined prints as "".
func (ev *evaluator) str(v value, pos int) (tstr, error) {
	switch v.k {
	case vUndef:
		return tstr{}, nil
	case vStr:
		return v.s, nil
	case vNone:
		return plain("None"), nil
	case vBool:
		if v.b {
			return plain("True"), nil
		}
		return plain("False"), nil
	case vInt:
		return plain(itoa(v.i)), nil
	case vFloat:
		return plain(formatFloat(v.f)), nil
	}
	w := &reprWriter{ev: ev, pos: pos}
	if err := w.repr(v); err != nil {
		return tstr{}, err
	}
	if w.b.Len() > ev.maxLen {
		return tstr{}, ev.tooLong(pos)
	}
	if err := ev.charge(pos, w.b.Len()); err != nil {
		return tstr{}, err
	}
	if w.taint {
		return tainted(w.b.String()), nil
	}
	return plain(w.b.String()), nil
}

func itoa(i int64) string {
	var b [24]byte
	n := len(b)
	neg := i < 0
	u := uint64(i)
	if neg {
		u = -u
	}
	for {
		n--
		b[n] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

// reprWriter writes Python's repr of lists and dicts (what str() of them
// prints), and marks the result tainted if any string in it is.
type reprWriter struct {
	ev    *evaluator
	pos   int
	b     strings.Builder
	taint bool
}

func (w *reprWriter) repr(v value) error {
	if err := w.ev.step(w.pos); err != nil {
		return err
	}
	if w.b.Len() > w.ev.maxLen {
		return w.ev.tooLong(w.pos)
	}
	w.ev.depth++
	defer func() { w.ev.depth-- }()
	if w.ev.depth > maxDepth {
		return w.ev.errAt(w.pos, "value nests deeper than %d levels", maxDepth)
	}
	switch v.k {
	case vStr:
		w.taint = w.taint || v.s.isTainted()
		pyRepr(&w.b, v.s.s)
	case vList:
		w.b.WriteByte('[')
		for i, x := range v.l {
			if i > 0 {
				w.b.WriteString(", ")
			}
			if err := w.repr(x); err != nil {
				return err
			}
		}
		w.b.WriteByte(']')
	case vDict:
		if v.d.ns {
			w.b.WriteString("<Namespace ")
		}
		w.b.WriteByte('{')
		for i, k := range v.d.keys {
			if i > 0 {
				w.b.WriteString(", ")
			}
			pyRepr(&w.b, k)
			w.b.WriteString(": ")
			if err := w.repr(v.d.m[k]); err != nil {
				return err
			}
		}
		w.b.WriteByte('}')
		if v.d.ns {
			w.b.WriteByte('>')
		}
	case vUndef:
		w.b.WriteString("Undefined")
	case vFunc:
		w.b.WriteString("<function " + v.fn.name + ">")
	case vLoop:
		w.b.WriteString("<LoopContext>")
	default:
		s, err := w.ev.str(v, w.pos)
		if err != nil {
			return err
		}
		w.b.WriteString(s.s)
	}
	return nil
}

// equal is Python's ==, with Jinja2's Undefined equal only to Undefined.
func (ev *evaluator) equal(a, b value, pos int) (bool, error) {
	if err := ev.step(pos); err != nil {
		return false, err
	}
	ev.depth++
	defer func() { ev.depth-- }()
	if ev.depth > maxDepth {
		return false, ev.errAt(pos, "value nests deeper than %d levels", maxDepth)
	}
	switch {
	case a.isNumber() && b.isNumber():
		if a.isIntegral() && b.isIntegral() {
			return a.int() == b.int(), nil
		}
		return a.num() == b.num(), nil
	case a.k != b.k:
		return false, nil
	}
	switch a.k {
	case vUndef, vNone:
		return true, nil
	case vStr:
		return a.s.s == b.s.s, ev.charge(pos, min(len(a.s.s), len(b.s.s)))
	case vList:
		if len(a.l) != len(b.l) {
			return false, nil
		}
		for i := range a.l {
			if eq, err := ev.equal(a.l[i], b.l[i], pos); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case vDict:
		if a.d == b.d {
			return true, nil
		}
		if a.d.ns || b.d.ns || len(a.d.keys) != len(b.d.keys) {
			return false, nil
		}
		for _, k := range a.d.keys {
			y, ok := b.d.m[k]
			if !ok {
				return false, nil
			}
			if eq, err := ev.equal(a.d.m[k], y, pos); err != nil || !eq {
				return false, err
			}
		}
		return true, nil
	case vFunc:
		return a.fn == b.fn, nil
	case vLoop:
		return a.lp == b.lp, nil
	}
	return false, nil
}

func (ev *evaluator) compare(op string, l, r value, pos int) (bool, error) {
	switch op {
	case "==":
		return ev.equal(l, r, pos)
	case "!=":
		eq, err := ev.equal(l, r, pos)
		return !eq, err
	case "in", "notin":
		in, err := ev.contains(r, l, pos)
		return in == (op == "in"), err
	}
	var c int
	switch {
	case l.isNumber() && r.isNumber():
		if l.isIntegral() && r.isIntegral() {
			c = cmpInt(l.int(), r.int())
		} else {
			x, y := l.num(), r.num()
			switch {
			case x < y:
				c = -1
			case x > y:
				c = 1
			case x != y: // NaN: every order comparison is false
				return false, nil
			}
		}
	case l.k == vStr && r.k == vStr:
		c = strings.Compare(l.s.s, r.s.s)
		if err := ev.charge(pos, min(len(l.s.s), len(r.s.s))); err != nil {
			return false, err
		}
	default:
		if err := ev.defined(l, pos); err != nil {
			return false, err
		}
		if err := ev.defined(r, pos); err != nil {
			return false, err
		}
		return false, ev.errAt(pos, "'%s' not supported between instances of '%s' and '%s'", op, l.typeName(), r.typeName())
	}
	switch op {
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	}
	return c >= 0, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// contains is Python's "x in seq".
func (ev *evaluator) contains(seq, x value, pos int) (bool, error) {
	switch seq.k {
	case vStr:
		if x.k != vStr {
			return false, ev.errAt(pos, "'in <string>' requires string as left operand, not %s", x.typeName())
		}
		return strings.Contains(seq.s.s, x.s.s), ev.charge(pos, len(seq.s.s))
	case vList:
		for _, y := range seq.l {
			if eq, err := ev.equal(x, y, pos); err != nil || eq {
				return eq, err
			}
		}
		return false, nil
	case vDict:
		if x.k != vStr {
			return false, nil
		}
		_, ok := seq.d.m[x.s.s]
		return ok, nil
	case vUndef:
		return false, nil
	}
	return false, ev.errAt(pos, "argument of type '%s' is not iterable", seq.typeName())
}

func (ev *evaluator) arith(op string, l, r value, pos int) (value, error) {
	if op == "~" {
		a, err := ev.str(l, pos)
		if err != nil {
			return value{}, err
		}
		b, err := ev.str(r, pos)
		if err != nil {
			return value{}, err
		}
		if len(a.s)+len(b.s) > ev.maxLen {
			return value{}, ev.tooLong(pos)
		}
		return strValue(concat(a, b)), ev.charge(pos, len(a.s)+len(b.s))
	}
	if err := ev.defined(l, pos); err != nil {
		return value{}, err
	}
	if err := ev.defined(r, pos); err != nil {
		return value{}, err
	}
	if l.isNumber() && r.isNumber() {
		return ev.numeric(op, l, r, pos)
	}
	switch op {
	case "+":
		switch {
		case l.k == vStr && r.k == vStr:
			if len(l.s.s)+len(r.s.s) > ev.maxLen {
				return value{}, ev.tooLong(pos)
			}
			return strValue(concat(l.s, r.s)), ev.charge(pos, len(l.s.s)+len(r.s.s))
		case l.k == vList && r.k == vList:
			if len(l.l)+len(r.l) > maxItems {
				return value{}, ev.errAt(pos, "a list would have more than %d items", maxItems)
			}
			return listValue(append(append(make([]value, 0, len(l.l)+len(r.l)), l.l...), r.l...)), nil
		case l.k == vStr:
			return value{}, ev.errAt(pos, "can only concatenate str (not \"%s\") to str", r.typeName())
		case l.k == vList:
			return value{}, ev.errAt(pos, "can only concatenate list (not \"%s\") to list", r.typeName())
		}
	case "*":
		seq, n := l, r
		if l.isIntegral() {
			seq, n = r, l
		}
		if n.isIntegral() && (seq.k == vStr || seq.k == vList) {
			k := max(n.int(), 0)
			if seq.k == vStr {
				if k > 0 && int64(len(seq.s.s)) > int64(ev.maxLen)/k {
					return value{}, ev.tooLong(pos)
				}
				if err := ev.charge(pos, len(seq.s.s)*int(k)); err != nil {
					return value{}, err
				}
				w := tbuilder{limit: ev.maxLen}
				for range k {
					if err := w.write(seq.s); err != nil {
						return value{}, ev.tooLong(pos)
					}
				}
				return strValue(w.tstr()), nil
			}
			if k > 0 && int64(len(seq.l)) > maxItems/k {
				return value{}, ev.errAt(pos, "a list would have more than %d items", maxItems)
			}
			out := make([]value, 0, int64(len(seq.l))*k)
			for range k {
				out = append(out, seq.l...)
			}
			return listValue(out), nil
		}
	case "%":
		if l.k == vStr {
			return value{}, ev.errAt(pos, "string formatting with %% is not supported")
		}
	}
	return value{}, ev.errAt(pos, "unsupported operand type(s) for %s: '%s' and '%s'", op, l.typeName(), r.typeName())
}

func (ev *evaluator) numeric(op string, l, r value, pos int) (value, error) {
	overflow := func() (value, error) { return value{}, ev.errAt(pos, "integer overflow in %s", op) }
	if l.isIntegral() && r.isIntegral() {
		a, b := l.int(), r.int()
		switch op {
		case "+":
			s := a + b
			if (s > a) != (b > 0) {
				return overflow()
			}
			return intValue(s), nil
		case "-":
			s := a - b
			if (s < a) != (b > 0) {
				return overflow()
			}
			return intValue(s), nil
		case "*":
			if a != 0 && b != 0 {
				s := a * b
				if s/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
					return overflow()
				}
				return intValue(s), nil
			}
			return intValue(0), nil
		case "//", "%":
			if b == 0 {
				return value{}, ev.errAt(pos, "integer division or modulo by zero")
			}
			if a == math.MinInt64 && b == -1 {
				return overflow()
			}
			q, m := a/b, a%b
			if m != 0 && (m < 0) != (b < 0) { // Python floors
				q--
				m += b
			}
			if op == "//" {
				return intValue(q), nil
			}
			return intValue(m), nil
		case "**":
			if b >= 0 {
				res := int64(1)
				for range b {
					if err := ev.step(pos); err != nil {
						return value{}, err
					}
					n := res * a
					if a != 0 && n/a != res {
						return overflow()
					}
					res = n
					if res == 0 || res == 1 {
						break
					}
				}
				return intValue(res), nil
			}
		}
	}
	a, b := l.num(), r.num()
	switch op {
	case "+":
		return floatValue(a + b), nil
	case "-":
		return floatValue(a - b), nil
	case "*":
		return floatValue(a * b), nil
	case "/":
		if b == 0 {
			return value{}, ev.errAt(pos, "division by zero")
		}
		return floatValue(a / b), nil
	case "//", "%":
		if b == 0 {
			return value{}, ev.errAt(pos, "float floor division or modulo by zero")
		}
		m := math.Mod(a, b)
		if m != 0 && (m < 0) != (b < 0) {
			m += b
		}
		if op == "%" {
			return floatValue(m), nil
		}
		return floatValue(math.Floor((a - m) / b)), nil
	case "**":
		return floatValue(math.Pow(a, b)), nil
	}
	return value{}, ev.errAt(pos, "unsupported operator %s", op)
}

// Global functions: those of Jinja2's default environment that chat
// templates call, and Hugging Face's raise_exception. strftime_now is
// deliberately absent (templates test "is defined" and fall back to a
// fixed date), so that rendering is a pure function of its input.
func global(name string) *function {
	switch name {
	case "raise_exception":
		return &function{name: name, call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			msg := ""
			if len(args) > 0 {
				s, err := ev.str(args[0], 0)
				if err != nil {
					return value{}, err
				}
				msg = s.s
			}
			return value{}, &Error{Msg: msg, Raised: true}
		}}
	case "namespace":
		return &function{name: name, call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			d := newDict(len(kw))
			d.ns = true
			for _, a := range args {
				if a.k != vDict {
					return value{}, errors.New("namespace() takes a dict or keyword arguments")
				}
				for _, k := range a.d.keys {
					d.set(k, a.d.m[k])
				}
			}
			for _, k := range kw {
				d.set(k.name, k.v)
			}
			return dictValue(d), nil
		}}
	case "dict":
		return &function{name: name, call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if len(args) > 0 {
				return value{}, errors.New("dict() takes keyword arguments only here")
			}
			d := newDict(len(kw))
			for _, k := range kw {
				d.set(k.name, k.v)
			}
			return dictValue(d), nil
		}}
	case "range":
		return &function{name: name, call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			var b [3]int64
			b[2] = 1
			for _, a := range args {
				if !a.isIntegral() {
					return value{}, errors.New("range() takes integers")
				}
			}
			switch len(args) {
			case 1:
				b[1] = args[0].int()
			case 2, 3:
				b[0], b[1] = args[0].int(), args[1].int()
				if len(args) == 3 {
					b[2] = args[2].int()
				}
			default:
				return value{}, errors.New("range() takes 1 to 3 arguments")
			}
			if b[2] == 0 {
				return value{}, errors.New("range() step must not be zero")
			}
			var out []value
			for i := b[0]; (b[2] > 0 && i < b[1]) || (b[2] < 0 && i > b[1]); i += b[2] {
				if len(out) >= maxItems {
					return value{}, errors.New("range() would have more than 65536 items")
				}
				if err := ev.step(0); err != nil {
					return value{}, err
				}
				out = append(out, intValue(i))
				if (b[2] > 0 && i > math.MaxInt64-b[2]) || (b[2] < 0 && i < math.MinInt64-b[2]) {
					break
				}
			}
			return listValue(out), nil
		}}
	}
	return nil
}

// argument helpers for filters and methods.

func arg(args []value, kw []kwValue, i int, name string) (value, bool) {
	if i < len(args) {
		return args[i], true
	}
	for _, k := range kw {
		if k.name == name {
			return k.v, true
		}
	}
	return value{}, false
}

func strArg(args []value, kw []kwValue, i int, name string) (tstr, bool, error) {
	v, ok := arg(args, kw, i, name)
	if !ok || v.k == vNone {
		return tstr{}, false, nil
	}
	if v.k != vStr {
		return tstr{}, false, errors.New(name + " must be a string, not " + v.typeName())
	}
	return v.s, true, nil
}

// strip removes characters from the ends of s: whitespace as Python's
// str.strip() knows it, or any of chars.
func strip(s tstr, chars tstr, haveChars, left, right bool) tstr {
	in := isSpace
	if haveChars {
		in = func(r rune) bool { return strings.ContainsRune(chars.s, r) }
	}
	lo, hi := 0, len(s.s)
	if left {
		lo = len(s.s) - len(strings.TrimLeftFunc(s.s, in))
	}
	if right {
		hi = len(strings.TrimRightFunc(s.s, in))
	}
	if hi < lo {
		hi = lo
	}
	return s.cut(lo, hi)
}

// split is Python's str.split.
func split(s tstr, sep tstr, haveSep bool, maxsplit int64) ([]value, error) {
	var out []value
	if haveSep {
		if sep.s == "" {
			return nil, errors.New("empty separator")
		}
		p := 0
		for maxsplit < 0 || int64(len(out)) < maxsplit {
			i := strings.Index(s.s[p:], sep.s)
			if i < 0 {
				break
			}
			out = append(out, strValue(s.cut(p, p+i)))
			p += i + len(sep.s)
		}
		return append(out, strValue(s.cut(p, len(s.s)))), nil
	}
	p := 0
	for {
		for p < len(s.s) {
			r, n := utf8.DecodeRuneInString(s.s[p:])
			if !isSpace(r) {
				break
			}
			p += n
		}
		if p >= len(s.s) {
			return out, nil
		}
		if maxsplit >= 0 && int64(len(out)) >= maxsplit {
			rest := strip(s.cut(p, len(s.s)), tstr{}, false, false, true)
			return append(out, strValue(rest)), nil
		}
		q := p
		for q < len(s.s) {
			r, n := utf8.DecodeRuneInString(s.s[q:])
			if isSpace(r) {
				break
			}
			q += n
		}
		out = append(out, strValue(s.cut(p, q)))
		p = q
	}
}

// replace is Python's str.replace, keeping the taint of what it keeps and
// of what it inserts.
func replace(s, old, new tstr, count int64, limit int) (tstr, error) {
	if old.s == "" {
		r := strings.Replace(s.s, "", new.s, int(max(count, -1)))
		if len(r) > limit {
			return tstr{}, errTooLong
		}
		if s.isTainted() || new.isTainted() {
			return tainted(r), nil
		}
		return plain(r), nil
	}
	w := tbuilder{limit: limit}
	p := 0
	for n := int64(0); count < 0 || n < count; n++ {
		i := strings.Index(s.s[p:], old.s)
		if i < 0 {
			break
		}
		if err := w.write(s.cut(p, p+i)); err != nil {
			return tstr{}, err
		}
		if err := w.write(new); err != nil {
			return tstr{}, err
		}
		p += i + len(old.s)
	}
	if err := w.write(s.cut(p, len(s.s))); err != nil {
		return tstr{}, err
	}
	return w.tstr(), nil
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + strings.ToLower(s[n:])
}

func strMethod(s tstr, name string) *function {
	m := func(call func(ev *evaluator, args []value, kw []kwValue) (value, error)) *function {
		return &function{name: "str." + name, call: func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if err := ev.charge(0, len(s.s)); err != nil {
				return value{}, err
			}
			return call(ev, args, kw)
		}}
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			chars, ok, err := strArg(args, kw, 0, "chars")
			if err != nil {
				return value{}, err
			}
			return strValue(strip(s, chars, ok, name != "rstrip", name != "lstrip")), nil
		})
	case "startswith", "endswith":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if len(args) != 1 {
				return value{}, errors.New("takes one argument")
			}
			cands := []value{args[0]}
			if args[0].k == vList {
				cands = args[0].l
			}
			for _, c := range cands {
				if c.k != vStr {
					return value{}, errors.New("argument must be a string or a tuple of strings")
				}
				if name == "startswith" && strings.HasPrefix(s.s, c.s.s) || name == "endswith" && strings.HasSuffix(s.s, c.s.s) {
					return boolValue(true), nil
				}
			}
			return boolValue(false), nil
		})
	case "upper", "lower", "capitalize", "title":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			return strValue(caseMap(s, name)), nil
		})
	case "split":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			sep, ok, err := strArg(args, kw, 0, "sep")
			if err != nil {
				return value{}, err
			}
			maxsplit := int64(-1)
			if v, have := arg(args, kw, 1, "maxsplit"); have {
				if !v.isIntegral() {
					return value{}, errors.New("maxsplit must be an integer")
				}
				maxsplit = v.int()
			}
			l, err := split(s, sep, ok, maxsplit)
			return listValue(l), err
		})
	case "replace":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			return replaceValue(ev, s, args, kw)
		})
	case "find", "count":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			sub, ok, err := strArg(args, kw, 0, "sub")
			if err != nil || !ok {
				return value{}, errors.New("takes a string argument")
			}
			if name == "count" {
				return intValue(int64(strings.Count(s.s, sub.s))), nil
			}
			i := strings.Index(s.s, sub.s)
			if i < 0 {
				return intValue(-1), nil
			}
			return intValue(int64(utf8.RuneCountInString(s.s[:i]))), nil
		})
	case "join":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if len(args) != 1 {
				return value{}, errors.New("takes one argument")
			}
			items, err := ev.iterate(args[0], 0)
			if err != nil {
				return value{}, err
			}
			w := tbuilder{limit: ev.maxLen}
			for i, it := range items {
				if it.k != vStr {
					return value{}, errors.New("sequence item is not a string")
				}
				if i > 0 {
					if err := w.write(s); err != nil {
						return value{}, err
					}
				}
				if err := w.write(it.s); err != nil {
					return value{}, err
				}
			}
			return strValue(w.tstr()), ev.charge(0, w.b.Len())
		})
	}
	return nil
}

func replaceValue(ev *evaluator, s tstr, args []value, kw []kwValue) (value, error) {
	old, ok1, err := strArg(args, kw, 0, "old")
	if err != nil {
		return value{}, err
	}
	new, ok2, err := strArg(args, kw, 1, "new")
	if err != nil {
		return value{}, err
	}
	if !ok1 || !ok2 {
		return value{}, errors.New("replace takes two strings")
	}
	count := int64(-1)
	if v, have := arg(args, kw, 2, "count"); have {
		if !v.isIntegral() {
			return value{}, errors.New("count must be an integer")
		}
		count = v.int()
	}
	r, err := replace(s, old, new, count, ev.maxLen)
	return strValue(r), err
}

// caseMap changes letter case; the result is tainted as a whole if any of
// s is, since case mapping may change byte lengths.
func caseMap(s tstr, how string) tstr {
	switch how {
	case "upper":
		return s.whole(strings.ToUpper(s.s))
	case "lower":
		return s.whole(strings.ToLower(s.s))
	case "capitalize":
		return s.whole(capitalize(s.s))
	}
	// Python's str.title: a letter after a non-letter is upper case, the
	// others lower.
	var b strings.Builder
	prev := false
	for _, r := range s.s {
		if unicode.IsLetter(r) {
			if prev {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteRune(unicode.ToTitle(r))
			}
			prev = true
		} else {
			b.WriteRune(r)
			prev = false
		}
	}
	return s.whole(b.String())
}

func dictMethod(d *dict, name string) *function {
	m := func(call func(ev *evaluator, args []value, kw []kwValue) (value, error)) *function {
		return &function{name: "dict." + name, call: call}
	}
	switch name {
	case "get":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			if len(args) < 1 || len(args) > 2 {
				return value{}, errors.New("get takes one or two arguments")
			}
			if args[0].k == vStr {
				if v, ok := d.m[args[0].s.s]; ok {
					return v, nil
				}
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return value{k: vNone}, nil
		})
	case "items":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) { return dictItems(d), nil })
	case "keys":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			return ev.listOf(dictValue(d), 0)
		})
	case "values":
		return m(func(ev *evaluator, args []value, kw []kwValue) (value, error) {
			out := make([]value, len(d.keys))
			for i, k := range d.keys {
				out[i] = d.m[k]
			}
			return listValue(out), nil
		})
	}
	return nil
}

func dictItems(d *dict) value {
	out := make([]value, len(d.keys))
	for i, k := range d.keys {
		out[i] = listValue([]value{strValue(plain(k)), d.m[k]})
	}
	return listValue(out)
}

func (ev *evaluator) listOf(v value, pos int) (value, error) {
	items, err := ev.iterate(v, pos)
	if err != nil {
		return value{}, err
	}
	return listValue(append([]value(nil), items...)), nil
}

// sortedKeys is used by tojson(sort_keys=true).
func sortedKeys(d *dict) []string {
	ks := append([]string(nil), d.keys...)
	sort.Strings(ks)
	return ks
}

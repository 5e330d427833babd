package chat

import (
	"math"
	"strconv"
)

// The syntax tree. Statements render output; expressions yield values.

type node interface{}

type textNode struct{ text string }

type outputNode struct {
	x   expr
	pos int
}

type ifNode struct {
	conds  []expr
	bodies [][]node
	els    []node
}

type forNode struct {
	targets []string // one name, or several to unpack each item into
	iter    expr
	cond    expr // the "if" filter of "for x in y if cond", or nil
	body    []node
	els     []node
	pos     int
}

type setNode struct {
	name string
	attr string // "ns.attr": set an attribute of a namespace
	x    expr   // nil for a block set ({% set x %}...{% endset %})
	body []node
	pos  int
}

type loopCtlNode struct {
	brk bool // break, else continue
	pos int
}

type expr interface{ position() int }

type (
	literalExpr struct {
		v   value
		pos int
	}
	nameExpr struct {
		name string
		pos  int
	}
	attrExpr struct {
		x    expr
		name string
		pos  int
	}
	itemExpr struct {
		x, index expr
		pos      int
	}
	sliceExpr struct {
		x, lo, hi, step expr // nil when absent
		pos             int
	}
	callExpr struct {
		fn   expr
		args []expr
		kw   []kwArg
		pos  int
	}
	filterExpr struct {
		x    expr // nil inside {% filter %}; not supported
		name string
		args []expr
		kw   []kwArg
		pos  int
	}
	testExpr struct {
		x      expr
		name   string
		args   []expr
		negate bool
		pos    int
	}
	unaryExpr struct {
		op  string // "-", "+", "not"
		x   expr
		pos int
	}
	binaryExpr struct {
		op   string // + - * / // % ** ~ and or
		l, r expr
		pos  int
	}
	compareExpr struct {
		first expr
		ops   []string // == != < > <= >= in notin
		rest  []expr
		pos   int
	}
	condExpr struct {
		cond, yes, no expr // no may be nil (undefined)
		pos           int
	}
	listExpr struct {
		items []expr
		pos   int
	}
	dictExpr struct {
		keys, vals []expr
		pos        int
	}
)

type kwArg struct {
	name string
	x    expr
}

func (e *literalExpr) position() int { return e.pos }
func (e *nameExpr) position() int    { return e.pos }
func (e *attrExpr) position() int    { return e.pos }
func (e *itemExpr) position() int    { return e.pos }
func (e *sliceExpr) position() int   { return e.pos }
func (e *callExpr) position() int    { return e.pos }
func (e *filterExpr) position() int  { return e.pos }
func (e *testExpr) position() int    { return e.pos }
func (e *unaryExpr) position() int   { return e.pos }
func (e *binaryExpr) position() int  { return e.pos }
func (e *compareExpr) position() int { return e.pos }
func (e *condExpr) position() int    { return e.pos }
func (e *listExpr) position() int    { return e.pos }
func (e *dictExpr) position() int    { return e.pos }

// maxDepth bounds the nesting of blocks and expressions, so that a
// hostile template cannot exhaust the stack of the parser or renderer.
const maxDepth = 200

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

func parse(src string) ([]node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	body, end, err := p.block()
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errAt(p.toks[p.i].pos, "unexpected {%% %s %%} with no block to end", end)
	}
	return body, nil
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return newError(p.src, pos, format, args...)
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tOp && t.val == op
}

func (p *parser) isName(name string) bool {
	t := p.peek()
	return t.kind == tName && t.val == name
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of template"
	case tData:
		return "text"
	case tVarBegin:
		return "{{"
	case tVarEnd:
		return "}}"
	case tBlockBegin:
		return "{%"
	case tBlockEnd:
		return "%}"
	case tString:
		return "string " + strconv.Quote(t.val)
	}
	return strconv.Quote(t.val)
}

func (p *parser) expectOp(op string) error {
	if !p.isOp(op) {
		t := p.peek()
		return p.errAt(t.pos, "expected %q, found %s", op, describe(t))
	}
	p.i++
	return nil
}

func (p *parser) expectKind(k tokKind, what string) (token, error) {
	t := p.peek()
	if t.kind != k {
		return t, p.errAt(t.pos, "expected %s, found %s", what, describe(t))
	}
	p.i++
	return t, nil
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(pos, "template nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// block parses statements up to a block tag it does not know how to start
// (endif, else, endfor, ...), which it returns after consuming its name;
// or up to the end of the template, returning "".
func (p *parser) block() ([]node, string, error) {
	var body []node
	for {
		t := p.next()
		switch t.kind {
		case tEOF:
			return body, "", nil
		case tData:
			body = append(body, &textNode{text: t.val})
		case tVarBegin:
			x, err := p.expr()
			if err != nil {
				return nil, "", err
			}
			if _, err := p.expectKind(tVarEnd, "}}"); err != nil {
				return nil, "", err
			}
			body = append(body, &outputNode{x: x, pos: t.pos})
		case tBlockBegin:
			name, err := p.expectKind(tName, "a statement name")
			if err != nil {
				return nil, "", err
			}
			n, err := p.statement(name)
			if err != nil {
				return nil, "", err
			}
			if n == nil {
				return body, name.val, nil
			}
			body = append(body, n)
		default:
			return nil, "", p.errAt(t.pos, "unexpected %s", describe(t))
		}
	}
}

// blockUntil parses a body that must end with one of the given tags.
func (p *parser) blockUntil(start token, ends ...string) ([]node, string, error) {
	if err := p.enter(start.pos); err != nil {
		return nil, "", err
	}
	defer p.leave()
	body, end, err := p.block()
	if err != nil {
		return nil, "", err
	}
	for _, e := range ends {
		if end == e {
			return body, end, nil
		}
	}
	if end == "" {
		return nil, "", p.errAt(start.pos, "{%% %s %%} is not closed (expected {%% %s %%})", start.val, ends[len(ends)-1])
	}
	return nil, "", p.errAt(p.toks[p.i-1].pos, "unexpected {%% %s %%} inside {%% %s %%}", end, start.val)
}

func (p *parser) endTag() error {
	_, err := p.expectKind(tBlockEnd, "%}")
	return err
}

// statement parses the statement named by name; for a tag that ends or
// continues a block it returns nil, leaving the rest of the tag unread.
func (p *parser) statement(name token) (node, error) {
	switch name.val {
	case "if":
		return p.ifStmt(name)
	case "for":
		return p.forStmt(name)
	case "set":
		return p.setStmt(name)
	case "break", "continue":
		if err := p.endTag(); err != nil {
			return nil, err
		}
		return &loopCtlNode{brk: name.val == "break", pos: name.pos}, nil
	case "generation":
		// Hugging Face's AssistantTracker extension: it marks the
		// assistant's text and renders its body unchanged.
		if err := p.endTag(); err != nil {
			return nil, err
		}
		body, _, err := p.blockUntil(name, "endgeneration")
		if err != nil {
			return nil, err
		}
		if err := p.endTag(); err != nil {
			return nil, err
		}
		return &ifNode{conds: []expr{&literalExpr{v: boolValue(true)}}, bodies: [][]node{body}}, nil
	case "elif", "else", "endif", "endfor", "endset", "endgeneration":
		return nil, nil
	case "macro", "call", "filter", "include", "import", "from", "extends", "block", "raw", "with", "autoescape", "do":
		return nil, p.errAt(name.pos, "{%% %s %%} is not supported by this renderer (chat templates need only if, for, set, break and continue)", name.val)
	}
	return nil, p.errAt(name.pos, "unknown statement %q", name.val)
}

func (p *parser) ifStmt(start token) (node, error) {
	n := &ifNode{}
	cond, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.endTag(); err != nil {
		return nil, err
	}
	for {
		body, end, err := p.blockUntil(start, "elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			if cond, err = p.expr(); err != nil {
				return nil, err
			}
			if err := p.endTag(); err != nil {
				return nil, err
			}
			continue
		case "else":
			if err := p.endTag(); err != nil {
				return nil, err
			}
			if n.els, _, err = p.blockUntil(start, "endif"); err != nil {
				return nil, err
			}
		}
		return n, p.endTag()
	}
}

func (p *parser) forStmt(start token) (node, error) {
	n := &forNode{pos: start.pos}
	for {
		t, err := p.expectKind(tName, "a loop variable")
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, t.val)
		if !p.isOp(",") {
			break
		}
		p.i++
	}
	if !p.isName("in") {
		t := p.peek()
		return nil, p.errAt(t.pos, "expected \"in\", found %s", describe(t))
	}
	p.i++
	var err error
	// The iterable cannot contain a bare conditional expression: "if"
	// starts the loop filter.
	if n.iter, err = p.orExpr(); err != nil {
		return nil, err
	}
	if p.isName("if") {
		p.i++
		if n.cond, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errAt(p.peek().pos, "recursive loops are not supported")
	}
	if err := p.endTag(); err != nil {
		return nil, err
	}
	body, end, err := p.blockUntil(start, "else", "endfor")
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.endTag(); err != nil {
			return nil, err
		}
		if n.els, _, err = p.blockUntil(start, "endfor"); err != nil {
			return nil, err
		}
	}
	return n, p.endTag()
}

func (p *parser) setStmt(start token) (node, error) {
	t, err := p.expectKind(tName, "a variable name")
	if err != nil {
		return nil, err
	}
	n := &setNode{name: t.val, pos: start.pos}
	if p.isOp(".") {
		p.i++
		a, err := p.expectKind(tName, "an attribute name")
		if err != nil {
			return nil, err
		}
		n.attr = a.val
	}
	if p.isOp(",") {
		return nil, p.errAt(p.peek().pos, "unpacking in set is not supported")
	}
	if p.peek().kind == tBlockEnd {
		if n.attr != "" {
			return nil, p.errAt(start.pos, "a block set cannot assign an attribute")
		}
		p.i++
		if n.body, _, err = p.blockUntil(start, "endset"); err != nil {
			return nil, err
		}
		return n, p.endTag()
	}
	if err := p.expectOp("="); err != nil {
		return nil, err
	}
	if n.x, err = p.expr(); err != nil {
		return nil, err
	}
	return n, p.endTag()
}

// Expressions, by Jinja2's precedence (lowest first): conditional, or,
// and, not, comparison, + -, ~, * / // %, **, unary - +, then primaries
// with their postfixes, filters and tests.

func (p *parser) expr() (expr, error) {
	pos := p.peek().pos
	if err := p.enter(pos); err != nil {
		return nil, err
	}
	defer p.leave()
	x, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.i++
		cond, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		c := &condExpr{cond: cond, yes: x, pos: pos}
		if p.isName("else") {
			p.i++
			if c.no, err = p.orExpr(); err != nil {
				return nil, err
			}
		}
		x = c
	}
	return x, nil
}

func (p *parser) orExpr() (expr, error) {
	l, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		t := p.next()
		r, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: "or", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) andExpr() (expr, error) {
	l, err := p.notExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		t := p.next()
		r, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: "and", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) notExpr() (expr, error) {
	if p.isName("not") {
		t := p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: "not", x: x, pos: t.pos}, nil
	}
	return p.compare()
}

func (p *parser) compare() (expr, error) {
	pos := p.peek().pos
	x, err := p.math1()
	if err != nil {
		return nil, err
	}
	var c *compareExpr
	for {
		t := p.peek()
		op := ""
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
			p.i++
		case t.kind == tName && t.val == "in":
			op = "in"
			p.i++
		case t.kind == tName && t.val == "not" && p.toks[p.i+1].kind == tName && p.toks[p.i+1].val == "in":
			op = "notin"
			p.i += 2
		}
		if op == "" {
			break
		}
		r, err := p.math1()
		if err != nil {
			return nil, err
		}
		if c == nil {
			c = &compareExpr{first: x, pos: pos}
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
	if c == nil {
		return x, nil
	}
	return c, nil
}

func (p *parser) math1() (expr, error) {
	l, err := p.concat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		t := p.next()
		r, err := p.concat()
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: t.val, l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) concat() (expr, error) {
	l, err := p.math2()
	if err != nil {
		return nil, err
	}
	for p.isOp("~") {
		t := p.next()
		r, err := p.math2()
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: "~", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) math2() (expr, error) {
	l, err := p.pow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		t := p.next()
		r, err := p.pow()
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: t.val, l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) pow() (expr, error) {
	l, err := p.unary(true)
	if err != nil {
		return nil, err
	}
	for p.isOp("**") {
		t := p.next()
		r, err := p.unary(true)
		if err != nil {
			return nil, err
		}
		l = &binaryExpr{op: "**", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *parser) unary(withFilter bool) (expr, error) {
	t := p.peek()
	if err := p.enter(t.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	var x expr
	var err error
	if t.kind == tOp && (t.val == "-" || t.val == "+") {
		p.i++
		inner, err := p.unary(false)
		if err != nil {
			return nil, err
		}
		x = &unaryExpr{op: t.val, x: inner, pos: t.pos}
	} else if x, err = p.primary(); err != nil {
		return nil, err
	}
	if x, err = p.postfix(x); err != nil {
		return nil, err
	}
	if withFilter {
		return p.filters(x)
	}
	return x, nil
}

func (p *parser) primary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tName:
		switch t.val {
		case "true", "True":
			return &literalExpr{v: boolValue(true), pos: t.pos}, nil
		case "false", "False":
			return &literalExpr{v: boolValue(false), pos: t.pos}, nil
		case "none", "None":
			return &literalExpr{v: value{k: vNone}, pos: t.pos}, nil
		}
		return &nameExpr{name: t.val, pos: t.pos}, nil
	case tString:
		s := t.val
		for p.peek().kind == tString { // adjacent literals are joined
			s += p.next().val
		}
		return &literalExpr{v: strValue(plain(s)), pos: t.pos}, nil
	case tInt:
		i, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer %s is out of range", t.val)
		}
		return &literalExpr{v: intValue(i), pos: t.pos}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil && !math.IsInf(f, 0) {
			return nil, p.errAt(t.pos, "bad number %s", t.val)
		}
		return &literalExpr{v: floatValue(f), pos: t.pos}, nil
	case tOp:
		switch t.val {
		case "(":
			if p.isOp(")") {
				p.i++
				return &listExpr{pos: t.pos}, nil // the empty tuple
			}
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") { // a tuple: rendered and used like a list
				l := &listExpr{items: []expr{x}, pos: t.pos}
				for p.isOp(",") {
					p.i++
					if p.isOp(")") {
						break
					}
					y, err := p.expr()
					if err != nil {
						return nil, err
					}
					l.items = append(l.items, y)
				}
				x = l
			}
			return x, p.expectOp(")")
		case "[":
			l := &listExpr{pos: t.pos}
			for !p.isOp("]") {
				if len(l.items) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("]") {
						break
					}
				}
				x, err := p.expr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, x)
			}
			p.i++
			return l, nil
		case "{":
			d := &dictExpr{pos: t.pos}
			for !p.isOp("}") {
				if len(d.keys) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("}") {
						break
					}
				}
				k, err := p.expr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.expr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
			}
			p.i++
			return d, nil
		}
	}
	return nil, p.errAt(t.pos, "unexpected %s in an expression", describe(t))
}

func (p *parser) postfix(x expr) (expr, error) {
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && t.val == ".":
			p.i++
			a := p.next()
			switch a.kind {
			case tName:
				x = &attrExpr{x: x, name: a.val, pos: a.pos}
			case tInt:
				i, err := strconv.ParseInt(a.val, 10, 64)
				if err != nil {
					return nil, p.errAt(a.pos, "index %s is out of range", a.val)
				}
				x = &itemExpr{x: x, index: &literalExpr{v: intValue(i), pos: a.pos}, pos: a.pos}
			default:
				return nil, p.errAt(a.pos, "expected an attribute name after \".\", found %s", describe(a))
			}
		case t.kind == tOp && t.val == "[":
			p.i++
			var err error
			if x, err = p.subscript(x, t.pos); err != nil {
				return nil, err
			}
		case t.kind == tOp && t.val == "(":
			p.i++
			args, kw, err := p.args()
			if err != nil {
				return nil, err
			}
			x = &callExpr{fn: x, args: args, kw: kw, pos: t.pos}
		default:
			return x, nil
		}
	}
}

// subscript parses what follows "[": an index or a slice, and the "]".
func (p *parser) subscript(x expr, pos int) (expr, error) {
	var parts [3]expr
	n := 0
	isSlice := false
	for {
		if p.isOp(":") {
			isSlice = true
			n++
			if n > 2 {
				return nil, p.errAt(p.peek().pos, "a slice has at most two colons")
			}
			p.i++
			continue
		}
		if p.isOp("]") {
			p.i++
			break
		}
		if parts[n] != nil {
			t := p.peek()
			return nil, p.errAt(t.pos, "expected \"]\", found %s", describe(t))
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		parts[n] = e
	}
	if !isSlice {
		if parts[0] == nil {
			return nil, p.errAt(pos, "empty subscript")
		}
		return &itemExpr{x: x, index: parts[0], pos: pos}, nil
	}
	return &sliceExpr{x: x, lo: parts[0], hi: parts[1], step: parts[2], pos: pos}, nil
}

// args parses call arguments after "(" up to and including ")".
func (p *parser) args() ([]expr, []kwArg, error) {
	var args []expr
	var kw []kwArg
	for !p.isOp(")") {
		if len(args)+len(kw) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, nil, err
			}
			if p.isOp(")") {
				break
			}
		}
		t := p.peek()
		if t.kind == tName && p.toks[p.i+1].kind == tOp && p.toks[p.i+1].val == "=" {
			p.i += 2
			x, err := p.expr()
			if err != nil {
				return nil, nil, err
			}
			kw = append(kw, kwArg{name: t.val, x: x})
			continue
		}
		if len(kw) > 0 {
			return nil, nil, p.errAt(t.pos, "positional argument after a keyword argument")
		}
		x, err := p.expr()
		if err != nil {
			return nil, nil, err
		}
		args = append(args, x)
	}
	p.i++
	return args, kw, nil
}

// filters parses "| name(args)" and "is [not] test args" after x.
func (p *parser) filters(x expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.i++
			name, err := p.dottedName("a filter name")
			if err != nil {
				return nil, err
			}
			if !knownFilter(name.val) {
				return nil, p.errAt(name.pos, "unsupported filter %q", name.val)
			}
			f := &filterExpr{x: x, name: name.val, pos: name.pos}
			if p.isOp("(") {
				p.i++
				if f.args, f.kw, err = p.args(); err != nil {
					return nil, err
				}
			}
			x = f
		case p.isName("is"):
			p.i++
			t := &testExpr{x: x}
			if p.isName("not") {
				p.i++
				t.negate = true
			}
			name, err := p.dottedName("a test name")
			if err != nil {
				return nil, err
			}
			switch name.val {
			case "none", "true", "false": // names that are also literals
			default:
				if !knownTest(name.val) {
					return nil, p.errAt(name.pos, "unsupported test %q", name.val)
				}
			}
			t.name, t.pos = name.val, name.pos
			if p.isOp("(") {
				p.i++
				args, kw, err := p.args()
				if err != nil {
					return nil, err
				}
				if len(kw) > 0 {
					return nil, p.errAt(name.pos, "keyword arguments to tests are not supported")
				}
				t.args = args
			} else if startsExpr(p.peek()) {
				// "x is divisibleby 3", "x is sameas y": one argument.
				a, err := p.primary()
				if err != nil {
					return nil, err
				}
				a, err = p.postfix(a)
				if err != nil {
					return nil, err
				}
				t.args = []expr{a}
			}
			x = t
		default:
			return x, nil
		}
	}
}

// startsExpr reports whether t can begin the argument of a test written
// without parentheses, as Jinja2 decides it.
func startsExpr(t token) bool {
	switch t.kind {
	case tName:
		switch t.val {
		case "else", "or", "and", "is", "in", "not", "if":
			return false
		}
		return true
	case tString, tInt, tFloat:
		return true
	case tOp:
		return t.val == "[" || t.val == "{" || t.val == "("
	}
	return false
}

func (p *parser) dottedName(what string) (token, error) {
	t := p.peek()
	if t.kind != tName {
		return t, p.errAt(t.pos, "expected %s, found %s", what, describe(t))
	}
	p.i++
	return t, nil
}

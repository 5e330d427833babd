package chat

import (
	"errors"
	"strings"
	"testing"
)

// render renders src with one message whose content is s (as m.content and
// as s), for testing the language.
func render(t *testing.T, src, s string) (string, error) {
	t.Helper()
	tmpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	r, err := tmpl.renderVars(map[string]value{"s": strValue(tainted(s))}, []Message{{Role: "user", Content: s}}, Options{BOSToken: "<s>", EOSToken: "</s>"})
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// TestPython checks the places where Python's Jinja2 and
// @huggingface/jinja disagree, and a few others; the renderer follows
// Python (Hugging Face's apply_chat_template is Python). The JS column
// records what @huggingface/jinja 0.5.13 prints, where it differs.
func TestPython(t *testing.T) {
	tests := []struct {
		src, s, want, js string
	}{
		{"{{ '' != false }}|{{ true }}|{{ false }}|{{ none }}", "", "True|True|False|None", "false|true|false|"},
		{"{{ -1 % 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 2 ** 10 }}|{{ 7 % -3 }}", "", "2|3|-4|3.5|2.0|1024|-2", "(-1 % 3 is -1; ** does not parse)"},
		// Python's whitespace includes U+0085 and U+001C-U+001F and not
		// U+FEFF; JavaScript's the other way round.
		{"{{ s.strip()|length }}|{{ s|trim|length }}|[{{ s|trim }}]", " \u0085a\ufeff\u001c ", "2|2|[a\ufeff]", "4|4"},
		// len counts characters, not UTF-16 units.
		{"{{ s|length }}|{{ s[1:] }}|{{ s[::-1] }}|{{ s[-1] }}|{{ s[0] }}", "😀ab", "3|ab|ba😀|b|😀", "4|ab|ba😀"},
		{"{{ 'abc' ~ 1 ~ none ~ true ~ 1.5 ~ x }}", "", "abc1NoneTrue1.5", "(error: none in ~)"},
		{"{{ 'a\\qb\\x41\\u00e9\\n' }}", "", "a\\qbAé\n", "(error: unknown escape)"},
		{"{{ [1, 'a', \"it's\", none, true] }}|{{ {'k': [1.0]} }}", "", "[1, 'a', \"it's\", None, True]|{'k': [1.0]}", ""},
		{"{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 123456789012345678.0 }}|{{ 1e15 }}", "", "1.0|1e+20|0.30000000000000004|1e-05|1.2345678901234568e+17|1000000000000000.0", ""},
		{"{{ 3 * 'ab' }}|{{ 'ab' * 2 }}|{{ [1] * 3 }}", "", "ababab|abab|[1, 1, 1]", "(error)"},
		{"{{ True == 1 }}|{{ 1 == 1.0 }}|{{ 'a' == 'a' }}|{{ [1,2] == [1,2] }}|{{ x == y }}|{{ none == none }}", "", "True|True|True|True|True|True", ""},
		{"{{ 'b' in 'abc' }}|{{ 2 in [1,2] }}|{{ 'k' in {'k':1} }}|{{ 'z' not in 'abc' }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}", "", "True|True|True|True|True|False", ""},
		{"{{ x is defined }}|{{ s is defined }}|{{ x is not defined }}|{{ none is none }}|{{ 3 is odd }}|{{ 'a' is string }}|{{ 1 is number }}", "", "False|True|True|True|True|True|True", ""},
		{"{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages[0].get('role') }}{{ messages[0].get('x', 'd') }}{{ messages[0].nope }}", "", "useruseruserd", ""},
		{"{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' and 'z' }}|{{ not '' }}|{{ 'a' if false }}|{{ 'a' if 0 else 'b' }}", "", "x|y||True||b", ""},
		{"{% for m in [1,2,3] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex0 }} {% endfor %}", "", "01TrueFalse32 12FalseFalse31 23FalseTrue30 ", ""},
		{"{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}|{% for x in [] %}{% else %}empty{% endfor %}", "", "2242|empty", ""},
		{"{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", "", "13", ""},
		{"{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}|{% for c in 'hé' %}[{{ c }}]{% endfor %}", "", "a=1,b=2,|[h][é]", ""},
		{"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", "", "21", ""},
		{"{% set ns = namespace(a=1, b='q') %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}", "", "4q", ""},
		{"{% set b %}x{{ 1 + 1 }}y{% endset %}[{{ b }}]", "", "[x2y]", ""},
		{"{{ s.startswith('he') }}{{ s.endswith(('x', 'lo')) }}{{ s.upper() }}{{ 'A B'.lower() }}{{ s.replace('l', 'L') }}{{ s.split('l') }}{{ ' a  b '.split() }}", "hello", "TrueTrueHELLOa bheLLo['he', '', 'o']['a', 'b']", ""},
		{"{{ s|tojson }}|{{ [1, 'é\"\\n', none, true, 1.5, {'a': []}]|tojson }}|{{ {'b': 1, 'a': [1, 2]}|tojson(indent=2) }}", "<x>'&", "\"<x>'&\"|[1, \"é\\\"\\n\", null, true, 1.5, {\"a\": []}]|{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ]\n}", ""},
		{"{{ x|default('d') }}|{{ ''|default('e') }}|{{ ''|default('e', true) }}|{{ [3,4]|first }}{{ [3,4]|last }}|{{ ['a','b']|join(', ') }}|{{ 'ab'|list }}|{{ 2.7|int }}|{{ '3'|int + 1 }}", "", "d||e|34|a, b|['a', 'b']|2|4", ""},
		{"{{ [{'r': 'a'}, {'r': 'b'}, {'r': 'a'}]|selectattr('r', 'equalto', 'a')|list|length }}|{{ [{'r': 'a'}, {'r': 'b'}]|map(attribute='r')|join }}", "", "2|ab", ""},
		{"{{ 'x' 'y' }}|{{ (1, 2) }}|{{ [1, 2, 3][1:] }}|{{ [1, 2, 3][::-1] }}|{{ [1, 2, 3][-2:] }}|{{ range(3)|list }}|{{ range(1, 7, 2)|list }}", "", "xy|[1, 2]|[2, 3]|[3, 2, 1]|[2, 3]|[0, 1, 2]|[1, 3, 5]", ""},
		{"{{ -3|abs }}|{{ 'ab'|upper + 'c' }}|{{ 2 * 3 ~ 4 }}", "", "3|ABc|64", ""},
		// Template text: trim_blocks, lstrip_blocks, whitespace control.
		{"  {% if true %}\n  x\n  {% endif %}\n", "", "  x\n", ""},
		{"{{ 'x' }}\n{% if true %}  {{ 'y' }}\n{% endif %}z", "", "x\n  y\nz", ""},
		{"a  {%- if true -%}  \n  b  {%- endif %} c {# comment #}\n d\n {#- c -#} e", "", "ab c  de", ""},
		{"{%+ if true %}x{% endif +%}\ny", "", "x\ny", ""},
		{"line1\r\nline2\rline3\n\n", "", "line1\nline2\nline3\n", ""},
	}
	for _, tc := range tests {
		got, err := render(t, tc.src, tc.s)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.src, got, tc.want)
		}
	}
}

// TestErrors checks that what Python raises is an error here too, and
// that errors say where.
func TestErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{{ 'a' + 1 }}", "line 1, column 8: can only concatenate str (not \"int\") to str"},
		{"{{ x.y }}", "'x' is undefined"},
		{"{{ x + 1 }}", "'x' is undefined"},
		{"{{ x() }}", "'x' is undefined"},
		{"{{ 1 // 0 }}", "integer division or modulo by zero"},
		{"{{ 9223372036854775807 + 1 }}", "integer overflow"},
		{"{% for x in 5 %}{% endfor %}", "'int' object is not iterable"},
		{"{{ raise_exception('no ' ~ 1) }}", "template raised an exception: no 1"},
		{"{% set x = 1 %}{% set x.a = 2 %}", "only a namespace() has attributes to set"},
		{"{{ '%s' % 1 }}", "string formatting with % is not supported"},
		{"{{ [1][1:2:0] }}", "slice step cannot be zero"},
		{"{{ {'a':1}|tojson(indent='x') }}", "indent must be"},
		{"{{ namespace()|tojson }}", "not JSON serializable"},
		{"{{ messages[5].role }}", "'list object' has no element 5"},
		{"{{ messages[0].nope.x }}", "'dict object' has no attribute 'nope'"},
		{"{{ (messages|first).role + missing }}", "'missing' is undefined"},
	}
	for _, tc := range tests {
		_, err := render(t, tc.src, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
	_, err := render(t, "{{ raise_exception('boom') }}", "")
	var ce *Error
	if !errors.As(err, &ce) || !ce.Raised || ce.Msg != "boom" || !errors.Is(err, ErrRaised) {
		t.Errorf("raise_exception: %#v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{% macro m() %}{% endmacro %}", "line 1, column 4: {% macro %} is not supported"},
		{"a\n  {{ x|frobnicate }}", "line 2, column 8: unsupported filter \"frobnicate\""},
		{"{% if x is weird %}{% endif %}", "unsupported test \"weird\""},
		{"{% if true %}", "line 1, column 4: {% if %} is not closed (expected {% endif %})"},
		{"{% for x in y %}{% endif %}", "unexpected {% endif %} inside {% for %}"},
		{"{% endfor %}", "with no block to end"},
		{"{{ 'abc }}", "string literal is not closed"},
		{"{{ x ", "tag is not closed with }}"},
		{"{# x", "comment is not closed"},
		{"{{ x y }}", "expected }}, found \"y\""},
		{"{{ ) }}", "unexpected \")\""},
		{"{% frob %}", "unknown statement \"frob\""},
		{"{{ " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300) + " }}", "nests deeper than"},
		{strings.Repeat("{% if x %}", 300) + strings.Repeat("{% endif %}", 300), "nests deeper than"},
		{"{{ 99999999999999999999 }}", "out of range"},
		{"\xff", "not valid UTF-8"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}

// TestLimits: hostile templates end with an error, quickly.
func TestLimits(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{% for i in range(60000) %}{% for j in range(60000) %}{% endfor %}{% endfor %}", "MaxSteps"},
		{"{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "MaxOutput"},
		{"{% for i in range(60000) %}{{ 'x' * 1000 }}{% endfor %}", "MaxOutput"},
		{"{{ 'x' * 9223372036854775807 }}", "MaxOutput"},
		{"{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "more than"},
		{"{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}", "nests deeper"},
		{"{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson }}", "nests deeper"},
		{"{% set ns = namespace(l=[]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l == ns.l }}", "MaxSteps"},
		{"{{ range(9223372036854775807)|length }}", "more than 65536 items"},
		// Work on long strings is charged by their length.
		{"{% set ns = namespace(s='') %}{% for i in range(65536) %}{% for j in range(15) %}{% set ns.s = ns.s ~ 'x' %}{% endfor %}{% endfor %}", "MaxSteps"},
		{"{% set s = 'x' * 1000000 %}{% for i in range(65536) %}{{ 'y' in s }}{% endfor %}", "MaxSteps"},
		{"{% set s = 'ab' * 300000 %}{% for c in s %}{% endfor %}", "MaxSteps"},
		{"{% set s = 'é' * 400000 %}{% for i in range(65536) %}{{ s[-1] }}{% endfor %}", "MaxSteps"},
	}
	for _, tc := range tests {
		tmpl, err := Parse(tc.src)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		_, err = tmpl.Render(nil, Options{Limits: Limits{MaxOutput: 1 << 20, MaxSteps: 1 << 20}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}

package abi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"strconv"
	"strings"
	"testing"

	"wisp/wasm/abi"
)

// TestStatusesListed checks that abi.Statuses names every Status constant
// of abi.go, by its name without "Status" in capitals, with its value.
func TestStatusesListed(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "abi.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Status") {
					continue
				}
				tv, err := types.Eval(fset, nil, token.NoPos, types.ExprString(vs.Values[i]))
				if err != nil {
					t.Fatal(err)
				}
				want[strings.ToUpper(strings.TrimPrefix(name.Name, "Status"))] = tv.Value.String()
			}
		}
	}
	got := map[string]string{}
	for _, s := range abi.Statuses {
		got[s.Name] = strconv.Itoa(int(s.Code))
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("abi.Statuses has %s = %q; abi.go says %s", name, got[name], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("abi.Statuses has %d names; abi.go defines %d Status constants", len(got), len(want))
	}
}

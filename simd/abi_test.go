package simd

import (
	"context"
	"encoding/binary"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The kernels' ABI is written in five places: the engine's imports
// (kernels_wasm.go), the forwarding module's exports and table
// (forward.wat), kernels.wasm's exports and the table it imports and fills
// (kernels.wat), and the modules that take entries of that table
// (threads.wat, relaxed.wat). kernelNames, in table order, is the one list
// they are held to here; TestWasmForward checks that each forwarding export
// reaches its kernel through the table.

// TestKernelABI checks that the engine's simd imports, forward.wasm's
// exports and kernels.wasm's exports are kernelNames, each with one
// signature in all three, and that every module declares the table with
// one entry per kernel.
func TestKernelABI(t *testing.T) {
	imports := goImports(t, "kernels_wasm.go")
	fwd := exportedFuncs(t, ForwardWasm())
	kern := exportedFuncs(t, KernelsWasm())
	for _, set := range []struct {
		what  string
		funcs map[string]string
	}{{"kernels_wasm.go's //go:wasmimport simd", imports}, {"forward.wasm's exports", fwd}, {"kernels.wasm's exports", kern}} {
		names := sortedKeys(set.funcs)
		want := slices.Sorted(slices.Values(kernelNames))
		if !slices.Equal(names, want) {
			t.Errorf("%s are %v, want kernelNames %v", set.what, names, want)
		}
	}
	for _, name := range kernelNames {
		if imports[name] != fwd[name] || fwd[name] != kern[name] {
			t.Errorf("%s: kernels_wasm.go imports %s, forward.wasm exports %s, kernels.wasm exports %s", name, imports[name], fwd[name], kern[name])
		}
	}

	relaxed, err := os.ReadFile("relaxed.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		bin  []byte
	}{{"forward.wasm", ForwardWasm()}, {"kernels.wasm", KernelsWasm()}, {"threads.wasm", ThreadsWasm()}, {"relaxed.wasm", relaxed}} {
		size, err := tableSize(m.bin)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if size != len(kernelNames) {
			t.Errorf("%s declares a table of %d entries, want one per kernel (%d)", m.name, size, len(kernelNames))
		}
	}
}

// goImports returns the wasm signature of each function that file imports
// from module "simd", derived from its Go parameter and result types as Go's
// wasm port lowers them.
func goImports(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	wasmType := func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.StarExpr:
			return "i32"
		case *ast.Ident:
			switch e.Name {
			case "int32", "uint32":
				return "i32"
			case "float32":
				return "f32"
			}
		}
		t.Fatalf("%s: no wasm type for %s", file, e)
		return ""
	}
	types := func(fl *ast.FieldList) []string {
		var ts []string
		if fl == nil {
			return ts
		}
		for _, field := range fl.List {
			for range max(1, len(field.Names)) {
				ts = append(ts, wasmType(field.Type))
			}
		}
		return ts
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Doc == nil {
			continue
		}
		for _, c := range fn.Doc.List {
			if name, ok := strings.CutPrefix(c.Text, "//go:wasmimport simd "); ok {
				out[name] = signature(types(fn.Type.Params), types(fn.Type.Results))
			}
		}
	}
	return out
}

// exportedFuncs returns the wasm signature of each function bin exports.
func exportedFuncs(t *testing.T, bin []byte) map[string]string {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	m, err := r.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, def := range m.ExportedFunctions() {
		names := func(vs []api.ValueType) []string {
			s := make([]string, len(vs))
			for i, v := range vs {
				s[i] = api.ValueTypeName(v)
			}
			return s
		}
		out[name] = signature(names(def.ParamTypes()), names(def.ResultTypes()))
	}
	return out
}

func signature(params, results []string) string {
	return fmt.Sprintf("(%s) -> (%s)", strings.Join(params, " "), strings.Join(results, " "))
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// tableSize returns the minimum size of the one table a module defines or
// imports, read from its table (4) or import (2) section.
func tableSize(bin []byte) (int, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return 0, fmt.Errorf("not a wasm module")
	}
	p := bin[8:]
	uvarint := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			panic("bad LEB128")
		}
		p = p[n:]
		return v
	}
	name := func() { l := uvarint(); p = p[l:] }
	limits := func() int {
		flags := p[0]
		p = p[1:]
		lo := uvarint()
		if flags&1 != 0 {
			uvarint()
		}
		return int(lo)
	}
	for len(p) > 0 {
		id := p[0]
		p = p[1:]
		size := uvarint()
		sec, rest := p[:size], p[size:]
		p = sec
		switch id {
		case 2: // imports: module, name, kind, description
			for range uvarint() {
				name()
				name()
				kind := p[0]
				p = p[1:]
				switch kind {
				case 0, 4: // function, tag: a type index
					uvarint()
				case 1: // table: reftype, limits
					p = p[1:]
					return limits(), nil
				case 2: // memory: limits
					limits()
				case 3: // global: valtype, mutability
					p = p[2:]
				}
			}
		case 4: // tables: reftype, limits
			if uvarint() > 0 {
				p = p[1:]
				return limits(), nil
			}
		}
		p = rest
	}
	return 0, fmt.Errorf("no table")
}

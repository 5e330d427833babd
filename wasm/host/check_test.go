package host

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
	"wisp/wasm/abi"
)

// editedModel returns a random model of the shape as a file, after edit
// has changed its metadata and tensors (a tensor whose Data is nil gets
// zero bytes of the size its type and dims need).
func editedModel(t *testing.T, s synth.Shape, edit func(f *gguf.File)) []byte {
	t.Helper()
	b, err := synth.Edited(s, synth.Options{Type: gguf.F16, Seed: 2}, edit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headerLen returns the bytes of a file up to its data section.
func headerLen(t *testing.T, file []byte) int {
	t.Helper()
	h, err := gguf.ParseHeader(file)
	if err != nil {
		t.Fatal(err)
	}
	return int(h.DataOffset)
}

// TestCheck checks bad models from their headers through wisp_check in
// wazero: the error must be the one Load gives for the whole file, which
// is the native engine's, byte for byte.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	s := shapes[0].shape
	retype := func(name string, typ gguf.TensorType) func(f *gguf.File) {
		return func(f *gguf.File) {
			tt, _ := f.Tensor(name)
			tt.Type, tt.Data = typ, nil
		}
	}
	good := editedModel(t, s, func(*gguf.File) {})
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"iq4-nl", editedModel(t, s, retype("blk.1.attn_v.weight", gguf.IQ4_NL)),
			`engine: tensor "blk.1.attn_v.weight" has type IQ4_NL; wisp reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K`},
		{"architecture", editedModel(t, s, func(f *gguf.File) {
			for i := range f.KV {
				if f.KV[i].Key == "general.architecture" {
					f.KV[i].Value = "rwkv6"
				}
			}
		}), `engine: unsupported architecture "rwkv6"`},
		{"missing", editedModel(t, s, func(f *gguf.File) {
			f.Tensors = slices.DeleteFunc(f.Tensors, func(t gguf.Tensor) bool { return t.Name == "output_norm.weight" })
		}), `engine: tensor "output_norm.weight" is missing`},
		{"data-cut", good[:len(good)-100], "run past the end of the file"},
	}
	r := newRuntime(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, nativeErr := engine.Load(bytes.Clone(tc.file))
			_, loadErr := r.Load(ctx, tc.file)
			if nativeErr == nil || !strings.Contains(nativeErr.Error(), tc.want) {
				t.Fatalf("engine.Load = %v, want %q", nativeErr, tc.want)
			}
			wantError(t, loadErr, abi.StatusFailed)
			if msg := loadErr.(*Error).Msg; msg != nativeErr.Error() {
				t.Errorf("Load in wazero = %q, natively %q", msg, nativeErr)
			}
			need, err := r.Check(ctx, tc.file[:headerLen(t, tc.file)], int64(len(tc.file)))
			if need != 0 {
				t.Fatalf("Check of the header needs %d bytes", need)
			}
			wantError(t, err, abi.StatusFailed)
			if msg := err.(*Error).Msg; msg != nativeErr.Error() {
				t.Errorf("Check = %q, Load %q", msg, nativeErr)
			}
		})
	}

	// A good model passes from its header, with or without its size; a
	// prefix that ends in the header asks for more, never more than the
	// file, and following the requests reaches the end of the header.
	for _, size := range []int64{int64(len(good)), -1} {
		if need, err := r.Check(ctx, good[:headerLen(t, good)], size); need != 0 || err != nil {
			t.Errorf("Check of a good header (size %d) = %d, %v", size, need, err)
		}
	}
	n := 0
	for steps := 0; ; steps++ {
		need, err := r.Check(ctx, good[:n], int64(len(good)))
		if err != nil {
			t.Fatalf("Check of %d bytes: %v", n, err)
		}
		if need == 0 {
			t.Logf("the header read after %d steps, from %d bytes", steps, n)
			break
		}
		if need <= n || need > headerLen(t, good) {
			t.Fatalf("Check of %d bytes needs %d (header %d)", n, need, headerLen(t, good))
		}
		n = need
	}
	// The whole of a file cut in its header: Load's error, final.
	cut := good[:100]
	need, err := r.Check(ctx, cut, int64(len(cut)))
	_, loadErr := r.Load(ctx, cut)
	if need != 0 || err == nil || loadErr == nil || err.Error() != loadErr.Error() {
		t.Errorf("a file cut in its header: Check = %d, %v; Load = %v", need, err, loadErr)
	}
	_, err = r.status(ctx, "wisp_check", 4096, 100, 1000)
	wantError(t, err, abi.StatusUsage, "not inside a buffer")
	if _, err := r.Check(ctx, nil, 0); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Check of an empty file = %v", err)
	}
	if m, err := r.Load(ctx, good); err != nil {
		t.Fatal(err)
	} else {
		_, err := r.Check(ctx, good[:headerLen(t, good)], int64(len(good)))
		wantError(t, err, abi.StatusUsage, "already loaded")
		m.Close(ctx)
	}
}

// TestCheckMemory refuses, from its header, a model whose file and a
// short session do not fit in the memory the module may use, with the
// error Load gives for the whole file.
func TestCheckMemory(t *testing.T) {
	ctx := context.Background()
	r, err := New(ctx, moduleWasm, &Options{Cache: testCache, MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	model := synthModel(t, shapes[0].shape, gguf.F16, 1)
	hdr := model[:headerLen(t, model)]
	// The same model padded to 80 MiB: trailing bytes are allowed.
	padded := append(bytes.Clone(model), make([]byte, 80<<20-len(model))...)
	need, checkErr := r.Check(ctx, hdr, int64(len(padded)))
	const want = "wisp: a model of 80.0 MiB with a session of 256 positions does not fit in the 64.0 MiB of memory the module may use"
	if need != 0 {
		t.Fatalf("Check needs %d", need)
	}
	wantError(t, checkErr, abi.StatusMemory)
	if msg := checkErr.(*Error).Msg; msg != want {
		t.Errorf("Check = %q, want %q", msg, want)
	}
	_, loadErr := r.Load(ctx, padded)
	if loadErr == nil || loadErr.Error() != checkErr.Error() {
		t.Errorf("Load = %v, Check %v", loadErr, checkErr)
	}
	// Beside the memory already in use: refused with what is free.
	_, err = r.Check(ctx, hdr, 40<<20)
	wantError(t, err, abi.StatusMemory, "a model of 40.0 MiB with a session of 256 positions needs", "free")
	// The model itself fits.
	if need, err := r.Check(ctx, hdr, int64(len(model))); need != 0 || err != nil {
		t.Errorf("Check of the model = %d, %v", need, err)
	}
	m, err := r.Load(ctx, model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prompt(ctx, "a", option.Options{MaxTokens: 2}); err != nil {
		t.Errorf("Prompt: %v", err)
	}
}

// TestExportsListed compares the module's exports, with their wasm
// signatures, to abi.Exports, and abi.Exports to the ABI doc.go documents
// and to the exports site/engine.js calls.
func TestExportsListed(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t)
	compiled, err := r.rt.CompileModule(ctx, moduleWasm)
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	for _, e := range abi.Exports {
		table[e.Name] = "(" + strings.Join(e.Params, " ") + ") " + e.Result
	}
	module := map[string]string{}
	for name, f := range compiled.ExportedFunctions() {
		if strings.HasPrefix(name, "wisp_") {
			var params, results []string
			for _, p := range f.ParamTypes() {
				params = append(params, api.ValueTypeName(p))
			}
			for _, p := range f.ResultTypes() {
				results = append(results, api.ValueTypeName(p))
			}
			module[name] = "(" + strings.Join(params, " ") + ") " + strings.Join(results, " ")
		}
	}
	compare := func(what string, got map[string]string) {
		t.Helper()
		for name, sig := range table {
			if got[name] != sig {
				t.Errorf("%s: %s is %q; abi.Exports says %q", what, name, got[name], sig)
			}
		}
		for name := range got {
			if _, ok := table[name]; !ok {
				t.Errorf("%s has %s, which abi.Exports does not list", what, name)
			}
		}
	}
	compare("the module", module)
	compare("doc.go", docExports(t, "../module/doc.go"))
	b, err := os.ReadFile("../../site/engine.js")
	if err != nil {
		t.Fatal(err)
	}
	called := map[string]bool{}
	for _, m := range regexp.MustCompile(`'(wisp_\w+)'`).FindAllSubmatch(b, -1) {
		called[string(m[1])] = true
		if _, ok := table[string(m[1])]; !ok {
			t.Errorf("site/engine.js calls %s, which abi.Exports does not list", m[1])
		}
	}
	for _, name := range []string{"wisp_check", "wisp_load"} {
		if !called[name] {
			t.Errorf("site/engine.js does not call %s", name)
		}
	}
}

// docExports returns the exports that doc.go documents, as lines like
// "wisp_check(addr, len i32, size i64) i32", with their signatures in the
// form "(i32 i32 i64) i32".
func docExports(t *testing.T, path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	re := regexp.MustCompile(`(?m)(?:^//\t|, )(wisp_\w+)\(([^)]*)\) (i32|i64)`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		// Go's notation: a type follows the last of the names it types.
		var types []string
		pending := 0
		for p := range strings.SplitSeq(m[2], ",") {
			f := strings.Fields(p)
			if len(f) == 0 {
				continue
			}
			pending++
			if len(f) == 2 {
				for range pending {
					types = append(types, f[1])
				}
				pending = 0
			}
		}
		if pending > 0 {
			t.Errorf("doc.go: %s(%s) leaves a parameter without a type", m[1], m[2])
		}
		out[m[1]] = "(" + strings.Join(types, " ") + ") " + m[3]
	}
	return out
}

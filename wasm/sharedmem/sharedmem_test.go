package sharedmem

import (
	"bytes"
	"strings"
	"testing"
)

// module assembles a module from sections (id, body).
func module(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s[0])
		b = appendU32(b, uint32(len(s)-1))
		b = append(b, s[1:]...)
	}
	return b
}

func sec(id byte, body ...byte) []byte { return append([]byte{id}, body...) }

var (
	types   = sec(1, 1, 0x60, 0, 0)                                                                // one type: () -> ()
	imports = sec(2, append(append([]byte{1}, name("wasi")...), append(name("f"), 0x00, 0)...)...) // a function import
	funcs   = sec(3, 1, 0)
	memory  = sec(5, 1, 0x00, 17)          // 17 pages, no maximum
	memMax  = sec(5, 1, 0x01, 17, 0x80, 1) // 17 to 128 pages
	exports = sec(7, 1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0)
	code    = sec(10, 1, 2, 0, 0x0b)
)

func name(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

func TestShare(t *testing.T) {
	imp := Import{"env", "memory"}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"with imports", module(types, imports, funcs, memory, exports, code),
			module(types, sec(2, append(append(append([]byte{2}, name("wasi")...), append(name("f"), 0x00, 0)...),
				append(append(name("env"), name("memory")...), 0x02, 0x03, 17, 0x80, 0x80, 0x04)...)...), funcs, exports, code)},
		{"without imports, with a maximum", module(types, funcs, memMax, exports, code),
			module(types, sec(2, append(append([]byte{1}, name("env")...), append(name("memory"), 0x02, 0x03, 17, 0x80, 0x80, 0x04)...)...), funcs, exports, code)},
		{"importing its memory, as the kernels do", module(types, sec(2, append(append([]byte{1}, name("engine")...), append(name("memory"), 0x02, 0x00, 0)...)...), code),
			module(types, sec(2, append(append([]byte{1}, name("env")...), append(name("memory"), 0x02, 0x03, 17, 0x80, 0x80, 0x04)...)...), code)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Share(tc.in, imp, 17, MaxPages)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Share:\n% x\nwant\n% x", got, tc.want)
			}
			gi, lo, hi, ok := Memory(got)
			if !ok || gi != imp || lo != 17 || hi != MaxPages {
				t.Errorf("Memory = %v %d %d %v", gi, lo, hi, ok)
			}
			if _, _, _, ok := Memory(tc.in); ok {
				t.Error("Memory found a shared import in the module before")
			}
		})
	}
}

func TestShareErrors(t *testing.T) {
	good := module(types, imports, funcs, memory, exports, code)
	for _, tc := range []struct {
		name, want string
		in         []byte
		min, max   uint32
	}{
		{"not wasm", "no \\0asm magic", []byte("GGUF\x03\x00\x00\x00"), 17, MaxPages},
		{"version 2", "version", append([]byte("\x00asm\x02\x00\x00\x00"), good[8:]...), 17, MaxPages},
		{"no memory", "has no memory", module(types, imports, funcs, exports, code), 17, MaxPages},
		{"two memories", "defines 2 memories", module(types, sec(5, 2, 0, 1, 0, 1)), 17, MaxPages},
		{"already shared", "limits", module(types, sec(5, 1, 0x03, 1, 2)), 17, MaxPages},
		{"imports and defines one", "defines a memory and imports another",
			module(types, sec(2, append(append([]byte{1}, name("a")...), append(name("m"), 0x02, 0x00, 1)...)...), memory), 17, MaxPages},
		{"needs more than the minimum", "needs 17 pages, above the shared memory's minimum of 16", good, 16, MaxPages},
		{"maximum zero", "not within 1 to 65536", good, 0, 0},
		{"maximum too big", "not within 1 to 65536", good, 17, MaxPages + 1},
		{"minimum above the maximum", "not within", good, 18, 17},
		{"section past the end", "unexpected end", good[:len(good)-2], 17, MaxPages},
		{"endless LEB128", "longer than 5 bytes", append(good[:8:8], 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 17, MaxPages},
		{"an unknown section", "section id 48", module(sec(48, 0), memory), 17, MaxPages},
		{"bytes after the imports", "bytes after the imports", module(sec(2, 0, 0x30), memory), 17, MaxPages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Share(tc.in, Import{"env", "memory"}, tc.min, tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestMemoryModule(t *testing.T) {
	m := MemoryModule(3, 9)
	want := module(sec(5, 1, 0x03, 3, 9), exports)
	if !bytes.Equal(m, want) {
		t.Errorf("MemoryModule:\n% x\nwant\n% x", m, want)
	}
}

// FuzzShare: any input gets a module or an error, never a panic, and a
// module Share returns imports a shared memory.
func FuzzShare(f *testing.F) {
	f.Add(module(types, imports, funcs, memory, exports, code))
	f.Add(module(types, funcs, memMax, exports, code))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Share(in, Import{"env", "memory"}, 256, MaxPages)
		if err != nil {
			return
		}
		if _, _, _, ok := Memory(out); !ok {
			t.Errorf("Share's output imports no shared memory: % x", out)
		}
	})
}

package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"wisp/internal/sharedfiles"
)

// raw assembles GGUF bytes by hand, valid or not.
type raw []byte

func header(version uint32, tensors, kvs uint64) raw {
	return raw("GGUF").u32(version).u64(tensors).u64(kvs)
}

func (r raw) u8(v uint8) raw   { return append(r, v) }
func (r raw) u32(v uint32) raw { return binary.LittleEndian.AppendUint32(r, v) }
func (r raw) u64(v uint64) raw { return binary.LittleEndian.AppendUint64(r, v) }
func (r raw) str(s string) raw { return append(r.u64(uint64(len(s))), s...) }
func (r raw) zeros(n int) raw  { return append(r, make([]byte, n)...) }

// kv appends a key and a value type; the caller appends the value.
func (r raw) kv(key string, t ValueType) raw { return r.str(key).u32(uint32(t)) }

// arr appends an array header.
func (r raw) arr(et ValueType, n uint64) raw { return r.u32(uint32(et)).u64(n) }

// tensor appends a tensor info.
func (r raw) tensor(name string, typ TensorType, offset uint64, dims ...uint64) raw {
	r = r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r = r.u64(d)
	}
	return r.u32(uint32(typ)).u64(offset)
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name  string
		input raw
		want  string
	}{
		{"empty", raw{}, `not a GGUF file (magic "")`},
		{"short magic", raw("GG"), `not a GGUF file (magic "GG")`},
		{"wrong magic", raw("GGML").u32(3).u64(0).u64(0), `not a GGUF file (magic "GGML")`},
		{"version 1", header(1, 0, 0), "unsupported version 1"},
		{"version 4", header(4, 0, 0), "unsupported version 4 (want 2 or 3)"},
		{"big-endian", raw("GGUF").u32(3 << 24).zeros(16), "big-endian"},
		{"truncated version", raw("GGUF\x03\x00"), "header: version: need 4 bytes at offset 4, only 2 left"},
		{"truncated tensor count", raw("GGUF").u32(3).u32(0), "header: tensor count: need 8 bytes at offset 8, only 4 left"},
		{"truncated kv count", raw("GGUF").u32(3).u64(0).u32(0), "header: key-value count: need 8 bytes"},
		{"huge kv count", header(3, 0, 1<<62), "4611686018427387904 key-value pairs cannot fit in the 0 bytes left"},
		{"kv count one too many", header(3, 0, 2).zeros(25), "2 key-value pairs cannot fit in the 25 bytes left"},
		{"huge tensor count", header(3, math.MaxUint64, 0).zeros(100), "18446744073709551615 tensor infos cannot fit"},
		{"tensor count after kvs", header(3, 1, 1).kv("k", TypeString).str(strings.Repeat("x", 30)), "1 tensor infos cannot fit in the 0 bytes left at offset 75"},
		{"key past end", header(3, 0, 1).u64(1000).zeros(5), "key-value pair 0 at offset 24: key: string length 1000 at offset 24 runs past the end"},
		{"key length overflow", header(3, 0, 1).u64(math.MaxUint64).zeros(5), "string length 18446744073709551615"},
		{"unknown value type", header(3, 0, 1).kv("k", 13).zeros(4), `key "k": unknown value type 13 at offset 33`},
		{"truncated value", header(3, 0, 1).kv("k", TypeUint64).zeros(2), `key "k": need 8 bytes at offset 37, only 2 left`},
		{"truncated value type", header(3, 0, 1).str("abcd").u8(0), `key "abcd": value type: need 4 bytes`},
		{"string value past end", header(3, 0, 1).kv("k", TypeString).u64(1 << 60), `key "k": string length 1152921504606846976 at offset 37 runs past`},
		{"bool 2", header(3, 0, 1).kv("k", TypeBool).u8(2), `key "k": invalid bool value 2 at offset 37`},
		{"unknown array type", header(3, 0, 1).kv("k", TypeArray).arr(99, 1).zeros(8), `key "k": unknown array element type 99 at offset 37`},
		{"array count too big", header(3, 0, 1).kv("k", TypeArray).arr(TypeUint32, 3).zeros(11), "array of 3 uint32 elements at offset 37 cannot fit in the 11 bytes left"},
		{"array byte count overflows", header(3, 0, 1).kv("k", TypeArray).arr(TypeUint64, 1<<61).zeros(8), "array of 2305843009213693952 uint64 elements"},
		{"string array count", header(3, 0, 1).kv("k", TypeArray).arr(TypeString, 3).zeros(20), "array of 3 string elements"},
		{"string array element past end", header(3, 0, 1).kv("k", TypeArray).arr(TypeString, 2).str("ok").u64(100).zeros(2), `key "k": element 1: string length 100`},
		{"bool array element", header(3, 0, 1).kv("k", TypeArray).arr(TypeBool, 3).u8(1).u8(0).u8(7), `key "k": element 2: invalid bool value 7`},
		{"truncated array header", header(3, 0, 1).kv("k", TypeArray).u32(uint32(TypeUint8)).zeros(3), `key "k": array length: need 8 bytes`},
		{"nested too deep", header(3, 0, 1).kv("k", TypeArray).arr(TypeArray, 1).arr(TypeArray, 1).arr(TypeArray, 1).arr(TypeArray, 1).arr(TypeUint8, 0),
			`key "k": element 0: element 0: element 0: arrays nested deeper than 4 levels at offset 73`},
		{"nested array count", header(3, 0, 1).kv("k", TypeArray).arr(TypeArray, 2).arr(TypeUint8, 0).zeros(4), "array of 2 array elements"},
		{"duplicate key", header(3, 0, 2).kv("k", TypeUint8).u8(1).kv("k", TypeUint8).u8(2), `key "k": duplicate key (pair 1 at offset 38)`},
		{"alignment zero", header(3, 0, 1).kv(AlignmentKey, TypeUint32).u32(0), `key "general.alignment": alignment 0 is not a power of two`},
		{"alignment 48", header(3, 0, 1).kv(AlignmentKey, TypeUint32).u32(48), "alignment 48 is not a power of two"},
		{"alignment negative", header(3, 0, 1).kv(AlignmentKey, TypeInt32).u32(math.MaxUint32 - 31), "alignment -32 is not a power of two"},
		{"alignment string", header(3, 0, 1).kv(AlignmentKey, TypeString).str("32"), `key "general.alignment": is string, want an unsigned integer`},
		{"huge alignment", header(3, 1, 1).kv(AlignmentKey, TypeUint64).u64(1<<63).tensor("t", F32, 0, 1).zeros(8),
			`tensor "t": its 4 bytes at data offset 0 (data section at file offset 9223372036854775808) run past the end of the file`},
		{"truncated tensor name", header(3, 1, 0).u64(40).zeros(30), "tensor 0 at offset 24: name: string length 40 at offset 24 runs past"},
		{"no dims", header(3, 1, 0).tensor("t", F32, 0).zeros(64), `tensor "t" (tensor 0 at offset 24): no dimensions`},
		{"five dims", header(3, 1, 0).tensor("t", F32, 0, 1, 1, 1, 1, 1).zeros(64), `tensor "t" (tensor 0 at offset 24): 5 dimensions, at most 4 are supported`},
		{"truncated dims", header(3, 1, 0).str("t").u32(4).u64(1).zeros(12), `tensor "t" (tensor 0 at offset 24): ne[2]: need 8 bytes`},
		{"zero dim", header(3, 1, 0).tensor("t", F32, 0, 4, 0).zeros(64), `tensor "t" (tensor 0 at offset 24): ne[1] is zero`},
		{"dim too large", header(3, 1, 0).tensor("t", F32, 0, 1<<63).zeros(64), "ne[0] = 9223372036854775808 is larger than an int64"},
		{"element overflow", header(3, 1, 0).tensor("t", F32, 0, 1<<32, 1<<32).zeros(64), "element count of dims [4294967296 4294967296] overflows an int64"},
		{"byte size overflow", header(3, 1, 0).tensor("t", F32, 0, 1<<62).zeros(64), "byte size of dims [4611686018427387904] of F32 overflows an int64"},
		{"byte size overflow 2d", header(3, 1, 0).tensor("t", F64, 0, 1<<31, 1<<31).zeros(64), "byte size of dims [2147483648 2147483648] of F64 overflows"},
		{"block multiple", header(3, 1, 0).tensor("t", Q4_0, 0, 33).zeros(64), "ne[0] = 33 is not a multiple of the Q4_0 block size 32"},
		{"unknown type", header(3, 1, 0).tensor("t", 99, 0, 4).zeros(64), `tensor "t" (tensor 0 at offset 24): unknown tensor type 99`},
		{"removed type", header(3, 1, 0).tensor("t", 31, 0, 4).zeros(64), "tensor type Q4_0_4_4 (31) is not supported"},
		{"truncated type", header(3, 1, 0).str(strings.Repeat("n", 20)).u32(1).u64(1).zeros(2), `tensor "nnnnnnnnnnnnnnnnnnnn" (tensor 0 at offset 24): type: need 4 bytes at offset 64, only 2 left`},
		{"unaligned offset", header(3, 1, 0).tensor("t", F32, 16, 4).zeros(64), `tensor "t" (tensor 0 at offset 24): data offset 16 is not a multiple of the alignment 32`},
		{"past end", header(3, 1, 0).tensor("t", F32, 0, 100).zeros(40), `tensor "t": its 400 bytes at data offset 0 (data section at file offset 64) run past the end of the file (97 bytes)`},
		{"offset past end", header(3, 1, 0).tensor("t", F32, 1<<40, 4).zeros(64), "at data offset 1099511627776"},
		{"offset overflow", header(3, 1, 0).tensor("t", F32, math.MaxUint64-31, 4).zeros(64), "run past the end of the file"},
		{"duplicate tensor", header(3, 2, 0).tensor("t", F32, 0, 4).tensor("t", F32, 32, 4).zeros(64), `tensor "t": duplicate tensor name (tensor 1 at offset 57)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.input)
			if err == nil {
				t.Fatalf("parsed: %+v", f)
			}
			if !strings.HasPrefix(err.Error(), "gguf: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n\t%v\nwant one containing\n\t%s", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input raw
		check func(t *testing.T, f *File)
	}{
		{"version 2", header(2, 0, 1).kv("k", TypeUint8).u8(9), func(t *testing.T, f *File) {
			if f.Version != 2 || len(f.KV) != 1 {
				t.Errorf("Version %d, KV %v", f.Version, f.KV)
			}
		}},
		{"no tensors, data offset past end", header(3, 0, 1).kv("k", TypeUint8).u8(9), func(t *testing.T, f *File) {
			if f.DataOffset != 64 {
				t.Errorf("DataOffset = %d, want 64", f.DataOffset)
			}
		}},
		{"alignment as uint64", header(3, 0, 1).kv(AlignmentKey, TypeUint64).u64(64), func(t *testing.T, f *File) {
			if f.Alignment != 64 {
				t.Errorf("Alignment = %d", f.Alignment)
			}
		}},
		{"overlapping tensors", header(3, 2, 0).tensor("a", F32, 0, 4).tensor("b", I8, 0, 16).zeros(35 + 16), func(t *testing.T, f *File) {
			a, b := f.Tensors[0].Data, f.Tensors[1].Data
			if len(a) != 16 || len(b) != 16 || &a[0] != &b[0] {
				t.Errorf("tensors do not share their bytes")
			}
		}},
		{"tensor ends at end of file", header(3, 1, 0).tensor("t", I8, 0, 3).zeros(7).u8(1).u8(2).u8(3), func(t *testing.T, f *File) {
			if !bytes.Equal(f.Tensors[0].Data, []byte{1, 2, 3}) {
				t.Errorf("Data = %v", f.Tensors[0].Data)
			}
		}},
		{"empty key and strings", header(3, 0, 1).kv("", TypeArray).arr(TypeString, 2).str("").str(""), func(t *testing.T, f *File) {
			if v, _ := f.Value(""); len(v.([]string)) != 2 {
				t.Errorf("value %v", v)
			}
		}},
		{"depth 4", header(3, 0, 1).kv("k", TypeArray).arr(TypeArray, 1).arr(TypeArray, 1).arr(TypeArray, 1).arr(TypeUint8, 1).u8(5), func(t *testing.T, f *File) {
			want := []any{[]any{[]any{[]uint8{5}}}}
			if v, _ := f.Value("k"); !equalValues(v, want) {
				t.Errorf("value %#v", v)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, f)
		})
	}
}

func equalValues(a, b any) bool {
	var ba, bb bytes.Buffer
	x, y := NewBuilder(), NewBuilder()
	x.Set("v", a)
	y.Set("v", b)
	_, err1 := x.WriteTo(&ba)
	_, err2 := y.WriteTo(&bb)
	return err1 == nil && err2 == nil && bytes.Equal(ba.Bytes(), bb.Bytes())
}

// richFile returns a file with metadata of every type and several tensors.
func richFile(t testing.TB) []byte {
	b := NewBuilder()
	for _, kv := range roundTripKV {
		b.Set(kv.Key, kv.Value)
	}
	for _, tc := range testTensors() {
		if err := b.AddTensor(tc.name, tc.typ, tc.dims, tc.data); err != nil {
			t.Fatal(err)
		}
	}
	return build(t, b)
}

// TestTruncated parses every prefix of a file: each one that cuts into the
// header or a tensor's bytes must fail, and none may panic.
func TestTruncated(t *testing.T) {
	full := richFile(t)
	f, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	end := int(f.DataOffset + last.Offset + uint64(len(last.Data)))
	for n := range len(full) {
		// A copy of exactly n bytes, so reading past it would be caught.
		p := bytes.Clone(full[:n])
		_, err := Parse(p)
		if n < end && err == nil {
			t.Fatalf("prefix of %d bytes (file %d, data ends at %d) parsed", n, len(full), end)
		}
		if n >= end && err != nil {
			t.Fatalf("prefix of %d bytes cutting only padding: %v", n, err)
		}
		// Past the magic, every truncation is reported as one.
		if err != nil && n >= 4 && (!strings.HasPrefix(err.Error(), "gguf: ") || !errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("prefix of %d bytes: error %v, want a gguf error wrapping io.ErrUnexpectedEOF", n, err)
		}
	}
}

// TestParseAllocations checks that Parse allocates in proportion to its
// input, for input crafted to make it allocate as much as it can, and
// almost nothing for input that claims huge counts.
func TestParseAllocations(t *testing.T) {
	const n = 50000
	manyArrays := header(3, 0, 1).kv("k", TypeArray).arr(TypeArray, n)
	for range n {
		manyArrays = manyArrays.arr(TypeUint8, 0)
	}
	manyStrings := header(3, 0, 1).kv("k", TypeArray).arr(TypeString, n)
	for range n {
		manyStrings = manyStrings.str("")
	}
	manyKeys := header(3, 0, n)
	for i := range n {
		manyKeys = manyKeys.kv(string(rune(0x10000+i)), TypeUint8).u8(1)
	}
	manyTensors := header(3, n, 0)
	for i := range n {
		manyTensors = manyTensors.tensor(string(rune(0x10000+i)), I8, 0, 1)
	}
	manyTensors = manyTensors.zeros(32)

	tests := []struct {
		name   string
		input  raw
		ok     bool
		budget int // bytes
	}{
		{"nested arrays", manyArrays, true, 0},
		{"strings", manyStrings, true, 0},
		{"keys", manyKeys, true, 0},
		{"tensors", manyTensors, true, 0},
		{"huge kv count", header(3, 0, 1<<40).zeros(1000), false, 1 << 12},
		{"huge tensor count", header(3, 1<<40, 0).zeros(1000), false, 1 << 12},
		{"huge array", header(3, 0, 1).kv("k", TypeArray).arr(TypeUint64, 1<<40).zeros(1000), false, 1 << 12},
		{"huge nested array", header(3, 0, 1).kv("k", TypeArray).arr(TypeArray, 1<<40).zeros(1000), false, 1 << 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			budget := tc.budget
			if budget == 0 {
				budget = 10*len(tc.input) + 1<<20
			}
			var err error
			allocated := measure(func() { _, err = Parse(tc.input) })
			if (err == nil) != tc.ok {
				t.Fatalf("error %v", err)
			}
			if allocated > uint64(budget) {
				t.Errorf("Parse of %d bytes allocated %d bytes, budget %d", len(tc.input), allocated, budget)
			}
		})
	}
}

// measure returns the bytes fn allocates: the least of five runs, since
// TotalAlloc counts every goroutine's allocations (a parallel test's, the
// runtime's) and those only add.
func measure(fn func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

func TestRealFiles(t *testing.T) {
	tests := []struct {
		path   string
		model  string
		tokens int
		merges bool
	}{
		// The vocabulary files of the shared folder beside the repository.
		{"tokenizers/ggml-vocab-llama-spm.gguf", "llama", 32000, false},
		{"tokenizers/ggml-vocab-gpt-2.gguf", "gpt2", 50257, true},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			path, err := sharedfiles.Path(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Version != 3 || f.Alignment != DefaultAlignment || len(f.Tensors) != 0 {
				t.Errorf("Version %d, Alignment %d, %d tensors", f.Version, f.Alignment, len(f.Tensors))
			}
			if model, err := f.String("tokenizer.ggml.model"); err != nil || model != tc.model {
				t.Errorf("tokenizer.ggml.model = %q, %v; want %q", model, err, tc.model)
			}
			if arch, err := f.String("general.architecture"); err != nil || arch == "" {
				t.Errorf("general.architecture = %q, %v", arch, err)
			}
			tokens, err := f.Strings("tokenizer.ggml.tokens")
			if err != nil || len(tokens) != tc.tokens {
				t.Fatalf("%d tokens, %v; want %d", len(tokens), err, tc.tokens)
			}
			types, err := f.Int32s("tokenizer.ggml.token_type")
			if err != nil || len(types) != tc.tokens {
				t.Errorf("%d token types, %v", len(types), err)
			}
			if _, err := f.Uint("tokenizer.ggml.bos_token_id"); err != nil {
				t.Error(err)
			}
			merges, err := f.Strings("tokenizer.ggml.merges")
			if tc.merges {
				if err != nil || len(merges) == 0 || !strings.Contains(merges[0], " ") {
					t.Errorf("merges: %d, %v", len(merges), err)
				}
			} else if !errors.Is(err, ErrMissing) {
				t.Errorf("merges: %v, want ErrMissing", err)
			}
			if tc.model == "llama" {
				scores, err := f.Float32s("tokenizer.ggml.scores")
				if err != nil || len(scores) != tc.tokens {
					t.Errorf("%d scores, %v", len(scores), err)
				}
				if tokens[1] != "<s>" || tokens[2] != "</s>" {
					t.Errorf("tokens 1, 2 = %q, %q", tokens[1], tokens[2])
				}
			}

			// Every proper prefix of the file is truncated inside its metadata.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{0, 3, 23, 24, 100, len(b) / 3, len(b) / 2, len(b) - 1} {
				if _, err := Parse(b[:n]); err == nil {
					t.Errorf("prefix of %d bytes parsed", n)
				}
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	if _, err := ReadFile("/nonexistent/x.gguf"); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.gguf") {
		t.Errorf("missing file: %v", err)
	}
	path := t.TempDir() + "/bad.gguf"
	if err := os.WriteFile(path, []byte("GGML"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path+": gguf: not a GGUF file") {
		t.Errorf("bad file: %v", err)
	}
}

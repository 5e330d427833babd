package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/x448/float16"
)

// roundTripKV holds a value of every type the format has, in the order
// they are set.
var roundTripKV = []KV{
	{"t.uint8", uint8(200)},
	{"t.int8", int8(-100)},
	{"t.uint16", uint16(60000)},
	{"t.int16", int16(-30000)},
	{"t.uint32", uint32(4_000_000_000)},
	{"t.int32", int32(-2_000_000_000)},
	{"t.float32", float32(3.25)},
	{"t.bool_true", true},
	{"t.bool_false", false},
	{"t.string", "héllo, wörld"},
	{"t.string_empty", ""},
	{"t.uint64", uint64(math.MaxUint64)},
	{"t.int64", int64(math.MinInt64)},
	{"t.float64", math.Pi},
	{"a.uint8", []uint8{0, 1, 255}},
	{"a.int8", []int8{-128, 0, 127}},
	{"a.uint16", []uint16{0, 65535}},
	{"a.int16", []int16{-32768, 32767}},
	{"a.uint32", []uint32{0, math.MaxUint32}},
	{"a.int32", []int32{math.MinInt32, -1, math.MaxInt32}},
	{"a.float32", []float32{-1.5, 0, float32(math.Inf(1))}},
	{"a.bool", []bool{true, false, true}},
	{"a.string", []string{"a", "", "ccc"}},
	{"a.uint64", []uint64{0, math.MaxUint64}},
	{"a.int64", []int64{math.MinInt64, math.MaxInt64}},
	{"a.float64", []float64{math.SmallestNonzeroFloat64, -2}},
	{"a.empty", []uint32{}},
	{"a.empty_strings", []string{}},
	{"a.nested", []any{[]uint32{1, 2}, []string{"x", "y"}, []any{}, []bool{}}},
	{"a.depth4", []any{[]any{[]any{[]int8{-1, 2}}, []any{}}}},
}

func build(t testing.TB, b *Builder) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := b.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTripValues(t *testing.T) {
	b := NewBuilder()
	for _, kv := range roundTripKV {
		b.Set(kv.Key, kv.Value)
	}
	f, err := Parse(build(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || len(f.Tensors) != 0 {
		t.Errorf("Version %d, Alignment %d, %d tensors; want 3, 32, 0", f.Version, f.Alignment, len(f.Tensors))
	}
	if len(f.KV) != len(roundTripKV) {
		t.Fatalf("got %d keys, want %d", len(f.KV), len(roundTripKV))
	}
	for i, want := range roundTripKV {
		t.Run(want.Key, func(t *testing.T) {
			got := f.KV[i]
			if got.Key != want.Key {
				t.Fatalf("key %d is %q, want %q (file order lost)", i, got.Key, want.Key)
			}
			if !reflect.DeepEqual(got.Value, want.Value) {
				t.Errorf("value %#v (%T), want %#v (%T)", got.Value, got.Value, want.Value, want.Value)
			}
			if v, ok := f.Value(want.Key); !ok || !reflect.DeepEqual(v, want.Value) {
				t.Errorf("Value(%q) = %#v, %v", want.Key, v, ok)
			}
		})
	}
}

func TestSetReplaces(t *testing.T) {
	b := NewBuilder()
	b.Set("a", uint32(1))
	b.Set("b", "x")
	b.Set("a", "replaced")
	f, err := Parse(build(t, b))
	if err != nil {
		t.Fatal(err)
	}
	want := []KV{{"a", "replaced"}, {"b", "x"}}
	if !reflect.DeepEqual(f.KV, want) {
		t.Errorf("KV = %v, want %v", f.KV, want)
	}
}

func TestZeroBuilder(t *testing.T) {
	var b Builder
	b.Set("k", uint8(1))
	if err := b.AddTensor("t", I8, []uint64{1}, []byte{7}); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(build(t, &b))
	if err != nil {
		t.Fatal(err)
	}
	if tt, ok := f.Tensor("t"); !ok || !bytes.Equal(tt.Data, []byte{7}) {
		t.Errorf("tensor t = %v, %v", tt, ok)
	}
}

func TestBuilderErrors(t *testing.T) {
	f32x4 := F32Bytes(make([]float32, 4))
	tests := []struct {
		name string
		set  func(b *Builder) error
		want string
	}{
		{"int value", func(b *Builder) error { b.Set("k", 1); return nil }, `key "k": unsupported value type int: it has no fixed size`},
		{"int slice", func(b *Builder) error { b.Set("k", []int{1}); return nil }, `key "k": unsupported value type []int`},
		{"struct", func(b *Builder) error { b.Set("k", struct{}{}); return nil }, `key "k": unsupported value type struct {}`},
		{"nil", func(b *Builder) error { b.Set("k", nil); return nil }, `key "k": unsupported value type <nil>`},
		{"empty key", func(b *Builder) error { b.Set("", uint8(1)); return nil }, "empty key"},
		{"scalar in array of arrays", func(b *Builder) error { b.Set("k", []any{[]uint8{}, uint8(1)}); return nil }, `key "k": element 1 of an array of arrays is uint8, not an array`},
		{"int in nested array", func(b *Builder) error { b.Set("k", []any{[]any{[]int{1}}}); return nil }, `key "k": element 0: element 0 of an array of arrays is Go type []int`},
		{"too deep", func(b *Builder) error { b.Set("k", []any{[]any{[]any{[]any{[]uint8{}}}}}); return nil }, `key "k": element 0: element 0: element 0: arrays nested deeper than 4 levels`},
		{"alignment type", func(b *Builder) error { b.Set(AlignmentKey, uint64(32)); return nil }, `key "general.alignment": is uint64, want uint32`},
		{"alignment zero", func(b *Builder) error { b.Set(AlignmentKey, uint32(0)); return nil }, "alignment 0 is not a power of two"},
		{"alignment 48", func(b *Builder) error { b.Set(AlignmentKey, uint32(48)); return nil }, "alignment 48 is not a power of two"},
		{"empty name", func(b *Builder) error { return b.AddTensor("", F32, []uint64{4}, f32x4) }, "tensor name is empty"},
		{"long name", func(b *Builder) error { return b.AddTensor(strings.Repeat("n", 64), F32, []uint64{4}, f32x4) }, "name is 64 bytes long, ggml allows at most 63"},
		{"duplicate", func(b *Builder) error {
			if err := b.AddTensor("w", F32, []uint64{4}, f32x4); err != nil {
				return err
			}
			return b.AddTensor("w", F32, []uint64{4}, f32x4)
		}, `tensor "w": duplicate tensor name`},
		{"size mismatch", func(b *Builder) error { return b.AddTensor("w", F32, []uint64{5}, f32x4) }, `tensor "w": data has 16 bytes, dims [5] of F32 need 20`},
		{"no dims", func(b *Builder) error { return b.AddTensor("w", F32, nil, nil) }, `tensor "w": no dimensions`},
		{"five dims", func(b *Builder) error { return b.AddTensor("w", F32, []uint64{1, 1, 1, 1, 4}, f32x4) }, "5 dimensions, at most 4"},
		{"zero dim", func(b *Builder) error { return b.AddTensor("w", F32, []uint64{4, 0}, nil) }, "ne[1] is zero"},
		{"block multiple", func(b *Builder) error { return b.AddTensor("w", Q8_0, []uint64{16}, make([]byte, 17)) }, "ne[0] = 16 is not a multiple of the Q8_0 block size 32"},
		{"unknown type", func(b *Builder) error { return b.AddTensor("w", TensorType(99), []uint64{4}, f32x4) }, "unknown tensor type 99"},
		{"removed type", func(b *Builder) error { return b.AddTensor("w", TensorType(4), []uint64{32}, f32x4) }, "tensor type Q4_2 (4) is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder()
			err := tc.set(b)
			if err == nil {
				var buf bytes.Buffer
				_, err = b.WriteTo(&buf)
				if err != nil && buf.Len() != 0 {
					t.Errorf("WriteTo wrote %d bytes before failing", buf.Len())
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// tensorCase is a tensor the tensor tests add to a Builder.
type tensorCase struct {
	name string
	typ  TensorType
	dims []uint64
	data []byte
}

func testTensors() []tensorCase {
	f32 := []float32{1, -2, 3.5, 0, 5, 6}
	f16 := make([]uint16, 6)
	for i, x := range []float32{0.5, -1, 2, 65504, 0, -0.25} {
		f16[i] = float16.Fromfloat32(x).Bits()
	}
	q8 := make([]byte, 2*34) // two Q8_0 blocks
	for i := range q8 {
		q8[i] = byte(i)
	}
	return []tensorCase{
		{"odd.i8", I8, []uint64{5}, []byte{1, 2, 3, 4, 5}},
		{"w.f32", F32, []uint64{3, 2}, F32Bytes(f32)},
		{"w.f16", F16, []uint64{2, 3}, F16Bytes(f16)},
		{"w.q8_0", Q8_0, []uint64{32, 2}, q8},
		{"w.4d", BF16, []uint64{1, 2, 1, 3}, make([]byte, 12)},
	}
}

func TestTensorRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 8, 16, 64, 4096} {
		t.Run(fmt.Sprintf("align=%d", align), func(t *testing.T) {
			b := NewBuilder()
			b.Set("general.architecture", "test")
			wantAlign := uint64(DefaultAlignment)
			if align != 0 {
				b.Set(AlignmentKey, align)
				wantAlign = uint64(align)
			}
			cases := testTensors()
			for _, tc := range cases {
				if err := b.AddTensor(tc.name, tc.typ, tc.dims, tc.data); err != nil {
					t.Fatal(err)
				}
			}
			buf := build(t, b)
			f, err := Parse(buf)
			if err != nil {
				t.Fatal(err)
			}
			if f.Alignment != wantAlign {
				t.Errorf("Alignment = %d, want %d", f.Alignment, wantAlign)
			}
			if f.DataOffset%wantAlign != 0 || uint64(len(buf))%wantAlign != 0 {
				t.Errorf("DataOffset %d, file size %d: not multiples of %d", f.DataOffset, len(buf), wantAlign)
			}
			if len(f.Tensors) != len(cases) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(cases))
			}
			for i, tc := range cases {
				tt := &f.Tensors[i]
				if tt.Name != tc.name || tt.Type != tc.typ || !reflect.DeepEqual(tt.Dims, tc.dims) {
					t.Errorf("tensor %d = %q %s %v, want %q %s %v", i, tt.Name, tt.Type, tt.Dims, tc.name, tc.typ, tc.dims)
				}
				if tt.Offset%wantAlign != 0 {
					t.Errorf("%s: offset %d not a multiple of %d", tc.name, tt.Offset, wantAlign)
				}
				if !bytes.Equal(tt.Data, tc.data) {
					t.Errorf("%s: data differs", tc.name)
				}
				if !aliases(tt.Data, buf) {
					t.Errorf("%s: Data does not alias the parsed buffer", tc.name)
				}
				if !bytes.Equal(buf[f.DataOffset+tt.Offset:][:len(tt.Data)], tc.data) {
					t.Errorf("%s: data is not at DataOffset+Offset", tc.name)
				}
				if cap(tt.Data) != len(tt.Data) {
					t.Errorf("%s: cap(Data) = %d, want %d so appends cannot clobber the file", tc.name, cap(tt.Data), len(tt.Data))
				}
				if got, ok := f.Tensor(tc.name); !ok || got != tt {
					t.Errorf("Tensor(%q) = %p, %v; want %p", tc.name, got, ok, tt)
				}
			}
			w, err := mustTensor(t, f, "w.f32").F32()
			if err != nil || !reflect.DeepEqual(w, []float32{1, -2, 3.5, 0, 5, 6}) {
				t.Errorf("F32() = %v, %v", w, err)
			}
			h, err := mustTensor(t, f, "w.f16").F16()
			if err != nil || len(h) != 6 || float16.Frombits(h[3]).Float32() != 65504 {
				t.Errorf("F16() = %v, %v", h, err)
			}
			if _, err := mustTensor(t, f, "w.f16").F32(); err == nil || !strings.Contains(err.Error(), `tensor "w.f16": type is F16, not F32`) {
				t.Errorf("F32 of an F16 tensor: %v", err)
			}
			if _, err := mustTensor(t, f, "w.f32").F16(); err == nil || !strings.Contains(err.Error(), "type is F32, not F16") {
				t.Errorf("F16 of an F32 tensor: %v", err)
			}
			if _, ok := f.Tensor("nope"); ok {
				t.Error(`Tensor("nope") found`)
			}
		})
	}
}

func mustTensor(t *testing.T, f *File, name string) *Tensor {
	t.Helper()
	tt, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %q", name)
	}
	return tt
}

// aliases reports whether p lies inside b's memory.
func aliases(p, b []byte) bool {
	if len(p) == 0 || len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	q := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return q >= start && q+uintptr(len(p)) <= start+uintptr(len(b))
}

func TestTensorViewErrors(t *testing.T) {
	buf := make([]byte, 20)
	tests := []struct {
		name   string
		tensor Tensor
		f16    bool
		want   string
	}{
		{"misaligned f32", Tensor{Name: "m", Type: F32, Dims: []uint64{4}, Data: buf[1:17]}, false, `tensor "m": data at address`},
		{"misaligned f16", Tensor{Name: "m", Type: F16, Dims: []uint64{4}, Data: buf[1:9]}, true, "is not 2-byte aligned"},
		{"short data", Tensor{Name: "s", Type: F32, Dims: []uint64{4}, Data: buf[:12]}, false, `tensor "s": data has 12 bytes, dims [4] of F32 need 16`},
		{"bad dims", Tensor{Name: "d", Type: F16, Dims: []uint64{0}, Data: nil}, true, `tensor "d": ne[0] is zero`},
		{"wrong type", Tensor{Name: "q", Type: Q4_0, Dims: []uint64{32}, Data: buf[:18]}, false, "type is Q4_0, not F32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.f16 {
				_, err = tc.tensor.F16()
			} else {
				_, err = tc.tensor.F32()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		dims []uint64
		want uint64
	}{{nil, 1}, {[]uint64{7}, 7}, {[]uint64{2, 3, 4, 5}, 120}} {
		if got := (&Tensor{Dims: tc.dims}).Elements(); got != tc.want {
			t.Errorf("Elements(%v) = %d, want %d", tc.dims, got, tc.want)
		}
	}
}

func TestTypeStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{F32.String(), "F32"},
		{F16.String(), "F16"},
		{Q4_K.String(), "Q4_K"},
		{IQ4_XS.String(), "IQ4_XS"},
		{BF16.String(), "BF16"},
		{MXFP4.String(), "MXFP4"},
		{TensorType(31).String(), "Q4_0_4_4"},
		{TensorType(1000).String(), "TensorType(1000)"},
		{TypeUint32.String(), "uint32"},
		{TypeArray.String(), "array"},
		{ValueType(13).String(), "ValueType(13)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestTypeSizes checks the block sizes against ggml's bits-per-weight.
func TestTypeSizes(t *testing.T) {
	tests := []struct {
		typ         TensorType
		block, size uint64
	}{
		{F32, 1, 4}, {F16, 1, 2}, {BF16, 1, 2}, {Q4_0, 32, 18}, {Q4_1, 32, 20},
		{Q5_0, 32, 22}, {Q5_1, 32, 24}, {Q8_0, 32, 34}, {Q8_1, 32, 36},
		{Q2_K, 256, 84}, {Q3_K, 256, 110}, {Q4_K, 256, 144}, {Q5_K, 256, 176},
		{Q6_K, 256, 210}, {Q8_K, 256, 292}, {IQ2_XXS, 256, 66}, {IQ2_XS, 256, 74},
		{IQ3_XXS, 256, 98}, {IQ1_S, 256, 50}, {IQ4_NL, 32, 18}, {IQ3_S, 256, 110},
		{IQ2_S, 256, 82}, {IQ4_XS, 256, 136}, {IQ1_M, 256, 56}, {TQ1_0, 256, 54},
		{TQ2_0, 256, 66}, {MXFP4, 32, 17}, {I8, 1, 1}, {I16, 1, 2}, {I32, 1, 4},
		{I64, 1, 8}, {F64, 1, 8},
	}
	for _, tc := range tests {
		info := tc.typ.info()
		if info.block != tc.block || info.size != tc.size {
			t.Errorf("%s: block %d size %d, want %d %d", tc.typ, info.block, info.size, tc.block, tc.size)
		}
	}
}

func TestGetters(t *testing.T) {
	f := &File{KV: []KV{
		{"s", "text"},
		{"u8", uint8(7)},
		{"i8neg", int8(-3)},
		{"i64", int64(-5)},
		{"u64big", uint64(math.MaxUint64)},
		{"u64", uint64(1) << 40},
		{"f32", float32(1.5)},
		{"f64", 2.25},
		{"b", true},
		{"strs", []string{"a", "b"}},
		{"f32s", []float32{1, 2}},
		{"i32s", []int32{-1, 2}},
		{"u32s", []uint32{1, math.MaxInt32}},
		{"u32big", []uint32{1, math.MaxInt32 + 1}},
		{"u8s", []uint8{255}},
		{"i16s", []int16{-300}},
		{"nested", []any{[]uint8{}}},
	}}
	tests := []struct {
		name string
		get  func() (any, error)
		want any
		err  string
	}{
		{"String", func() (any, error) { return f.String("s") }, "text", ""},
		{"String wrong type", func() (any, error) { return f.String("u8") }, nil, `gguf: key "u8": is uint8, want string`},
		{"Uint u8", func() (any, error) { return f.Uint("u8") }, uint64(7), ""},
		{"Uint u64", func() (any, error) { return f.Uint("u64big") }, uint64(math.MaxUint64), ""},
		{"Uint negative", func() (any, error) { return f.Uint("i8neg") }, nil, `gguf: key "i8neg": int8 value -3 is negative`},
		{"Uint float", func() (any, error) { return f.Uint("f32") }, nil, `gguf: key "f32": is float32, want an integer`},
		{"Int i64", func() (any, error) { return f.Int("i64") }, int64(-5), ""},
		{"Int u64", func() (any, error) { return f.Int("u64") }, int64(1) << 40, ""},
		{"Int overflow", func() (any, error) { return f.Int("u64big") }, nil, `gguf: key "u64big": uint64 value 18446744073709551615 overflows an int64`},
		{"Int string", func() (any, error) { return f.Int("s") }, nil, `is string, want an integer`},
		{"Float f32", func() (any, error) { return f.Float("f32") }, 1.5, ""},
		{"Float f64", func() (any, error) { return f.Float("f64") }, 2.25, ""},
		{"Float int", func() (any, error) { return f.Float("i8neg") }, -3.0, ""},
		{"Float uint64", func() (any, error) { return f.Float("u64big") }, float64(math.MaxUint64), ""},
		{"Float bool", func() (any, error) { return f.Float("b") }, nil, `key "b": is bool, want a number`},
		{"Bool", func() (any, error) { return f.Bool("b") }, true, ""},
		{"Bool wrong", func() (any, error) { return f.Bool("u8") }, nil, `key "u8": is uint8, want bool`},
		{"Strings", func() (any, error) { return f.Strings("strs") }, []string{"a", "b"}, ""},
		{"Strings wrong", func() (any, error) { return f.Strings("f32s") }, nil, `key "f32s": is array of float32, want array of string`},
		{"Float32s", func() (any, error) { return f.Float32s("f32s") }, []float32{1, 2}, ""},
		{"Float32s wrong", func() (any, error) { return f.Float32s("nested") }, nil, `key "nested": is array of arrays, want array of float32`},
		{"Int32s int32", func() (any, error) { return f.Int32s("i32s") }, []int32{-1, 2}, ""},
		{"Int32s uint32", func() (any, error) { return f.Int32s("u32s") }, []int32{1, math.MaxInt32}, ""},
		{"Int32s uint8", func() (any, error) { return f.Int32s("u8s") }, []int32{255}, ""},
		{"Int32s int16", func() (any, error) { return f.Int32s("i16s") }, []int32{-300}, ""},
		{"Int32s overflow", func() (any, error) { return f.Int32s("u32big") }, nil, `key "u32big": element 1 = 2147483648 overflows an int32`},
		{"Int32s wrong", func() (any, error) { return f.Int32s("strs") }, nil, `is array of string, want array of int32`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}

	// Every getter reports a missing key with ErrMissing and the key.
	missing := []func() (any, error){
		func() (any, error) { return f.String("nope") },
		func() (any, error) { return f.Uint("nope") },
		func() (any, error) { return f.Int("nope") },
		func() (any, error) { return f.Float("nope") },
		func() (any, error) { return f.Bool("nope") },
		func() (any, error) { return f.Strings("nope") },
		func() (any, error) { return f.Float32s("nope") },
		func() (any, error) { return f.Int32s("nope") },
	}
	for i, get := range missing {
		_, err := get()
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), `gguf: key "nope"`) {
			t.Errorf("getter %d: error %v, want ErrMissing naming the key", i, err)
		}
	}
	if _, ok := f.Value("nope"); ok {
		t.Error(`Value("nope") found`)
	}
}

func TestBytesHelpers(t *testing.T) {
	if got := F32Bytes([]float32{1, -2}); !bytes.Equal(got, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}) {
		t.Errorf("F32Bytes = % x", got)
	}
	if got := F16Bytes([]uint16{0x3c00, 0x1234}); !bytes.Equal(got, []byte{0x00, 0x3c, 0x34, 0x12}) {
		t.Errorf("F16Bytes = % x", got)
	}
	if got := F32Bytes(nil); len(got) != 0 {
		t.Errorf("F32Bytes(nil) = % x", got)
	}
}

package gguf

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"
)

// FuzzParse checks that Parse never panics and that whatever it accepts is
// consistent: tensors lie inside the input, aligned, with the size their
// dims call for, and the file writes back to bytes that parse to the same
// file.
func FuzzParse(f *testing.F) {
	seeds := [][]byte{richFile(f)}
	b := NewBuilder()
	b.Set(AlignmentKey, uint32(8))
	b.Set("k", []any{[]any{[]string{"a", "bc"}}, []uint16{1}})
	if err := b.AddTensor("t", F16, []uint64{3}, F16Bytes([]uint16{1, 2, 3})); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, build(f, b), build(f, NewBuilder()))
	b = NewBuilder()
	b.Set("tokenizer.ggml.tokens", []string{"<s>", "</s>", "a"})
	b.Set("tokenizer.ggml.scores", []float32{0, 0, -1})
	seeds = append(seeds, build(f, b))
	// An alignment so large that writing the file back would pad with
	// gigabytes: Parse takes it, the round trip skips it.
	seeds = append(seeds, header(3, 0, 1).kv(AlignmentKey, TypeUint32).u32(1<<31))
	for _, s := range seeds {
		f.Add(s)
		for _, n := range []int{4, 8, 24, 25, 40, len(s) / 3, len(s) / 2, len(s) - 1} {
			if n < len(s) {
				f.Add(s[:n])
			}
		}
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := Parse(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error without the gguf prefix: %v", err)
			}
			return
		}
		checkFile(t, file, in)

		// Writing the file back and parsing it again must be a fixed point.
		first, ok := rewrite(file)
		if !ok {
			return // the Builder is stricter than Parse (alignment type, names)
		}
		again, err := Parse(first)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		checkFile(t, again, first)
		second, ok := rewrite(again)
		if !ok || !bytes.Equal(first, second) {
			t.Fatalf("rewriting is not stable (ok %v)", ok)
		}
	})
}

func checkFile(t *testing.T, f *File, in []byte) {
	t.Helper()
	if f.Alignment == 0 || f.Alignment&(f.Alignment-1) != 0 || f.DataOffset%f.Alignment != 0 {
		t.Fatalf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	for i := range f.Tensors {
		tt := &f.Tensors[i]
		size, err := tensorSize(tt.Type, tt.Dims)
		if err != nil || uint64(len(tt.Data)) != size || tt.Offset%f.Alignment != 0 {
			t.Fatalf("tensor %q: %d bytes, size %d (%v), offset %d", tt.Name, len(tt.Data), size, err, tt.Offset)
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
		p := uintptr(unsafe.Pointer(unsafe.SliceData(tt.Data)))
		if p != start+uintptr(f.DataOffset+tt.Offset) || p+uintptr(len(tt.Data)) > start+uintptr(len(in)) {
			t.Fatalf("tensor %q: Data is not the view of the input at DataOffset+Offset", tt.Name)
		}
	}
}

// rewrite writes f with a Builder; ok is false if the Builder refuses it,
// or if the alignment is so large that writing would pad with megabytes.
func rewrite(f *File) ([]byte, bool) {
	if f.Alignment > 4096 {
		return nil, false
	}
	b := NewBuilder()
	for _, kv := range f.KV {
		b.Set(kv.Key, kv.Value)
	}
	for _, tt := range f.Tensors {
		if b.AddTensor(tt.Name, tt.Type, tt.Dims, tt.Data) != nil {
			return nil, false
		}
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

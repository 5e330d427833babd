package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// maxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME - 1).
const maxNameLen = 63

// Builder collects metadata and tensors and writes them as a GGUF v3 file.
// The zero Builder is ready to use.
type Builder struct {
	kv      []KV
	keys    map[string]int // index into kv
	tensors []Tensor
	names   map[string]struct{}
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{}
}

// Set sets key to value. Setting a key again replaces its value and keeps
// its place: keys are written in the order they were first set.
//
// The value's Go type gives its GGUF type: uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64 and float64, a slice
// of one of them for an array, and []any whose elements are all such
// slices (or []any again) for an array of arrays, at most 4 levels deep.
// Other types, including int and uint, which have no fixed size, make
// WriteTo fail. Slices are read when WriteTo runs, not copied by Set.
//
// Note that llama.cpp's reader rejects arrays of arrays.
func (b *Builder) Set(key string, value any) {
	if i, ok := b.keys[key]; ok {
		b.kv[i].Value = value
		return
	}
	if b.keys == nil {
		b.keys = make(map[string]int)
	}
	b.keys[key] = len(b.kv)
	b.kv = append(b.kv, KV{Key: key, Value: value})
}

// AddTensor adds a tensor, to be written after the ones added before it.
// It fails if the name is empty, longer than ggml's 63 bytes or already
// added, if dims are not 1 to 4 positive sizes, if the type's block size is
// unknown or dims[0] is not a multiple of it, or if len(data) is not the
// size dims and typ call for. data is not copied and is read by WriteTo.
func (b *Builder) AddTensor(name string, typ TensorType, dims []uint64, data []byte) error {
	switch {
	case name == "":
		return fmt.Errorf("gguf: tensor name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("gguf: tensor %q: name is %d bytes long, ggml allows at most %d", name, len(name), maxNameLen)
	}
	if _, dup := b.names[name]; dup {
		return fmt.Errorf("gguf: tensor %q: duplicate tensor name", name)
	}
	size, err := tensorSize(typ, dims)
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	if size != uint64(len(data)) {
		return fmt.Errorf("gguf: tensor %q: data has %d bytes, dims %v of %s need %d", name, len(data), dims, typ, size)
	}
	if b.names == nil {
		b.names = make(map[string]struct{})
	}
	b.names[name] = struct{}{}
	b.tensors = append(b.tensors, Tensor{Name: name, Type: typ, Dims: slices.Clone(dims), Data: data})
	return nil
}

// File returns what has been added so far as a File: the metadata in the
// order set and the tensors in the order added, their Data the slices given
// to AddTensor (not copies). Offsets are not assigned until WriteTo, so
// Offset and DataOffset are zero. It lets a tool transform a model it has
// built in memory as it would transform a parsed file.
func (b *Builder) File() *File {
	return &File{Version: 3, Alignment: DefaultAlignment, KV: slices.Clone(b.kv), Tensors: slices.Clone(b.tensors)}
}

// WriteTo writes the file to w: a version 3 header, the metadata in the
// order set, the tensor infos, then the data section with the tensors in
// the order added. The data section and each tensor start at a multiple of
// the alignment (general.alignment, which must be a uint32 power of two,
// or 32), with zero padding between them and after the last tensor.
//
// WriteTo checks all metadata before writing anything, so an invalid value
// leaves w untouched. It returns the number of bytes written.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	align := uint64(DefaultAlignment)
	if i, ok := b.keys[AlignmentKey]; ok {
		v := b.kv[i].Value
		a, ok := v.(uint32)
		switch {
		case !ok:
			return 0, fmt.Errorf("gguf: key %q: is %s, want uint32", AlignmentKey, describe(v))
		case a == 0 || a&(a-1) != 0:
			return 0, fmt.Errorf("gguf: key %q: alignment %d is not a power of two", AlignmentKey, a)
		}
		align = uint64(a)
	}

	var h []byte
	h = append(h, magic...)
	h = binary.LittleEndian.AppendUint32(h, version)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(b.tensors)))
	h = binary.LittleEndian.AppendUint64(h, uint64(len(b.kv)))
	for _, kv := range b.kv {
		if kv.Key == "" {
			return 0, fmt.Errorf("gguf: empty key")
		}
		t, ok := valueType(kv.Value)
		if !ok {
			return 0, fmt.Errorf("gguf: key %q: %w", kv.Key, unsupported(kv.Value))
		}
		h = appendString(h, kv.Key)
		h = binary.LittleEndian.AppendUint32(h, uint32(t))
		var err error
		if h, err = appendValue(h, kv.Value, 1); err != nil {
			return 0, fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	var off uint64
	for _, t := range b.tensors {
		h = appendString(h, t.Name)
		h = binary.LittleEndian.AppendUint32(h, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			h = binary.LittleEndian.AppendUint64(h, d)
		}
		h = binary.LittleEndian.AppendUint32(h, uint32(t.Type))
		h = binary.LittleEndian.AppendUint64(h, off)
		next, err := alignUp(off+uint64(len(t.Data)), align)
		if err != nil {
			return 0, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		off = next
	}
	hlen, err := alignUp(uint64(len(h)), align)
	if err != nil {
		return 0, fmt.Errorf("gguf: data section: %w", err)
	}

	var total int64
	write := func(p []byte) error {
		n, err := w.Write(p)
		total += int64(n)
		return err
	}
	writeZeros := func(n uint64) error {
		var zeros [512]byte
		for n > 0 {
			k := min(n, uint64(len(zeros)))
			if err := write(zeros[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	if err := write(h); err != nil {
		return total, err
	}
	if err := writeZeros(hlen - uint64(len(h))); err != nil {
		return total, err
	}
	for _, t := range b.tensors {
		if err := write(t.Data); err != nil {
			return total, err
		}
		end, _ := alignUp(uint64(len(t.Data)), align)
		if err := writeZeros(end - uint64(len(t.Data))); err != nil {
			return total, err
		}
	}
	return total, nil
}

// unsupported explains why a Go value cannot be written.
func unsupported(v any) error {
	switch v.(type) {
	case int, uint, []int, []uint:
		return fmt.Errorf("unsupported value type %T: it has no fixed size, use int32, int64, uint32 or uint64", v)
	}
	return fmt.Errorf("unsupported value type %T", v)
}

func appendString(h []byte, s string) []byte {
	h = binary.LittleEndian.AppendUint64(h, uint64(len(s)))
	return append(h, s...)
}

func appendArrayHeader(h []byte, et ValueType, n int) []byte {
	h = binary.LittleEndian.AppendUint32(h, uint32(et))
	return binary.LittleEndian.AppendUint64(h, uint64(n))
}

// appendArray appends an array of fixed-size elements.
func appendArray[E any](h []byte, et ValueType, s []E, put func([]byte, E) []byte) []byte {
	h = appendArrayHeader(h, et, len(s))
	for _, x := range s {
		h = put(h, x)
	}
	return h
}

func appendBool(h []byte, v bool) []byte {
	if v {
		return append(h, 1)
	}
	return append(h, 0)
}

// appendValue appends v's encoding, without its type; depth is the nesting
// level v has if it is an array (1 for one not inside another).
func appendValue(h []byte, v any, depth int) ([]byte, error) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(h, x), nil
	case int8:
		return append(h, uint8(x)), nil
	case uint16:
		return le.AppendUint16(h, x), nil
	case int16:
		return le.AppendUint16(h, uint16(x)), nil
	case uint32:
		return le.AppendUint32(h, x), nil
	case int32:
		return le.AppendUint32(h, uint32(x)), nil
	case float32:
		return le.AppendUint32(h, math.Float32bits(x)), nil
	case bool:
		return appendBool(h, x), nil
	case string:
		return appendString(h, x), nil
	case uint64:
		return le.AppendUint64(h, x), nil
	case int64:
		return le.AppendUint64(h, uint64(x)), nil
	case float64:
		return le.AppendUint64(h, math.Float64bits(x)), nil
	case []uint8:
		h = appendArrayHeader(h, TypeUint8, len(x))
		return append(h, x...), nil
	case []int8:
		return appendArray(h, TypeInt8, x, func(h []byte, e int8) []byte { return append(h, uint8(e)) }), nil
	case []uint16:
		return appendArray(h, TypeUint16, x, le.AppendUint16), nil
	case []int16:
		return appendArray(h, TypeInt16, x, func(h []byte, e int16) []byte { return le.AppendUint16(h, uint16(e)) }), nil
	case []uint32:
		return appendArray(h, TypeUint32, x, le.AppendUint32), nil
	case []int32:
		return appendArray(h, TypeInt32, x, func(h []byte, e int32) []byte { return le.AppendUint32(h, uint32(e)) }), nil
	case []float32:
		return appendArray(h, TypeFloat32, x, func(h []byte, e float32) []byte { return le.AppendUint32(h, math.Float32bits(e)) }), nil
	case []bool:
		return appendArray(h, TypeBool, x, appendBool), nil
	case []string:
		return appendArray(h, TypeString, x, appendString), nil
	case []uint64:
		return appendArray(h, TypeUint64, x, le.AppendUint64), nil
	case []int64:
		return appendArray(h, TypeInt64, x, func(h []byte, e int64) []byte { return le.AppendUint64(h, uint64(e)) }), nil
	case []float64:
		return appendArray(h, TypeFloat64, x, func(h []byte, e float64) []byte { return le.AppendUint64(h, math.Float64bits(e)) }), nil
	case []any:
		if depth >= maxArrayDepth {
			return nil, fmt.Errorf("arrays nested deeper than %d levels", maxArrayDepth)
		}
		h = appendArrayHeader(h, TypeArray, len(x))
		for i, e := range x {
			if _, ok := elemType(e); !ok {
				return nil, fmt.Errorf("element %d of an array of arrays is %s, not an array", i, describe(e))
			}
			var err error
			if h, err = appendValue(h, e, depth+1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return h, nil
	}
	return nil, unsupported(v)
}

package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
)

const (
	// magic opens every GGUF file.
	magic = "GGUF"
	// version is the version Builder writes.
	version = 3
	// DefaultAlignment is the alignment of the data section and of every
	// tensor in it when a file has no general.alignment key.
	DefaultAlignment = 32
	// AlignmentKey is the metadata key that sets a file's alignment.
	AlignmentKey = "general.alignment"
	// maxArrayDepth is how deeply arrays may nest: 1 is an array of
	// scalars, 2 an array of arrays of scalars, and so on.
	maxArrayDepth = 4
	// minKVSize is the fewest bytes a key-value pair takes: the key's
	// length, the value type and a one-byte value.
	minKVSize = 8 + 4 + 1
	// minTensorInfoSize is the fewest bytes a tensor info takes: the name's
	// length, the dimension count, one dimension, the type and the offset.
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8
)

// File is a parsed GGUF file.
type File struct {
	// Version is the file's format version, 2 or 3.
	Version uint32
	// Alignment is the alignment of the data section and of each tensor
	// in it: the value of general.alignment, or DefaultAlignment (32).
	Alignment uint64
	// KV holds the metadata in file order.
	KV []KV
	// Tensors holds the tensors in file order.
	Tensors []Tensor
	// DataOffset is where the data section starts in the file. In a file
	// without tensors it may lie past the end of the file.
	DataOffset uint64
}

// KV is one metadata key-value pair.
//
// Value holds one of uint8, int8, uint16, int16, uint32, int32, float32,
// bool, string, uint64, int64 and float64; an array as the slice of the
// matching type ([]uint8 … []float64, []bool, []string); an array of arrays
// as []any whose elements are again arrays.
type KV struct {
	Key   string
	Value any
}

// ReadFile reads the named file and parses it. Errors name the path.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse parses b, the whole of a GGUF file. Every Tensor.Data aliases b, so
// b must stay unchanged while the tensors are in use; keys and metadata
// values are copies.
//
// Parse accepts versions 2 and 3. It checks everything it reads: counts and
// lengths against the bytes left, value and tensor types, array nesting
// (at most 4 levels), the alignment (a power of two), tensor dimensions (1
// to 4, none zero, the element count within an int64), that each tensor's
// offset is aligned and its bytes lie inside b, and that keys and tensor
// names are unique. Tensors may overlap. Errors begin with "gguf: " and
// name the key or tensor at fault; truncated input gives an error wrapping
// io.ErrUnexpectedEOF.
func Parse(b []byte) (*File, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("gguf: not a GGUF file (magic %q)", b[:min(len(b), len(magic))])
	}
	d := &decoder{b: b, off: len(magic)}
	v, err := d.u32()
	if err != nil {
		return nil, fmt.Errorf("gguf: header: version: %w", err)
	}
	switch {
	case v == 2 || v == 3:
	case v == 1:
		return nil, fmt.Errorf("gguf: unsupported version 1 (GGUF v1 is obsolete; want 2 or 3)")
	case bits.ReverseBytes32(v) == 2 || bits.ReverseBytes32(v) == 3:
		return nil, fmt.Errorf("gguf: unsupported version %d (a big-endian GGUF v%d file? only little-endian files are supported)", v, bits.ReverseBytes32(v))
	default:
		return nil, fmt.Errorf("gguf: unsupported version %d (want 2 or 3)", v)
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("gguf: header: tensor count: %w", err)
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("gguf: header: key-value count: %w", err)
	}
	if nKV > uint64(d.left())/minKVSize {
		return nil, fmt.Errorf("gguf: header: %d key-value pairs cannot fit in the %d bytes left after the header: %w", nKV, d.left(), io.ErrUnexpectedEOF)
	}
	if nTensors > uint64(d.left())/minTensorInfoSize {
		return nil, fmt.Errorf("gguf: header: %d tensor infos cannot fit in the %d bytes left after the header: %w", nTensors, d.left(), io.ErrUnexpectedEOF)
	}

	f := &File{Version: v, Alignment: DefaultAlignment, KV: make([]KV, 0, nKV)}
	keys := make(map[string]struct{})
	for i := range nKV {
		start := d.off
		key, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("gguf: key-value pair %d at offset %d: key: %w", i, start, err)
		}
		if _, dup := keys[key]; dup {
			return nil, fmt.Errorf("gguf: key %q: duplicate key (pair %d at offset %d)", key, i, start)
		}
		keys[key] = struct{}{}
		t, err := d.u32()
		if err != nil {
			return nil, fmt.Errorf("gguf: key %q: value type: %w", key, err)
		}
		val, err := d.value(ValueType(t))
		if err != nil {
			return nil, fmt.Errorf("gguf: key %q: %w", key, err)
		}
		f.KV = append(f.KV, KV{Key: key, Value: val})
	}
	if val, ok := f.Value(AlignmentKey); ok {
		a, neg, isInt := toUint(val)
		switch {
		case !isInt:
			return nil, fmt.Errorf("gguf: key %q: is %s, want an unsigned integer", AlignmentKey, describe(val))
		case neg || a == 0 || a&(a-1) != 0:
			return nil, fmt.Errorf("gguf: key %q: alignment %v is not a power of two", AlignmentKey, val)
		}
		f.Alignment = a
	}

	// Recheck: the key-value pairs may have used up the bytes the tensor
	// count was checked against.
	if nTensors > uint64(d.left())/minTensorInfoSize {
		return nil, fmt.Errorf("gguf: %d tensor infos cannot fit in the %d bytes left at offset %d: %w", nTensors, d.left(), d.off, io.ErrUnexpectedEOF)
	}
	f.Tensors = make([]Tensor, 0, nTensors)
	sizes := make([]uint64, 0, nTensors)
	names := make(map[string]struct{})
	for i := range nTensors {
		start := d.off
		name, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %d at offset %d: name: %w", i, start, err)
		}
		if _, dup := names[name]; dup {
			return nil, fmt.Errorf("gguf: tensor %q: duplicate tensor name (tensor %d at offset %d)", name, i, start)
		}
		names[name] = struct{}{}
		t, size, err := d.tensorInfo(name, f.Alignment)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q (tensor %d at offset %d): %w", name, i, start, err)
		}
		f.Tensors = append(f.Tensors, t)
		sizes = append(sizes, size)
	}

	f.DataOffset, err = alignUp(uint64(d.off), f.Alignment)
	if err != nil {
		return nil, fmt.Errorf("gguf: data section: %w", err)
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		start, c1 := bits.Add64(f.DataOffset, t.Offset, 0)
		end, c2 := bits.Add64(start, sizes[i], 0)
		if c1 != 0 || c2 != 0 || end > uint64(len(b)) {
			return nil, fmt.Errorf("gguf: tensor %q: its %d bytes at data offset %d (data section at file offset %d) run past the end of the file (%d bytes): %w",
				t.Name, sizes[i], t.Offset, f.DataOffset, len(b), io.ErrUnexpectedEOF)
		}
		t.Data = b[start:end:end]
	}
	return f, nil
}

// alignUp rounds x up to a multiple of a, a power of two.
func alignUp(x, a uint64) (uint64, error) {
	y, carry := bits.Add64(x, a-1, 0)
	if carry != 0 {
		return 0, fmt.Errorf("offset %d aligned to %d overflows", x, a)
	}
	return y &^ (a - 1), nil
}

// decoder reads little-endian values from b, starting at off.
type decoder struct {
	b   []byte
	off int
}

// left returns the number of bytes not yet read.
func (d *decoder) left() int { return len(d.b) - d.off }

// take returns the next n bytes.
func (d *decoder) take(n uint64) ([]byte, error) {
	if n > uint64(d.left()) {
		return nil, fmt.Errorf("need %d bytes at offset %d, only %d left: %w", n, d.off, d.left(), io.ErrUnexpectedEOF)
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

func (d *decoder) u8() (uint8, error) {
	p, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) u16() (uint16, error) {
	p, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(p), nil
}

func (d *decoder) u32() (uint32, error) {
	p, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (d *decoder) u64() (uint64, error) {
	p, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

// str reads a string: its uint64 length, then its bytes.
func (d *decoder) str() (string, error) {
	start := d.off
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(d.left()) {
		return "", fmt.Errorf("string length %d at offset %d runs past the end of the file (%d bytes left): %w", n, start, d.left(), io.ErrUnexpectedEOF)
	}
	p, _ := d.take(n)
	return string(p), nil
}

func (d *decoder) boolean() (bool, error) {
	v, err := d.u8()
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, fmt.Errorf("invalid bool value %d at offset %d (want 0 or 1)", v, d.off-1)
	}
	return v == 1, nil
}

// value reads one value of type t.
func (d *decoder) value(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		return d.boolean()
	case TypeString:
		return d.str()
	case TypeArray:
		return d.array(1)
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	}
	return nil, fmt.Errorf("unknown value type %d at offset %d", uint32(t), d.off-4)
}

// array reads an array's element type, length and elements; depth is its
// nesting level, 1 for an array that is not inside another.
func (d *decoder) array(depth int) (any, error) {
	start := d.off
	rawType, err := d.u32()
	if err != nil {
		return nil, fmt.Errorf("array element type: %w", err)
	}
	et := ValueType(rawType)
	n, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("array length: %w", err)
	}
	size := et.size()
	if size == 0 {
		return nil, fmt.Errorf("unknown array element type %d at offset %d", rawType, start)
	}
	if et == TypeArray && depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d levels at offset %d", maxArrayDepth, start)
	}
	// Each element takes at least size bytes, so n is bounded by the
	// input and so is everything allocated below.
	if n > uint64(d.left())/size {
		return nil, fmt.Errorf("array of %d %s elements at offset %d cannot fit in the %d bytes left: %w", n, et, start, d.left(), io.ErrUnexpectedEOF)
	}
	switch et {
	case TypeUint8:
		p, _ := d.take(n)
		return append([]uint8{}, p...), nil
	case TypeInt8:
		p, _ := d.take(n)
		return decodeArray(p, 1, func(q []byte) int8 { return int8(q[0]) }), nil
	case TypeUint16:
		p, _ := d.take(2 * n)
		return decodeArray(p, 2, binary.LittleEndian.Uint16), nil
	case TypeInt16:
		p, _ := d.take(2 * n)
		return decodeArray(p, 2, func(q []byte) int16 { return int16(binary.LittleEndian.Uint16(q)) }), nil
	case TypeUint32:
		p, _ := d.take(4 * n)
		return decodeArray(p, 4, binary.LittleEndian.Uint32), nil
	case TypeInt32:
		p, _ := d.take(4 * n)
		return decodeArray(p, 4, func(q []byte) int32 { return int32(binary.LittleEndian.Uint32(q)) }), nil
	case TypeFloat32:
		p, _ := d.take(4 * n)
		return decodeArray(p, 4, func(q []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(q)) }), nil
	case TypeUint64:
		p, _ := d.take(8 * n)
		return decodeArray(p, 8, binary.LittleEndian.Uint64), nil
	case TypeInt64:
		p, _ := d.take(8 * n)
		return decodeArray(p, 8, func(q []byte) int64 { return int64(binary.LittleEndian.Uint64(q)) }), nil
	case TypeFloat64:
		p, _ := d.take(8 * n)
		return decodeArray(p, 8, func(q []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(q)) }), nil
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			if out[i], err = d.boolean(); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	case TypeString:
		out := make([]string, n)
		for i := range out {
			if out[i], err = d.str(); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	default: // TypeArray
		out := make([]any, n)
		for i := range out {
			if out[i], err = d.array(depth + 1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	}
}

// decodeArray decodes len(p)/size elements of size bytes each.
func decodeArray[E any](p []byte, size int, get func([]byte) E) []E {
	out := make([]E, len(p)/size)
	for i := range out {
		out[i] = get(p[i*size:])
	}
	return out
}

// tensorInfo reads the rest of a tensor info, after its name, and returns
// the tensor with its size in bytes.
func (d *decoder) tensorInfo(name string, alignment uint64) (Tensor, uint64, error) {
	t := Tensor{Name: name}
	nd, err := d.u32()
	if err != nil {
		return t, 0, fmt.Errorf("dimension count: %w", err)
	}
	if nd == 0 {
		return t, 0, fmt.Errorf("no dimensions")
	}
	if nd > maxDims {
		return t, 0, fmt.Errorf("%d dimensions, at most %d are supported", nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	for i := range t.Dims {
		if t.Dims[i], err = d.u64(); err != nil {
			return t, 0, fmt.Errorf("ne[%d]: %w", i, err)
		}
	}
	typ, err := d.u32()
	if err != nil {
		return t, 0, fmt.Errorf("type: %w", err)
	}
	t.Type = TensorType(typ)
	size, err := tensorSize(t.Type, t.Dims)
	if err != nil {
		return t, 0, err
	}
	if t.Offset, err = d.u64(); err != nil {
		return t, 0, fmt.Errorf("offset: %w", err)
	}
	if t.Offset%alignment != 0 {
		return t, 0, fmt.Errorf("data offset %d is not a multiple of the alignment %d", t.Offset, alignment)
	}
	return t, size, nil
}

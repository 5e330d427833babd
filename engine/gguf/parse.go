package gguf

import (
	"encoding/binary"
	"errors"
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
// io.ErrUnexpectedEOF (and, when it ends inside the header, ErrShortHeader).
//
// Parse is ParseHeader followed by CheckSize(len(b)) and views of the
// tensors' bytes: a header that ParseHeader reads from a prefix of a file
// gives the errors Parse gives for the whole file.
func Parse(b []byte) (*File, error) {
	f, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if err := f.CheckSize(uint64(len(b))); err != nil {
		return nil, err
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		start := f.DataOffset + t.Offset
		end := start + f.tensorBytes(i)
		t.Data = b[start:end:end]
	}
	return f, nil
}

// ErrShortHeader is wrapped by the error of ParseHeader (and Parse) when
// the bytes end before the header does: a caller that holds only a prefix
// of a file can fetch more (see HeaderNeed) and try again.
var ErrShortHeader = errors.New("gguf: the bytes end inside the header")

// ShortHeaderError is the error when the bytes end inside the header. Its
// text is the description of what was cut short, as Parse reports it for
// a truncated file.
type ShortHeaderError struct {
	// Need is the fewest bytes, counted from the start of the file, that
	// the header takes as far as the bytes given tell: a prefix of Need
	// bytes gets further, though the header may be longer still. It may
	// be absurdly large for a hostile header.
	Need uint64
	// Err describes the truncation; it wraps io.ErrUnexpectedEOF except
	// for a prefix too short to hold the magic.
	Err error
}

func (e *ShortHeaderError) Error() string   { return e.Err.Error() }
func (e *ShortHeaderError) Unwrap() []error { return []error{e.Err, ErrShortHeader} }

// HeaderNeed returns the bytes a header needs when err is (or wraps) the
// error of a header cut short, and whether it is.
func HeaderNeed(err error) (need uint64, ok bool) {
	var se *ShortHeaderError
	if errors.As(err, &se) {
		return se.Need, true
	}
	return 0, false
}

// ParseHeader parses the header of a GGUF file (its metadata and tensor
// infos) from b, which may be a prefix of the file or the whole of it. It
// checks what Parse checks, except that it does not look at the data
// section: the tensors' Data are nil, and CheckSize says whether a file of
// a given size holds their bytes. When b ends inside the header the error
// wraps ErrShortHeader, and HeaderNeed says how many bytes to try next;
// otherwise its errors are Parse's. What it allocates is bounded by a small
// multiple of len(b), whatever the counts in the header claim.
func ParseHeader(b []byte) (*File, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		err := fmt.Errorf("gguf: not a GGUF file (magic %q)", b[:min(len(b), len(magic))])
		if len(b) < len(magic) && string(b) == magic[:len(b)] {
			return nil, &ShortHeaderError{Need: uint64(len(magic)), Err: err}
		}
		return nil, err
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
		return nil, d.short(needed(d.off, nKV, minKVSize), "gguf: header: %d key-value pairs cannot fit in the %d bytes left after the header", nKV, d.left())
	}
	if nTensors > uint64(d.left())/minTensorInfoSize {
		return nil, d.short(needed(d.off, nTensors, minTensorInfoSize), "gguf: header: %d tensor infos cannot fit in the %d bytes left after the header", nTensors, d.left())
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
		return nil, d.short(needed(d.off, nTensors, minTensorInfoSize), "gguf: %d tensor infos cannot fit in the %d bytes left at offset %d", nTensors, d.left(), d.off)
	}
	f.Tensors = make([]Tensor, 0, nTensors)
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
		t, err := d.tensorInfo(name, f.Alignment)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q (tensor %d at offset %d): %w", name, i, start, err)
		}
		f.Tensors = append(f.Tensors, t)
	}

	f.DataOffset, err = alignUp(uint64(d.off), f.Alignment)
	if err != nil {
		return nil, fmt.Errorf("gguf: data section: %w", err)
	}
	return f, nil
}

// CheckSize returns the error Parse gives when a file of size bytes is too
// short for the bytes of some tensor of f, a File from ParseHeader or Parse
// (nil if every tensor fits).
func (f *File) CheckSize(size uint64) error {
	for i := range f.Tensors {
		t := &f.Tensors[i]
		n := f.tensorBytes(i)
		start, c1 := bits.Add64(f.DataOffset, t.Offset, 0)
		end, c2 := bits.Add64(start, n, 0)
		if c1 != 0 || c2 != 0 || end > size {
			return fmt.Errorf("gguf: tensor %q: its %d bytes at data offset %d (data section at file offset %d) run past the end of the file (%d bytes): %w",
				t.Name, n, t.Offset, f.DataOffset, size, io.ErrUnexpectedEOF)
		}
	}
	return nil
}

// DataEnd returns where the data of the tensor that ends last ends, the
// fewest bytes a file with f's header and tensors takes (0 for a file
// without tensors). It saturates at math.MaxUint64 for offsets that
// overflow, which CheckSize refuses for any size.
func (f *File) DataEnd() uint64 {
	var end uint64
	for i := range f.Tensors {
		start, c1 := bits.Add64(f.DataOffset, f.Tensors[i].Offset, 0)
		e, c2 := bits.Add64(start, f.tensorBytes(i), 0)
		if c1 != 0 || c2 != 0 {
			return math.MaxUint64
		}
		end = max(end, e)
	}
	return end
}

// tensorBytes returns the size of tensor i's data, from its type and dims
// (which ParseHeader checked; 0 for a tensor whose size is unknown, in a
// File made by hand).
func (f *File) tensorBytes(i int) uint64 {
	n, _ := tensorSize(f.Tensors[i].Type, f.Tensors[i].Dims)
	return n
}

// needed returns off + n·size, saturating.
func needed(off int, n, size uint64) uint64 {
	hi, lo := bits.Mul64(n, size)
	sum, carry := bits.Add64(lo, uint64(off), 0)
	if hi != 0 || carry != 0 {
		return math.MaxUint64
	}
	return sum
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

// short returns the error for bytes that end inside the header, which
// needs at least need bytes: the formatted text, wrapping
// io.ErrUnexpectedEOF.
func (d *decoder) short(need uint64, format string, args ...any) error {
	return &ShortHeaderError{Need: need, Err: fmt.Errorf(format+": %w", append(args, io.ErrUnexpectedEOF)...)}
}

// take returns the next n bytes.
func (d *decoder) take(n uint64) ([]byte, error) {
	if n > uint64(d.left()) {
		return nil, d.short(needed(d.off, n, 1), "need %d bytes at offset %d, only %d left", n, d.off, d.left())
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
		return "", d.short(needed(d.off, n, 1), "string length %d at offset %d runs past the end of the file (%d bytes left)", n, start, d.left())
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
		return nil, d.short(needed(d.off, n, size), "array of %d %s elements at offset %d cannot fit in the %d bytes left", n, et, start, d.left())
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

// tensorInfo reads the rest of a tensor info, after its name, checking
// that its type and dims give a size.
func (d *decoder) tensorInfo(name string, alignment uint64) (Tensor, error) {
	t := Tensor{Name: name}
	nd, err := d.u32()
	if err != nil {
		return t, fmt.Errorf("dimension count: %w", err)
	}
	if nd == 0 {
		return t, fmt.Errorf("no dimensions")
	}
	if nd > maxDims {
		return t, fmt.Errorf("%d dimensions, at most %d are supported", nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	for i := range t.Dims {
		if t.Dims[i], err = d.u64(); err != nil {
			return t, fmt.Errorf("ne[%d]: %w", i, err)
		}
	}
	typ, err := d.u32()
	if err != nil {
		return t, fmt.Errorf("type: %w", err)
	}
	t.Type = TensorType(typ)
	if _, err := tensorSize(t.Type, t.Dims); err != nil {
		return t, err
	}
	if t.Offset, err = d.u64(); err != nil {
		return t, fmt.Errorf("offset: %w", err)
	}
	if t.Offset%alignment != 0 {
		return t, fmt.Errorf("data offset %d is not a multiple of the alignment %d", t.Offset, alignment)
	}
	return t, nil
}

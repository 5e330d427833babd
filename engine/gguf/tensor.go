package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"
)

// maxDims is the most dimensions a ggml tensor has.
const maxDims = 4

// Tensor describes one tensor of a file and holds its bytes.
type Tensor struct {
	// Name is the tensor's name, such as "blk.0.attn_q.weight".
	Name string
	// Dims are ggml's ne, innermost first: Dims[0] is the number of columns
	// (contiguous in memory), Dims[1] the number of rows.
	Dims []uint64
	// Type is the element type.
	Type TensorType
	// Offset is where the tensor's bytes start, relative to the start of
	// the file's data section (File.DataOffset).
	Offset uint64
	// Data is exactly the tensor's bytes. After Parse it is a view into
	// the parsed buffer, not a copy.
	Data []byte
}

// Elements returns the number of elements, the product of Dims (1 for no
// dims). For a tensor returned by Parse it cannot overflow.
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// F32 returns Data viewed as float32 values, without copying. It fails if
// Type is not F32, if Data's length does not match Dims, if Data is not
// 4-byte aligned in memory or if the machine is not little-endian.
func (t *Tensor) F32() ([]float32, error) {
	if t.Type != F32 {
		return nil, fmt.Errorf("gguf: tensor %q: type is %s, not F32", t.Name, t.Type)
	}
	return view[float32](t)
}

// F16 returns Data viewed as IEEE half-precision values (raw bits), without
// copying. It fails if Type is not F16, if Data's length does not match
// Dims, if Data is not 2-byte aligned in memory or if the machine is not
// little-endian.
func (t *Tensor) F16() ([]uint16, error) {
	if t.Type != F16 {
		return nil, fmt.Errorf("gguf: tensor %q: type is %s, not F16", t.Name, t.Type)
	}
	return view[uint16](t)
}

// BF16 returns Data viewed as bfloat16 values (raw bits), without copying,
// under the conditions of F16.
func (t *Tensor) BF16() ([]uint16, error) {
	if t.Type != BF16 {
		return nil, fmt.Errorf("gguf: tensor %q: type is %s, not BF16", t.Name, t.Type)
	}
	return view[uint16](t)
}

// view reinterprets t.Data as a slice of E.
func view[E float32 | uint16](t *Tensor) ([]E, error) {
	var zero E
	size := uint64(unsafe.Sizeof(zero))
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, fmt.Errorf("gguf: tensor %q: cannot view little-endian %s data on a big-endian machine", t.Name, t.Type)
	}
	want, err := tensorSize(t.Type, t.Dims)
	if err != nil {
		return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
	}
	if want != uint64(len(t.Data)) {
		return nil, fmt.Errorf("gguf: tensor %q: data has %d bytes, dims %v of %s need %d", t.Name, len(t.Data), t.Dims, t.Type, want)
	}
	if len(t.Data) == 0 {
		return []E{}, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(t.Data))
	if uintptr(p)%uintptr(size) != 0 {
		return nil, fmt.Errorf("gguf: tensor %q: data at address %#x is not %d-byte aligned", t.Name, uintptr(p), size)
	}
	return unsafe.Slice((*E)(p), uint64(len(t.Data))/size), nil
}

// TensorSize returns the bytes a tensor of the given type and dims takes in
// a file, with the errors of tensorSize.
func TensorSize(typ TensorType, dims []uint64) (uint64, error) { return tensorSize(typ, dims) }

// tensorSize returns the bytes a tensor of the given type and dims takes. It
// fails for types whose block size is unknown, for a row length that is not
// a whole number of blocks, for zero or too many dims, and when the element
// count or byte size does not fit in an int64 (as ggml requires).
func tensorSize(typ TensorType, dims []uint64) (uint64, error) {
	if len(dims) == 0 {
		return 0, fmt.Errorf("no dimensions")
	}
	if len(dims) > maxDims {
		return 0, fmt.Errorf("%d dimensions, at most %d are supported", len(dims), maxDims)
	}
	for i, d := range dims {
		if d == 0 {
			return 0, fmt.Errorf("ne[%d] is zero", i)
		}
		if d > math.MaxInt64 {
			return 0, fmt.Errorf("ne[%d] = %d is larger than an int64", i, d)
		}
	}
	info := typ.info()
	if info.block == 0 {
		if info.name != "" {
			return 0, fmt.Errorf("tensor type %s (%d) is not supported: ggml removed it from GGUF files", info.name, uint32(typ))
		}
		return 0, fmt.Errorf("unknown tensor type %d", uint32(typ))
	}
	if dims[0]%info.block != 0 {
		return 0, fmt.Errorf("ne[0] = %d is not a multiple of the %s block size %d", dims[0], typ, info.block)
	}
	elems := dims[0]
	hi, size := bits.Mul64(dims[0]/info.block, info.size)
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("byte size of dims %v of %s overflows an int64", dims, typ)
	}
	for _, d := range dims[1:] {
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("element count of dims %v overflows an int64", dims)
		}
		elems = lo
		hi, lo = bits.Mul64(size, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("byte size of dims %v of %s overflows an int64", dims, typ)
		}
		size = lo
	}
	return size, nil
}

// F32Bytes returns the little-endian encoding of v, a new slice of 4*len(v)
// bytes, ready for Builder.AddTensor with type F32.
func F32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// F16Bytes returns the little-endian encoding of v (raw half-precision
// bits), a new slice of 2*len(v) bytes, ready for Builder.AddTensor with
// type F16.
func F16Bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

package hf

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// MaxHeaderSize is the largest safetensors header ParseSafetensors accepts
// (the reference implementation's limit). Headers of real checkpoints are a
// few hundred kilobytes.
const MaxHeaderSize = 100 << 20

// Limits on a tensor's shape, far above any real tensor, that keep the
// size computations from overflowing.
const (
	maxRank     = 8
	maxElements = 1 << 50
)

// Tensor is one tensor of a safetensors file.
type Tensor struct {
	Name  string
	DType string  // as spelled in the header: "F32", "F16", "BF16", …
	Shape []int64 // outermost first, as PyTorch has it
	// Data is a view of the tensor's bytes in the file (little-endian,
	// row-major); len(Data) is the element count times the dtype's size.
	Data []byte
}

// Elements returns the number of elements, the product of the shape.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// dtypeSize gives the bytes per element of every dtype safetensors defines
// with a whole number of bytes.
var dtypeSize = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// ParseSafetensors parses a safetensors file: an unsigned 64-bit
// little-endian header length, a JSON header mapping each tensor name to
// its dtype, shape and data_offsets [begin, end) (relative to the end of
// the header), with an optional "__metadata__" entry, then the data. The
// tensors are returned in header order, their Data viewing b.
//
// It checks everything a hostile file could get wrong: a header that is
// truncated, longer than MaxHeaderSize, not a JSON object or with a name
// twice; an unknown dtype; a shape with negative or absurd sizes; offsets
// past the end of the data, reversed, not matching the dtype and shape, or
// overlapping another tensor's. Nothing it allocates is sized by a number
// read from the file: only by the header's length, itself bounded.
func ParseSafetensors(b []byte) ([]Tensor, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: truncated header: the file has %d bytes, fewer than the 8 of the header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d is absurd (the limit is %d bytes); is this a safetensors file?", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: truncated header: it is %d bytes long but only %d bytes follow the length", n, len(b)-8)
	}
	header, data := b[8:8+n], b[8+n:]

	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("safetensors: header is not a JSON object")
	}
	var tensors []Tensor
	var spans []span
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors: header: %w", err)
		}
		name, _ := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, fmt.Errorf("safetensors: header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var meta map[string]any
			if err := dec.Decode(&meta); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ is not a JSON object: %w", err)
			}
			continue
		}
		var e struct {
			DType       *string  `json:"dtype"`
			Shape       *[]int64 `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		t, err := checkEntry(name, e.DType, e.Shape, e.DataOffsets, data)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, t)
		if len(t.Data) > 0 {
			spans = append(spans, span{e.DataOffsets[0], e.DataOffsets[1], name})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("safetensors: header has data after its JSON object")
	}
	if err := checkOverlap(spans); err != nil {
		return nil, err
	}
	return tensors, nil
}

// checkEntry validates one header entry and makes its Tensor.
func checkEntry(name string, dtype *string, shape *[]int64, offsets []uint64, data []byte) (Tensor, error) {
	switch {
	case dtype == nil:
		return Tensor{}, fmt.Errorf("safetensors: tensor %q has no dtype", name)
	case shape == nil:
		return Tensor{}, fmt.Errorf("safetensors: tensor %q has no shape", name)
	case len(offsets) != 2:
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: data_offsets must be [begin, end], not %d numbers", name, len(offsets))
	}
	size, ok := dtypeSize[*dtype]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q has unknown dtype %q", name, *dtype)
	}
	if len(*shape) > maxRank {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q has %d dimensions, more than %d", name, len(*shape), maxRank)
	}
	elems := int64(1)
	for _, d := range *shape {
		if d < 0 {
			return Tensor{}, fmt.Errorf("safetensors: tensor %q has negative size in shape %v", name, *shape)
		}
		if d != 0 && elems > maxElements/d {
			return Tensor{}, fmt.Errorf("safetensors: tensor %q: shape %v is absurdly large", name, *shape)
		}
		elems *= d
	}
	begin, end := offsets[0], offsets[1]
	if begin > end {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] end before they begin", name, begin, end)
	}
	if end > uint64(len(data)) {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] run past the end of the %d data bytes (truncated file?)", name, begin, end, len(data))
	}
	if want := uint64(elems * size); end-begin != want {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] hold %d bytes, but %s of shape %v takes %d", name, begin, end, end-begin, *dtype, *shape, want)
	}
	return Tensor{Name: name, DType: *dtype, Shape: *shape, Data: data[begin:end:end]}, nil
}

// span is where a tensor's bytes lie in the data.
type span struct {
	begin, end uint64
	name       string
}

// checkOverlap reports two spans that overlap.
func checkOverlap(spans []span) error {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.begin, b.begin) })
	for i := 1; i < len(spans); i++ {
		if p, s := spans[i-1], spans[i]; s.begin < p.end {
			return fmt.Errorf("safetensors: tensors %q [%d, %d] and %q [%d, %d] overlap", p.name, p.begin, p.end, s.name, s.begin, s.end)
		}
	}
	return nil
}

// toFloat32 decodes a tensor of dtype F32, F16 or BF16 into dst, which
// has room for every element. Every F16 and BF16 value is exact in float32.
func toFloat32(dst []float32, t *Tensor) error {
	le := binary.LittleEndian
	switch t.DType {
	case "F32":
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(t.Data[4*i:]))
		}
	case "F16":
		for i := range dst {
			dst[i] = halfToFloat32(le.Uint16(t.Data[2*i:]))
		}
	case "BF16":
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(t.Data[2*i:])) << 16)
		}
	default:
		return fmt.Errorf("dtype %s is not supported; wisp converts F32, F16 and BF16 weights", t.DType)
	}
	return nil
}

// halfToFloat32 widens an IEEE half, subnormals, infinities and NaNs
// included, exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2⁻²⁴, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

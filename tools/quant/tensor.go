package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"wisp/engine/gguf"
	"wisp/internal/fp16"
	"wisp/simd"
)

// BF16 rounds f to bfloat16 as ggml's fp32_to_bf16 does: to nearest, ties
// to even; a NaN stays a NaN, made quiet; subnormals are kept.
func BF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u >> 16 & 1)) >> 16)
}

// Stats say what storing values as a type cost.
type Stats struct {
	Tensors   int
	Values    int64
	Bytes     int64
	SqErr     float64    // Σ (x - stored x)² over finite values
	SqRef     float64    // Σ x² over finite values
	MaxAbsErr float64    // the largest |x - stored x|
	FP16      fp16.Stats // for F16: overflows and flushes
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Tensors += o.Tensors
	s.Values += o.Values
	s.Bytes += o.Bytes
	s.SqErr += o.SqErr
	s.SqRef += o.SqRef
	s.MaxAbsErr = max(s.MaxAbsErr, o.MaxAbsErr)
	s.FP16.Add(o.FP16)
}

// RMSE returns the root mean square error.
func (s Stats) RMSE() float64 {
	if s.Values == 0 {
		return 0
	}
	return math.Sqrt(s.SqErr / float64(s.Values))
}

// RelRMSE returns the RMSE relative to the RMS of the values.
func (s Stats) RelRMSE() float64 {
	if s.SqRef == 0 {
		return 0
	}
	return math.Sqrt(s.SqErr / s.SqRef)
}

// Storable reports whether Encode writes type t.
func Storable(t gguf.TensorType) bool {
	_, q := qtypes[t]
	return q || t == gguf.F32 || t == gguf.F16 || t == gguf.BF16
}

// Encode stores v, rows of cols values, as type t (F32, F16, BF16 or a
// quantized type, whose block length must divide cols), and measures the
// round trip: the stats compare v with what Decode gives back. F16 rounds
// to nearest even and flushes subnormal halves to zero (wisp/internal/fp16).
// Large tensors are quantized on every CPU; the bytes do not depend on
// how many.
func Encode(t gguf.TensorType, cols int, v []float32) ([]byte, Stats, error) {
	st := Stats{Tensors: 1, Values: int64(len(v))}
	if cols <= 0 || len(v)%cols != 0 {
		return nil, st, fmt.Errorf("quant: %d values are not rows of %d", len(v), cols)
	}
	var out []byte
	switch t {
	case gguf.F32:
		out = gguf.F32Bytes(v)
	case gguf.F16:
		h, s := fp16.FromFloat32(v)
		st.FP16 = s
		out = gguf.F16Bytes(h)
	case gguf.BF16:
		out = make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], BF16(x))
		}
	default:
		q, ok := qtypes[t]
		if !ok {
			return nil, st, fmt.Errorf("quant: cannot write type %v; wisp writes %s", t, storableNames())
		}
		if cols%q.BlockLen() != 0 {
			return nil, st, fmt.Errorf("quant: rows of %d values are not whole %v blocks of %d", cols, q, q.BlockLen())
		}
		out = make([]byte, q.RowBytes(len(v)))
		bl, bb := q.BlockLen(), q.BlockBytes()
		err := parallel(len(v)/bl, func(lo, hi int) error {
			return quantizeFrom(q, out[lo*bb:hi*bb], v[lo*bl:hi*bl], lo*bl)
		})
		if err != nil {
			return nil, st, err
		}
	}
	st.Bytes = int64(len(out))
	back, err := Decode(t, out, len(v))
	if err != nil {
		return nil, st, err
	}
	measure(&st, v, back)
	return out, st, nil
}

// measure adds the errors of back against v to st.
func measure(st *Stats, v, back []float32) {
	const chunk = 1 << 16
	n := (len(v) + chunk - 1) / chunk
	parts := make([]Stats, n)
	parallel(n, func(lo, hi int) error {
		for c := lo; c < hi; c++ {
			p := &parts[c]
			for i := c * chunk; i < min(len(v), (c+1)*chunk); i++ {
				x, y := float64(v[i]), float64(back[i])
				if math.IsNaN(x) || math.IsInf(x, 0) {
					continue
				}
				e := math.Abs(x - y)
				if math.IsNaN(e) {
					e = math.Inf(1)
				}
				p.SqErr += e * e
				p.SqRef += x * x
				p.MaxAbsErr = max(p.MaxAbsErr, e)
			}
		}
		return nil
	})
	for _, p := range parts {
		st.SqErr += p.SqErr
		st.SqRef += p.SqRef
		st.MaxAbsErr = max(st.MaxAbsErr, p.MaxAbsErr)
	}
}

// Decode returns the n values that data of type t holds (F32, F16, BF16 or
// a quantized type, dequantized by simd.Dequantize), widened as the engine
// widens them.
func Decode(t gguf.TensorType, data []byte, n int) ([]float32, error) {
	size, ok := byteSize(t, n)
	if !ok {
		return nil, fmt.Errorf("quant: cannot read type %v; wisp reads %s", t, storableNames())
	}
	if size < 0 || len(data) != size {
		return nil, fmt.Errorf("quant: %d bytes of %v do not hold %d values", len(data), t, n)
	}
	v := make([]float32, n)
	switch t {
	case gguf.F32:
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case gguf.F16:
		for i := range v {
			v[i] = simd.F16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case gguf.BF16:
		for i := range v {
			v[i] = simd.BF16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	default:
		q := qtypes[t]
		bl, bb := q.BlockLen(), q.BlockBytes()
		parallel(n/bl, func(lo, hi int) error {
			simd.Dequantize(q, v[lo*bl:hi*bl], data[lo*bb:hi*bb])
			return nil
		})
	}
	return v, nil
}

// byteSize returns the bytes n values of type t take, -1 if n is not a
// whole number of blocks, and false for a type this package does not read.
func byteSize(t gguf.TensorType, n int) (int, bool) {
	switch t {
	case gguf.F32:
		return 4 * n, true
	case gguf.F16, gguf.BF16:
		return 2 * n, true
	}
	q, ok := qtypes[t]
	if !ok {
		return 0, false
	}
	if n%q.BlockLen() != 0 {
		return -1, true
	}
	return q.RowBytes(n), true
}

// StorableTypes lists the types Encode writes and Decode reads.
var StorableTypes = []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_1,
	gguf.Q5_0, gguf.Q5_1, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K}

func storableNames() string {
	s := ""
	for i, t := range StorableTypes {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// parallel runs f over [0, n) split into one contiguous range per CPU
// (small n runs on the calling goroutine) and returns the first error in
// range order.
func parallel(n int, f func(lo, hi int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n/64)
	if workers <= 1 {
		if n == 0 {
			return nil
		}
		return f(0, n)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = f(lo, hi)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

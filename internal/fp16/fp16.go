// Package fp16 converts float32 weights to IEEE half precision the way
// every wisp tool writes them: round to nearest even, subnormal halves
// flushed to zero (see simd.FlushF16), and a report of what was lost.
package fp16

import (
	"fmt"
	"math"

	"github.com/x448/float16"
)

// Stats says what a conversion lost.
type Stats struct {
	Values     int64   // values converted
	Overflowed int64   // finite values too large for a half, stored as ±Inf
	Flushed    int64   // nonzero values whose half would be subnormal, stored as ±0
	MaxAbsErr  float64 // the largest |x - half(x)| over finite results
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Values += o.Values
	s.Overflowed += o.Overflowed
	s.Flushed += o.Flushed
	s.MaxAbsErr = max(s.MaxAbsErr, o.MaxAbsErr)
}

// String summarises the stats in one line.
func (s Stats) String() string {
	return fmt.Sprintf("%d values, %d overflowed, %d flushed to zero, max abs error %.3g", s.Values, s.Overflowed, s.Flushed, s.MaxAbsErr)
}

// Convert writes the halves of src into dst (len(dst) >= len(src)) and
// returns what was lost.
func Convert(dst []uint16, src []float32) Stats {
	st := Stats{Values: int64(len(src))}
	for i, x := range src {
		h := float16.Fromfloat32(x)
		b := uint16(h)
		switch {
		case b&0x7c00 == 0x7c00 && !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)):
			st.Overflowed++
		case b&0x7c00 == 0 && b&0x03ff != 0:
			b &= 0x8000
			st.Flushed++
		}
		dst[i] = b
		if b&0x7c00 != 0x7c00 {
			st.MaxAbsErr = max(st.MaxAbsErr, math.Abs(float64(x)-float64(float16.Frombits(b).Float32())))
		}
	}
	return st
}

// FromFloat32 returns the halves of src (see Convert).
func FromFloat32(src []float32) ([]uint16, Stats) {
	dst := make([]uint16, len(src))
	return dst, Convert(dst, src)
}

package fp16_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"

	"wisp/internal/fp16"
)

func TestConvertValues(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name     string
		x        float32
		want     uint16 // 0xffff: any NaN
		overflow bool
		flushed  bool
		err      float64 // |x - half(x)|, when finite
	}{
		{"one", 1, 0x3c00, false, false, 0},
		{"minus two and a half", -2.5, 0xc100, false, false, 0},
		{"max half", 65504, 0x7bff, false, false, 0},
		{"just below the overflow tie", 65519, 0x7bff, false, false, 15},
		{"overflow tie rounds to even (Inf)", 65520, 0x7c00, true, false, 0},
		{"negative overflow", -1e6, 0xfc00, true, false, 0},
		{"tie to even, down", 1 + 1.0/2048, 0x3c00, false, false, 1.0 / 2048},
		{"tie to even, up", 1 + 3.0/2048, 0x3c02, false, false, 1.0 / 2048},
		{"a tenth", 0.1, 0x2e66, false, false, 2.4415552616119385e-05},
		{"subnormal half flushed", 1e-5, 0x0000, false, true, float64(float32(1e-5))},
		{"negative subnormal flushed", -1e-5, 0x8000, false, true, float64(float32(1e-5))},
		{"smallest subnormal flushed", 0x1p-24, 0x0000, false, true, 0x1p-24},
		{"smallest normal kept", 0x1p-14, 0x0400, false, false, 0},
		{"rounds up to smallest normal", 6.1034e-5, 0x0400, false, false, float64(float32(0x1p-14) - float32(6.1034e-5))},
		{"normal kept", 6.2e-5, 0x0410, false, false, float64(float32(6.2e-5)) - 0x1.04p-14},
		{"underflow to zero is not a flush", 1e-10, 0x0000, false, false, float64(float32(1e-10))},
		{"zero", 0, 0x0000, false, false, 0},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000, false, false, 0},
		{"infinity is not an overflow", inf, 0x7c00, false, false, 0},
		{"minus infinity", -inf, 0xfc00, false, false, 0},
		{"NaN stays NaN, not an overflow", nan, 0xffff, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st := fp16.FromFloat32([]float32{tt.x})
			got := h[0]
			if tt.want == 0xffff {
				if got&0x7c00 != 0x7c00 || got&0x03ff == 0 {
					t.Errorf("half(%g) = %#04x; want a NaN", tt.x, got)
				}
			} else if got != tt.want {
				t.Errorf("half(%g) = %#04x; want %#04x", tt.x, got, tt.want)
			}
			want := fp16.Stats{Values: 1, MaxAbsErr: tt.err}
			if tt.overflow {
				want.Overflowed = 1
			}
			if tt.flushed {
				want.Flushed = 1
			}
			if st != want {
				t.Errorf("stats = %+v; want %+v", st, want)
			}
		})
	}
}

// reference rounds x to the nearest even half the long way, in float64,
// flushing subnormal results to zero. It reports whether the result
// overflowed or was flushed.
func reference(x float32) (r float64, overflow, flushed bool) {
	v := float64(x)
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return v, false, false
	}
	a := math.Abs(v)
	exp := math.Floor(math.Log2(a))
	if math.Pow(2, exp) > a { // Log2 rounding
		exp--
	}
	exp = max(exp, -14) // subnormals share 2^-14's quantum
	quantum := math.Pow(2, exp-10)
	q := math.RoundToEven(a / quantum)
	r = math.Copysign(q*quantum, v)
	switch {
	case math.Abs(r) > 65504:
		return math.Copysign(math.Inf(1), v), true, false
	case math.Abs(r) < 0x1p-14 && r != 0:
		return math.Copysign(0, v), false, true
	}
	return r, false, false
}

func TestConvertAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]float32, 0, 300000)
	for range 100000 {
		src = append(src, math.Float32frombits(rng.Uint32())) // every exponent
	}
	for range 100000 {
		// Magnitudes around the half range, from 2^-30 to 2^20.
		src = append(src, float32(math.Ldexp(rng.Float64()+0.5, rng.IntN(50)-30)*float64(1-2*rng.IntN(2))))
	}
	for i := range 100000 {
		// Exact ties and their neighbours near 1 and near 2^-14.
		base := float32(1)
		if i%2 == 1 {
			base = 0x1p-14
		}
		x := base + base*float32(i%4096)/8192
		switch i % 3 {
		case 1:
			x = math.Nextafter32(x, 0)
		case 2:
			x = math.Nextafter32(x, 10)
		}
		src = append(src, x)
	}
	dst := make([]uint16, len(src))
	st := fp16.Convert(dst, src)
	var want fp16.Stats
	want.Values = int64(len(src))
	for i, x := range src {
		r, overflow, flushed := reference(x)
		got := float64(float16.Frombits(dst[i]).Float32())
		if math.IsNaN(r) {
			if !math.IsNaN(got) {
				t.Fatalf("half(%g) = %#04x; want a NaN", x, dst[i])
			}
			continue
		}
		if got != r || math.Signbit(got) != math.Signbit(r) {
			t.Fatalf("half(%g = %#08x) = %#04x (%g); want %g", x, math.Float32bits(x), dst[i], got, r)
		}
		if overflow {
			want.Overflowed++
		}
		if flushed {
			want.Flushed++
		}
		if !math.IsInf(r, 0) {
			want.MaxAbsErr = max(want.MaxAbsErr, math.Abs(float64(x)-r))
		}
	}
	if st != want {
		t.Errorf("stats = %+v; want %+v", st, want)
	}
	if want.Overflowed == 0 || want.Flushed == 0 {
		t.Errorf("the inputs exercise no overflow or no flush: %+v", want)
	}
}

func TestMaxAbsErr(t *testing.T) {
	tests := []struct {
		src  []float32
		want float64
	}{
		{nil, 0},
		{[]float32{1, 2, 0.5}, 0},
		{[]float32{1 + 1.0/2048, 0.1, 2048 + 1}, 1},                         // 2049 ties to 2048
		{[]float32{3000.5, 1e6, float32(math.NaN())}, 0.5},                  // the overflow does not count
		{[]float32{1e-5, 2e-5}, float64(float32(2e-5))},                     // flushed values lose everything
		{[]float32{-65519, float32(math.Inf(-1)), 4097}, 15},                // 4097 ties to 4096; -65519 to -65504
		{[]float32{float32(math.Copysign(0, -1)), 0x1p-14, 0x1p-14 * 3}, 0}, // exact
	}
	for _, tt := range tests {
		_, st := fp16.FromFloat32(tt.src)
		if st.MaxAbsErr != tt.want {
			t.Errorf("MaxAbsErr(%v) = %g; want %g", tt.src, st.MaxAbsErr, tt.want)
		}
	}
}

func TestStatsAdd(t *testing.T) {
	tests := []struct {
		a, b, want fp16.Stats
	}{
		{fp16.Stats{}, fp16.Stats{}, fp16.Stats{}},
		{
			fp16.Stats{Values: 10, Overflowed: 1, Flushed: 2, MaxAbsErr: 0.5},
			fp16.Stats{Values: 5, Overflowed: 3, Flushed: 0, MaxAbsErr: 0.25},
			fp16.Stats{Values: 15, Overflowed: 4, Flushed: 2, MaxAbsErr: 0.5},
		},
		{
			fp16.Stats{Values: 1, MaxAbsErr: 0.001},
			fp16.Stats{Values: 2, Flushed: 2, MaxAbsErr: 3},
			fp16.Stats{Values: 3, Flushed: 2, MaxAbsErr: 3},
		},
	}
	for _, tt := range tests {
		got := tt.a
		got.Add(tt.b)
		if got != tt.want {
			t.Errorf("%+v.Add(%+v) = %+v; want %+v", tt.a, tt.b, got, tt.want)
		}
	}
	// Adding the stats of two halves gives the stats of the whole.
	src := []float32{1e-6, 70000, 0.3, -2e-7, 1.0001, 12345.678}
	_, whole := fp16.FromFloat32(src)
	_, sum := fp16.FromFloat32(src[:3])
	_, second := fp16.FromFloat32(src[3:])
	sum.Add(second)
	if sum != whole {
		t.Errorf("stats of the halves add to %+v; the whole gives %+v", sum, whole)
	}
}

func TestConvertMatchesFromFloat32(t *testing.T) {
	src := []float32{0.5, -1e-6, 1e5, 3.3}
	dst := []uint16{9, 9, 9, 9, 9, 9}
	st := fp16.Convert(dst, src)
	h, st2 := fp16.FromFloat32(src)
	if st != st2 {
		t.Errorf("Convert stats %+v, FromFloat32 stats %+v", st, st2)
	}
	for i := range h {
		if dst[i] != h[i] {
			t.Errorf("element %d: Convert %#04x, FromFloat32 %#04x", i, dst[i], h[i])
		}
	}
	if dst[4] != 9 || dst[5] != 9 {
		t.Errorf("Convert wrote past len(src): %v", dst)
	}
}

func TestStatsString(t *testing.T) {
	s := fp16.Stats{Values: 1000, Overflowed: 2, Flushed: 7, MaxAbsErr: 0.0009765625}
	want := "1000 values, 2 overflowed, 7 flushed to zero, max abs error 0.000977"
	if got := s.String(); got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
}

func Example() {
	halves, st := fp16.FromFloat32([]float32{1, 0.1, 65520, 1e-5, -2.5})
	for _, h := range halves {
		fmt.Printf("%#04x\n", h)
	}
	fmt.Println(st)
	// Output:
	// 0x3c00
	// 0x2e66
	// 0x7c00
	// 0x0000
	// 0xc100
	// 5 values, 1 overflowed, 1 flushed to zero, max abs error 2.44e-05
}

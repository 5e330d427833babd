package main

import (
	"math"
	"slices"
)

// summary is what the report shows of repeated measurements: their
// median with the minimum and maximum beside it, and the samples.
type summary struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	N       int       `json:"n"`
	Samples []float64 `json:"samples,omitempty"`
}

// summarize returns the summary of the finite samples in xs (NaNs and
// infinities, which a failed or empty measurement may produce, are left
// out). The median of an even count is the mean of the two middle
// samples. No finite sample gives the zero summary.
func summarize(xs []float64) summary {
	var s []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return summary{}
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	n := len(sorted)
	med := sorted[n/2]
	if n%2 == 0 {
		med = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return summary{Median: med, Min: sorted[0], Max: sorted[n-1], N: n, Samples: s}
}

// ok reports whether the summary holds at least one sample.
func (s summary) ok() bool { return s.N > 0 }

// ratio returns a/b, or 0 (meaning "no ratio") when either is missing:
// not positive, or not finite.
func ratio(a, b float64) float64 {
	if !(a > 0) || !(b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return 0
	}
	return a / b
}

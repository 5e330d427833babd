// Package sample picks the next token from a model's logits: greedily, or at
// random after repetition penalty, temperature, top-k, top-p and min-p.
//
// With only a temperature and top-p it reproduces llama2.c's sampler step
// for step, including its random number generator, so a seed gives the same
// text as llama2.c's run for the same logits.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"wisp/engine/option"
	"wisp/simd"
)

// A Sampler chooses tokens. It keeps its random state between calls.
type Sampler struct {
	opt   option.Options
	rng   uint64
	probs []candidate
}

type candidate struct {
	id int
	p  float32
}

// New returns a Sampler for the sampling options of opt (Temperature,
// TopK, TopP, MinP, RepeatPenalty, RepeatLastN and Seed; the zero value
// samples greedily), or an error if they are invalid.
func New(opt option.Options) (*Sampler, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	if opt.RepeatLastN == 0 {
		opt.RepeatLastN = 64
	}
	s := &Sampler{opt: opt, rng: opt.Seed}
	if s.rng == 0 {
		s.rng = 1
	}
	return s, nil
}

// Options returns the sampler's options.
func (s *Sampler) Options() option.Options { return s.opt }

// random returns the next 32 random bits of llama2.c's xorshift64* generator.
func (s *Sampler) random() uint32 {
	s.rng ^= s.rng >> 12
	s.rng ^= s.rng << 25
	s.rng ^= s.rng >> 27
	return uint32((s.rng * 0x2545F4914F6CDD1D) >> 32)
}

// Float returns a random float32 in [0, 1), as llama2.c's random_f32.
func (s *Sampler) Float() float32 {
	return float32(s.random()>>8) / 16777216
}

// Sample picks a token from logits, which it may modify. recent holds the
// tokens seen so far, for the repetition penalty (it may be nil). It returns
// -1 for empty logits.
func (s *Sampler) Sample(logits []float32, recent []int) int {
	o := &s.opt
	if len(logits) == 0 {
		return -1
	}
	if o.RepeatPenalty != 0 && o.RepeatPenalty != 1 {
		from := max(0, len(recent)-o.RepeatLastN)
		seen := map[int]bool{}
		for _, id := range recent[from:] {
			if id < 0 || id >= len(logits) || seen[id] {
				continue
			}
			seen[id] = true
			if logits[id] > 0 {
				logits[id] /= o.RepeatPenalty
			} else {
				logits[id] *= o.RepeatPenalty
			}
		}
	}
	if o.Temperature == 0 {
		return Argmax(logits)
	}
	best := Argmax(logits)
	for i := range logits {
		logits[i] /= o.Temperature
	}
	if math.IsInf(float64(logits[best]), 0) {
		// An infinite logit, or a temperature so small that the largest
		// logit overflows, leaves no finite maximum to subtract: the
		// distribution is (the limit of) greedy.
		return best
	}
	softmax(logits)
	coin := s.Float()
	if o.TopK == 0 && o.MinP == 0 && (o.TopP <= 0 || o.TopP >= 1) {
		return sampleMult(logits, coin)
	}
	return s.sampleTruncated(logits, coin)
}

// Argmax returns the index of the largest value, the first one on ties.
// NaNs are skipped unless every value is NaN; for empty x it returns -1.
func Argmax(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	best := 0
	for i, v := range x {
		if v > x[best] || (x[best] != x[best] && v == v) {
			best = i
		}
	}
	return best
}

// softmax is llama2.c's softmax, in float32. It uses simd.Exp rather than
// math.Exp, whose amd64 assembly need not agree with the pure Go used on
// wasm: every build samples the same token from the same logits.
func softmax(x []float32) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range x {
		x[i] = simd.Exp(v - m)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// sampleMult samples from all probabilities by the cumulative sum.
func sampleMult(p []float32, coin float32) int {
	var cdf float32
	for i, v := range p {
		cdf += v
		if coin < cdf {
			return i
		}
	}
	return len(p) - 1
}

// sampleTruncated applies top-k, min-p and top-p, then samples among the
// survivors. Top-p follows llama2.c: candidates below (1-p)/(n-1) are dropped
// before sorting, since they cannot be part of the nucleus.
func (s *Sampler) sampleTruncated(p []float32, coin float32) int {
	o := &s.opt
	c := s.probs[:0]
	cutoff := float32(0)
	if o.TopP > 0 && o.TopP < 1 && len(p) > 1 {
		cutoff = (1 - o.TopP) / float32(len(p)-1)
	}
	for i, v := range p {
		if v >= cutoff {
			c = append(c, candidate{i, v})
		}
	}
	s.probs = c
	if len(c) == 0 {
		// Every probability is below the cutoff (or NaN). Without NaNs
		// that takes a top-p below 1/len(p), and then the nucleus is the
		// most likely token alone.
		return Argmax(p)
	}
	// Most likely first; ties keep id order, so the result is deterministic.
	slices.SortStableFunc(c, func(a, b candidate) int { return cmp.Compare(b.p, a.p) })
	if o.TopK > 0 && o.TopK < len(c) {
		c = c[:o.TopK]
	}
	if o.MinP > 0 {
		floor := o.MinP * c[0].p
		n := 1
		for n < len(c) && c[n].p >= floor {
			n++
		}
		c = c[:n]
	}
	var total float32
	last := len(c) - 1
	for i, x := range c {
		total += x.p
		if o.TopP > 0 && o.TopP < 1 && total > o.TopP {
			last = i
			break
		}
	}
	r := coin * total
	var cdf float32
	for _, x := range c[:last+1] {
		cdf += x.p
		if r < cdf {
			return x.id
		}
	}
	return c[last].id
}

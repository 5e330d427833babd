package sample_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"wisp/engine/option"
	"wisp/engine/sample"
)

// TestNewRejects checks that New refuses options out of range with
// option.Options.Validate's error (whose cases engine/option tests).
func TestNewRejects(t *testing.T) {
	if _, err := sample.New(option.Options{Temperature: 100, TopP: 1, MinP: 1, RepeatPenalty: 100}); err != nil {
		t.Errorf("New at the bounds: %v", err)
	}
	_, err := sample.New(option.Options{TopP: float32(math.NaN())})
	if want := "sample: option topP = NaN is out of range [0, 1]"; err == nil || err.Error() != want {
		t.Errorf("New = %v; want %q", err, want)
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := sample.New(option.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Options().RepeatLastN; got != 64 {
		t.Errorf("RepeatLastN = %d; want the documented default 64", got)
	}
	s, _ = sample.New(option.Options{RepeatLastN: 5})
	if got := s.Options().RepeatLastN; got != 5 {
		t.Errorf("RepeatLastN = %d; want 5", got)
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		x    []float32
		want int
	}{
		{nil, -1},
		{[]float32{3}, 0},
		{[]float32{1, 5, 2}, 1},
		{[]float32{-3, -1, -2}, 1},
		{[]float32{2, 7, 7, 1}, 1},
		{[]float32{0, 0, 0}, 0},
		{[]float32{1, 2, inf, 3, inf}, 2},
		{[]float32{nan, 1, 4, 2}, 2},
		{[]float32{1, nan, 4, nan}, 2},
		{[]float32{nan, nan}, 0},
	}
	for _, tt := range tests {
		if got := sample.Argmax(tt.x); got != tt.want {
			t.Errorf("Argmax(%v) = %d; want %d", tt.x, got, tt.want)
		}
	}
}

// distributions are logits with a unique maximum, and one with ties.
var distributions = []struct {
	name   string
	logits []float32
	argmax int
}{
	{"peaked", []float32{0.1, 3, 0.5, -1, 2.9}, 1},
	{"flat-ish", []float32{1, 1.01, 0.99, 1.005, 0.98, 1}, 1},
	{"negative", []float32{-5, -4, -7, -3.5, -10}, 3},
	{"ties", []float32{0.5, 2, -1, 2, 2}, 1},
	{"last", []float32{-1, 0, 1, 2, 3, 4, 5, 6}, 7},
}

// draw samples n tokens from fresh copies of logits.
func draw(t testing.TB, opt option.Options, logits []float32, recent []int, n int) []int {
	t.Helper()
	s, err := sample.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, n)
	buf := make([]float32, len(logits))
	for i := range ids {
		copy(buf, logits)
		ids[i] = s.Sample(buf, recent)
		if ids[i] < 0 || ids[i] >= len(logits) {
			t.Fatalf("draw %d: token %d is outside the %d logits", i, ids[i], len(logits))
		}
	}
	return ids
}

// TestArgmaxModes checks every option that must reduce sampling to argmax,
// whatever the seed.
func TestArgmaxModes(t *testing.T) {
	modes := []struct {
		name string
		opt  option.Options
		ties bool // whether the mode picks the first of tied maxima
	}{
		{"temperature 0", option.Options{}, true},
		{"temperature 0 with top-p", option.Options{TopP: 0.5, TopK: 3}, true},
		{"top-k 1", option.Options{Temperature: 1, TopK: 1}, true},
		{"top-k 1 hot", option.Options{Temperature: 50, TopK: 1}, true},
		{"top-k 1 with top-p", option.Options{Temperature: 1.5, TopK: 1, TopP: 0.99}, true},
		{"min-p 1", option.Options{Temperature: 1, MinP: 1}, false},
		{"min-p 1 hot", option.Options{Temperature: 20, MinP: 1}, false},
		{"tiny top-p", option.Options{Temperature: 1, TopP: 1e-6}, true},
		{"tiny top-p hot", option.Options{Temperature: 30, TopP: 1e-6}, true},
		// Tied maxima are equally likely at any temperature.
		{"tiny temperature", option.Options{Temperature: 1e-38}, false},
		{"tiny temperature with top-k", option.Options{Temperature: 1e-38, TopK: 3}, false},
	}
	for _, m := range modes {
		for _, d := range distributions {
			if d.name == "ties" && !m.ties {
				continue
			}
			t.Run(m.name+"/"+d.name, func(t *testing.T) {
				for seed := range uint64(50) {
					opt := m.opt
					opt.Seed = seed
					for i, id := range draw(t, opt, d.logits, nil, 20) {
						if id != d.argmax {
							t.Fatalf("seed %d draw %d: token %d; want the argmax %d", seed, i, id, d.argmax)
						}
					}
				}
			})
		}
	}
}

// TestUniformTinyTopP covers the nucleus of a flat distribution, where
// llama2.c's cutoff drops every candidate.
func TestUniformTinyTopP(t *testing.T) {
	for _, topP := range []float32{1e-6, 0.1, 0.19} {
		logits := []float32{2, 2, 2, 2, 2}
		for i, id := range draw(t, option.Options{Temperature: 1, TopP: topP, Seed: 9}, logits, nil, 50) {
			if id != 0 {
				t.Fatalf("top-p %g draw %d: token %d; want 0, the first of equals", topP, i, id)
			}
		}
	}
}

func TestTopKSupport(t *testing.T) {
	logits := []float32{0.3, 1.2, -0.4, 0.9, 1.1, 0.0, 0.8, -2, 1.0, 0.5}
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case logits[a] > logits[b]:
			return -1
		case logits[a] < logits[b]:
			return 1
		}
		return 0
	})
	for _, k := range []int{1, 2, 3, 5, 9} {
		for _, temp := range []float32{0.7, 1, 5} {
			t.Run(fmt.Sprintf("k%d/t%g", k, temp), func(t *testing.T) {
				allowed := map[int]bool{}
				for _, id := range order[:k] {
					allowed[id] = true
				}
				seen := map[int]int{}
				for i, id := range draw(t, option.Options{Temperature: temp, TopK: k, Seed: uint64(k)}, logits, nil, 3000) {
					if !allowed[id] {
						t.Fatalf("draw %d: token %d (logit %g) is not among the %d largest %v", i, id, logits[id], k, order[:k])
					}
					seen[id]++
				}
				if temp >= 1 && len(seen) != k {
					t.Errorf("drew %v; want every one of the %d largest", seen, k)
				}
			})
		}
	}
}

// softmax64 is a float64 softmax of logits/temp, restricted to keep (all
// when nil) and renormalised.
func softmax64(logits []float32, temp float64, keep []int) []float64 {
	p := make([]float64, len(logits))
	var sum float64
	for i, v := range logits {
		if keep != nil && !slices.Contains(keep, i) {
			continue
		}
		p[i] = math.Exp(float64(v) / temp)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TestFrequencies checks the empirical frequencies of many draws against
// the probabilities each option set should give.
func TestFrequencies(t *testing.T) {
	logits := []float32{1.0, 2.0, 0.5, -0.5, 1.5}
	// Softmax at temperature 1: 0.1674 0.4551 0.1015 0.0373 0.2760.
	tests := []struct {
		name string
		opt  option.Options
		want []float64
	}{
		{"temperature 1", option.Options{Temperature: 1}, softmax64(logits, 1, nil)},
		{"temperature 0.5", option.Options{Temperature: 0.5}, softmax64(logits, 0.5, nil)},
		{"temperature 3", option.Options{Temperature: 3}, softmax64(logits, 3, nil)},
		{"top-k 3", option.Options{Temperature: 1, TopK: 3}, softmax64(logits, 1, []int{1, 4, 0})},
		// The nucleus of 0.8: 0.4551 + 0.2760 = 0.7311, + 0.1674 passes 0.8.
		{"top-p 0.8", option.Options{Temperature: 1, TopP: 0.8}, softmax64(logits, 1, []int{1, 4, 0})},
		{"top-p 0.7", option.Options{Temperature: 1, TopP: 0.7}, softmax64(logits, 1, []int{1, 4})},
		// min-p 0.3 keeps p >= 0.1365: tokens 1, 4, 0.
		{"min-p 0.3", option.Options{Temperature: 1, MinP: 0.3}, softmax64(logits, 1, []int{1, 4, 0})},
		{"top-p 1 keeps all", option.Options{Temperature: 1, TopP: 1}, softmax64(logits, 1, nil)},
		{"penalised", option.Options{Temperature: 1, RepeatPenalty: 2}, softmax64([]float32{1.0, 1.0, 0.5, -0.5, 1.5}, 1, nil)},
	}
	const n = 20000
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Seed = uint64(1000 + i)
			var recent []int
			if tt.opt.RepeatPenalty != 0 {
				recent = []int{1}
			}
			count := make([]int, len(logits))
			for _, id := range draw(t, tt.opt, logits, recent, n) {
				count[id]++
			}
			for id, p := range tt.want {
				got := float64(count[id]) / n
				se := math.Sqrt(p * (1 - p) / n)
				if p == 0 {
					if count[id] != 0 {
						t.Errorf("token %d drawn %d times; want never", id, count[id])
					}
					continue
				}
				if math.Abs(got-p) > 4.5*se {
					t.Errorf("token %d: frequency %.4f; want %.4f ± %.4f (4.5 standard errors)", id, got, p, 4.5*se)
				}
			}
		})
	}
}

func TestRepetitionPenaltyLogits(t *testing.T) {
	tests := []struct {
		name    string
		penalty float32
		lastN   int
		recent  []int
		want    []float32 // logits after the penalty
	}{
		{"divides positive, multiplies negative", 2, 0, []int{0, 1}, []float32{1, -4, 0, 3}},
		{"repeats penalised once", 2, 0, []int{0, 0, 0, 1, 1}, []float32{1, -4, 0, 3}},
		{"only the last n", 2, 2, []int{0, 1, 3, 2}, []float32{2, -2, 0, 1.5}},
		{"last n longer than history", 2, 10, []int{3}, []float32{2, -2, 0, 1.5}},
		{"zero logit unchanged", 4, 0, []int{2}, []float32{2, -2, 0, 3}},
		{"penalty 1 is none", 1, 0, []int{0, 1, 2, 3}, []float32{2, -2, 0, 3}},
		{"penalty 0 is none", 0, 0, []int{0, 1, 2, 3}, []float32{2, -2, 0, 3}},
		{"out-of-range ids ignored", 2, 0, []int{-1, 4, 99, 3}, []float32{2, -2, 0, 1.5}},
		{"nil history", 2, 0, nil, []float32{2, -2, 0, 3}},
		{"below 1 rewards", 0.5, 0, []int{0, 1}, []float32{4, -1, 0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sample.New(option.Options{RepeatPenalty: tt.penalty, RepeatLastN: tt.lastN})
			if err != nil {
				t.Fatal(err)
			}
			logits := []float32{2, -2, 0, 3}
			s.Sample(logits, tt.recent)
			if !slices.Equal(logits, tt.want) {
				t.Errorf("logits = %v; want %v", logits, tt.want)
			}
		})
	}
}

func TestRepetitionPenaltyDefaultWindow(t *testing.T) {
	// Token 0 was seen 65 tokens ago, outside the default window of 64;
	// token 2 fills the window.
	recent := []int{0}
	for range 64 {
		recent = append(recent, 2)
	}
	s, _ := sample.New(option.Options{RepeatPenalty: 10})
	logits := []float32{5, 4, 1}
	if got := s.Sample(logits, recent); got != 0 || logits[0] != 5 || logits[2] != 0.1 {
		t.Errorf("greedy pick = %d (logits %v); want 0, with logits 5, 4, 0.1", got, logits)
	}
	recent = recent[1:]
	recent[0] = 0 // now 64 tokens ago: inside
	logits = []float32{5, 4, 1}
	if got := s.Sample(logits, recent); got != 1 || logits[0] != 0.5 {
		t.Errorf("greedy pick = %d (logits %v); want 1, with logit 0 at 0.5", got, logits)
	}
}

func TestRepetitionPenaltyLowersChance(t *testing.T) {
	logits := []float32{1, 1.2, 0.8}
	const n = 5000
	freq := func(penalty float32) int {
		c := 0
		for _, id := range draw(t, option.Options{Temperature: 1, RepeatPenalty: penalty, Seed: 5}, logits, []int{2, 1, 2}, n) {
			if id == 1 {
				c++
			}
		}
		return c
	}
	plain, penalised := freq(1), freq(1.5)
	if penalised >= plain-n/20 {
		t.Errorf("token 1 drawn %d times with penalty 1.5, %d without; want clearly fewer", penalised, plain)
	}
}

func TestSeeds(t *testing.T) {
	logits := []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}
	seq := func(opt option.Options) []int { return draw(t, opt, logits, nil, 64) }
	for _, base := range []option.Options{
		{Temperature: 1},
		{Temperature: 1, TopP: 0.9},
		{Temperature: 0.9, TopK: 5, MinP: 0.05, RepeatPenalty: 1.3},
	} {
		withSeed := func(s uint64) option.Options { o := base; o.Seed = s; return o }
		if a, b := seq(withSeed(42)), seq(withSeed(42)); !slices.Equal(a, b) {
			t.Errorf("%+v: seed 42 gave %v then %v", base, a, b)
		}
		if a, b := seq(withSeed(42)), seq(withSeed(43)); slices.Equal(a, b) {
			t.Errorf("%+v: seeds 42 and 43 both gave %v", base, a)
		}
		if a, b := seq(withSeed(0)), seq(withSeed(1)); !slices.Equal(a, b) {
			t.Errorf("%+v: seed 0 gave %v, seed 1 %v; want the same", base, a, b)
		}
	}
}

func TestFloat(t *testing.T) {
	s, _ := sample.New(option.Options{Seed: 123})
	var sum float64
	const n = 10000
	for range n {
		f := s.Float()
		if !(f >= 0 && f < 1) {
			t.Fatalf("Float() = %g; want [0, 1)", f)
		}
		sum += float64(f)
	}
	if mean := sum / n; math.Abs(mean-0.5) > 0.02 {
		t.Errorf("mean of %d floats = %g; want about 0.5", n, mean)
	}
}

func TestDegenerateLogits(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name   string
		opt    option.Options
		logits []float32
		want   int // -2: any valid index
	}{
		{"empty greedy", option.Options{}, nil, -1},
		{"empty random", option.Options{Temperature: 1}, []float32{}, -1},
		{"empty truncated", option.Options{Temperature: 1, TopK: 2, TopP: 0.5}, []float32{}, -1},
		{"single", option.Options{Temperature: 1, TopP: 0.5}, []float32{-3}, 0},
		{"infinite logit", option.Options{Temperature: 1}, []float32{0, inf, 1}, 1},
		{"infinite logit truncated", option.Options{Temperature: 1, TopK: 2}, []float32{0, 1, inf}, 2},
		{"NaN first", option.Options{Temperature: 1}, []float32{nan, 1, 2}, -2},
		{"all NaN truncated", option.Options{Temperature: 1, TopP: 0.9}, []float32{nan, nan}, -2},
		{"all -Inf", option.Options{Temperature: 1, MinP: 0.1}, []float32{-inf, -inf}, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sample.New(tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Sample(slices.Clone(tt.logits), nil)
			switch {
			case tt.want == -2 && (got < 0 || got >= len(tt.logits)):
				t.Errorf("Sample = %d; want an index into %d logits", got, len(tt.logits))
			case tt.want != -2 && got != tt.want:
				t.Errorf("Sample = %d; want %d", got, tt.want)
			}
		})
	}
}

func Example() {
	logits := []float32{0.5, 2.5, 1.0, -1.0}

	greedy, _ := sample.New(option.Options{})
	fmt.Println("greedy:", greedy.Sample(slices.Clone(logits), nil))

	// Top-k 2 draws only tokens 1 and 2, the two most likely.
	s, err := sample.New(option.Options{Temperature: 0.8, TopK: 2, Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	seen := map[int]bool{}
	for range 100 {
		seen[s.Sample(slices.Clone(logits), nil)] = true
	}
	fmt.Println("top-k 2 drew 1:", seen[1], "2:", seen[2], "others:", len(seen)-2)

	_, err = sample.New(option.Options{Temperature: -1})
	fmt.Println(err)
	// Output:
	// greedy: 1
	// top-k 2 drew 1: true 2: true others: 0
	// sample: option temperature = -1 is out of range [0, 100]
}

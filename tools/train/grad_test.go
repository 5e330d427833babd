package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The backward pass is checked against central differences in float64: the
// network is generic over its float type, so these tests run the very code
// that trains (only the matrix kernel differs, and TestFloat32MatchesFloat64
// checks that one). With h = 1e-6 the differences are accurate to about
// 1e-8 relative (their error shrinks as h², as it should, down to there);
// the tolerance is |analytic − numeric| ≤ 1e-6·(1 + |numeric|).
const (
	fdStep = 1e-6
	fdTol  = 1e-6
)

func randSlice(rng *rand.Rand, n int, mean, std float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = mean + std*rng.NormFloat64()
	}
	return v
}

// checkGrad compares the analytic gradient ga of f with respect to x with
// central differences, perturbing x in place. It returns the largest error.
func checkGrad(t *testing.T, name string, x, ga []float64, f func() float64) float64 {
	t.Helper()
	worst := 0.0
	for i := range x {
		old := x[i]
		x[i] = old + fdStep
		lp := f()
		x[i] = old - fdStep
		lm := f()
		x[i] = old
		num := (lp - lm) / (2 * fdStep)
		err := math.Abs(ga[i]-num) / (1 + math.Abs(num))
		worst = max(worst, err)
		if err > fdTol {
			t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", name, i, ga[i], num)
			return worst
		}
	}
	return worst
}

// dotWith returns Σ y·r, the loss the op tests differentiate.
func dotWith(y, r []float64) float64 {
	var s float64
	for i := range y {
		s += y[i] * r[i]
	}
	return s
}

// tinyNet is a float64 network for op tests, with gradient buffers.
func tinyNet(c Config, B, T int) (n *net[float64], params, grad []float64) {
	c = c.withDefaults()
	params = make([]float64, c.Params())
	grad = make([]float64, len(params))
	return newNet(c, B, T, 2, params, grad), params, grad
}

var opConfig = Config{Dim: 8, HiddenDim: 12, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 10, ContextLen: 16}

// TestOpGradients checks the backward pass of each kind of layer on its
// own: y = op(inputs), loss Σ y·r for a random r.
func TestOpGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const B, T = 2, 5
	c := opConfig.withDefaults()
	N, d, qd, kvd, h := B*T, c.Dim, c.QDim(), c.KVDim(), c.HiddenDim
	tests := []struct {
		name string
		run  func(t *testing.T, n *net[float64]) float64
	}{
		{"rmsnorm", func(t *testing.T, n *net[float64]) float64 {
			x, w, r := randSlice(rng, N*d, 0, 1), randSlice(rng, d, 1, 0.3), randSlice(rng, N*d, 0, 1)
			y, inv := make([]float64, N*d), make([]float64, N)
			f := func() float64 { n.rmsnorm(y, inv, x, w); return dotWith(y, r) }
			f()
			dx, dw := make([]float64, N*d), make([]float64, d)
			n.rmsnormBack(dx, r, x, inv, w, dw, false)
			return max(checkGrad(t, "dx", x, dx, f), checkGrad(t, "dw", w, dw, f))
		}},
		{"linear (q/k/v/o/gate/up/down projections)", func(t *testing.T, n *net[float64]) float64 {
			rows, cols := h, d
			x, w, r := randSlice(rng, N*cols, 0, 1), randSlice(rng, rows*cols, 0, 1), randSlice(rng, N*rows, 0, 1)
			y := make([]float64, N*rows)
			f := func() float64 { n.linear(y, x, w, rows, cols); return dotWith(y, r) }
			f()
			dx, dw, xT := make([]float64, N*cols), make([]float64, rows*cols), make([]float64, N*cols)
			transpose(xT, x, N, cols)
			n.linearBack(dx, r, w, dw, xT, rows, cols, false)
			return max(checkGrad(t, "dx", x, dx, f), checkGrad(t, "dW", w, dw, f))
		}},
		{"rope", func(t *testing.T, n *net[float64]) float64 {
			x, r := randSlice(rng, N*qd, 0, 1), randSlice(rng, N*qd, 0, 1)
			y := make([]float64, N*qd)
			f := func() float64 { copy(y, x); n.rope(y, c.Heads, false); return dotWith(y, r) }
			dx := append([]float64(nil), r...)
			n.rope(dx, c.Heads, true)
			return checkGrad(t, "dx", x, dx, f)
		}},
		{"attention softmax, grouped-query", func(t *testing.T, n *net[float64]) float64 {
			q, k, v := n.q[0], n.k[0], n.v[0]
			copy(q, randSlice(rng, N*qd, 0, 1))
			copy(k, randSlice(rng, N*kvd, 0, 1))
			copy(v, randSlice(rng, N*kvd, 0, 1))
			r := randSlice(rng, N*qd, 0, 1)
			f := func() float64 { n.attention(0); return dotWith(n.ao[0], r) }
			f()
			copy(n.dao, r)
			n.attentionBack(0)
			dq, dk, dv := append([]float64(nil), n.dq...), append([]float64(nil), n.dk...), append([]float64(nil), n.dv...)
			return max(checkGrad(t, "dq", q, dq, f), checkGrad(t, "dk", k, dk, f), checkGrad(t, "dv", v, dv, f))
		}},
		{"swiglu", func(t *testing.T, n *net[float64]) float64 {
			g, u, r := randSlice(rng, N*h, 0, 2), randSlice(rng, N*h, 0, 1), randSlice(rng, N*h, 0, 1)
			y := make([]float64, N*h)
			f := func() float64 { n.swiglu(y, g, u); return dotWith(y, r) }
			dg, du := make([]float64, N*h), make([]float64, N*h)
			n.swigluBack(dg, du, r, g, u)
			return max(checkGrad(t, "dgate", g, dg, f), checkGrad(t, "dup", u, du, f))
		}},
		{"cross-entropy", func(t *testing.T, n *net[float64]) float64 {
			return checkLoss(t, n, rng, nil)
		}},
		{"distillation KL at T=2, alpha 0.3", func(t *testing.T, n *net[float64]) float64 {
			teacher := make([]float32, N*c.Vocab)
			for i := range teacher {
				teacher[i] = float32(2 * rng.NormFloat64())
			}
			return checkLoss(t, n, rng, teacher)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, _ := tinyNet(c, B, T)
			worst := tt.run(t, n)
			t.Logf("largest relative error %.2g", worst)
		})
	}
}

// checkLoss checks the gradient of the loss with respect to the logits,
// with one padded row.
func checkLoss(t *testing.T, n *net[float64], rng *rand.Rand, teacher []float32) float64 {
	V := n.c.Vocab
	z := randSlice(rng, n.N*V, 0, 2)
	targets := make([]int32, n.N)
	for i := range targets {
		targets[i] = int32(rng.IntN(V))
	}
	targets[3] = -1
	o := objective{targets: targets, teacher: teacher, temp: 2, alpha: 0.3, scale: 0.7}
	rows := make([]rowStats, n.N)
	f := func() float64 {
		copy(n.logits, z)
		n.loss(o, rows)
		var s float64
		for _, r := range rows {
			s += r.loss
		}
		return 0.7 * s
	}
	copy(n.logits, z)
	o.grad = true
	n.loss(o, rows)
	o.grad = false
	g := append([]float64(nil), n.logits...)
	return checkGrad(t, "dlogits", z, g, f)
}

// TestModelGradients checks the gradient of every weight of whole models
// (embedding, norms, projections, final norm, classifier) against central
// differences, for tied and untied classifiers, multi-head and
// grouped-query attention, heads of their own size, and distillation.
func TestModelGradients(t *testing.T) {
	tests := []struct {
		name    string
		c       Config
		distil  bool
		B, T    int
		repeats bool // tokens repeat, so embedding rows gather several gradients
	}{
		{"multi-head, tied", Config{Dim: 8, HiddenDim: 12, Layers: 2, Heads: 2, Vocab: 9, ContextLen: 8, Tied: true}, false, 2, 4, true},
		{"grouped-query, untied", Config{Dim: 8, HiddenDim: 10, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 7, ContextLen: 8}, false, 2, 5, true},
		{"heads of their own size, tied, distilled", Config{Dim: 8, HiddenDim: 6, Layers: 1, Heads: 3, KVHeads: 1, HeadDim: 4, Vocab: 6, ContextLen: 8, Tied: true}, true, 1, 6, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			c := tt.c.withDefaults()
			n, p, grad := tinyNet(c, tt.B, tt.T)
			// Weights far from initialisation, so that no term vanishes.
			for _, ti := range c.tensors() {
				mean, std := 0.0, 0.5
				if !ti.matrix() {
					mean, std = 1, 0.3
				}
				copy(p[ti.off:ti.off+ti.rows*ti.cols], randSlice(rng, ti.rows*ti.cols, mean, std))
			}
			for i := range n.tokens {
				n.tokens[i] = int32(rng.IntN(c.Vocab))
			}
			targets := make([]int32, n.N)
			for i := range targets {
				targets[i] = int32(rng.IntN(c.Vocab))
			}
			targets[1] = -1
			o := objective{targets: targets, temp: 1.5, alpha: 0.4, scale: 1}
			if tt.distil {
				o.teacher = make([]float32, n.N*c.Vocab)
				for i := range o.teacher {
					o.teacher[i] = float32(rng.NormFloat64())
				}
			}
			rows := make([]rowStats, n.N)
			f := func() float64 {
				n.forward()
				n.loss(o, rows)
				var s float64
				for _, r := range rows {
					s += r.loss
				}
				return s
			}
			o.grad = true
			n.forward()
			n.loss(o, rows)
			n.backward()
			o.grad = false
			for _, ti := range c.tensors() {
				lo, hi := ti.off, ti.off+ti.rows*ti.cols
				worst := checkGrad(t, ti.name, p[lo:hi], grad[lo:hi], f)
				t.Logf("%-28s %5d values, largest relative error %.2g", ti.name, hi-lo, worst)
			}
		})
	}
}

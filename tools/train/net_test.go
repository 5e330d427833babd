package train

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/internal/synth"
)

// TestMatmul checks the tiled float32 product against plain float64 loops,
// on shapes of one tile and of many, with and without accumulation.
func TestMatmul(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range []struct{ rows, cols, n int }{{3, 5, 2}, {48, 32, 60}, {300, 200, 170}, {33, 700, 9}} {
		for _, acc := range []bool{false, true} {
			w64, x64, o64 := randSlice(rng, s.rows*s.cols, 0, 1), randSlice(rng, s.n*s.cols, 0, 1), randSlice(rng, s.n*s.rows, 0, 1)
			w32, x32, o32 := to32(w64), to32(x64), to32(o64)
			matmulGeneric(o64, w64, x64, s.rows, s.cols, s.n, acc, nil)
			parMatmul(pool{3}, matmulF32, [][]float32{make([]float32, tileElems), make([]float32, tileElems), make([]float32, tileElems)},
				o32, w32, x32, s.rows, s.cols, s.n, acc)
			for i := range o64 {
				if d := math.Abs(float64(o32[i]) - o64[i]); d > 1e-5*math.Sqrt(float64(s.cols))*(1+math.Abs(o64[i])) {
					t.Fatalf("%+v acc %v: out[%d] = %g, want %g", s, acc, i, o32[i], o64[i])
				}
			}
		}
	}
}

func to32(v []float64) []float32 {
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return w
}

// randomModel returns a model whose weights are large enough for the
// attention and the classifier to be far from uniform.
func randomModel(t testing.TB, c Config, seed uint64) *Model {
	t.Helper()
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, ti := range m.Config.tensors() {
		v := m.Params[ti.off : ti.off+ti.rows*ti.cols]
		for i := range v {
			if ti.matrix() {
				v[i] = float32(rng.NormFloat64() * 1.5 / math.Sqrt(float64(ti.cols)))
			} else {
				v[i] = float32(1 + 0.2*rng.NormFloat64())
			}
		}
	}
	return m
}

// runNet runs forward, loss and backward on a copy of m's weights, as F.
func runNet[F float](m *Model, threads int, tokens, targets []int32, B, T int) (logits, grad []F, loss float64) {
	p := make([]F, len(m.Params))
	for i, v := range m.Params {
		p[i] = F(v)
	}
	grad = make([]F, len(p))
	n := newNet(m.Config, B, T, threads, p, grad)
	copy(n.tokens, tokens)
	n.forward()
	logits = append([]F(nil), n.logits...)
	rows := make([]rowStats, n.N)
	n.loss(objective{targets: targets, grad: true, scale: 1 / float64(n.N)}, rows)
	n.backward()
	for _, r := range rows {
		loss += r.loss
	}
	return logits, grad, loss / float64(n.N)
}

// TestFloat32MatchesFloat64 checks that the float32 network, which runs the
// simd kernels, computes what the float64 one (checked against finite
// differences) does, and that its results do not depend on the number of
// threads, to the bit.
func TestFloat32MatchesFloat64(t *testing.T) {
	c := Config{Dim: 32, HiddenDim: 44, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, ContextLen: 32}
	m := randomModel(t, c, 1)
	const B, T = 3, 20
	rng := rand.New(rand.NewPCG(7, 8))
	tokens, targets := make([]int32, B*T), make([]int32, B*T)
	for i := range tokens {
		tokens[i], targets[i] = int32(rng.IntN(c.Vocab)), int32(rng.IntN(c.Vocab))
	}
	l64, g64, loss64 := runNet[float64](m, 2, tokens, targets, B, T)
	l32, g32, loss32 := runNet[float32](m, 2, tokens, targets, B, T)
	if d := math.Abs(loss32 - loss64); d > 1e-5*loss64 {
		t.Errorf("loss: float32 %.8g, float64 %.8g", loss32, loss64)
	}
	if e := relErr(l32, l64); e > 1e-5 {
		t.Errorf("logits differ by %.2g relative to the largest", e)
	}
	for _, ti := range m.Config.tensors() {
		lo, hi := ti.off, ti.off+ti.rows*ti.cols
		if e := relErr(g32[lo:hi], g64[lo:hi]); e > 1e-4 {
			t.Errorf("%s: gradient differs by %.2g relative to its largest value", ti.name, e)
		}
	}
	for _, threads := range []int{1, 3} {
		l, g, _ := runNet[float32](m, threads, tokens, targets, B, T)
		if !equalBits(l, l32) || !equalBits(g, g32) {
			t.Errorf("%d threads: results differ from 2 threads", threads)
		}
	}
}

// relErr returns max|a−b| / max|b|.
func relErr(a []float32, b []float64) float64 {
	var d, m float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-b[i]))
		m = max(m, math.Abs(b[i]))
	}
	return d / max(m, 1e-30)
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// testVocab returns synth's SentencePiece-style vocabulary of n tokens.
func testVocab(t testing.TB, n int) *tokenizer.Vocab {
	t.Helper()
	s := synth.Shapes()["stories260K"]
	s.Vocab, s.Layers = n, 1
	b, err := synth.Build(s, synth.Options{Type: gguf.F32})
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, b)
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Vocab()
}

// parse writes a builder and parses the bytes back.
func parse(t testing.TB, b *gguf.Builder) *gguf.File {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// load writes m with vocabulary v and loads it in the engine.
func load(t testing.TB, m *Model, v *tokenizer.Vocab) *engine.Model {
	t.Helper()
	b, err := m.Builder(v, "test")
	if err != nil {
		t.Fatal(err)
	}
	em, err := engine.FromGGUF(parse(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return em
}

// TestLogitsMatchEngine checks that the training forward pass computes the
// engine's logits for the same sequence, and that the file round-trips.
func TestLogitsMatchEngine(t *testing.T) {
	v := testVocab(t, 300)
	for _, c := range []Config{
		{Dim: 32, HiddenDim: 72, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, Tied: true},
		{Dim: 32, HiddenDim: 40, Layers: 2, Heads: 2, Vocab: 300, ContextLen: 64, RopeBase: 500},
		{Dim: 32, HiddenDim: 40, Layers: 1, Heads: 3, KVHeads: 3, HeadDim: 8, Vocab: 300, ContextLen: 64, Tied: true},
	} {
		m := randomModel(t, c, 2)
		em := load(t, m, v)
		rng := rand.New(rand.NewPCG(1, 1))
		tokens := make([]int, min(engine.MaxBatch, c.ContextLen)) // one ForwardAll
		tokens[0] = 1
		for i := 1; i < len(tokens); i++ {
			tokens[i] = rng.IntN(c.Vocab)
		}
		st, err := em.NewState(0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := st.ForwardAll(tokens)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Logits(tokens, 2)
		if err != nil {
			t.Fatal(err)
		}
		var d, big float64
		for i := range want {
			d = max(d, math.Abs(float64(got[i]-want[i])))
			big = max(big, math.Abs(float64(want[i])))
		}
		t.Logf("%+v: largest logit %.3g, largest difference %.2g", c, big, d)
		if d > 1e-5*max(big, 1) {
			t.Errorf("%+v: logits differ from the engine's by %g (largest logit %g)", c, d, big)
		}
		// The file reads back as the same model.
		b, err := m.Builder(v, "test")
		if err != nil {
			t.Fatal(err)
		}
		back, err := FromGGUF(parse(t, b))
		if err != nil {
			t.Fatal(err)
		}
		if back.Config != m.Config || !equalBits(back.Params, m.Params) {
			t.Errorf("%+v: read back as %+v with other weights", m.Config, back.Config)
		}
	}
}

func TestTranspose(t *testing.T) {
	for _, s := range [][2]int{{1, 1}, {3, 17}, {8, 8}, {20, 13}, {64, 72}, {129, 9}} {
		rows, cols := s[0], s[1]
		a := make([]float32, rows*cols)
		for i := range a {
			a[i] = float32(i)
		}
		for _, p := range []pool{{1}, {3}} {
			d := make([]float32, len(a))
			parTranspose(p, d, a, rows, cols)
			for r := range rows {
				for c := range cols {
					if d[c*rows+r] != a[r*cols+c] {
						t.Fatalf("%d×%d: transpose[%d][%d] = %g, want %g", rows, cols, c, r, d[c*rows+r], a[r*cols+c])
					}
				}
			}
		}
	}
}

package hf_test

import (
	"math"
	"testing"

	"wisp/engine/gguf"
	"wisp/tools/hf"
)

var (
	llamaMHA = shape{arch: "llama", dim: 32, hidden: 40, layers: 2, heads: 4, kv: 4, vocab: 300, ctx: 64, theta: 10000, eps: 1e-5}
	llamaGQA = shape{arch: "llama", dim: 48, hidden: 64, layers: 2, heads: 6, kv: 2, vocab: 320, ctx: 64, theta: 500000, eps: 1e-6, tied: true}
	llamaMQA = shape{arch: "llama", dim: 24, hidden: 30, layers: 1, heads: 3, kv: 1, vocab: 301, ctx: 32, theta: 10000, eps: 1e-5}
	qwenGQA  = shape{arch: "qwen2", dim: 64, hidden: 72, layers: 2, heads: 4, kv: 2, vocab: 310, ctx: 64, theta: 1000000, eps: 1e-6, tied: true}
	qwenMHA  = shape{arch: "qwen2", dim: 32, hidden: 36, layers: 2, heads: 2, kv: 2, vocab: 300, ctx: 48, theta: 10000, eps: 1e-6}
)

// roundTripCases convert one set of weights two ways.
var roundTripCases = []struct {
	name   string
	shape  shape
	dtype  string // of the checkpoint
	shards int
	out    gguf.TensorType
}{
	{"llama/mha/untied/f32->f32", llamaMHA, "F32", 0, gguf.F32},
	{"llama/gqa/tied/bf16->f32/sharded", llamaGQA, "BF16", 3, gguf.F32},
	{"llama/mqa/untied/f16->f16", llamaMQA, "F16", 0, gguf.F16},
	{"llama/mha/untied/bf16->f16/sharded", llamaMHA, "BF16", 2, gguf.F16},
	{"qwen2/gqa/tied/bf16->f32", qwenGQA, "BF16", 0, gguf.F32},
	{"qwen2/mha/untied/f32->f16/sharded", qwenMHA, "F32", 4, gguf.F16},
}

func rounder(dtype string) func(float32) float32 {
	switch dtype {
	case "BF16":
		return roundBF16
	case "F16":
		return roundF16
	}
	return roundNone
}

// TestRoundTrip builds the same random weights as a Hugging Face checkpoint
// (q and k in Hugging Face's RoPE layout) and directly as GGUF in
// llama.cpp's layout, and requires the engine to compute bit-identical
// logits from the converted checkpoint and from the direct file. With
// equal weights the engine does the same arithmetic, so any difference is
// a conversion mistake: a row out of place, a value rounded differently, a
// hyperparameter lost.
func TestRoundTrip(t *testing.T) {
	for i, c := range roundTripCases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(c.shape, uint64(10+i), rounder(c.dtype))
			dir := t.TempDir()
			if err := m.write(dir, folder{dtype: c.dtype, shards: c.shards}); err != nil {
				t.Fatal(err)
			}
			var calls, last int
			got, rep := convert(t, dir, hf.Options{Type: c.out, Name: "tiny", Progress: func(done, total int) {
				calls++
				if done != last+1 || done > total {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			}})
			want, err := m.directGGUF(c.out)
			if err != nil {
				t.Fatal(err)
			}
			tokens := testTokens(20, c.shape.vocab, uint64(i))
			gl, wl := logits(t, got, tokens), logits(t, want, tokens)
			for j := range wl {
				if math.Float32bits(gl[j]) != math.Float32bits(wl[j]) {
					t.Fatalf("logit %d (token %d): converted %v, direct %v", j%c.shape.vocab, j/c.shape.vocab, gl[j], wl[j])
				}
			}

			nparams := len(c.shape.params())
			if calls != nparams || rep.Tensors != nparams {
				t.Errorf("progress called %d times, report says %d tensors, want %d", calls, rep.Tensors, nparams)
			}
			var params int64
			matrices := 0
			for _, p := range c.shape.params() {
				params += int64(p.cols * max(p.rows, 1))
				if p.rows > 0 {
					matrices++
				}
			}
			if rep.Params != params {
				t.Errorf("report: %d parameters, want %d", rep.Params, params)
			}
			if rep.Sources[c.dtype] != nparams || len(rep.Sources) != 1 {
				t.Errorf("report: sources %v, want %d %s", rep.Sources, nparams, c.dtype)
			}
			if rep.Types[c.out] < matrices || rep.Types[gguf.F32]+rep.Types[gguf.F16] != nparams {
				t.Errorf("report: types %v, want %d matrices of %v", rep.Types, matrices, c.out)
			}
			if c.out == gguf.F16 && rep.FP16.Values == 0 || c.out == gguf.F32 && rep.FP16.Values != 0 {
				t.Errorf("report: fp16 stats %v for output %v", rep.FP16, c.out)
			}
			if rep.Arch != c.shape.arch || rep.Tokenizer != "llama" || rep.Vocab != c.shape.vocab || len(rep.Warnings) != 0 {
				t.Errorf("report: %+v", rep)
			}
		})
	}
}

// TestMatchesHuggingFace compares the engine's logits on converted models
// with a float64 forward pass written the way Hugging Face's modeling code
// computes, straight from the checkpoint's weights: RoPE by rotate_half
// (pairs i and i+d/2 of each head) for both architectures. It proves the
// permutation right without relying on a second statement of it.
func TestMatchesHuggingFace(t *testing.T) {
	for i, s := range []shape{llamaMHA, llamaGQA, llamaMQA, qwenGQA} {
		t.Run(s.arch, func(t *testing.T) {
			m := newModel(s, uint64(40+i), roundNone)
			dir := t.TempDir()
			if err := m.write(dir, folder{dtype: "F32"}); err != nil {
				t.Fatal(err)
			}
			data, _ := convert(t, dir, hf.Options{Type: gguf.F32})
			tokens := testTokens(12, s.vocab, uint64(i))
			got := logits(t, data, tokens)
			want := hfForward(m, tokens, true)
			wrong := hfForward(m, tokens, false) // RoPE on adjacent pairs: the layout without the permutation
			var mx float64
			for _, row := range want {
				for _, v := range row {
					mx = max(mx, math.Abs(v))
				}
			}
			tol := 1e-4 * (1 + mx)
			var diff, sens float64
			for p := range want {
				for j, w := range want[p] {
					diff = max(diff, math.Abs(float64(got[p*s.vocab+j])-w))
					sens = max(sens, math.Abs(wrong[p][j]-w))
				}
			}
			if diff > tol {
				t.Errorf("logits differ from Hugging Face's computation by %g (tolerance %g)", diff, tol)
			}
			if sens < 100*tol {
				t.Errorf("the test cannot tell the RoPE layouts apart: they differ by only %g", sens)
			}
		})
	}
}

// hfForward evaluates the model in float64 as transformers' LlamaModel and
// Qwen2Model do, returning the logits after each token. rotateHalf false
// rotates adjacent pairs instead, for the sensitivity check.
func hfForward(m *model, tokens []int, rotateHalf bool) [][]float64 {
	f := func(name string) []float64 {
		v := m.w[name]
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	matvec := func(w []float64, x []float64) []float64 {
		cols := len(x)
		out := make([]float64, len(w)/cols)
		for r := range out {
			var s float64
			for c, xv := range x {
				s += w[r*cols+c] * xv
			}
			out[r] = s
		}
		return out
	}
	norm := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(len(x))+m.eps)
		out := make([]float64, len(x))
		for i := range x {
			out[i] = w[i] * (x[i] * r)
		}
		return out
	}
	hd := m.headDim()
	rope := func(v []float64, pos int) {
		for h := 0; h < len(v); h += hd {
			x := v[h : h+hd]
			for i := range hd / 2 {
				invFreq := 1 / math.Pow(m.theta, float64(2*i)/float64(hd))
				s, c := math.Sincos(float64(pos) * invFreq)
				a, b := i, i+hd/2
				if !rotateHalf {
					a, b = 2*i, 2*i+1
				}
				x[a], x[b] = x[a]*c-x[b]*s, x[b]*c+x[a]*s
			}
		}
	}
	emb := f("model.embed_tokens.weight")
	head := emb
	if !m.tied {
		head = f("lm_head.weight")
	}
	keys := make([][][]float64, m.layers)
	vals := make([][][]float64, m.layers)
	var all [][]float64
	for pos, tok := range tokens {
		x := append([]float64(nil), emb[tok*m.dim:(tok+1)*m.dim]...)
		for l := range m.layers {
			p := "model.layers." + itoa(l) + "."
			xn := norm(x, f(p+"input_layernorm.weight"))
			q := matvec(f(p+"self_attn.q_proj.weight"), xn)
			k := matvec(f(p+"self_attn.k_proj.weight"), xn)
			v := matvec(f(p+"self_attn.v_proj.weight"), xn)
			if m.arch == "qwen2" {
				for i, b := range f(p + "self_attn.q_proj.bias") {
					q[i] += b
				}
				for i, b := range f(p + "self_attn.k_proj.bias") {
					k[i] += b
				}
				for i, b := range f(p + "self_attn.v_proj.bias") {
					v[i] += b
				}
			}
			rope(q, pos)
			rope(k, pos)
			keys[l] = append(keys[l], k)
			vals[l] = append(vals[l], v)
			att := make([]float64, m.dim)
			for h := range m.heads {
				kvh := h / (m.heads / m.kv)
				w := make([]float64, pos+1)
				mx := math.Inf(-1)
				for t := range w {
					var s float64
					for j := range hd {
						s += q[h*hd+j] * keys[l][t][kvh*hd+j]
					}
					w[t] = s / math.Sqrt(float64(hd))
					mx = max(mx, w[t])
				}
				var sum float64
				for t := range w {
					w[t] = math.Exp(w[t] - mx)
					sum += w[t]
				}
				for t := range w {
					for j := range hd {
						att[h*hd+j] += w[t] / sum * vals[l][t][kvh*hd+j]
					}
				}
			}
			for i, o := range matvec(f(p+"self_attn.o_proj.weight"), att) {
				x[i] += o
			}
			xn = norm(x, f(p+"post_attention_layernorm.weight"))
			g := matvec(f(p+"mlp.gate_proj.weight"), xn)
			u := matvec(f(p+"mlp.up_proj.weight"), xn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			for i, d := range matvec(f(p+"mlp.down_proj.weight"), g) {
				x[i] += d
			}
		}
		all = append(all, matvec(head, norm(x, f("model.norm.weight"))))
	}
	return all
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + itoa(i%10)
}

// TestPermuteOnlyLlama checks that Qwen2's q and k reach the GGUF
// file in their checkpoint order while llama's are permuted.
func TestPermuteOnlyLlama(t *testing.T) {
	for _, s := range []shape{llamaGQA, qwenGQA} {
		m := newModel(s, 5, roundNone)
		dir := t.TempDir()
		if err := m.write(dir, folder{dtype: "F32"}); err != nil {
			t.Fatal(err)
		}
		data, _ := convert(t, dir, hf.Options{Type: gguf.F32})
		f, err := gguf.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.params() {
			tn, ok := f.Tensor(p.gguf)
			if !ok {
				t.Fatalf("%s: tensor %s missing", s.arch, p.gguf)
			}
			got, err := tn.F32()
			if err != nil {
				t.Fatal(err)
			}
			want := m.w[p.hf]
			if s.arch == "llama" && p.ropeHeads > 0 {
				want = llamaRows(want, p.ropeHeads, p.rows, p.cols)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s: %s[%d] = %v, want %v", s.arch, p.gguf, i, got[i], want[i])
				}
			}
		}
	}
}

// TestFP16Report checks the half-precision statistics on values that
// overflow, flush and round.
func TestFP16Report(t *testing.T) {
	s := llamaMQA
	m := newModel(s, 9, roundNone)
	emb := m.w["model.embed_tokens.weight"]
	emb[0], emb[1], emb[2], emb[3] = 1e5, -7e4, 1e-6, 1+1.0/4096 // two overflow, one flushes, one rounds
	dir := t.TempDir()
	if err := m.write(dir, folder{dtype: "F32"}); err != nil {
		t.Fatal(err)
	}
	_, rep := convert(t, dir, hf.Options{Type: gguf.F16})
	if rep.FP16.Overflowed != 2 {
		t.Errorf("overflowed %d, want 2", rep.FP16.Overflowed)
	}
	if rep.FP16.Flushed < 1 {
		t.Errorf("flushed %d, want at least 1", rep.FP16.Flushed)
	}
	if rep.FP16.MaxAbsErr < 1.0/4096-1e-9 {
		t.Errorf("max abs error %g, want at least %g", rep.FP16.MaxAbsErr, 1.0/4096)
	}
	var matrixValues int64
	for _, p := range s.params() {
		if p.rows > 0 {
			matrixValues += int64(p.rows * p.cols)
		}
	}
	if rep.FP16.Values != matrixValues {
		t.Errorf("fp16 values %d, want %d (the matrices)", rep.FP16.Values, matrixValues)
	}
}

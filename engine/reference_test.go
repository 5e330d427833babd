package engine_test

// This file checks the engine's forward pass against an independent
// reference: a plain float64 Llama/Qwen2 decoder written from the papers and
// llama.cpp's conventions, reading its weights straight from the GGUF file.
// It shares no code with the engine beyond the GGUF parser.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/x448/float16"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
	"wisp/simd"
)

// refMatrix is a rows×cols matrix in row-major order. A quantized matrix
// (q8 set) multiplies its input rounded to 8-bit blocks, as simd.MatMulQ
// documents, so that the reference computes the same products as the
// engine up to float32 rounding.
type refMatrix struct {
	rows, cols int
	w          []float64
	q8         bool
}

// apply returns M·x.
func (m *refMatrix) apply(x []float64) []float64 {
	if m.q8 {
		x = refQ8(x)
	}
	out := make([]float64, m.rows)
	for r := range out {
		row := m.w[r*m.cols : (r+1)*m.cols]
		var s float64
		for c, w := range row {
			s += w * x[c]
		}
		out[r] = s
	}
	return out
}

type refLayer struct {
	hidden, heads, kvHeads int // this block's widths
	attnNorm, ffnNorm      []float64
	wq, wk, wv, wo         refMatrix
	bq, bk, bv             []float64 // nil without biases
	gate, up, down         refMatrix
}

// refModel is a decoder whose weights are float64 copies of a GGUF file's.
// Its blocks may differ in width (llama.cpp's per-layer arrays).
type refModel struct {
	dim, headDim, vocab int
	eps, base           float64
	neox                bool // rotate (i, i+headDim/2) rather than (2i, 2i+1)
	emb, out            refMatrix
	layers              []refLayer
	outNorm             []float64
	flushed             int // subnormal halves read as zero
}

// refTensor decodes a tensor of the given ggml dims (innermost first) to
// float64. Subnormal halves become zeros, as the engine documents.
func refTensor(t testing.TB, f *gguf.File, name string, dims ...int) ([]float64, int) {
	t.Helper()
	tn, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("reference: tensor %q is missing", name)
	}
	n := 1
	ok = len(tn.Dims) == len(dims)
	for i := 0; ok && i < len(dims); i++ {
		ok = tn.Dims[i] == uint64(dims[i])
		n *= dims[i]
	}
	if !ok {
		t.Fatalf("reference: tensor %q has dims %v, want %v", name, tn.Dims, dims)
	}
	v := make([]float64, n)
	flushed := 0
	switch tn.Type {
	case gguf.F32:
		if len(tn.Data) != 4*n {
			t.Fatalf("reference: tensor %q has %d bytes, want %d", name, len(tn.Data), 4*n)
		}
		for i := range v {
			v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(tn.Data[4*i:])))
		}
	case gguf.F16:
		if len(tn.Data) != 2*n {
			t.Fatalf("reference: tensor %q has %d bytes, want %d", name, len(tn.Data), 2*n)
		}
		for i := range v {
			h := binary.LittleEndian.Uint16(tn.Data[2*i:])
			if h&0x7c00 == 0 && h&0x03ff != 0 {
				h &= 0x8000
				flushed++
			}
			v[i] = float64(float16.Frombits(h).Float32())
		}
	case gguf.BF16:
		if len(tn.Data) != 2*n {
			t.Fatalf("reference: tensor %q has %d bytes, want %d", name, len(tn.Data), 2*n)
		}
		for i := range v {
			v[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(tn.Data[2*i:])) << 16))
		}
	default:
		// Quantized blocks decode as ggml decodes them, which the
		// llama.cpp fixtures (oracle_*_test.go) check simd.Dequantize
		// against bit for bit.
		q, ok := refQTypes[tn.Type]
		if !ok {
			t.Fatalf("reference: tensor %q has type %v", name, tn.Type)
		}
		w := make([]float32, n)
		simd.Dequantize(q, w, tn.Data)
		for i, x := range w {
			v[i] = float64(x)
		}
	}
	return v, flushed
}

// refLoad parses a GGUF file and copies its weights.
func refLoad(t testing.TB, data []byte) *refModel {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := f.String("general.architecture")
	if err != nil {
		t.Fatal(err)
	}
	get := func(key string) int {
		v, err := f.Uint(arch + "." + key)
		if err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	getf := func(key string) float64 {
		v, err := f.Float(arch + "." + key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	blocks := get("block_count")
	// widths reads a width that is one integer for every block or an
	// array of one per block.
	widths := func(key string) []int {
		v, ok := f.Value(arch + "." + key)
		if !ok {
			t.Fatalf("reference: no %s", key)
		}
		out := make([]int, blocks)
		switch a := v.(type) {
		case []uint32:
			for i := range out {
				out[i] = int(a[i])
			}
		case []int32:
			for i := range out {
				out[i] = int(a[i])
			}
		default:
			for i := range out {
				out[i] = get(key)
			}
		}
		return out
	}
	m := &refModel{
		dim:  get("embedding_length"),
		eps:  getf("attention.layer_norm_rms_epsilon"),
		base: getf("rope.freq_base"),
		neox: arch == "qwen2",
	}
	hidden, heads, kvHeads := widths("feed_forward_length"), widths("attention.head_count"), widths("attention.head_count_kv")
	if _, ok := f.Value(arch + ".attention.key_length"); ok {
		m.headDim = get("attention.key_length")
	} else {
		m.headDim = m.dim / heads[0]
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		t.Fatal("reference: no 2-D token_embd.weight")
	}
	m.vocab = int(emb.Dims[1])
	vec := func(name string, n int) []float64 {
		v, _ := refTensor(t, f, name, n)
		return v
	}
	mat := func(name string, rows, cols int) refMatrix {
		v, fl := refTensor(t, f, name, cols, rows)
		m.flushed += fl
		tn, _ := f.Tensor(name)
		_, q8 := refQTypes[tn.Type]
		return refMatrix{rows: rows, cols: cols, w: v, q8: q8}
	}
	m.emb = mat("token_embd.weight", m.vocab, m.dim)
	for l := range blocks {
		p := fmt.Sprintf("blk.%d.", l)
		q, kv := heads[l]*m.headDim, kvHeads[l]*m.headDim
		ly := refLayer{
			hidden:   hidden[l],
			heads:    heads[l],
			kvHeads:  kvHeads[l],
			attnNorm: vec(p+"attn_norm.weight", m.dim),
			wq:       mat(p+"attn_q.weight", q, m.dim),
			wk:       mat(p+"attn_k.weight", kv, m.dim),
			wv:       mat(p+"attn_v.weight", kv, m.dim),
			wo:       mat(p+"attn_output.weight", m.dim, q),
			ffnNorm:  vec(p+"ffn_norm.weight", m.dim),
			gate:     mat(p+"ffn_gate.weight", hidden[l], m.dim),
			up:       mat(p+"ffn_up.weight", hidden[l], m.dim),
			down:     mat(p+"ffn_down.weight", m.dim, hidden[l]),
		}
		if arch == "qwen2" {
			ly.bq = vec(p+"attn_q.bias", q)
			ly.bk = vec(p+"attn_k.bias", kv)
			ly.bv = vec(p+"attn_v.bias", kv)
		}
		m.layers = append(m.layers, ly)
	}
	m.outNorm = vec("output_norm.weight", m.dim)
	if _, ok := f.Tensor("output.weight"); ok {
		m.out = mat("output.weight", m.vocab, m.dim)
	} else {
		m.out = m.emb
	}
	return m
}

// refRMSNorm returns x / sqrt(mean(x²) + eps) * w.
func refRMSNorm(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = x[i] * r * w[i]
	}
	return out
}

// refRope rotates each head of v in place by pos·θᵢ, θᵢ = base^(-2i/headDim).
func refRope(v []float64, headDim, pos int, base float64, neox bool) {
	half := headDim / 2
	for h := 0; h < len(v); h += headDim {
		x := v[h : h+headDim]
		for i := range half {
			theta := math.Pow(base, -2*float64(i)/float64(headDim))
			s, c := math.Sincos(float64(pos) * theta)
			a, b := 2*i, 2*i+1
			if neox {
				a, b = i, i+half
			}
			x[a], x[b] = x[a]*c-x[b]*s, x[a]*s+x[b]*c
		}
	}
}

func refAdd(dst, src []float64) {
	for i := range dst {
		dst[i] += src[i]
	}
}

// refRun returns the logits after each of tokens, evaluated from position 0.
func (m *refModel) refRun(tokens []int) [][]float64 {
	hd := m.headDim
	keys := make([][][]float64, len(m.layers)) // [layer][pos][kvd]
	values := make([][][]float64, len(m.layers))
	var all [][]float64
	for pos, tok := range tokens {
		x := append([]float64(nil), m.emb.w[tok*m.dim:(tok+1)*m.dim]...)
		for l := range m.layers {
			ly := &m.layers[l]
			group := ly.heads / ly.kvHeads
			xn := refRMSNorm(x, ly.attnNorm, m.eps)
			q, k, v := ly.wq.apply(xn), ly.wk.apply(xn), ly.wv.apply(xn)
			if ly.bq != nil {
				refAdd(q, ly.bq)
				refAdd(k, ly.bk)
				refAdd(v, ly.bv)
			}
			refRope(q, hd, pos, m.base, m.neox)
			refRope(k, hd, pos, m.base, m.neox)
			keys[l] = append(keys[l], k)
			values[l] = append(values[l], v)
			att := make([]float64, ly.heads*hd)
			scores := make([]float64, pos+1)
			for h := range ly.heads {
				qh := q[h*hd : (h+1)*hd]
				off := (h / group) * hd
				mx := math.Inf(-1)
				for i := range scores {
					var s float64
					for j, qv := range qh {
						s += qv * keys[l][i][off+j]
					}
					scores[i] = s / math.Sqrt(float64(hd))
					mx = max(mx, scores[i])
				}
				var sum float64
				for i := range scores {
					scores[i] = math.Exp(scores[i] - mx)
					sum += scores[i]
				}
				for i, a := range scores {
					for j := range hd {
						att[h*hd+j] += a / sum * values[l][i][off+j]
					}
				}
			}
			refAdd(x, ly.wo.apply(att))
			xn = refRMSNorm(x, ly.ffnNorm, m.eps)
			g, u := ly.gate.apply(xn), ly.up.apply(xn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			refAdd(x, ly.down.apply(g))
		}
		all = append(all, m.out.apply(refRMSNorm(x, m.outNorm, m.eps)))
	}
	return all
}

// refCase is a model shape the engine is compared on.
type refCase struct {
	name  string
	shape synth.Shape
	typ   gguf.TensorType
}

var refCases = []refCase{
	{"llama/mha/untied/f32/head8", synth.Shape{Arch: "llama", Dim: 48, HiddenDim: 100, Layers: 2, Heads: 6, KVHeads: 6, Vocab: 300, ContextLen: 64, RopeBase: 10000}, gguf.F32},
	{"llama/gqa3/tied/f16/head8", synth.Shape{Arch: "llama", Dim: 48, HiddenDim: 128, Layers: 2, Heads: 6, KVHeads: 2, Vocab: 301, ContextLen: 64, RopeBase: 10000, Tied: true}, gguf.F16},
	{"llama/gqa2/tied/f32/stories260K", synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, ContextLen: 64, RopeBase: 10000, Tied: true}, gguf.F32},
	{"llama/mqa/untied/f16/head2", synth.Shape{Arch: "llama", Dim: 6, HiddenDim: 7, Layers: 2, Heads: 3, KVHeads: 1, Vocab: 259, ContextLen: 48, RopeBase: 10000}, gguf.F16},
	{"qwen2/mqa/tied/f32/head32", synth.Shape{Arch: "qwen2", Dim: 96, HiddenDim: 100, Layers: 2, Heads: 3, KVHeads: 1, Vocab: 301, ContextLen: 64, RopeBase: 1000000, Tied: true}, gguf.F32},
	{"qwen2/gqa2/untied/f16/head8", synth.Shape{Arch: "qwen2", Dim: 64, HiddenDim: 172, Layers: 3, Heads: 8, KVHeads: 4, Vocab: 300, ContextLen: 64, RopeBase: 1000000}, gguf.F16},
	{"qwen2/mha/untied/f32/head16", synth.Shape{Arch: "qwen2", Dim: 80, HiddenDim: 36, Layers: 2, Heads: 5, KVHeads: 5, Vocab: 333, ContextLen: 40, RopeBase: 10000}, gguf.F32},
	// Blocks of different widths, as pruning per layer leaves them: the
	// cache and scratch are sized by the widest block, so a narrower one
	// reading the wrong stride or group shows here.
	{"llama/per-layer/untied/f32/head8", synth.Shape{Arch: "llama", Dim: 48, HiddenDim: 100, Layers: 3, Heads: 6, KVHeads: 3, Vocab: 300, ContextLen: 64, RopeBase: 10000,
		LayerHidden: []int{13, 100, 57}, LayerHeads: []int{2, 6, 4}, LayerKVHeads: []int{1, 3, 2}}, gguf.F32},
	{"qwen2/per-layer/tied/f16/head8", synth.Shape{Arch: "qwen2", Dim: 64, HiddenDim: 172, Layers: 3, Heads: 8, KVHeads: 4, Vocab: 300, ContextLen: 64, RopeBase: 1000000, Tied: true,
		LayerHidden: []int{172, 40, 90}, LayerHeads: []int{8, 6, 2}, LayerKVHeads: []int{4, 3, 1}}, gguf.F16},
	{"llama/per-layer-ffn/tied/f32/stories260K", synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, Vocab: 512, ContextLen: 64, RopeBase: 10000, Tied: true,
		LayerHidden: []int{172, 1, 100, 33, 150}}, gguf.F32},
}

// refBuild writes a random model of the case's shape. In F16 models it
// replaces some weights by subnormal halves (synth never writes them), so
// that the flush at load is exercised; it returns how many.
func refBuild(t testing.TB, c refCase, seed uint64) ([]byte, int) {
	t.Helper()
	buf, err := synth.Bytes(c.shape, synth.Options{Type: c.typ, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	data := buf
	if c.typ != gguf.F16 {
		return data, 0
	}
	f, err := gguf.Parse(data) // tensors are views into data
	if err != nil {
		t.Fatal(err)
	}
	injected := 0
	for i := range f.Tensors {
		tn := &f.Tensors[i]
		if tn.Type != gguf.F16 {
			continue
		}
		for j := i % 7; 2*j+1 < len(tn.Data); j += 13 {
			h := uint16(1+(j*37)%0x3ff) | uint16(j%2)<<15
			binary.LittleEndian.PutUint16(tn.Data[2*j:], h)
			injected++
		}
	}
	return data, injected
}

// refTolerance is the largest difference allowed between the engine's
// logits and the reference's.
//
// The engine computes in float32 (unit roundoff u = 2⁻²⁴ ≈ 6e-8) while the
// weights are the same numbers in both (F16 and F32 values are exact in
// float32 and float64), so the difference is the engine's rounding alone.
// A dot product of n ≤ 172 terms errs by at most γₙ·Σ|aᵢbᵢ| ≈ 1e-5 of its
// terms' magnitude (typically √n·u ≈ 1e-6); the exp polynomial adds 4e-7
// and the float32 cos/sin 6e-8 relative. RMSNorm keeps activations O(1),
// so over at most five layers the errors add up rather than multiply, to
// some 1e-5 of the logits' scale. 1e-4·(1+max|ref|) leaves a margin of ten
// over that estimate (the largest difference observed is 3.2e-6, on the
// five-layer shape), and it is three or more orders of magnitude below the
// effect of a structural mistake (TestForwardMatchesReference checks that
// swapping the RoPE layout alone moves the logits by more than 100× it).
func refTolerance(want [][]float64) float64 {
	var mx float64
	for _, row := range want {
		for _, v := range row {
			mx = max(mx, math.Abs(v))
		}
	}
	return 1e-4 * (1 + mx)
}

func refMaxDiff(got []float32, want []float64) float64 {
	var d float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) {
			return math.Inf(1)
		}
		d = max(d, math.Abs(g-w))
	}
	return d
}

// refTokens returns n token ids in [0, vocab), including the first and the
// last id.
func refTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 1))
	tokens := make([]int, n)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
	}
	tokens[3], tokens[n-5] = 0, vocab-1
	return tokens
}

// refBatch is the batch of the reference tests' prefills: smaller than
// engine.MaxBatch, so that their short contexts hold several batches.
const refBatch = 32

func TestForwardMatchesReference(t *testing.T) {
	const n = 40 // one full batch of refBatch and a partial one
	for i, c := range refCases {
		t.Run(c.name, func(t *testing.T) {
			seed := uint64(100 + i)
			data, injected := refBuild(t, c, seed)
			refData := bytes.Clone(data) // Load flushes data in place
			m, err := engine.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			ref := refLoad(t, refData)
			if m.Flushed != ref.flushed || ref.flushed != injected {
				t.Errorf("flushed %d subnormal halves, the reference %d, injected %d", m.Flushed, ref.flushed, injected)
			}
			if m.VocabSize != ref.vocab || m.HeadDim != ref.headDim {
				t.Fatalf("engine vocab %d head %d, reference vocab %d head %d", m.VocabSize, m.HeadDim, ref.vocab, ref.headDim)
			}
			tokens := refTokens(n, ref.vocab, seed)
			want := ref.refRun(tokens)
			tol := refTolerance(want)
			vocab := ref.vocab

			// (b) One token at a time.
			st, err := m.NewState(0)
			if err != nil {
				t.Fatal(err)
			}
			single := make([][]float32, n)
			var errSingle float64
			for p, tok := range tokens {
				got, err := st.Forward([]int{tok})
				if err != nil {
					t.Fatalf("position %d: %v", p, err)
				}
				if len(got) != vocab {
					t.Fatalf("position %d: %d logits, want %d", p, len(got), vocab)
				}
				if st.Pos() != p+1 {
					t.Fatalf("after position %d: Pos() = %d", p, st.Pos())
				}
				single[p] = append([]float32(nil), got...)
				d := refMaxDiff(got, want[p])
				errSingle = max(errSingle, d)
				if d > tol {
					t.Errorf("one at a time, position %d: max |engine-ref| = %.3g > %.3g", p, d, tol)
				}
			}

			// (a) The whole prompt at once: batches of 32 and 8.
			st, err = m.NewState(0)
			if err != nil {
				t.Fatal(err)
			}
			st.SetBatch(refBatch)
			got, err := st.Forward(tokens)
			if err != nil {
				t.Fatal(err)
			}
			if st.Pos() != n || len(got) != vocab {
				t.Fatalf("prefill: Pos() = %d, %d logits; want %d, %d", st.Pos(), len(got), n, vocab)
			}
			errPrefill := refMaxDiff(got, want[n-1])
			if errPrefill > tol {
				t.Errorf("prefill: max |engine-ref| = %.3g > %.3g", errPrefill, tol)
			}
			if k := refFirstBitDiff(got, single[n-1]); k >= 0 {
				t.Errorf("prefill and one-at-a-time logits differ at %d: %g vs %g", k, got[k], single[n-1][k])
			}

			// (c) ForwardAll, reusing the State after Reset.
			st.Reset()
			if st.Pos() != 0 {
				t.Fatalf("Reset: Pos() = %d", st.Pos())
			}
			var errAll float64
			for start := 0; start < n; start += refBatch {
				chunk := tokens[start:min(n, start+refBatch)]
				got, err := st.ForwardAll(chunk)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(chunk)*vocab {
					t.Fatalf("ForwardAll of %d tokens: %d logits", len(chunk), len(got))
				}
				for j := range chunk {
					p := start + j
					row := got[j*vocab : (j+1)*vocab]
					d := refMaxDiff(row, want[p])
					errAll = max(errAll, d)
					if d > tol {
						t.Errorf("ForwardAll, position %d: max |engine-ref| = %.3g > %.3g", p, d, tol)
					}
					if k := refFirstBitDiff(row, single[p]); k >= 0 {
						t.Errorf("ForwardAll and one-at-a-time logits differ at position %d, logit %d: %g vs %g", p, k, row[k], single[p][k])
					}
				}
			}

			// A mistake the engine could make moves the logits far more
			// than tol: swapping the RoPE layout (identical for heads of 2).
			if ref.headDim > 2 {
				ref.neox = !ref.neox
				swapped := ref.refRun(tokens)
				ref.neox = !ref.neox
				var d float64
				for p := range swapped {
					d = max(d, refMaxDiff(single[p], swapped[p]))
				}
				if d < 100*tol {
					t.Errorf("swapping the RoPE layout moves the logits by only %.3g; tolerance %.3g does not discriminate", d, tol)
				}
				t.Logf("swapped RoPE layout: max diff %.3g", d)
			}
			t.Logf("tol %.3g; max |engine-ref|: one at a time %.3g, prefill %.3g, ForwardAll %.3g", tol, errSingle, errPrefill, errAll)
		})
	}
}

// refFirstBitDiff returns the first index at which a and b differ in their
// bits, or -1.
func refFirstBitDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// refMentions reports whether err's message contains each number as a word.
func refMentions(err error, nums ...int) bool {
	for _, n := range nums {
		re := regexp.MustCompile(fmt.Sprintf(`(^|[^0-9-])%d($|[^0-9])`, n))
		if !re.MatchString(err.Error()) {
			return false
		}
	}
	return true
}

func TestForwardErrors(t *testing.T) {
	c := refCases[1]
	data, _ := refBuild(t, c, 7)
	m, err := engine.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	vocab := m.VocabSize
	toks := func(n int) []int { return refTokens(max(n, 8), vocab, 8)[:n] }

	if _, err := m.NewState(m.ContextLen + 1); err == nil || !refMentions(err, m.ContextLen+1, m.ContextLen) {
		t.Errorf("NewState(%d) with a context of %d: error %v", m.ContextLen+1, m.ContextLen, err)
	}

	tests := []struct {
		name   string
		ctx    int   // State's context
		before int   // tokens evaluated first
		tokens []int // then these, which must fail
		all    bool  // with ForwardAll
		nums   []int // numbers the error must mention
	}{
		{"prompt longer than context", 10, 0, toks(11), false, []int{11, 10}},
		{"prompt overflowing after others", 10, 8, toks(3), false, []int{3, 8, 10}},
		{"ForwardAll overflowing", 10, 8, toks(3), true, []int{3, 10}},
		{"ForwardAll beyond MaxBatch", 0, 0, toks(engine.MaxBatch + 1), true, []int{engine.MaxBatch + 1, engine.MaxBatch}},
		{"negative token", 0, 0, []int{5, -1, 6}, false, []int{-1, vocab}},
		{"token equal to vocabulary size", 0, 3, []int{vocab}, false, []int{vocab}},
		{"huge token", 0, 0, []int{vocab + 1000}, true, []int{vocab + 1000, vocab}},
		// A prompt of more than MaxBatch tokens must be rejected before any
		// batch is evaluated, like a shorter one, leaving the State as it was.
		{"long prompt longer than context", 35, 0, toks(40), false, []int{40, 35}},
		{"bad token in second batch", 0, 0, append(toks(35), vocab), false, []int{vocab}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := m.NewState(tc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.before > 0 {
				if _, err := st.Forward(toks(tc.before)); err != nil {
					t.Fatal(err)
				}
			}
			var logits []float32
			if tc.all {
				logits, err = st.ForwardAll(tc.tokens)
			} else {
				logits, err = st.Forward(tc.tokens)
			}
			if err == nil {
				t.Fatalf("no error; %d logits", len(logits))
			}
			if !refMentions(err, tc.nums...) {
				t.Errorf("error %q does not mention %v", err, tc.nums)
			}
			if st.Pos() != tc.before {
				t.Errorf("after the error Pos() = %d, want %d (unchanged)", st.Pos(), tc.before)
			}
			// The State stays usable.
			st.Reset()
			if _, err := st.Forward(toks(2)); err != nil {
				t.Errorf("after the error and Reset: %v", err)
			}
		})
	}
}

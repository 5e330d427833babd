package llama2c_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/llama2c"
	"wisp/internal/sharedfiles"
)

// header is a checkpoint header; a negative vocab means an unshared
// classifier.
type header struct{ dim, hidden, layers, heads, kvHeads, vocab, seqLen int32 }

func (h header) bytes() []byte {
	b := make([]byte, 0, 28)
	for _, v := range []int32{h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

// model is a checkpoint written the way run.c reads it, and the weights it
// holds.
type model struct {
	h    header
	file []byte
	// tensors maps GGUF tensor names to their source values and dims.
	tensors map[string]tensor
}

type tensor struct {
	v    []float32
	dims []uint64
}

// makeCheckpoint writes a checkpoint of random weights in run.c's order.
func makeCheckpoint(h header, seed uint64) *model {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := &model{h: h, file: h.bytes(), tensors: map[string]tensor{}}
	dim, hidden, layers, vocab := uint64(h.dim), uint64(h.hidden), int(h.layers), uint64(h.vocab)
	shared := h.vocab > 0
	if !shared {
		vocab = uint64(-h.vocab)
	}
	headSize := dim / uint64(h.heads)
	kvDim := uint64(h.kvHeads) * headSize
	put := func(n uint64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.5)
			m.file = binary.LittleEndian.AppendUint32(m.file, math.Float32bits(v[i]))
		}
		return v
	}
	perLayer := func(name string, dims ...uint64) {
		n := uint64(1)
		for _, d := range dims {
			n *= d
		}
		for l := range layers {
			m.tensors[fmt.Sprintf("blk.%d.%s.weight", l, name)] = tensor{put(n), dims}
		}
	}
	m.tensors["token_embd.weight"] = tensor{put(vocab * dim), []uint64{dim, vocab}}
	perLayer("attn_norm", dim)
	perLayer("attn_q", dim, dim)
	perLayer("attn_k", dim, kvDim)
	perLayer("attn_v", dim, kvDim)
	perLayer("attn_output", dim, dim)
	perLayer("ffn_norm", dim)
	perLayer("ffn_gate", dim, hidden)
	perLayer("ffn_down", hidden, dim)
	perLayer("ffn_up", dim, hidden)
	m.tensors["output_norm.weight"] = tensor{put(dim), []uint64{dim}}
	put(uint64(h.seqLen) * headSize / 2) // freq_cis_real
	put(uint64(h.seqLen) * headSize / 2) // freq_cis_imag
	if !shared {
		m.tensors["output.weight"] = tensor{put(vocab * dim), []uint64{dim, vocab}}
	}
	return m
}

// makeTokenizer writes a tokenizer.bin.
func makeTokenizer(maxLen uint32, tokens []string, scores []float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, maxLen)
	for i, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
		b = append(b, t...)
	}
	return b
}

// vocab returns n tokens in llama2.c's form (at least 12), with their
// scores, GGUF texts and GGUF types.
func vocab(n int) (tokens []string, scores []float32, texts []string, types []int32) {
	fixed := []struct {
		tok, text string
		typ       int32
	}{
		{"<unk>", "<unk>", 2},
		{"\n<s>\n", "<s>", 3},
		{"\n</s>\n", "</s>", 3},
		{"<0x0A>", "<0x0A>", 6},
		{"<0x41>", "<0x41>", 6},
		{"<0xff>", "<0xff>", 6},
		{" the", "\u2581the", 1},
		{"a", "a", 1},
		{"b c ", "b\u2581c\u2581", 1},
		{"<0x4G>", "<0x4G>", 1},
		{"<0x0A", "<0x0A", 1},
		{" ", "\u2581", 1},
	}
	for i := range n {
		if i < len(fixed) {
			tokens = append(tokens, fixed[i].tok)
			texts = append(texts, fixed[i].text)
			types = append(types, fixed[i].typ)
		} else {
			tokens = append(tokens, fmt.Sprintf(" w%d", i))
			texts = append(texts, fmt.Sprintf("\u2581w%d", i))
			types = append(types, 1)
		}
		scores = append(scores, -float32(i)/4)
	}
	return tokens, scores, texts, types
}

var shapes = []struct {
	name string
	h    header
}{
	{"shared/mha", header{8, 12, 2, 2, 2, 16, 6}},
	{"unshared/gqa", header{8, 20, 1, 4, 2, -13, 4}},
	{"unshared/mqa/3 layers", header{12, 7, 3, 3, 1, -20, 10}},
	{"shared/one head", header{4, 4, 1, 1, 1, 12, 1}},
}

func TestReadCheckpoint(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			m := makeCheckpoint(s.h, 1)
			ck, err := llama2c.ReadCheckpoint(m.file)
			if err != nil {
				t.Fatal(err)
			}
			vocab := int(s.h.vocab)
			if vocab < 0 {
				vocab = -vocab
			}
			want := llama2c.Config{Dim: int(s.h.dim), HiddenDim: int(s.h.hidden), Layers: int(s.h.layers), Heads: int(s.h.heads),
				KVHeads: int(s.h.kvHeads), VocabSize: vocab, SeqLen: int(s.h.seqLen), Shared: s.h.vocab > 0}
			if ck.Config != want {
				t.Errorf("config %+v; want %+v", ck.Config, want)
			}
			check := func(name string, got []float32) {
				t.Helper()
				if !slices.Equal(got, m.tensors[name].v) {
					t.Errorf("%s differs from the file", name)
				}
			}
			check("token_embd.weight", ck.Embedding)
			check("output_norm.weight", ck.FinalNorm)
			for l := range want.Layers {
				p := fmt.Sprintf("blk.%d.", l)
				for name, got := range map[string][]float32{
					"attn_norm": ck.AttnNorm[l], "attn_q": ck.Wq[l], "attn_k": ck.Wk[l], "attn_v": ck.Wv[l], "attn_output": ck.Wo[l],
					"ffn_norm": ck.FFNNorm[l], "ffn_gate": ck.W1[l], "ffn_down": ck.W2[l], "ffn_up": ck.W3[l],
				} {
					check(p+name+".weight", got)
				}
			}
			if want.Shared {
				if ck.Classifier != nil {
					t.Error("shared checkpoint has a classifier")
				}
			} else {
				check("output.weight", ck.Classifier)
			}
		})
	}
}

func TestReadCheckpointErrors(t *testing.T) {
	good := header{8, 12, 2, 2, 2, 16, 6}
	valid := makeCheckpoint(good, 2).file
	unshared := makeCheckpoint(header{8, 12, 2, 2, 2, -16, 6}, 2).file
	withHeader := func(h header) []byte {
		return append(h.bytes(), valid[28:]...)
	}
	tests := []struct {
		name string
		file []byte
		err  string
	}{
		{"empty", nil, "shorter than its 28-byte header"},
		{"truncated header", valid[:27], "shorter than its 28-byte header"},
		{"header only", valid[:28], "too short"},
		{"zero dim", withHeader(header{0, 12, 2, 2, 2, 16, 6}), "dim = 0"},
		{"negative hidden", withHeader(header{8, -12, 2, 2, 2, 16, 6}), "hidden_dim = -12"},
		{"zero layers", withHeader(header{8, 12, 0, 2, 2, 16, 6}), "n_layers = 0"},
		{"huge layers", withHeader(header{8, 12, 1 << 20, 2, 2, 16, 6}), "n_layers = 1048576"},
		{"zero heads", withHeader(header{8, 12, 2, 0, 2, 16, 6}), "n_heads = 0"},
		{"negative kv heads", withHeader(header{8, 12, 2, 2, -2, 16, 6}), "n_kv_heads = -2"},
		{"zero vocab", withHeader(header{8, 12, 2, 2, 2, 0, 6}), "vocab_size = 0"},
		{"min int vocab", withHeader(header{8, 12, 2, 2, 2, math.MinInt32, 6}), "vocab_size"},
		{"huge vocab", withHeader(header{8, 12, 2, 2, 2, 1 << 30, 6}), "vocab_size = 1073741824"},
		{"zero seq_len", withHeader(header{8, 12, 2, 2, 2, 16, 0}), "seq_len = 0"},
		{"huge dim", withHeader(header{1 << 30, 12, 2, 2, 2, 16, 6}), "dim = 1073741824"},
		{"all max", withHeader(header{math.MaxInt32, math.MaxInt32, math.MaxInt32, math.MaxInt32, math.MaxInt32, math.MaxInt32, math.MaxInt32}), "out of range"},
		{"heads do not divide dim", withHeader(header{8, 12, 2, 3, 3, 16, 6}), "heads"},
		{"kv heads do not divide heads", withHeader(header{8, 12, 2, 4, 3, 16, 6}), "n_kv_heads 3"},
		{"more kv heads than heads", withHeader(header{8, 12, 2, 2, 4, 16, 6}), "n_kv_heads 4"},
		{"odd head size", withHeader(header{6, 12, 2, 2, 2, 16, 6}), "even-sized heads"},
		{"one float short", valid[:len(valid)-4], "too short"},
		{"one byte short", valid[:len(valid)-1], "too short"},
		{"one float too many", append(slices.Clone(valid), 0, 0, 0, 0), "too long"},
		{"one byte too many", append(slices.Clone(valid), 0), "too long"},
		{"shared file, unshared header", withHeader(header{8, 12, 2, 2, 2, -16, 6}), "too short"},
		{"unshared file, shared header", append(good.bytes(), unshared[28:]...), "too long"},
		{"wrong seq_len", withHeader(header{8, 12, 2, 2, 2, 16, 7}), "needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck, err := llama2c.ReadCheckpoint(tt.file)
			if err == nil {
				t.Fatalf("no error; read %+v", ck.Config)
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "llama2c: ") {
				t.Errorf("error %q; want one containing %q", err, tt.err)
			}
		})
	}
}

func TestReadTokenizer(t *testing.T) {
	tokens, scores, _, _ := vocab(20)
	b := makeTokenizer(7, tokens, scores)
	v, err := llama2c.ReadTokenizer(b, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Tokens, tokens) || !slices.Equal(v.Scores, scores) {
		t.Errorf("read %q %v; want %q %v", v.Tokens, v.Scores, tokens, scores)
	}
	// Empty tokens and a token of exactly max_token_length.
	v, err = llama2c.ReadTokenizer(makeTokenizer(3, []string{"", "abc", "d"}, []float32{1, 2, 3}), 3)
	if err != nil || !slices.Equal(v.Tokens, []string{"", "abc", "d"}) {
		t.Errorf("ReadTokenizer = %q, %v", v.Tokens, err)
	}
}

func TestReadTokenizerErrors(t *testing.T) {
	tokens, scores, _, _ := vocab(12)
	valid := makeTokenizer(7, tokens, scores)
	tests := []struct {
		name string
		file []byte
		n    int
		err  string
	}{
		{"empty", nil, 12, "no header"},
		{"short header", valid[:3], 12, "no header"},
		{"zero max length", append(binary.LittleEndian.AppendUint32(nil, 0), valid[4:]...), 12, "max_token_length 0"},
		{"huge max length", append(binary.LittleEndian.AppendUint32(nil, 1<<20), valid[4:]...), 12, "max_token_length 1048576"},
		{"no tokens asked", valid, 0, "cannot hold 0 tokens"},
		{"negative count", valid, -1, "cannot hold -1 tokens"},
		{"absurd count", valid, 1 << 40, "cannot hold"},
		{"header only", valid[:4], 12, "cannot hold 12 tokens"},
		{"truncated in a score", valid[:len(valid)-7], 12, "ends at token 11 of 12"},
		{"truncated in the bytes", valid[:len(valid)-1], 12, "token 11 has length 1"},
		{"more tokens asked", valid, 13, "ends at token 12 of 13"},
		{"fewer tokens asked", valid, 11, "bytes left after its 11 tokens"},
		{"token over max length", makeTokenizer(4, []string{"abc", "hello"}, []float32{0, 0}), 2, "token 1 has length 5 (max_token_length 4"},
		{"length past the end", append(makeTokenizer(9, []string{"a"}, []float32{0}), 0, 0, 0, 0, 9, 0, 0, 0, 'x'), 2, "token 1 has length 9"},
		{"negative length", append(makeTokenizer(9, []string{"a"}, []float32{0}), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), 2, "token 1 has length 4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := llama2c.ReadTokenizer(tt.file, tt.n)
			if err == nil {
				t.Fatalf("no error; read %q", v.Tokens)
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "llama2c: ") {
				t.Errorf("error %q; want one containing %q", err, tt.err)
			}
		})
	}
}

// checkGGUF checks a converted file against the checkpoint it came from.
func checkGGUF(t *testing.T, data []byte, m *model, typ gguf.TensorType, name string) {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	h := m.h
	vocabSize := max(h.vocab, -h.vocab)
	uints := map[string]uint64{
		"llama.context_length":            uint64(h.seqLen),
		"llama.embedding_length":          uint64(h.dim),
		"llama.feed_forward_length":       uint64(h.hidden),
		"llama.block_count":               uint64(h.layers),
		"llama.attention.head_count":      uint64(h.heads),
		"llama.attention.head_count_kv":   uint64(h.kvHeads),
		"llama.rope.dimension_count":      uint64(h.dim / h.heads),
		"general.file_type":               map[gguf.TensorType]uint64{gguf.F32: 0, gguf.F16: 1}[typ],
		"tokenizer.ggml.unknown_token_id": 0,
		"tokenizer.ggml.bos_token_id":     1,
		"tokenizer.ggml.eos_token_id":     2,
	}
	for k, want := range uints {
		if got, err := f.Uint(k); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", k, got, err, want)
		}
	}
	floats := map[string]float64{
		"llama.attention.layer_norm_rms_epsilon": float64(float32(1e-5)),
		"llama.rope.freq_base":                   10000,
	}
	for k, want := range floats {
		if got, err := f.Float(k); err != nil || got != want {
			t.Errorf("%s = %g, %v; want %g", k, got, err, want)
		}
	}
	strs := map[string]string{"general.architecture": "llama", "tokenizer.ggml.model": "llama"}
	if name != "" {
		strs["general.name"] = name
	} else if _, ok := f.Value("general.name"); ok {
		t.Error("general.name set without a name")
	}
	for k, want := range strs {
		if got, err := f.String(k); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, err, want)
		}
	}
	bools := map[string]bool{"tokenizer.ggml.add_bos_token": true, "tokenizer.ggml.add_eos_token": false, "tokenizer.ggml.add_space_prefix": true}
	for k, want := range bools {
		if got, err := f.Bool(k); err != nil || got != want {
			t.Errorf("%s = %t, %v; want %t", k, got, err, want)
		}
	}
	_, scores, texts, types := vocab(int(vocabSize))
	if got, err := f.Strings("tokenizer.ggml.tokens"); err != nil || !slices.Equal(got, texts) {
		t.Errorf("tokens = %q, %v; want %q", got, err, texts)
	}
	if got, err := f.Float32s("tokenizer.ggml.scores"); err != nil || !slices.Equal(got, scores) {
		t.Errorf("scores = %v, %v; want %v", got, err, scores)
	}
	if got, err := f.Int32s("tokenizer.ggml.token_type"); err != nil || !slices.Equal(got, types) {
		t.Errorf("token types = %v, %v; want %v", got, err, types)
	}

	if len(f.Tensors) != len(m.tensors) {
		t.Errorf("%d tensors; want %d", len(f.Tensors), len(m.tensors))
	}
	for name, src := range m.tensors {
		tn, ok := f.Tensor(name)
		if !ok {
			t.Errorf("missing tensor %s", name)
			continue
		}
		if !slices.Equal(tn.Dims, src.dims) {
			t.Errorf("%s: dims %v; want %v", name, tn.Dims, src.dims)
		}
		matrix := len(src.dims) == 2
		switch {
		case typ == gguf.F16 && matrix:
			h, err := tn.F16()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			for i, x := range src.v {
				got := float64(float16.Frombits(h[i]).Float32())
				if tol := math.Abs(float64(x))*0x1p-11 + 0x1p-14; math.Abs(got-float64(x)) > tol {
					t.Errorf("%s[%d] = %g; want %g within half precision", name, i, got, x)
					break
				}
			}
		default:
			got, err := tn.F32()
			if err != nil {
				t.Errorf("%s: %v (type %v)", name, err, tn.Type)
				continue
			}
			if !slices.Equal(got, src.v) {
				t.Errorf("%s differs from the checkpoint", name)
			}
		}
	}
}

func TestConvert(t *testing.T) {
	for _, s := range shapes {
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
			t.Run(s.name+"/"+typ.String(), func(t *testing.T) {
				m := makeCheckpoint(s.h, 3)
				tokens, scores, _, _ := vocab(int(max(s.h.vocab, -s.h.vocab)))
				name := "tiny " + s.name
				data, st, err := llama2c.Convert(m.file, makeTokenizer(7, tokens, scores), llama2c.Options{Type: typ, Name: name})
				if err != nil {
					t.Fatal(err)
				}
				checkGGUF(t, data, m, typ, name)
				var matrices int64
				for _, tn := range m.tensors {
					if len(tn.dims) == 2 {
						matrices += int64(len(tn.v))
					}
				}
				if typ == gguf.F32 && st.Values != 0 || typ == gguf.F16 && (st.Values != matrices || st.Overflowed != 0 || st.MaxAbsErr == 0) {
					t.Errorf("stats %+v; want %d values converted for %v", st, matrices, typ)
				}
			})
		}
	}
	// Without a name there is no general.name.
	m := makeCheckpoint(shapes[0].h, 4)
	tokens, scores, _, _ := vocab(16)
	data, _, err := llama2c.Convert(m.file, makeTokenizer(7, tokens, scores), llama2c.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkGGUF(t, data, m, gguf.F32, "")
}

func TestConvertErrors(t *testing.T) {
	m := makeCheckpoint(shapes[0].h, 5)
	tokens, scores, _, _ := vocab(16)
	tok := makeTokenizer(7, tokens, scores)
	tests := []struct {
		name       string
		model, tok []byte
		opt        llama2c.Options
		err        string
	}{
		{"bad checkpoint", m.file[:100], tok, llama2c.Options{}, "checkpoint is too short"},
		{"bad tokenizer", m.file, tok[:len(tok)-8], llama2c.Options{}, "tokenizer ends at token"},
		{"tokenizer of a larger vocab", m.file, makeTokenizer(7, append(tokens, "x"), append(scores, 0)), llama2c.Options{}, "bytes left"},
		{"quantized type", m.file, tok, llama2c.Options{Type: gguf.Q8_0}, "type Q8_0"},
		{"bf16", m.file, tok, llama2c.Options{Type: gguf.BF16}, "type BF16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := llama2c.Convert(tt.model, tt.tok, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v; want one containing %q", err, tt.err)
			}
		})
	}
}

func TestToGGUFErrors(t *testing.T) {
	m := makeCheckpoint(shapes[1].h, 6)
	read := func() *llama2c.Checkpoint {
		ck, err := llama2c.ReadCheckpoint(m.file)
		if err != nil {
			t.Fatal(err)
		}
		return ck
	}
	tokens, scores, _, _ := vocab(13)
	tests := []struct {
		name string
		edit func(*llama2c.Checkpoint, *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab)
		err  string
	}{
		{"nil checkpoint", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) { return nil, v }, "needs a checkpoint"},
		{"nil vocab", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) { return ck, nil }, "vocabulary"},
		{"too few tokens", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			v.Tokens, v.Scores = v.Tokens[:12], v.Scores[:12]
			return ck, v
		}, "tokenizer has 12 tokens, checkpoint 13"},
		{"scores missing", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			v.Scores = v.Scores[:5]
			return ck, v
		}, "13 tokens but 5 scores"},
		{"zero heads", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			ck.Heads = 0
			return ck, v
		}, "n_heads = 0"},
		{"more layers than weights", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			ck.Layers = 2
			return ck, v
		}, "for 1 layers, not 2"},
		{"short weights", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			ck.W2[0] = ck.W2[0][:10]
			return ck, v
		}, "blk.0.ffn_down.weight"},
		{"no classifier", func(ck *llama2c.Checkpoint, v *llama2c.Vocab) (*llama2c.Checkpoint, *llama2c.Vocab) {
			ck.Classifier = nil
			return ck, v
		}, "output.weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &llama2c.Vocab{Tokens: slices.Clone(tokens), Scores: slices.Clone(scores)}
			ck, v := tt.edit(read(), v)
			_, _, err := llama2c.ToGGUF(ck, v, llama2c.Options{Type: gguf.F16})
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "llama2c: ") {
				t.Errorf("error %v; want one containing %q", err, tt.err)
			}
		})
	}
}

// readShared returns a file of the shared reference folder, which every
// wisp machine has.
func readShared(t *testing.T, name string) []byte {
	t.Helper()
	b, err := sharedfiles.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStories260K(t *testing.T) {
	model := readShared(t, "models/stories260K.bin")
	tok := readShared(t, "models/tok512.bin")
	ck, err := llama2c.ReadCheckpoint(model)
	if err != nil {
		t.Fatal(err)
	}
	want := llama2c.Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, VocabSize: 512, SeqLen: 512, Shared: true}
	if ck.Config != want {
		t.Errorf("config %+v; want %+v", ck.Config, want)
	}
	v, err := llama2c.ReadTokenizer(tok, 512)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tokens[1] != "\n<s>\n" || v.Tokens[13] != "<0x0A>" {
		t.Errorf("tokens 1 and 13 are %q and %q", v.Tokens[1], v.Tokens[13])
	}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
		t.Run(typ.String(), func(t *testing.T) {
			data, st, err := llama2c.Convert(model, tok, llama2c.Options{Type: typ, Name: "stories260K"})
			if err != nil {
				t.Fatal(err)
			}
			if typ == gguf.F16 && (st.Values != 260032-5*2*64-64 || st.Overflowed != 0) {
				t.Errorf("fp16 stats %v", st)
			}
			m, err := engine.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Config
			if c.Arch != "llama" || c.Dim != 64 || c.HiddenDim != 172 || c.Layers != 5 || c.Heads != 8 || c.KVHeads != 4 ||
				c.VocabSize != 512 || c.ContextLen != 512 || c.HeadDim != 8 || c.RopeNeox || c.QKVBias {
				t.Errorf("loaded config %+v", c)
			}
			if got := m.Params(); got != 260032 {
				t.Errorf("loaded %d parameters; want 260032", got)
			}
			f := m.File
			texts, _ := f.Strings("tokenizer.ggml.tokens")
			types, _ := f.Int32s("tokenizer.ggml.token_type")
			if texts[1] != "<s>" || texts[2] != "</s>" || texts[13] != "<0x0A>" || types[13] != 6 || types[1] != 3 {
				t.Errorf("tokens 1, 2, 13: %q %q %q, types %d %d", texts[1], texts[2], texts[13], types[1], types[13])
			}
			for i, tk := range texts {
				if strings.Contains(tk, " ") {
					t.Errorf("token %d %q has a space, not U+2581", i, tk)
				}
			}
			ids, err := m.Tokenize("Once upon a time")
			if err != nil || len(ids) < 2 || ids[0] != 1 {
				t.Errorf("Tokenize = %v, %v; want BOS then tokens", ids, err)
			}
		})
	}
	// The 32000-token tokenizer parses, but not as stories260K's.
	big := readShared(t, "models/tokenizer32k.bin")
	if v, err := llama2c.ReadTokenizer(big, 32000); err != nil || v.Tokens[13] != "<0x0A>" {
		t.Errorf("tokenizer32k: %v", err)
	}
	if _, _, err := llama2c.Convert(model, big, llama2c.Options{}); err == nil || !strings.Contains(err.Error(), "larger vocabulary") {
		t.Errorf("converting stories260K with the 32000-token tokenizer: %v; want an error", err)
	}
}

// tokenizerSeed is a small valid tokenizer.bin for fuzzing.
func tokenizerSeed(n int) []byte {
	tokens, scores, _, _ := vocab(n)
	return makeTokenizer(7, tokens, scores)
}

func FuzzReadCheckpoint(f *testing.F) {
	for i, s := range shapes {
		m := makeCheckpoint(s.h, uint64(i))
		f.Add(m.file)
		f.Add(m.file[:len(m.file)/2])
	}
	f.Add([]byte{})
	f.Add(header{2, 1, 1, 1, 1, -1, 1}.bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		ck, err := llama2c.ReadCheckpoint(b)
		if err != nil {
			if ck != nil {
				t.Fatal("a checkpoint and an error")
			}
			return
		}
		c := ck.Config
		if len(ck.Embedding) != c.VocabSize*c.Dim || len(ck.FinalNorm) != c.Dim || len(ck.W2) != c.Layers ||
			(c.Shared != (ck.Classifier == nil)) {
			t.Fatalf("inconsistent checkpoint %+v", c)
		}
		if c.VocabSize > 4096 {
			return
		}
		tokens, scores, _, _ := vocab(c.VocabSize)
		if _, _, err := llama2c.ToGGUF(ck, &llama2c.Vocab{Tokens: tokens, Scores: scores}, llama2c.Options{Type: gguf.F16}); err != nil {
			t.Fatalf("ToGGUF of a valid checkpoint: %v", err)
		}
	})
}

func FuzzReadTokenizer(f *testing.F) {
	f.Add(tokenizerSeed(12), 12)
	f.Add(tokenizerSeed(20), 19)
	f.Add(makeTokenizer(3, []string{"", "abc"}, []float32{0, 1}), 2)
	f.Add([]byte{1, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		v, err := llama2c.ReadTokenizer(b, n)
		if err != nil {
			return
		}
		if len(v.Tokens) != n || len(v.Scores) != n {
			t.Fatalf("%d tokens and %d scores; asked for %d", len(v.Tokens), len(v.Scores), n)
		}
		maxLen := int(binary.LittleEndian.Uint32(b))
		total := 4
		for _, tk := range v.Tokens {
			if len(tk) > maxLen {
				t.Fatalf("token %q is longer than max_token_length %d", tk, maxLen)
			}
			total += 8 + len(tk)
		}
		if total != len(b) {
			t.Fatalf("tokens account for %d of %d bytes", total, len(b))
		}
	})
}

func Example() {
	// A checkpoint of one layer: dim 4, hidden 4, one head, 12 tokens
	// (shared classifier), seq_len 1. Its weights are all 0.5.
	ckpt := header{4, 4, 1, 1, 1, 12, 1}.bytes()
	floats := 12*4 + 4 + 4*4*4 + 4 + 3*4*4 + 4 + 4
	for range floats {
		ckpt = binary.LittleEndian.AppendUint32(ckpt, math.Float32bits(0.5))
	}
	tokens, scores, _, _ := vocab(12)
	tok := makeTokenizer(7, tokens, scores)

	data, st, err := llama2c.Convert(ckpt, tok, llama2c.Options{Type: gguf.F16, Name: "tiny"})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := gguf.Parse(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	texts, _ := f.Strings("tokenizer.ggml.tokens")
	q, _ := f.Tensor("blk.0.attn_q.weight")
	fmt.Println(len(f.Tensors), "tensors;", st)
	fmt.Println(q.Dims, q.Type)
	fmt.Printf("%q\n", texts[:7])
	// Output:
	// 11 tensors; 160 values, 0 overflowed, 0 flushed to zero, max abs error 0
	// [4 4] F16
	// ["<unk>" "<s>" "</s>" "<0x0A>" "<0x41>" "<0xff>" "▁the"]
}

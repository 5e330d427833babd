package retype

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/llama2c"
	"wisp/internal/oracle"
	"wisp/internal/synth"
	"wisp/tools/quant"
)

// TestAgainstLlamaCpp quantizes one random model with wisp and with
// llama.cpp's llama_model_quantize (the oracle; make oracle builds it, and
// make test runs it) to every type both write, and demands that wisp
// choose the same type for every tensor (the q4_k_m and q5_k_m mixtures,
// the fallbacks) and that its weights be no further from the original than
// llama.cpp's: the squared error over the whole model at most 2 % above
// llama.cpp's.
func TestAgainstLlamaCpp(t *testing.T) {
	o, err := oracle.Locate()
	if err != nil {
		t.Skipf("llama.cpp oracle not installed (make oracle): %v", err)
	}
	// Rows of 256 everywhere but ffn_down's 352 (whole blocks of 32, not
	// of 256), so that the k-quants apply and fall back.
	shape := synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 352, Layers: 3, Heads: 4, KVHeads: 2, Vocab: 512, ContextLen: 64, RopeBase: 10000}
	src, err := synth.Bytes(shape, synth.Options{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "f32.gguf")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		t.Fatal(err)
	}
	orig, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range quant.Schemes() {
		if s.Base() == gguf.F32 || s.Base() == gguf.F16 {
			continue
		}
		t.Run(s.Name(), func(t *testing.T) {
			out := filepath.Join(dir, s.Name()+".gguf")
			if err := o.Quantize(in, out, int(s.FileType()), !s.Mixture()); err != nil {
				t.Fatal(err)
			}
			theirBytes, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := gguf.Parse(theirBytes)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := Convert(orig, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := gguf.Parse(write(t, b))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*gguf.Tensor{}
			for i := range theirs.Tensors {
				byName[theirs.Tensors[i].Name] = &theirs.Tensors[i]
			}
			var errOurs, errTheirs float64
			for i, o := range orig.Tensors {
				w, l := &ours.Tensors[i], byName[o.Name]
				if l == nil {
					t.Fatalf("llama.cpp's file has no %s", o.Name)
				}
				if w.Type != l.Type {
					t.Errorf("%s: wisp stores %v, llama.cpp %v", o.Name, w.Type, l.Type)
					continue
				}
				x, _ := quant.Decode(o.Type, o.Data, int(o.Elements()))
				a, err := quant.Decode(w.Type, w.Data, len(x))
				if err != nil {
					t.Fatal(err)
				}
				c, err := quant.Decode(l.Type, l.Data, len(x))
				if err != nil {
					t.Fatal(err)
				}
				for j := range x {
					errOurs += math.Pow(float64(a[j]-x[j]), 2)
					errTheirs += math.Pow(float64(c[j]-x[j]), 2)
				}
			}
			t.Logf("%s: squared error wisp %.4g, llama.cpp %.4g (ratio %.4f)", s.Name(), errOurs, errTheirs, errOurs/errTheirs)
			if errOurs > 1.02*errTheirs {
				t.Errorf("wisp's %s weights are further from the original than llama.cpp's: %.4g against %.4g", s.Name(), errOurs, errTheirs)
			}
		})
	}
}

// greedyTokens is how many tokens llama.cpp must continue wisp's files
// with exactly as wisp does.
const greedyTokens = 32

// TestLlamaCppContinuesWispFiles: every file wisp writes, of every scheme,
// loads in llama.cpp, and llama.cpp's greedy choice after each token of
// wisp's own greedy continuation of a prompt is wisp's next token, for
// greedyTokens tokens (stories260K, a trained model: no near ties).
func TestLlamaCppContinuesWispFiles(t *testing.T) {
	o, err := oracle.Locate()
	if err != nil {
		t.Skipf("llama.cpp oracle not installed (make oracle): %v", err)
	}
	src, err := llama2c.Stories260K(gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	f32, err := gguf.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, s := range quant.Schemes() {
		t.Run(s.Name(), func(t *testing.T) {
			b, _, err := Convert(f32, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := write(t, b)
			path := filepath.Join(dir, s.Name()+".gguf")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := engine.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			continuesAsWisp(t, o, path, m, []int{1, 403, 407, 261}, greedyTokens) // BOS, then a prompt's ids
		})
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// defaultTokens is how many tokens of its greedy continuation of a prompt
// llama.cpp must choose as wisp does on the default model.
const defaultTokens = 200

// TestLlamaCppContinuesDefaultModel: the default model, in the type it
// ships in, continued greedily by wisp from "And God said"; llama.cpp's
// greedy choice after each token is wisp's next, for defaultTokens tokens.
func TestLlamaCppContinuesDefaultModel(t *testing.T) {
	o, err := oracle.Locate()
	if err != nil {
		t.Skipf("llama.cpp oracle not installed (make oracle): %v", err)
	}
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "models", "default.gguf")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tokenize("And God said")
	if err != nil {
		t.Fatal(err)
	}
	continuesAsWisp(t, o, path, m, append([]int{m.Tokenizer.BOS()}, ids...), defaultTokens)
}

// continuesAsWisp has wisp continue the prompt greedily for n tokens, then
// checks that llama.cpp, given the prompt and those tokens, picks wisp's
// next token after each of them (from the prompt's last on).
func continuesAsWisp(t *testing.T, o oracle.Oracle, path string, m *engine.Model, prompt []int, n int) {
	t.Helper()
	st, err := m.NewState(0)
	if err != nil {
		t.Fatal(err)
	}
	tokens := slices.Clone(prompt)
	l, err := st.Forward(tokens)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		next := argmax(l)
		tokens = append(tokens, next)
		if l, err = st.Forward([]int{next}); err != nil {
			t.Fatal(err)
		}
	}
	theirs, err := o.Logits(path, tokens[:len(tokens)-1])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(prompt) - 1; i < len(tokens)-1; i++ {
		if got := argmax(theirs[i]); got != tokens[i+1] {
			t.Fatalf("after %d tokens llama.cpp picks %d, wisp %d", i+1, got, tokens[i+1])
		}
	}
}

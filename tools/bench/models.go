package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/llama2c"
	"wisp/internal/synth"
)

// modelSpec is one model the bench measures, in F16 and F32 files.
type modelSpec struct {
	Key   string
	Title string
	// checkEOS makes the prompt one whose greedy continuation does not
	// end early: trained models may end a story within the tokens.
	checkEOS bool
	// quantize makes the Q8_0 and Q4_K_M files too.
	quantize bool
	// build returns the bytes of the model's GGUF file of the given type.
	build func(typ gguf.TensorType) ([]byte, error)
}

// modelSpecs returns the bench's models: stories260K from shared (when
// its checkpoint and tokenizer are there), then random models of the
// TinyStories-15M and SmolLM2-135M shapes. only, when not empty, keeps
// those whose keys it lists.
func modelSpecs(shared string, only []string) ([]modelSpec, error) {
	var specs []modelSpec
	ck := filepath.Join(shared, "models", "stories260K.bin")
	tok := filepath.Join(shared, "models", "tok512.bin")
	if _, err := os.Stat(ck); err == nil {
		specs = append(specs, modelSpec{
			Key:      "stories260K",
			Title:    "stories260K (Karpathy's TinyStories 260K, trained weights)",
			checkEOS: true,
			build: func(typ gguf.TensorType) ([]byte, error) {
				m, err := os.ReadFile(ck)
				if err != nil {
					return nil, err
				}
				t, err := os.ReadFile(tok)
				if err != nil {
					return nil, err
				}
				out, _, err := llama2c.Convert(m, t, llama2c.Options{Type: typ, Name: "stories260K"})
				if err != nil {
					return nil, fmt.Errorf("converting %s: %w", ck, err)
				}
				return out, nil
			},
		})
	}
	for _, s := range []struct{ key, title string }{
		{"stories15M", "stories15M shape (TinyStories-15M), random weights"},
		{"smollm2-135m", "smollm2-135m shape (SmolLM2-135M), random weights"},
	} {
		shape, ok := synth.Shapes()[s.key]
		if !ok {
			return nil, fmt.Errorf("synth knows no shape %q", s.key)
		}
		specs = append(specs, modelSpec{
			Key:      s.key,
			Title:    s.title,
			quantize: true,
			build: func(typ gguf.TensorType) ([]byte, error) {
				b, err := synth.Build(shape, synth.Options{Type: typ, Seed: 1, Name: "random-" + s.key})
				if err != nil {
					return nil, err
				}
				var buf bytes.Buffer
				if _, err := b.WriteTo(&buf); err != nil {
					return nil, err
				}
				return buf.Bytes(), nil
			},
		})
	}
	if len(only) == 0 {
		return specs, nil
	}
	var kept []modelSpec
	for _, s := range specs {
		for _, k := range only {
			if strings.EqualFold(k, s.Key) {
				kept = append(kept, s)
			}
		}
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("-models %s: none of these is available (stories260K needs %s)", strings.Join(only, ","), ck)
	}
	return kept, nil
}

// fileName is the name of a model's file of a type in the models folder.
func fileName(key, typ string) string {
	return strings.ToLower(key + "-" + typ + ".gguf")
}

// promptText is the text the prompts are cut from: plain English, so that
// every vocabulary (stories260K's 512 tokens, the random models' letters
// and made-up words) tokenizes it without surprises.
const promptText = `Once upon a time, in a small town by the sea, there lived a little girl named Lily. ` +
	`She liked to walk on the beach every morning with her dog, Max. One day, Lily found a shiny shell ` +
	`under a big rock. She picked it up and showed it to Max. Max wagged his tail and barked. ` +
	`Lily put the shell in her pocket and ran home to show her mom. Her mom smiled and said that the shell ` +
	`was very special, because it could sing the song of the sea. Lily held the shell to her ear and listened. ` +
	`She heard the waves, the wind and the birds. She was so happy that she danced around the kitchen. ` +
	`The next day, Lily took the shell to school. Her friends wanted to hear the song too, so they sat in a circle ` +
	`and passed the shell from hand to hand. Tom said it sounded like rain. Sue said it sounded like a kitten. ` +
	`The teacher said that everyone hears something different, and that is what makes the shell so special. ` +
	`After school, Lily and Max went back to the beach. The sun was low and the sky was orange and pink. ` +
	`Lily sat on the sand and thanked the sea for her gift. Then she walked home, humming the song of the shell.`

// cutPrompt returns the shortest prefix of text (not ending in a space)
// that the model tokenizes, BOS included, into exactly n tokens, and the
// tokens.
func cutPrompt(m *engine.Model, text string, n int) (string, []int, error) {
	for end := 1; end <= len(text); end++ {
		if text[end-1] == ' ' || (end < len(text) && !isRuneStart(text[end])) {
			continue
		}
		ids, err := m.Tokenize(text[:end])
		if err != nil {
			return "", nil, err
		}
		if len(ids) == n {
			return text[:end], ids, nil
		}
		if len(ids) > n+8 {
			break
		}
	}
	return "", nil, fmt.Errorf("no prefix of the prompt text is %d tokens long for this model", n)
}

// isRuneStart reports whether b begins a UTF-8 sequence.
func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// weightElements counts the weights one decoded token reads: every
// element of every matrix (the output's included, which is the
// embedding itself when tied) and of every vector (norms, biases), and
// the one row of the embedding it looks up. matrices are stored as F16
// or F32, vectors always as F32.
func weightElements(m *engine.Model) (matrices, vectors int64) {
	mat := func(x engine.Matrix) { matrices += int64(x.Rows) * int64(x.Cols) }
	vec := func(v []float32) { vectors += int64(len(v)) }
	for _, b := range m.Blocks {
		vec(b.AttnNorm)
		mat(b.Wq)
		mat(b.Wk)
		mat(b.Wv)
		vec(b.Bq)
		vec(b.Bk)
		vec(b.Bv)
		mat(b.Wo)
		vec(b.FFNNorm)
		mat(b.Gate)
		mat(b.Up)
		mat(b.Down)
	}
	vec(m.OutputNorm)
	mat(m.Output)
	matrices += int64(m.Dim)
	return matrices, vectors
}

// preparedModel is a model whose files are written, with what the bench
// needs to know of it.
type preparedModel struct {
	spec       modelSpec
	result     modelResult // the result's header; rows come later
	promptIDs  []int
	warmupText string
	warmupIDs  []int
	types      []string // the file types written
}

// noEOSText returns the first tail of text, starting at a sentence, whose
// prompt of promptTokens tokens the model continues greedily for
// decodeTokens tokens without ending it (natively; every runtime computes
// the same logits), so that every runtime decodes all the tokens.
func noEOSText(m *engine.Model, text string, promptTokens, decodeTokens int) (string, error) {
	for start := 0; start < len(text); {
		tail := text[start:]
		_, ids, err := cutPrompt(m, tail, promptTokens)
		if err != nil {
			break // the tails only get shorter
		}
		s, err := m.NewSession(option.Options{Context: promptTokens + decodeTokens, MaxTokens: decodeTokens})
		if err != nil {
			return "", err
		}
		if _, err := s.PromptTokens(ids); err != nil {
			return "", err
		}
		for {
			if _, err := s.Next(); err == io.EOF {
				break
			} else if err != nil {
				return "", err
			}
		}
		if s.Done() == engine.DoneLength {
			return tail, nil
		}
		i := strings.Index(tail, ". ")
		if i < 0 {
			break
		}
		start += i + 2
	}
	return "", fmt.Errorf("every prompt cut from the text ends in fewer than %d greedy tokens", decodeTokens)
}

// tensorBytesPerToken returns the bytes of weights a decoded token reads
// in a GGUF file: every tensor once, except a token embedding table that
// a separate output matrix leaves to be looked up (one row of it is read).
func tensorBytesPerToken(path string) (int64, error) {
	f, err := gguf.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var total int64
	var embd *gguf.Tensor
	untied := false
	for i := range f.Tensors {
		t := &f.Tensors[i]
		total += int64(len(t.Data))
		switch t.Name {
		case "token_embd.weight":
			embd = t
		case "output.weight":
			untied = true
		}
	}
	if untied && embd != nil && len(embd.Dims) == 2 && embd.Dims[1] > 0 {
		total -= int64(len(embd.Data)) - int64(len(embd.Data))/int64(embd.Dims[1])
	}
	return total, nil
}

// quantizeFiles makes the model's Q8_0 and Q4_K_M files from its F32 file
// with llama.cpp's own quantizer (the oracle's quantize, which calls
// llama_model_quantize as llama-quantize does), as users' files are made.
func quantizeFiles(pm *preparedModel, dir, oracle string) error {
	res := &pm.result
	src := filepath.Join(dir, fileName(pm.spec.Key, "F32"))
	for _, t := range fileTypes {
		if t.ftype == 0 {
			continue
		}
		out := filepath.Join(dir, fileName(pm.spec.Key, t.name))
		cmd := exec.Command(oracle, "quantize", src, out, strconv.Itoa(t.ftype))
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %s quantize: %v: %s", pm.spec.Key, t.name, oracle, err, bytes.TrimSpace(msg))
		}
		st, err := os.Stat(out)
		if err != nil {
			return err
		}
		res.FileBytes[t.name] = st.Size()
		if res.WeightBytes[t.name], err = tensorBytesPerToken(out); err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
		pm.types = append(pm.types, t.name)
	}
	return nil
}

// prepare writes a model's F16 and F32 files into dir (and, with an
// oracle, its Q8_0 and Q4_K_M files) and works out its prompt
// (promptTokens tokens), its warm-up prompt (warmupPrompt tokens) and its
// weight bytes per token.
func prepare(spec modelSpec, dir, oracle string, promptTokens, decodeTokens, warmupPrompt int) (*preparedModel, error) {
	pm := &preparedModel{spec: spec}
	res := &pm.result
	res.Key, res.Title = spec.Key, spec.Title
	res.FileBytes = map[string]int64{}
	res.WeightBytes = map[string]int64{}
	for _, typ := range []struct {
		name string
		tt   gguf.TensorType
	}{{"F16", gguf.F16}, {"F32", gguf.F32}} {
		data, err := spec.build(typ.tt)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", spec.Key, typ.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fileName(spec.Key, typ.name)), data, 0o644); err != nil {
			return nil, err
		}
		res.FileBytes[typ.name] = int64(len(data))
		pm.types = append(pm.types, typ.name)
		if typ.tt != gguf.F16 {
			continue
		}
		m, err := engine.Load(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Key, err)
		}
		mats, vecs := weightElements(m)
		res.WeightBytes["F16"] = 2*mats + 4*vecs
		res.WeightBytes["F32"] = 4*mats + 4*vecs
		res.Params = m.Params()
		res.SplitProducts = splitProducts(m)
		res.Shape = fmt.Sprintf("dim %d, hidden %d, %d layers, %d heads (%d key/value), vocabulary %d",
			m.Dim, m.HiddenDim, m.Layers, m.Heads, m.KVHeads, m.VocabSize)
		text := promptText
		if spec.checkEOS {
			if text, err = noEOSText(m, promptText, promptTokens, decodeTokens); err != nil {
				return nil, fmt.Errorf("%s: %w", spec.Key, err)
			}
		}
		if res.Prompt, pm.promptIDs, err = cutPrompt(m, text, promptTokens); err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Key, err)
		}
		res.PromptTokens = len(pm.promptIDs)
		if pm.warmupText, pm.warmupIDs, err = cutPrompt(m, text, warmupPrompt); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", spec.Key, err)
		}
	}
	if spec.quantize && oracle != "" {
		if err := quantizeFiles(pm, dir, oracle); err != nil {
			return nil, err
		}
	}
	return pm, nil
}

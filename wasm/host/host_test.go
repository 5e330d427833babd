package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/llama2c"
	"wisp/internal/sharedfiles"
	"wisp/internal/synth"
)

// The engine module, built once by TestMain, and a compilation cache shared
// by the tests' runtimes.
var (
	moduleWasm []byte
	testCache  wazero.CompilationCache
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wisp-host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	path, err := BuildModule(context.Background(), dir)
	if err == nil {
		moduleWasm, err = os.ReadFile(path)
	}
	os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCache = defaultCache()
	code := m.Run()
	testCache.Close(context.Background())
	os.Exit(code)
}

// newRuntime returns a fresh instance of the module, closed with the test.
func newRuntime(tb testing.TB) *Runtime {
	tb.Helper()
	ctx := context.Background()
	r, err := New(ctx, moduleWasm, &Options{Cache: testCache})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close(ctx) })
	return r
}

// synthModel returns the bytes of a random model.
func synthModel(tb testing.TB, s synth.Shape, typ gguf.TensorType, seed uint64) []byte {
	tb.Helper()
	buf, err := synth.Bytes(s, synth.Options{Type: typ, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	return buf
}

// The text that llama2.c's run.c prints for stories260K, greedy, from BOS,
// with -n 200 (see ../shared/models/README.md).
const stories260KText = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily's mom said, "Lily, let's go to the park." Lily was sad and didn't know what to do. She said, "I want to play with your ball, but I can't find it."
Lily was sad and didn't know what to do. She said, "I'm sorry, Lily. I didn't know what to do."
Lily didn't want to help her mom, so she`

func TestStories260K(t *testing.T) {
	ck, err := sharedfiles.Read("models/stories260K.bin")
	if err != nil {
		t.Skip("reference model missing:", err)
	}
	tok, err := sharedfiles.Read("models/tok512.bin")
	if err != nil {
		t.Skip("reference tokenizer missing:", err)
	}
	data, _, err := llama2c.Convert(ck, tok, llama2c.Options{Type: gguf.F32})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRuntime(t)
	m, err := r.Load(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Architecture != "llama" || info.VocabSize != 512 || info.Dim != 64 || info.Layers != 5 || info.KVHeads != 4 || info.F16 || info.Kernels != "wasm-simd128" {
		t.Errorf("Info() = %+v", info)
	}
	// llama2.c's -n 200 evaluates 200 positions and prints the token
	// sampled after the last one too.
	const n = 200
	var text strings.Builder
	echo, err := m.Prompt(ctx, "", option.Options{Context: n, MaxTokens: n})
	if err != nil {
		t.Fatal(err)
	}
	text.WriteString(echo)
	for {
		piece, err := m.Next(ctx)
		text.WriteString(piece)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := text.String(); got != stories260KText {
		t.Errorf("text differs from llama2.c's:\n got %q\nwant %q", got, stories260KText)
	}
	if m.Done() != engine.DoneLength {
		t.Errorf("Done() = %q, want %q", m.Done(), engine.DoneLength)
	}
}

// shapes are the random models whose logits must match the native engine's.
var shapes = []struct {
	name  string
	shape synth.Shape
	typ   gguf.TensorType
}{
	{"llama-gqa-tied-f16", synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 176, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 320, ContextLen: 256, RopeBase: 10000, Tied: true}, gguf.F16},
	{"qwen2-odd-f16", synth.Shape{Arch: "qwen2", Dim: 96, HiddenDim: 200, Layers: 2, Heads: 6, KVHeads: 2, Vocab: 301, ContextLen: 256, RopeBase: 1e6, Tied: true}, gguf.F16},
	{"llama-untied-f32", synth.Shape{Arch: "llama", Dim: 48, HiddenDim: 130, Layers: 3, Heads: 4, KVHeads: 4, Vocab: 300, ContextLen: 256, RopeBase: 10000, Tied: false}, gguf.F32},
	// Blocks of their own widths, as wisp prune --per-layer writes them.
	{"llama-per-layer-f16", synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 176, Layers: 3, Heads: 8, KVHeads: 4, Vocab: 300, ContextLen: 256, RopeBase: 10000, Tied: true,
		LayerHidden: []int{176, 40, 97}, LayerHeads: []int{8, 2, 6}, LayerKVHeads: []int{4, 1, 3}}, gguf.F16},
}

// sameBits reports the first index where two vectors differ in their bits.
func sameBits(got, want []float32) (int, bool) {
	if len(got) != len(want) {
		return -1, false
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i, false
		}
	}
	return 0, true
}

func TestLogitsMatchNative(t *testing.T) {
	const promptLen, steps = 64, 64
	ctx := context.Background()
	for i, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			data := synthModel(t, tc.shape, tc.typ, uint64(i+1))
			native, err := engine.Load(bytes.Clone(data))
			if err != nil {
				t.Fatal(err)
			}
			r := newRuntime(t)
			m, err := r.Load(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Info(); got.Flushed != native.Flushed || got.Params != native.Params() || got.F16 != (tc.typ == gguf.F16) {
				t.Errorf("Info() = %+v; native flushed %d, params %d", got, native.Flushed, native.Params())
			}

			rng := rand.New(rand.NewPCG(uint64(i), 7))
			ids := []int{native.Tokenizer.BOS()}
			for len(ids) < promptLen {
				ids = append(ids, 3+rng.IntN(tc.shape.Vocab-3))
			}
			opts := option.Options{Context: promptLen + steps + 8, MaxTokens: steps}
			sess, err := native.NewSession(opts)
			if err != nil {
				t.Fatal(err)
			}
			wantEcho, err := sess.PromptTokens(ids)
			if err != nil {
				t.Fatal(err)
			}
			echo, err := m.PromptTokens(ctx, ids, opts)
			if err != nil {
				t.Fatal(err)
			}
			if echo != wantEcho {
				t.Errorf("echo = %q, want %q", echo, wantEcho)
			}
			compare := func(step int) {
				t.Helper()
				got, err := m.Logits(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if j, ok := sameBits(got, sess.Logits()); !ok {
					t.Fatalf("step %d: logits differ at %d (of %d): wazero %v, native %v", step, j, len(got), got[max(j, 0)], sess.Logits()[max(j, 0)])
				}
			}
			compare(0)
			for step := 1; ; step++ {
				wantPiece, wantErr := sess.Next()
				piece, err := m.Next(ctx)
				if err != wantErr || piece != wantPiece {
					t.Fatalf("step %d: Next() = %q, %v; native %q, %v", step, piece, err, wantPiece, wantErr)
				}
				if err == io.EOF {
					if m.Done() != sess.Done() {
						t.Errorf("Done() = %q, native %q", m.Done(), sess.Done())
					}
					if step <= steps/2 {
						t.Errorf("generation ended after %d steps (%s): pick another seed", step, m.Done())
					}
					break
				}
				if tok := sess.Tokens()[len(sess.Tokens())-1]; m.Token() != tok {
					t.Fatalf("step %d: Token() = %d, native %d", step, m.Token(), tok)
				}
				compare(step)
			}
		})
	}
}

func TestGenerateMatchesNative(t *testing.T) {
	ctx := context.Background()
	tc := shapes[0]
	data := synthModel(t, tc.shape, tc.typ, 9)
	native, err := engine.Load(bytes.Clone(data))
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t)
	m, err := r.Load(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "the cat sat on the mat"
	for _, tc := range []struct {
		name string
		opts option.Options
	}{
		{"greedy", option.Options{Context: 96, MaxTokens: 40}},
		{"top-p", option.Options{Context: 96, Temperature: 0.9, TopP: 0.9, Seed: 42}},
		{"top-k-min-p-penalty", option.Options{Context: 128, Temperature: 1.1, TopK: 20, MinP: 0.01, RepeatPenalty: 1.3, RepeatLastN: 16, Seed: 7, MaxTokens: 60}},
		{"stop", option.Options{Context: 96, Temperature: 0.7, Seed: 3, Stop: []string{"e", "ab"}}},
	} {
		opts := tc.opts
		t.Run(tc.name, func(t *testing.T) {
			sess, err := native.NewSession(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sess.Prompt(prompt); err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for {
				piece, err := sess.Next()
				want.WriteString(piece)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var got strings.Builder
			err = m.Generate(ctx, prompt, opts, func(piece string) error {
				got.WriteString(piece)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() || m.Done() != sess.Done() {
				t.Errorf("Generate gave %q (%s), native %q (%s)", got.String(), m.Done(), want.String(), sess.Done())
			}
		})
	}
}

func TestTokenizeMatchesNative(t *testing.T) {
	ctx := context.Background()
	data := synthModel(t, shapes[1].shape, gguf.F32, 1)
	native, err := engine.Load(bytes.Clone(data))
	if err != nil {
		t.Fatal(err)
	}
	m, err := newRuntime(t).Load(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"", "a", "hello world", "naïve café ☕ 日本", "  spaces\n\tand\ttabs  ", strings.Repeat("xyz ", 200)} {
		for _, bos := range []bool{false, true} {
			want, err := native.Tokenizer.Encode(text)
			if bos {
				want, err = native.Tokenize(text)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Tokenize(ctx, text, bos)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Tokenize(%q, %v) = %v, native %v", text, bos, got, want)
			}
		}
	}
}

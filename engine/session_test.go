package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/cputime"
	"wisp/internal/llama2c"
	"wisp/internal/sharedfiles"
	"wisp/internal/synth"
)

// generate runs a session to the end and returns the echo and the text.
func generate(t testing.TB, m *engine.Model, prompt string, opt option.Options) (string, string) {
	t.Helper()
	s, err := m.NewSession(opt)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := s.Prompt(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		piece, err := s.Next()
		b.WriteString(piece)
		if errors.Is(err, io.EOF) {
			return echo, b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func loadStories(t testing.TB, typ gguf.TensorType) *engine.Model {
	t.Helper()
	b, err := llama2c.Stories260K(typ)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStories260KKnownGood checks the F32 model against the text llama2.c
// prints: greedy, 200 positions, no prompt (BOS only), which is 200 tokens
// after BOS.
func TestStories260KKnownGood(t *testing.T) {
	want, err := sharedfiles.KnownGood()
	if err != nil {
		t.Fatal(err)
	}
	m := loadStories(t, gguf.F32)
	echo, got := generate(t, m, "", option.Options{Context: 200, MaxTokens: 200})
	if echo+got+"\n" != want {
		t.Errorf("stories260K F32 greedy:\ngot  %q\nwant %q", echo+got+"\n", want)
	}
}

// TestStories260KF16 reports how far the F16 model agrees with the known-good
// text, and requires at least the first sentences to match.
func TestStories260KF16(t *testing.T) {
	want, err := sharedfiles.KnownGood()
	if err != nil {
		t.Fatal(err)
	}
	m := loadStories(t, gguf.F16)
	_, got := generate(t, m, "", option.Options{Context: 200, MaxTokens: 200})
	n := 0
	for n < len(got) && n < len(want) && got[n] == want[n] {
		n++
	}
	t.Logf("F16 agrees with the F32 known-good text for %d of %d bytes; flushed %d subnormal halves", n, len(want)-1, m.Flushed)
	if n < 100 {
		t.Errorf("F16 diverges after %d bytes: %q", n, got[:n])
	}
}

func randomModel(t testing.TB, shape synth.Shape, typ gguf.TensorType) *engine.Model {
	t.Helper()
	buf, err := synth.Bytes(shape, synth.Options{Type: typ, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(buf)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var tiny = synth.Shape{Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, RopeBase: 10000, Tied: true}

func TestPromptLongerThanContext(t *testing.T) {
	m := randomModel(t, tiny, gguf.F32)
	s, err := m.NewSession(option.Options{Context: 8})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Prompt(strings.Repeat("a b c d ", 10))
	if err == nil || !strings.Contains(err.Error(), "context holds 8") {
		t.Fatalf("got error %v, want one saying the context holds 8", err)
	}
	if _, err := m.NewSession(option.Options{Context: 65}); err == nil {
		t.Error("a context longer than the model's was accepted")
	}
}

func TestContextFull(t *testing.T) {
	m := randomModel(t, tiny, gguf.F32)
	s, err := m.NewSession(option.Options{Context: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PromptTokens([]int{1, 100, 101}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if s.Done() == engine.DoneContext && n != 8 {
		t.Errorf("generated %d tokens after a 3-token prompt in a context of 10, want 8 (the last one unevaluated)", n)
	}
	if d := s.Done(); d != engine.DoneContext && d != engine.DoneEOS {
		t.Errorf("done %q, want context (or eos)", d)
	}
}

func TestInvalidUTF8Prompt(t *testing.T) {
	m := randomModel(t, tiny, gguf.F32)
	s, err := m.NewSession(option.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prompt("ok \xff no"); err == nil {
		t.Error("invalid UTF-8 prompt accepted")
	}
	if _, err := s.Next(); err == nil {
		t.Error("Next before a successful prompt did not fail")
	}
}

// TestStopStrings checks that text is cut before a stop string, even when
// the string spans several tokens, and that the text before it is intact.
func TestStopStrings(t *testing.T) {
	m := loadStories(t, gguf.F32)
	_, full := generate(t, m, "", option.Options{Context: 200, MaxTokens: 100})
	for _, stop := range []string{"red ball", "Lily", ".", "\n", ", \""} {
		i := strings.Index(full, stop)
		if i < 0 {
			t.Fatalf("the stop string %q is not in the text", stop)
		}
		_, got := generate(t, m, "", option.Options{Context: 200, MaxTokens: 100, Stop: []string{"never", stop}})
		if got != full[:i] {
			t.Errorf("stop %q: got %q, want %q", stop, got, full[:i])
		}
	}
}

// TestRest checks that Rest returns what the pieces of Next add up to, and
// ends for the same reason, with a stop string and without.
func TestRest(t *testing.T) {
	m := loadStories(t, gguf.F32)
	for _, opt := range []option.Options{
		{Context: 200, MaxTokens: 100},
		{Context: 200, MaxTokens: 100, Stop: []string{"."}},
		{Context: 40, Temperature: 1, Seed: 3},
	} {
		_, want := generate(t, m, "Once", opt)
		s, err := m.NewSession(opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prompt("Once"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Rest()
		if err != nil || got != want {
			t.Errorf("%+v: Rest() = %q, %v; want %q", opt, got, err, want)
		}
		if got, err := s.Rest(); got != "" || err != nil {
			t.Errorf("%+v: Rest() after the end = %q, %v; want nothing", opt, got, err)
		}
	}
}

// TestSeededSampling checks that a seed determines the text and that
// different seeds give different text.
func TestSeededSampling(t *testing.T) {
	m := loadStories(t, gguf.F32)
	run := func(seed uint64) string {
		_, s := generate(t, m, "Once upon a time", option.Options{Context: 100, MaxTokens: 60,
			Temperature: 1, TopP: 0.9, Seed: seed})
		return s
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Errorf("seed 42 gave two texts:\n%q\n%q", a, b)
	}
	if a == c {
		t.Errorf("seeds 42 and 43 gave the same text %q", a)
	}
}

// TestEchoAndSpaceAfterBOS checks that the prompt is echoed as decoded, with
// the leading space SentencePiece adds removed, as llama2.c prints it.
func TestEchoAndSpaceAfterBOS(t *testing.T) {
	m := loadStories(t, gguf.F32)
	echo, _ := generate(t, m, "Once upon a time", option.Options{Context: 20, MaxTokens: 1})
	if echo != "Once upon a time" {
		t.Errorf("echo %q", echo)
	}
}

func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name  string
		model func(testing.TB) *engine.Model
	}{
		{"stories260K", func(t testing.TB) *engine.Model { return loadStories(t, gguf.F32) }},
		{"stories15M-shape-f16", func(t testing.TB) *engine.Model {
			return randomModel(t, synth.Shapes()["stories15M"], gguf.F16)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := c.model(b)
			const steps = 64
			b.ResetTimer()
			for range b.N {
				s, err := m.NewSession(option.Options{Context: steps + 2, MaxTokens: steps})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.PromptTokens([]int{1}); err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := s.Next(); err != nil {
						break
					}
				}
			}
			b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// benchState returns a state of 256 positions of a random model of the
// shape and type, its products split among threads goroutines, and a
// 128-token prompt for it.
func benchState(b *testing.B, shape string, typ gguf.TensorType, threads int) (*engine.State, []int) {
	m := randomModel(b, synth.Shapes()[shape], typ)
	m.Threads = threads
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = 300 + i*7
	}
	st, err := m.NewState(256)
	if err != nil {
		b.Fatal(err)
	}
	return st, prompt
}

// BenchmarkPrefill evaluates a 128-token prompt in one Forward call on
// random models of the stories15M and SmolLM2-135M shapes, on one
// goroutine and split among two (threads-2).
func BenchmarkPrefill(b *testing.B) {
	for _, c := range []struct {
		shape   string
		typ     gguf.TensorType
		threads int
	}{
		{"stories15M", gguf.F16, 1},
		{"smollm2-135m", gguf.F16, 1},
		{"smollm2-135m", gguf.Q8_0, 1},
		{"smollm2-135m", gguf.Q4_K, 1},
		{"smollm2-135m", gguf.F16, 2},
		{"smollm2-135m", gguf.Q8_0, 2},
	} {
		name := fmt.Sprintf("%s-%v", c.shape, c.typ)
		if c.threads > 1 {
			name += fmt.Sprintf("-threads-%d", c.threads)
		}
		b.Run(name, func(b *testing.B) {
			st, prompt := benchState(b, c.shape, c.typ, c.threads)
			// One thread's CPU time says how fast one goroutine runs; with
			// helpers it says nothing, and a locked thread would make every
			// wait for them hand its processor to another thread.
			single := c.threads <= 1
			if single {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			b.ResetTimer()
			c0, ok := cputime.Thread()
			for range b.N {
				st.Reset()
				if _, err := st.Forward(prompt); err != nil {
					b.Fatal(err)
				}
			}
			c1, _ := cputime.Thread()
			b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tok/s")
			if single && ok && c1 > c0 {
				// Over the thread's CPU time, which a busy machine disturbs less.
				b.ReportMetric(float64(b.N*len(prompt))/(c1-c0).Seconds(), "cpu-tok/s")
			}
		})
	}
}

func Example() {
	// A random model of a tiny shape; real programs load a GGUF file's bytes.
	shape := synth.Shape{Arch: "llama", Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 64, RopeBase: 10000, Tied: true}
	file, _ := synth.Bytes(shape, synth.Options{Type: gguf.F16, Seed: 1})

	m, err := engine.Load(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	s, _ := m.NewSession(option.Options{MaxTokens: 5})
	s.Prompt("hello")
	n := 0
	for {
		if _, err := s.Next(); err != nil {
			break
		}
		n++
	}
	fmt.Println(m.Arch, m.Dim, m.Layers, len(s.Tokens()) > 1)
	// Output: llama 32 2 true
}

// BenchmarkDecodeAfterPrompt decodes 128 tokens after a 128-token prompt
// on a random SmolLM2-135M-shaped F16 model, as make bench's decode rows
// do, timing the decoded tokens only, on one goroutine and split among two
// (threads-2); cpu-tok/s is over the thread's CPU time, at one goroutine.
// Profile it (-cpuprofile) to see what a decoded token spends beside the
// matrix-vector products.
func BenchmarkDecodeAfterPrompt(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads-%d", threads), func(b *testing.B) { benchDecodeAfterPrompt(b, threads) })
	}
}

func benchDecodeAfterPrompt(b *testing.B, threads int) {
	st, prompt := benchState(b, "smollm2-135m", gguf.F16, threads)
	single := threads <= 1 // see BenchmarkPrefill
	if single {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	const steps = 128
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		st.Reset()
		if _, err := st.Forward(prompt); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0, _ := cputime.Thread()
		pprof.Do(context.Background(), pprof.Labels("phase", "decode"), func(context.Context) {
			for i := range steps {
				if _, err := st.Forward([]int{400 + i}); err != nil {
					b.Fatal(err)
				}
			}
		})
		c1, _ := cputime.Thread()
		cpu += c1 - c0
	}
	b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "tok/s")
	if single && cpu > 0 {
		b.ReportMetric(float64(b.N*steps)/cpu.Seconds(), "cpu-tok/s")
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

func TestSummarize(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name          string
		in            []float64
		med, min, max float64
		n             int
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"only NaN and Inf", []float64{nan, inf, -inf}, 0, 0, 0, 0},
		{"one", []float64{7}, 7, 7, 7, 1},
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"NaN left out", []float64{5, nan, 1, 3}, 3, 1, 5, 3},
		{"equal", []float64{2, 2, 2}, 2, 2, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summarize(tc.in)
			if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max || s.N != tc.n {
				t.Errorf("summarize(%v) = %+v, want median %v, min %v, max %v, n %d", tc.in, s, tc.med, tc.min, tc.max, tc.n)
			}
			if s.ok() != (tc.n > 0) {
				t.Errorf("ok() = %v with %d samples", s.ok(), tc.n)
			}
		})
	}
	in := []float64{3, 1, 2}
	summarize(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("summarize sorted its argument: %v", in)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct{ a, b, want float64 }{
		{10, 4, 2.5},
		{1, 0, 0},
		{0, 5, 0},
		{-1, 5, 0},
		{math.NaN(), 5, 0},
		{math.Inf(1), 5, 0},
		{5, math.Inf(1), 0},
	} {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// rates returns a row with three runs around the given medians.
func rates(engine, runtime, typ string, threads int, prefill, decode float64) row {
	return row{Engine: engine, Runtime: runtime, Type: typ, Threads: threads,
		LoadMs:  summarize([]float64{10, 11, 12}),
		Prefill: summarize([]float64{prefill * 0.9, prefill, prefill * 1.1}),
		Decode:  summarize([]float64{decode * 0.9, decode, decode * 1.1})}
}

// sampleReport is a report of one model with every kind of row.
func sampleReport() *report {
	failed := row{Engine: "wllama", Runtime: "chromium", Type: "F16", Threads: 2, Error: "cannot load | it"}
	return &report{
		Command:   "go run ./tools/bench",
		Bandwidth: 10,
		Settings:  settings{PromptTokens: 128, DecodeTokens: 128, Context: 256, Runs: 3, WarmupMs: 1500},
		Ceiling: []ceilingRow{
			{Runtime: "native (Go)", Read: []namedSummary{{"256 MiB", summarize([]float64{9, 10, 11})}},
				MatVec: []namedSummary{{"F16 1536×576", summarize([]float64{20})}}},
			{Runtime: "wazero", Error: "no memory"},
		},
		Models: []modelResult{{
			Key: "stories15M", Title: "stories15M shape", Shape: "dim 288", Params: 15_000_000,
			WeightBytes: map[string]int64{"F16": 100e6, "F32": 200e6},
			Rows: []row{
				rates("wisp", "native", "F16", 1, 1000, 50),
				rates("wisp", "chromium", "F16", 1, 1200, 100),
				rates("wllama", "chromium", "F16", 1, 300, 20),
				failed,
				rates("wllama", "chromium", "F32", 1, 1000, 40),
				rates("wllama", "chromium", "F32", 2, 1500, 60),
			},
		}},
	}
}

func TestDerive(t *testing.T) {
	rep := sampleReport()
	rep.derive()
	rows := rep.Models[0].Rows
	for _, tc := range []struct {
		i                                 int
		vsNative, vsW1, prefillVsW1, band float64
	}{
		{0, 1, 50.0 / 40, 1, 0.5},             // native: 50 tok/s × 100 MB = 5 GB/s of 10
		{1, 2, 100.0 / 40, 1.2, 1},            // Chromium: twice native
		{2, 0.4, 0.5, 0.3, 0.2},               // wllama F16 1t
		{4, 0.8, 1, 1, 0.8},                   // wllama F32 1t: the best single-thread figures
		{5, 1.2, 1.5, 1.5, 60 * 200e6 / 1e10}, // two threads
	} {
		r := rows[tc.i]
		near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
		if !near(r.DecodeVsNative, tc.vsNative) || !near(r.DecodeVsWllama1, tc.vsW1) || !near(r.PrefillVsWllama1, tc.prefillVsW1) || !near(r.MemoryBound, tc.band) {
			t.Errorf("row %d (%s %s %dt): vs native %v, vs wllama %v, prefill vs wllama %v, bound %v; want %v, %v, %v, %v",
				tc.i, r.label(), r.Type, r.Threads, r.DecodeVsNative, r.DecodeVsWllama1, r.PrefillVsWllama1, r.MemoryBound,
				tc.vsNative, tc.vsW1, tc.prefillVsW1, tc.band)
		}
	}
	if f := rows[3]; f.DecodeVsNative != 0 || f.MemoryBound != 0 {
		t.Errorf("the failed row got ratios: %+v", f)
	}
	if b := rows[1].MemoryBoundBeside; b != 0 {
		t.Errorf("a row without reads beside its runs got a share of them: %v", b)
	}
	// 100 MB a token is under besideMinBytes: a read of it beside the
	// runs measures the caches and gives no share.
	rep.Models[0].Rows[0].ReadBeside = summarize([]float64{6, 6.25, 7})
	if b := rep.Models[0].besideShare(&rep.Models[0].Rows[0]); b != 0 {
		t.Errorf("a model of %d bytes a token got a share of the read beside: %v", rep.Models[0].WeightBytes["F16"], b)
	}
	rep.Models[0].WeightBytes["F16"] = 150e6
	if b, want := rep.Models[0].besideShare(&rep.Models[0].Rows[0]), 50*150e6/6.25e9; math.Abs(b-want) > 1e-9 {
		t.Errorf("150 MB a token at 50 tok/s beside 6.25 GB/s: share %v, want %v", b, want)
	}
	want := []struct {
		ratio float64
		met   bool
	}{
		{100.0 / 40, true}, // ≥ 1.9× the best single-thread decode
		{100.0 / 60, true}, // beats two threads
		{1.2, true},        // prefill ≥ the single-thread F32 prefill
	}
	if len(rep.Targets) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(rep.Targets), len(want), rep.Targets)
	}
	for i, w := range want {
		if g := rep.Targets[i]; math.Abs(g.Ratio-w.ratio) > 1e-9 || g.Met != w.met || g.Issue == 0 {
			t.Errorf("target %d = %+v, want ratio %v, met %v", i, g, w.ratio, w.met)
		}
	}

	// Slower wisp misses them; no Chromium row at all gives no ratio.
	rep = sampleReport()
	rep.Models[0].Rows[1] = rates("wisp", "chromium", "F16", 1, 900, 50)
	rep.derive()
	for i, g := range rep.Targets {
		if g.Met {
			t.Errorf("target %d met by a slower wisp: %+v", i, g)
		}
	}
	rep = sampleReport()
	rep.Models[0].Rows = slices.Delete(rep.Models[0].Rows, 1, 2)
	rep.derive()
	for i, g := range rep.Targets {
		if g.Met || g.Ratio != 0 {
			t.Errorf("target %d without wisp in Chromium: %+v", i, g)
		}
	}
}

func TestHonestyCheck(t *testing.T) {
	rep := sampleReport()
	l := rates("llama.cpp", "native", "F16", 1, 2000, 200)
	l.OwnPrefill, l.OwnDecode = summarize([]float64{2100}), summarize([]float64{210})
	w := &rep.Models[0].Rows[4] // wllama F32 1t: decode 40, prefill 1000
	w.Mode = "best"
	// Prefill: the medians are 1000 and 1250 (-20 %), but the runs
	// overlap (1000 against 900-1400), which is noise, not a handicap.
	w.RefPrefill, w.RefDecode = summarize([]float64{900, 1250, 1400}), summarize([]float64{60})
	rep.Models[0].Rows = append(rep.Models[0].Rows, l)
	rep.derive()
	if len(rep.Checks) != 4 {
		t.Fatalf("%d checks, want 4: %+v", len(rep.Checks), rep.Checks)
	}
	// Decode: 40 (36-44) against 60, every run 27 % or more slower: the
	// one violation.
	if len(rep.Violations) != 1 || !strings.Contains(rep.Violations[0], "decode") || !strings.Contains(rep.Violations[0], "-27% apart") {
		t.Errorf("violations %q, want wllama's decode at -27%% apart", rep.Violations)
	}
	md := rep.markdown()
	for _, want := range []string{"## The honesty check", "| stories15M | wllama best, Chromium F32 1t | decode | 40.0 | 60.0 | -33% | -27% | **NO** |",
		"| stories15M | wllama best, Chromium F32 1t | prefill | 1000 | 1250 | -20% | +0% | yes |",
		"| stories15M | llama.cpp, native (C) F16 1t | prefill | 2000 | 2100 | -5% | same runs | yes |", "## wisp against the peers, file by file",
		"| stories15M | F16 | 1200 / 100 | 300 / 20.0 | 4.00× / 5.00× | – | – | 1000 / 50.0 | 2000 / 200 | 0.50× / 0.25× | – | – |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDeriveStrict(t *testing.T) {
	// "Beat" is strict: equal two-thread decode does not meet it.
	rep := sampleReport()
	rep.Models[0].Rows[1] = rates("wisp", "chromium", "F16", 1, 1000, 60)
	rep.derive()
	if g := rep.Targets[1]; g.Met || g.Ratio != 1 {
		t.Errorf("equal decode: %+v, want ratio 1, not met", g)
	}
	if g := rep.Targets[2]; !g.Met {
		t.Errorf("equal prefill: %+v, want met", g)
	}
}

func TestMarkdown(t *testing.T) {
	rep := sampleReport()
	rep.Machine = machine{CPU: "Test CPU", Cores: 2, Chromium: "156"}
	rep.Notes = []string{"a note"}
	rep.Elapsed = 312.4
	rep.Time = []timing{{"the ceiling", 41.26}, {"stories15M", 3.04}}
	rep.Models[0].Rows[0].Seconds = 75.4
	// 150 MB a token, more than the caches: native decodes 7.5 GB/s of
	// weights, 75 % of the ceiling's 10 GB/s and 80 % of the 9.375 GB/s
	// read beside its runs.
	rep.Models[0].WeightBytes["F16"] = 150e6
	rep.Models[0].Rows[0].ReadBeside = summarize([]float64{9, 9.375, 10})
	rep.Models[0].Rows = append(rep.Models[0].Rows, row{Engine: "wllama", Runtime: "chromium", Type: "F16", Threads: 1, Skipped: "too slow"})
	rep.derive()
	md := rep.markdown()
	for _, want := range []string{
		"# wisp benchmark",
		"Test CPU, 2 cores",
		"| stories15M | decode ≥ 1.9× wllama's best single-thread decode | 100 | 40.0 | 2.50× | yes | 245 |",
		"| native (Go) | 10.0 (9.00–11.0) | 20.0 |",
		"| wazero | failed: no memory |  |",
		"## stories15M shape",
		"memory-bound decode limit (tok/s) F16 66.7, F32 50.0.",
		"| wisp, Chromium | F16 | 1 | 11.0 (10.0–12.0) | 1200 (1080–1320) | 100 (90.0–110) | – | 2.00× | 2.50× | 1.20× | 150% |",
		`| wllama, Chromium | F16 | 2 | failed: cannot load \| it | | | | | | | |`,
		"- a note",
		"## Where the time went",
		"| the ceiling | 41s |",
		"| stories15M | 3s |",
		"| wllama, Chromium | F16 | 1 | not measured: too slow | | | | | | | | |",
		"| of memory bound | bench time |",
		"## Issue 12's native target: F16 decode at ≥ 80% of the memory-bound limit",
		"| stories15M | 50.0 (45.0–55.0) | 7.50 | 10.0 | 75% | no | 9.38 (9.00–10.0) | 80% | yes |",
		"| 75% (80% of the read beside) | 1m15s |",
		"| total | 5m12s |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table line has as many cells as its header.
	cols := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table line with %d separators, header %d: %s", n, cols, line)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.markdown() != md {
		t.Error("the report does not survive a round trip through JSON")
	}
}

func TestCells(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{cell(summary{}), "–"},
		{cell(summarize([]float64{3.14159})), "3.14"},
		{cell(summarize([]float64{12.34, 10, 15})), "12.3 (10.0–15.0)"},
		{times(0), "–"},
		{times(1.905), "1.91×"},
		{percent(0.256), "26%"},
		{percent(0), "–"},
		{mib(0), "–"},
		{mib(3 << 20), "3"},
		{megabytes(30_400_000), "30.4 MB"},
		{sizeName(256 << 20), "256 MiB"},
		{sizeName(64 << 10), "64 KiB"},
		{escape("a | b\nc"), `a \| b c`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// tinyModel returns a random model of the stories260K shape and its bytes.
func tinyModel(t *testing.T) (*engine.Model, []byte) {
	t.Helper()
	b, err := synth.Build(synth.Shapes()["stories260K"], synth.Options{Type: gguf.F16, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	m, err := engine.Load(bytes.Clone(data))
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func TestCutPrompt(t *testing.T) {
	m, _ := tinyModel(t)
	for _, n := range []int{16, 64, 128} {
		text, ids, err := cutPrompt(m, promptText, n)
		if err != nil {
			t.Fatalf("%d tokens: %v", n, err)
		}
		again, err := m.Tokenize(text)
		if err != nil || len(ids) != n || !slices.Equal(again, ids) || strings.HasSuffix(text, " ") {
			t.Errorf("%d tokens: %q gives %d ids %v (again %v, %v)", n, text, len(ids), ids, again, err)
		}
	}
	if _, _, err := cutPrompt(m, "short", 128); err == nil {
		t.Error("a text too short for the tokens gave no error")
	}
}

func TestWeightElements(t *testing.T) {
	m, _ := tinyModel(t)
	s := synth.Shapes()["stories260K"]
	d, h, kv := int64(s.Dim), int64(s.HiddenDim), int64(s.KVHeads*s.Dim/s.Heads)
	wantMat := int64(s.Layers)*(2*d*d+2*d*kv+3*d*h) + int64(s.Vocab)*d + d // tied: the output is the embedding
	wantVec := int64(s.Layers)*2*d + d
	mats, vecs := weightElements(m)
	if mats != wantMat || vecs != wantVec {
		t.Errorf("weightElements = %d, %d; want %d, %d", mats, vecs, wantMat, wantVec)
	}
}

// readWasm is the committed read kernel.
const readWasm = "../../site/bench/read.wasm"

func TestReadWasmFresh(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm is not installed")
	}
	out := filepath.Join(t.TempDir(), "read.wasm")
	if b, err := exec.Command("wat2wasm", "-o", out, "../../site/bench/read.wat").CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(readWasm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("site/bench/read.wasm is stale: wat2wasm -o site/bench/read.wasm site/bench/read.wat")
	}
}

func TestCeiling(t *testing.T) {
	spec := ceilingSpec{Read: []int{64 << 10}, Samples: 2, MinMs: 1,
		MatVec: []matvecShape{{Name: "F16 64×32", Type: "f16", Rows: 64, Cols: 32}, {Name: "F32 8×16", Type: "f32", Rows: 8, Cols: 16}}}
	check := func(name string, a ceilingAnswer) {
		r := a.row(name, spec)
		if len(r.Read) != 1 || len(r.MatVec) != 2 {
			t.Fatalf("%s: row %+v", name, r)
		}
		for _, s := range append(r.Read, r.MatVec...) {
			if s.N != 2 || !(s.Min > 0) {
				t.Errorf("%s %s: %+v", name, s.Name, s.summary)
			}
		}
	}
	check("native", nativeCeiling(spec))
	code, err := os.ReadFile(readWasm)
	if err != nil {
		t.Fatal(err)
	}
	a, err := wazeroCeiling(context.Background(), code, spec)
	if err != nil {
		t.Fatal(err)
	}
	check("wazero", a)
	if _, err := wazeroCeiling(context.Background(), []byte("not wasm"), spec); err == nil {
		t.Error("wazeroCeiling ran a module that is not wasm")
	}
}

func TestChild(t *testing.T) {
	m, data := tinyModel(t)
	file := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, ids, err := cutPrompt(m, promptText, 32)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(childConfig{Runtime: "native", Model: file, PromptIDs: ids, WarmupIDs: ids[:4],
		MaxTokens: 8, WarmupTokens: 2, RunWarmupTokens: 1, Context: 64, WarmupMs: 1})
	in := string(cfg) + "\n" + `{"op":"warmup"}` + "\n" + `{"op":"run"}` + "\n" + `{"op":"bogus"}` + "\n"
	var out bytes.Buffer
	if err := childMain(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d answers, want 5:\n%s", len(lines), out.String())
	}
	var cold struct{ ColdLoadMs float64 }
	var s sample
	var bogus struct{ Error string }
	var end struct{ PeakRSS int64 }
	for i, v := range []any{&cold, &s, &bogus, &end} {
		if err := json.Unmarshal([]byte(lines[i+1]), v); err != nil {
			t.Fatalf("answer %d %q: %v", i+1, lines[i+1], err)
		}
	}
	if !(cold.ColdLoadMs > 0) || !(s.LoadMs > 0) || !(s.Prefill > 0) || !(s.Decode > 0) || !(s.ReadGBps > 0) || s.PromptTokens != 32 || s.Threads != 1 {
		t.Errorf("warm-up %+v, run %+v", cold, s)
	}
	if s.Tokens != 8 && s.Reason == "length" {
		t.Errorf("decoded %d tokens, want 8 (%s)", s.Tokens, s.Reason)
	}
	if !strings.Contains(bogus.Error, "bogus") {
		t.Errorf("an unknown op answered %q", lines[3])
	}
	if end.PeakRSS < 0 {
		t.Errorf("peak RSS %d", end.PeakRSS)
	}

	// A decoding over its time cap stops after the token under way.
	capped, _ := json.Marshal(childConfig{Runtime: "native", Model: file, PromptIDs: ids, WarmupIDs: ids[:4],
		MaxTokens: 8, WarmupTokens: 2, RunWarmupTokens: 1, Context: 64, DecodeCapMs: 1e-6})
	out.Reset()
	if err := childMain(strings.NewReader(string(capped)+"\n"+`{"op":"run"}`+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || json.Unmarshal([]byte(lines[1]), &s) != nil || s.Tokens != 1 || s.Reason != capReason {
		t.Errorf("capped run: %q", lines)
	}

	for _, bad := range []string{"", "{", `{"runtime": "jvm"}` + "\n"} {
		if err := childMain(strings.NewReader(bad), &out); err == nil {
			t.Errorf("configuration %q gave no error", bad)
		}
	}
}

// Example_cell shows how the report writes repeated measurements: the
// median, then the minimum and maximum.
func Example_cell() {
	s := summarize([]float64{245, 212, 230})
	fmt.Println(cell(s), times(ratio(s.Median, 121)))
	// Output: 230 (212–245) 1.90×
}

// defaultWllama is -wllama's default.
var defaultWllama = []wllamaConfig{{"best", "F16", 1}, {"best", "F32", 1}, {"best", "F32", 2}, {"best", "Q8_0", 1}, {"best", "Q8_0", 2},
	{"best", "Q4_K_M", 1}, {"best", "Q4_K_M", 2}, {"chat", "Q4_K_M", 1}, {"chat", "Q4_K_M", 2}}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		ok     bool
		wllama []wllamaConfig
	}{
		{nil, true, defaultWllama},
		{[]string{"-wllama", "f32/2, chat:F16/1,best:q4_k_m/1"}, true, []wllamaConfig{{"best", "F32", 2}, {"chat", "F16", 1}, {"best", "Q4_K_M", 1}}},
		{[]string{"-wllama", ""}, true, nil},
		{[]string{"-wllama", "F32"}, false, nil},
		{[]string{"-wllama", "Q4/1"}, false, nil},
		{[]string{"-wllama", "F32/0"}, false, nil},
		{[]string{"-wllama", "fast:F32/1"}, false, nil},
		{[]string{"-llamacpp-runs", "chat:F32/1"}, false, defaultWllama},
		{[]string{"-types", "F32"}, false, nil},
		{[]string{"-skip", "wllama,ceiling,llamacpp"}, true, defaultWllama},
		{[]string{"-skip", "gpu"}, false, nil},
		{[]string{"-runs", "0"}, false, nil},
		{[]string{"extra"}, false, nil},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("parseFlags(%q): error %v, want ok %v", tc.args, err, tc.ok)
			continue
		}
		if err == nil && !slices.Equal(o.wllama, tc.wllama) {
			t.Errorf("parseFlags(%q): wllama %v, want %v", tc.args, o.wllama, tc.wllama)
		}
	}
}

func TestBusy(t *testing.T) {
	for _, tc := range []struct {
		load  string
		cores int
		want  bool
	}{
		{"3.61 / 4.22 / 4.16", 2, true},
		{"1.50 / 1.00 / 0.50", 2, true},
		{"1.49 / 9 / 9", 2, false},
		{"0.10 / 0.20 / 0.30", 8, false},
		{"?", 2, false},
		{"", 2, false},
	} {
		if got := busy(tc.load, tc.cores); got != tc.want {
			t.Errorf("busy(%q, %d) = %v, want %v", tc.load, tc.cores, got, tc.want)
		}
	}
}

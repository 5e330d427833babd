package main

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"wisp/engine"
)

// threadsReport is a report of the SmolLM2-135M shape with wisp at one and
// two threads in three runtimes and wllama at two.
func threadsReport() *report {
	rep := &report{Machine: machine{Cores: 2}, Bandwidth: 20, BandwidthFrom: "native read", BandwidthAll: 30, BandwidthAllThreads: 2,
		Dispatch: &dispatchCost{Helpers: 1, Direct: summarize([]float64{0.05}), Hot: summarize([]float64{1.05}), Cold: summarize([]float64{80})}}
	m := modelResult{Key: "smollm2-135m", Title: "smollm2-135m shape", WeightBytes: map[string]int64{"F16": 270e6, "Q8_0": 143e6}, SplitProducts: 100}
	m.Rows = []row{
		rates("wisp", "native", "F16", 1, 200, 80),
		rates("wisp", "native", "F16", 2, 380, 100), // 1.9× / 1.25×
		rates("wisp", "node", "F16", 1, 100, 50),
		rates("wisp", "node", "F16", 2, 180, 65), // 1.8× (met: ≥) / 1.3× (met)
		rates("wisp", "chromium", "F16", 1, 120, 50),
		rates("wisp", "chromium", "F16", 2, 240, 75), // 2× / 1.5×
		rates("wisp", "chromium", "Q8_0", 1, 150, 100),
		rates("wisp", "chromium", "Q8_0", 2, 200, 120),
		rates("wllama", "chromium", "F32", 1, 90, 23),
		rates("wllama", "chromium", "F32", 2, 170, 27),
		rates("wllama", "chromium", "Q8_0", 2, 200, 22), // prefill equal to wisp's: not beaten
	}
	for i := range m.Rows {
		if m.Rows[i].Engine == "wllama" {
			m.Rows[i].Mode = "best"
		}
	}
	rep.Models = []modelResult{m}
	return rep
}

func TestThreadRatios(t *testing.T) {
	rep := threadsReport()
	rep.derive()
	got := map[string][2]float64{}
	for _, r := range rep.ThreadRatios {
		got[r.Row+" "+r.Type] = [2]float64{r.Prefill, r.Decode}
	}
	want := map[string][2]float64{
		"wisp, native (Go) F16": {1.9, 1.25}, "wisp, Node F16": {1.8, 1.3}, "wisp, Chromium F16": {2, 1.5},
		"wisp, Chromium Q8_0": {200.0 / 150, 1.2}, "wllama best, Chromium F32": {170.0 / 90, 27.0 / 23},
	}
	if len(got) != len(want) {
		t.Errorf("ratios %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g[0]-w[0]) > 1e-9 || math.Abs(g[1]-w[1]) > 1e-9 {
			t.Errorf("%s: ratios %v, want %v", k, g, w)
		}
	}
}

func TestThreadTargets(t *testing.T) {
	rep := threadsReport()
	rep.derive()
	met := map[string]bool{}
	for _, tt := range rep.ThreadTargets {
		met[tt.Runtime+" "+tt.Type+": "+tt.Goal] = tt.Met
	}
	for k, w := range map[string]bool{
		"native (Go) F16: prefill at 2 threads ≥ 1.8× at 1":                                     true,
		"native (Go) F16: decode at 2 threads ≥ 1.3× at 1":                                      false, // 1.25
		"Node F16: prefill at 2 threads ≥ 1.8× at 1":                                            true,  // equal
		"Node F16: decode at 2 threads ≥ 1.3× at 1":                                             true,
		"Chromium F16: prefill at 2 threads > wllama's 2 threads on F32 (its F16 not measured)": true, // 240 > 170
		"Chromium F16: decode at 2 threads > wllama's 2 threads on F32 (its F16 not measured)":  true,
		"Chromium Q8_0: prefill at 2 threads ≥ 1.8× at 1":                                       false,
		"Chromium Q8_0: prefill at 2 threads > wllama's 2 threads on Q8_0":                      false, // 200 = 200: strict
		"Chromium Q8_0: decode at 2 threads > wllama's 2 threads on Q8_0":                       true,
	} {
		if g, ok := met[k]; !ok || g != w {
			t.Errorf("%s: met %v (present %v), want %v", k, g, ok, w)
		}
	}
	// Only the target model has targets; a missing two-thread row misses them.
	rep = threadsReport()
	rep.Models[0].Key = "stories15M"
	rep.derive()
	if len(rep.ThreadTargets) != 0 {
		t.Errorf("targets on another model: %+v", rep.ThreadTargets)
	}
	rep = threadsReport()
	rep.Models[0].Rows = slices.Delete(rep.Models[0].Rows, 1, 2)
	rep.derive()
	for _, tt := range rep.ThreadTargets {
		if tt.Runtime == "native (Go)" && (tt.Met || tt.Ratio != 0) {
			t.Errorf("met without a two-thread row: %+v", tt)
		}
	}
}

func TestFitScaling(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	// t1 = 10 ms = 2 + 8; t2 = 2 + 4 + 0.5 = 6.5 ms.
	s, p := fitScaling(100, 1/0.0065, 0.0005)
	if !near(s, 0.002) || !near(p, 0.008) {
		t.Errorf("fit = %v, %v; want 0.002, 0.008", s, p)
	}
	if r := estimateRate(s, p, 0.0005, 8); !near(r, 1/(0.002+0.001+0.0005)) {
		t.Errorf("rate at 8 threads = %v", r)
	}
	// Past twice: all parallel; slower at two: all serial.
	if s, p := fitScaling(100, 250, 0); s != 0 || !near(p, 0.01) {
		t.Errorf("superlinear fit = %v, %v", s, p)
	}
	if s, p := fitScaling(100, 80, 0); !near(s, 0.01) || p != 0 {
		t.Errorf("slower fit = %v, %v", s, p)
	}
}

func TestScaling(t *testing.T) {
	rep := threadsReport()
	rep.derive()
	var dec *scalingRow
	for i, s := range rep.Scaling {
		if s.Type == "F16" && s.What == "decode" {
			dec = &rep.Scaling[i]
		}
	}
	if dec == nil {
		t.Fatalf("no F16 decode estimate: %+v", rep.Scaling)
	}
	// 100 products at 1 µs (1.05 hot - 0.05 direct) = 0.1 ms per token.
	if math.Abs(dec.DispatchMs-0.1) > 1e-9 || len(dec.Estimate) != len(estimateThreads) || len(dec.NeedGBps) != len(estimateThreads) {
		t.Errorf("decode estimate %+v", dec)
	}
	if e := dec.Estimate; !(e[0] > 75 && e[0] < e[1] && e[1] < e[2]) {
		t.Errorf("estimates %v do not grow from the two-thread 75", e)
	}
	if g := dec.NeedGBps[2]; math.Abs(g-dec.Estimate[2]*270e6/1e9) > 1e-9 {
		t.Errorf("need %v GB/s at 16 threads", g)
	}
	md := rep.markdown()
	for _, want := range []string{"## Issue 16's targets: wisp at two threads", "## Threads: N threads ÷ 1",
		"| smollm2-135m | wisp, Chromium | F16 | 2 | 120 / 50.0 | 240 / 75.0 | 2.00× | 1.50× |",
		"## What a visitor with more cores should expect", "This machine has 2 cores", "2 threads at once", "1.50× one core's", "costs 1.00 µs beyond the kernel",
		"| smollm2-135m | Node | F16 | decode at 2 threads ≥ 1.3× at 1 | 65.0 | 50.0 | 1.30× | yes |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md)
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
	// Every table line has as many cells as its header.
	cols := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table line with %d separators, header %d: %s", n, cols, line)
		}
	}
}

func TestSplitProducts(t *testing.T) {
	m := &engine.Model{}
	// The SmolLM2-135M shape: q and o 576×576 and the three 1536×576
	// feed-forward products split; k and v (192×576 = 110592 < 131072)
	// do not; nor does anything of a 64-wide model but its classifier.
	m.Dim, m.HiddenDim, m.Layers, m.Heads, m.KVHeads, m.VocabSize = 576, 1536, 30, 9, 3, 49152
	if got := splitProducts(m); got != 5*30+1 {
		t.Errorf("smollm2-135m: %d split products, want %d", got, 5*30+1)
	}
	m.Dim, m.HiddenDim, m.Layers, m.Heads, m.KVHeads, m.VocabSize = 64, 172, 5, 8, 4, 512
	if got := splitProducts(m); got != 0 {
		t.Errorf("stories260K: %d split products, want 0", got)
	}
}

func TestNativeReadAll(t *testing.T) {
	got := nativeReadAll(1<<20, 2, 2, 1)
	if len(got) != 2 || !(got[0] > 0) || !(got[1] > 0) {
		t.Errorf("nativeReadAll = %v", got)
	}
}

func TestThreadCounts(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		runtime, model string
		want           []int
	}{
		{"native", "smollm2-135m", []int{1, 2}},
		{"chromium", "stories15M", []int{1, 2}},
		{"wazero", "smollm2-135m", []int{1}},
		{"node", "stories260K", []int{1}},
	} {
		if got := o.threadCounts(tc.runtime, tc.model); !slices.Equal(got, tc.want) {
			t.Errorf("threadCounts(%s, %s) = %v, want %v", tc.runtime, tc.model, got, tc.want)
		}
	}
	o, err = parseFlags([]string{"-threads", "1,2,4,2", "-threads-runtimes", "wazero", "-threads-models", "STORIES260K"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.threadCounts("wazero", "stories260K"); !slices.Equal(got, []int{1, 2, 4}) {
		t.Errorf("threadCounts = %v, want [1 2 4]", got)
	}
	if o, err = parseFlags([]string{"-threads", ""}, io.Discard); err != nil || len(o.threadCounts("native", "smollm2-135m")) != 1 {
		t.Errorf("-threads '': %v, %v", o, err)
	}
	for _, bad := range [][]string{{"-threads", "0"}, {"-threads", "x"}, {"-threads-runtimes", "gpu"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestReferenceRows(t *testing.T) {
	best := func(typ string, threads int) row {
		return row{Engine: "wllama", Runtime: "chromium", Mode: "best", Type: typ, Threads: threads}
	}
	rows := []row{
		{Engine: "wisp", Runtime: "chromium", Type: "F16", Threads: 1},
		best("F16", 1), best("F32", 1), best("F32", 2), best("Q8_0", 1), best("Q8_0", 2),
		{Engine: "wllama", Runtime: "chromium", Mode: "chat", Type: "F32", Threads: 1},
	}
	if got := referenceRows(rows); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("referenceRows = %v, want [2 3] (F32 at one and two threads)", got)
	}
	// Without F32 the first best-mode row; a failed or skipped row never.
	rows[2].Skipped, rows[3].Error = "no", "failed"
	if got := referenceRows(rows); !slices.Equal(got, []int{1, 5}) {
		t.Errorf("referenceRows without F32 = %v, want [1 5]", got)
	}
}

// fakeRunner is a runner that answers fixed rates, or fails.
type fakeRunner struct {
	prefill, decode float64
	runs            int
	fail            bool
	log             *[]string
	name            string
}

func (f *fakeRunner) warmup() (float64, error) { return 5, nil }
func (f *fakeRunner) run() (sample, error) {
	*f.log = append(*f.log, f.name)
	if f.fail {
		return sample{}, errors.New("boom\nmore")
	}
	f.runs++
	return sample{LoadMs: 1, Prefill: f.prefill * float64(f.runs), Decode: f.decode, PromptTokens: 128, Tokens: 128, Threads: 1}, nil
}
func (f *fakeRunner) close() (int64, error) { return 1 << 20, nil }

// TestMeasureSteps runs the steps of measure on fake runners: the rounds
// interleave the rows, a reference runs right after its row in the
// rounds its row ran, and finishing fills the checked row's reference
// figures.
func TestMeasureSteps(t *testing.T) {
	b := &bench{o: &options{runs: 3, promptTokens: 128, decodeTokens: 128, maxRowSeconds: 0}, log: io.Discard}
	pm := &preparedModel{spec: modelSpec{Key: "m"}}
	var order []string
	fr := func(name string, fail bool) *fakeRunner {
		return &fakeRunner{prefill: 100, decode: 10, fail: fail, log: &order, name: name}
	}
	w := &entry{row: row{Engine: "wllama", Runtime: "chromium", Mode: "best", Type: "F32", Threads: 1}, r: fr("row", false), ranIn: -1}
	ref := &entry{row: w.row, r: fr("ref", false), checks: w, ranIn: -1}
	other := &entry{row: row{Engine: "wisp", Runtime: "native", Type: "F16", Threads: 2}, r: fr("other", false), ranIn: -1}
	broken := &entry{row: row{Engine: "wisp", Runtime: "node", Type: "F16", Threads: 1}, r: fr("broken", true), ranIn: -1}
	es := []*entry{other, w, ref, broken}
	b.warmUp(pm, es)
	b.runRounds(pm, es)
	if want := []string{"other", "row", "ref", "broken", "other", "row", "ref", "other", "row", "ref"}; !slices.Equal(order, want) {
		t.Errorf("run order %v, want %v", order, want)
	}
	b.finishReference(pm, ref)
	got := b.finish(pm, w)
	if got.RefDecode.N != 3 || got.RefPrefill.Median != 200 || got.PeakRSS != 1<<20 || got.ColdLoadMs != 5 {
		t.Errorf("checked row %+v", got)
	}
	if br := b.finish(pm, broken); br.Error != "run 1: boom" || br.Decode.ok() {
		t.Errorf("broken row: error %q, decode %+v", br.Error, br.Decode)
	}
	if o := b.finish(pm, other); o.Threads != 1 || o.Decode.N != 3 {
		t.Errorf("other row %+v: threads from the samples, 3 runs", o)
	}
	if len(b.rep.Time) != 1 || !strings.Contains(b.rep.Time[0].Part, "m: wllama F32 1t reference") {
		t.Errorf("time parts %+v", b.rep.Time)
	}

	// Past -max-row-seconds a row stops after one run, but a checked row
	// and its reference take every run (one each measured the noise).
	order = nil
	b.o.maxRowSeconds = 1e-12
	b.rep = report{}
	w = &entry{row: w.row, r: fr("row", false), checked: true, ranIn: -1}
	ref = &entry{row: w.row, r: fr("ref", false), checks: w, ranIn: -1}
	other = &entry{row: other.row, r: fr("other", false), ranIn: -1}
	es = []*entry{w, ref, other}
	b.warmUp(pm, es)
	b.runRounds(pm, es)
	if !slices.Equal(order, []string{"row", "ref", "other", "row", "ref", "row", "ref"}) {
		t.Errorf("capped run order %v", order)
	}
	b.finishReference(pm, ref)
	if got := b.finish(pm, w); got.RefDecode.N != 3 || got.Decode.N != 3 || got.CheckError != "" || len(b.rep.Notes) != 0 {
		t.Errorf("checked row past the cap %+v, notes %q", got, b.rep.Notes)
	}
	if got := b.finish(pm, other); got.Decode.N != 1 || len(b.rep.Notes) != 1 {
		t.Errorf("unchecked row past the cap %+v, notes %q", got, b.rep.Notes)
	}
}

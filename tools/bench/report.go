package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// report is everything one run of the bench found: results.json holds it
// as is and results.md renders it (markdown).
type report struct {
	Command  string        `json:"command"`
	Started  time.Time     `json:"started"`
	Elapsed  float64       `json:"elapsedSeconds"`
	Machine  machine       `json:"machine"`
	Settings settings      `json:"settings"`
	Ceiling  []ceilingRow  `json:"ceiling"`
	Models   []modelResult `json:"models"`
	Targets  []target      `json:"targets"`
	// Bandwidth is the read bandwidth (GB/s) that the memory-bound
	// limits are taken against, and BandwidthFrom says which measurement
	// it is.
	Bandwidth     float64 `json:"bandwidthGBps"`
	BandwidthFrom string  `json:"bandwidthFrom"`
	// Time is where the run's wall-clock time went, part by part, in
	// the order the parts ran.
	Time  []timing `json:"time"`
	Notes []string `json:"notes"`
	// Checks are the honesty check's comparisons (see derive), and
	// Violations those of them whose gap is over CheckTolerance.
	Checks     []check  `json:"checks"`
	Violations []string `json:"violations"`
	// RefNotes name the best-mode wllama rows that decoded faster than
	// the row referenced at their threads.
	RefNotes []string `json:"referenceNotes"`
	// Peers compares wisp with the peers per model and file type.
	Peers []peerRow `json:"peers"`
	// ThreadRatios are the rows at several threads against one,
	// ThreadTargets issue 16's goals, Scaling the estimates at more
	// threads (threads.go).
	ThreadRatios  []threadRatio  `json:"threadRatios"`
	ThreadTargets []threadTarget `json:"threadTargets"`
	Scaling       []scalingRow   `json:"scaling"`
	// BandwidthAll is the read bandwidth (GB/s) of BandwidthAllThreads
	// threads at once, natively; Dispatch threads.wasm's dispatch cost.
	BandwidthAll        float64       `json:"bandwidthAllGBps"`
	BandwidthAllThreads int           `json:"bandwidthAllThreads"`
	Dispatch            *dispatchCost `json:"dispatch,omitempty"`
}

// CheckTolerance is the honesty check's limit: the bench's figure for a
// peer and the peer's own figure for the same file in its fastest mode
// differ by at most this fraction of the latter. Where the peer's own
// figure comes from other runs (wllama alone in a fresh browser), what
// must stay within the limit is the distance between the two sets of
// runs (their ranges), not between their medians: on two busy cores a
// run of wllama's two threads varies by 25 % from one to the next, in
// either direction, and a median of three runs by nearly as much.
const CheckTolerance = 0.15

// check is one comparison of the honesty check.
type check struct {
	Model   string  `json:"model"`
	Row     string  `json:"row"`
	What    string  `json:"what"` // "decode" or "prefill"
	Bench   float64 `json:"bench"`
	Own     float64 `json:"own"`
	OwnFrom string  `json:"ownFrom"`
	Gap     float64 `json:"gap"` // bench/own - 1, of the medians
	// Apart is, for figures from different runs, how far apart the two
	// ranges of runs are: 0 when they overlap, else the nearer ends'
	// ratio - 1. The check holds when |Apart| (for the same runs, |Gap|)
	// is within CheckTolerance.
	Apart     float64 `json:"apart"`
	OtherRuns bool    `json:"otherRuns"`
	OK        bool    `json:"ok"`
}

// apart returns how far apart the ranges of two sets of runs are, as
// the ratio of the nearer ends minus 1: 0 when they overlap, positive
// when every bench run is faster, negative when every one is slower.
func apart(bench, own summary) float64 {
	switch {
	case bench.Min > own.Max:
		return bench.Min/own.Max - 1
	case bench.Max < own.Min:
		return bench.Max/own.Min - 1
	}
	return 0
}

// peerRow is wisp against the peers on one model's file of one type.
type peerRow struct {
	Model string `json:"model"`
	Type  string `json:"type"`
	// wisp in Chromium and wllama's best mode (and best over its modes),
	// one and two threads, on this file; wisp native and llama.cpp.
	WispChromium   rateMedians `json:"wispChromium"`
	Wllama1        rateMedians `json:"wllama1"`
	Wllama1Mode    string      `json:"wllama1Mode"`
	Wllama2        rateMedians `json:"wllama2"`
	Wllama2Mode    string      `json:"wllama2Mode"`
	WispNative     rateMedians `json:"wispNative"`
	LlamaCpp1      rateMedians `json:"llamacpp1"`
	LlamaCpp2      rateMedians `json:"llamacpp2"`
	DecodeVsW1     float64     `json:"decodeVsWllama1"`
	PrefillVsW1    float64     `json:"prefillVsWllama1"`
	DecodeVsW2     float64     `json:"decodeVsWllama2"`
	PrefillVsW2    float64     `json:"prefillVsWllama2"`
	NatDecodeVsL1  float64     `json:"nativeDecodeVsLlamacpp1"`
	NatPrefillVsL1 float64     `json:"nativePrefillVsLlamacpp1"`
	NatDecodeVsL2  float64     `json:"nativeDecodeVsLlamacpp2"`
	NatPrefillVsL2 float64     `json:"nativePrefillVsLlamacpp2"`
}

// rateMedians are a row's median prefill and decode rates (0: none).
type rateMedians struct {
	Prefill float64 `json:"prefill"`
	Decode  float64 `json:"decode"`
}

// timing is the wall-clock time one part of the bench took.
type timing struct {
	Part    string  `json:"part"`
	Seconds float64 `json:"seconds"`
}

// machine describes where and with what the bench ran.
type machine struct {
	CPU            string `json:"cpu"`
	Cores          int    `json:"cores"`
	OS             string `json:"os"`
	LoadStart      string `json:"loadAverageStart"` // /proc/loadavg's first three fields
	LoadEnd        string `json:"loadAverageEnd"`
	Go             string `json:"go"`
	Wazero         string `json:"wazero"`
	Node           string `json:"node"`
	NodeV8         string `json:"nodeV8"`
	Chromium       string `json:"chromium"`
	Wllama         string `json:"wllama"`
	Libllama       string `json:"libllama"`       // llama.cpp's build inside wllama
	LlamaCpp       string `json:"llamacpp"`       // native llama.cpp's build
	LlamaCppSystem string `json:"llamacppSystem"` // its llama_print_system_info
	Git            string `json:"git"`            // the commit, "-dirty" when the tree has changes
	Kernels        string `json:"kernels"`        // the native build's kernels (simd.Kernels) and the wasm kernels' hash
}

// settings are the bench's parameters, the same for every runtime.
type settings struct {
	PromptTokens    int `json:"promptTokens"` // BOS included
	DecodeTokens    int `json:"decodeTokens"`
	Context         int `json:"context"`
	Runs            int `json:"runs"`
	WarmupMs        int `json:"warmupMs"`        // each runtime's warm-up before its runs
	WarmupPrompt    int `json:"warmupPrompt"`    // the warm-up prompt's tokens
	WarmupTokens    int `json:"warmupTokens"`    // what each warm-up generation decodes
	RunWarmupTokens int `json:"runWarmupTokens"` // what the generation before each run decodes
	DecodeCapMs     int `json:"decodeCapMs"`     // a run's decoding stops after this long
}

// namedSummary is one column of the ceiling table.
type namedSummary struct {
	Name string `json:"name"`
	summary
}

// ceilingRow is one runtime's ceiling: read bandwidth in GB/s per block
// size, and the matrix-vector kernel's GFLOP/s per shape.
type ceilingRow struct {
	Runtime string         `json:"runtime"`
	Read    []namedSummary `json:"readGBps"`
	MatVec  []namedSummary `json:"matvecGFLOPs"`
	Error   string         `json:"error,omitempty"`
}

// modelResult holds one model's rows.
type modelResult struct {
	Key    string `json:"key"`   // stories260K, stories15M, smollm2-135m
	Title  string `json:"title"` // what it is, for the heading
	Shape  string `json:"shape"`
	Params int64  `json:"params"`
	// FileBytes and WeightBytes (the bytes of weights one decoded token
	// reads: every matrix once, the embedding's one row) by type, "F16"
	// or "F32".
	FileBytes    map[string]int64 `json:"fileBytes"`
	WeightBytes  map[string]int64 `json:"weightBytesPerToken"`
	Prompt       string           `json:"prompt"`
	PromptTokens int              `json:"promptTokens"`
	// SplitProducts is how many matrix products of a decoded token
	// threads.wasm splits among threads (splitProducts).
	SplitProducts int   `json:"splitProducts"`
	Rows          []row `json:"rows"`
}

// row is one engine in one runtime on one file of a model.
type row struct {
	Engine     string   `json:"engine"`  // "wisp", "wllama" or "llama.cpp"
	Runtime    string   `json:"runtime"` // "native", "wazero", "node" or "chromium"
	Mode       string   `json:"mode"`    // the harness: wllama "best" or "chat", wisp in Chromium "page", llama.cpp "llama_decode"
	Type       string   `json:"type"`    // "F16", "F32", "Q8_0" or "Q4_K_M"
	Threads    int      `json:"threads"`
	ColdLoadMs float64  `json:"coldLoadMs"` // the first load, before the warm-up
	LoadMs     summary  `json:"loadMs"`
	Prefill    summary  `json:"prefillTokensPerSecond"`
	Decode     summary  `json:"decodeTokensPerSecond"`
	PeakRSS    int64    `json:"peakRSSBytes"`
	Prompt     []int    `json:"promptTokens"` // per run, as the runtime counted them
	Tokens     []int    `json:"tokens"`       // decoded per run
	Reasons    []string `json:"reasons"`      // why each run's generation ended
	Seconds    float64  `json:"seconds"`      // wall-clock time of its warm-up and runs
	Error      string   `json:"error,omitempty"`
	Skipped    string   `json:"skipped,omitempty"` // why the row was not measured

	// OwnPrefill and OwnDecode are native llama.cpp's own figures
	// (llama_perf_context) for the same runs; RefPrefill and RefDecode
	// wllama's own timings alone in a fresh browser (bench.reference).
	OwnPrefill summary `json:"ownPrefill"`
	OwnDecode  summary `json:"ownDecode"`
	RefPrefill summary `json:"referencePrefill"`
	RefDecode  summary `json:"referenceDecode"`
	RefSeconds float64 `json:"referenceSeconds,omitempty"` // the reference's warm-up and runs
	CheckError string  `json:"checkError,omitempty"`
	// ReadBeside is the GB/s of a plain read of the model's bytes right
	// after each run (sample.ReadGBps): wisp natively at one thread.
	ReadBeside summary `json:"readBesideGBps"`

	// Derived by derive: ratios of medians (0: no ratio), and the share
	// of the memory-bound decode rate reached.
	DecodeVsNative   float64 `json:"decodeVsNative"`
	PrefillVsNative  float64 `json:"prefillVsNative"`
	DecodeVsWllama1  float64 `json:"decodeVsWllama1"`
	PrefillVsWllama1 float64 `json:"prefillVsWllama1"`
	MemoryBound      float64 `json:"memoryBoundFraction"`
	// MemoryBoundBeside is the same share of ReadBeside's median, the
	// limit measured in the same minutes as the decoding.
	MemoryBoundBeside float64 `json:"memoryBoundBesideFraction,omitempty"`
}

// memoryBoundCell formats the row's share of the memory-bound limit, and
// its share of the read beside its runs when it has one.
func (r *row) memoryBoundCell() string {
	if r.MemoryBoundBeside > 0 {
		return fmt.Sprintf("%s (%s of the read beside)", percent(r.MemoryBound), percent(r.MemoryBoundBeside))
	}
	return percent(r.MemoryBound)
}

// label names the row's engine, runtime and (for wllama) harness mode
// for the tables.
func (r *row) label() string {
	names := map[string]string{"native": "native (Go)", "wazero": "wazero", "node": "Node", "chromium": "Chromium"}
	rt := names[r.Runtime]
	if rt == "" {
		rt = r.Runtime
	}
	if r.Engine == "llama.cpp" {
		rt = "native (C)"
	}
	if r.Engine == "wllama" && r.Mode != "" {
		return r.Engine + " " + r.Mode + ", " + rt
	}
	return r.Engine + ", " + rt
}

// rm returns a row's median rates, or zeros for nil.
func rm(r *row) rateMedians {
	if r == nil {
		return rateMedians{}
	}
	return rateMedians{Prefill: r.Prefill.Median, Decode: r.Decode.Median}
}

// fastest returns the row of an engine, type and thread count with the
// highest median decode over its modes, or nil.
func (m *modelResult) fastest(engine, typ string, threads int) *row {
	var best *row
	for i := range m.Rows {
		r := &m.Rows[i]
		if r.Engine == engine && r.Type == typ && r.Threads == threads && r.Error == "" && r.Decode.ok() &&
			(best == nil || r.Decode.Median > best.Decode.Median) {
			best = r
		}
	}
	return best
}

// deriveChecks fills in the honesty check and the peer table.
func (rep *report) deriveChecks() {
	rep.Checks, rep.Violations, rep.Peers, rep.RefNotes = nil, nil, nil, nil
	add := func(m, label, what string, bench, own summary, from string, otherRuns bool) {
		c := check{Model: m, Row: label, What: what, Bench: bench.Median, Own: own.Median, OwnFrom: from, OtherRuns: otherRuns}
		if c.Own > 0 && c.Bench > 0 {
			c.Gap = c.Bench/c.Own - 1
			c.Apart = c.Gap
			if otherRuns {
				c.Apart = apart(bench, own)
			}
		}
		c.OK = c.Own > 0 && c.Bench > 0 && c.Apart <= CheckTolerance && c.Apart >= -CheckTolerance
		rep.Checks = append(rep.Checks, c)
		if !c.OK {
			if otherRuns {
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s, %s, %s: the bench's runs say %s–%s tok/s, %s %s–%s (%+.0f%% apart, limit ±%.0f%%)",
					m, label, what, num(bench.Min), num(bench.Max), from, num(own.Min), num(own.Max), 100*c.Apart, 100*CheckTolerance))
			} else {
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s, %s, %s: the bench says %s tok/s, %s %s (%+.0f%%, limit ±%.0f%%)",
					m, label, what, num(c.Bench), from, num(c.Own), 100*c.Gap, 100*CheckTolerance))
			}
		}
	}
	for _, m := range rep.Models {
		for _, r := range m.Rows {
			label := fmt.Sprintf("%s %s %dt", r.label(), r.Type, r.Threads)
			if r.CheckError != "" {
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s, %s: not checked: %s", m.Key, label, r.CheckError))
			}
			if r.Error != "" || !r.Decode.ok() {
				continue
			}
			if r.Engine == "llama.cpp" {
				add(m.Key, label, "decode", r.Decode, r.OwnDecode, "its llama_perf_context says", false)
				add(m.Key, label, "prefill", r.Prefill, r.OwnPrefill, "its llama_perf_context says", false)
			}
			if r.RefDecode.ok() {
				add(m.Key, label, "decode", r.Decode, r.RefDecode, "alone in a fresh browser its timings say", true)
				add(m.Key, label, "prefill", r.Prefill, r.RefPrefill, "alone in a fresh browser its timings say", true)
				for _, o := range m.Rows {
					if o.Engine == r.Engine && o.Mode == r.Mode && o.Threads == r.Threads && o.Type != r.Type && o.Error == "" && o.Decode.Median > r.Decode.Median {
						rep.RefNotes = append(rep.RefNotes, fmt.Sprintf("%s: wllama %s %s %dt decoded faster (%s tok/s) than the referenced %s (%s): it was not checked.",
							m.Key, o.Mode, o.Type, o.Threads, num(o.Decode.Median), r.Type, num(r.Decode.Median)))
					}
				}
			}
		}
		for _, t := range fileTypes {
			wc := m.find("wisp", "chromium", t.name, 1)
			wn := m.find("wisp", "native", t.name, 1)
			if wc == nil && wn == nil {
				continue
			}
			w1, w2 := m.fastest("wllama", t.name, 1), m.fastest("wllama", t.name, 2)
			l1, l2 := m.fastest("llama.cpp", t.name, 1), m.fastest("llama.cpp", t.name, 2)
			p := peerRow{Model: m.Key, Type: t.name, WispChromium: rm(wc), Wllama1: rm(w1), Wllama2: rm(w2), WispNative: rm(wn),
				LlamaCpp1: rm(l1), LlamaCpp2: rm(l2)}
			if w1 != nil {
				p.Wllama1Mode = w1.Mode
			}
			if w2 != nil {
				p.Wllama2Mode = w2.Mode
			}
			p.DecodeVsW1, p.PrefillVsW1 = ratio(p.WispChromium.Decode, p.Wllama1.Decode), ratio(p.WispChromium.Prefill, p.Wllama1.Prefill)
			p.DecodeVsW2, p.PrefillVsW2 = ratio(p.WispChromium.Decode, p.Wllama2.Decode), ratio(p.WispChromium.Prefill, p.Wllama2.Prefill)
			p.NatDecodeVsL1, p.NatPrefillVsL1 = ratio(p.WispNative.Decode, p.LlamaCpp1.Decode), ratio(p.WispNative.Prefill, p.LlamaCpp1.Prefill)
			p.NatDecodeVsL2, p.NatPrefillVsL2 = ratio(p.WispNative.Decode, p.LlamaCpp2.Decode), ratio(p.WispNative.Prefill, p.LlamaCpp2.Prefill)
			rep.Peers = append(rep.Peers, p)
		}
	}
}

// target is one of issue 7's goals for wisp in Chromium against wllama.
type target struct {
	Model  string  `json:"model"`
	Goal   string  `json:"goal"`
	Factor float64 `json:"factor"` // wisp must reach Factor times the wllama figure
	Strict bool    `json:"strict"` // and exceed it rather than equal it
	Wisp   float64 `json:"wisp"`
	Wllama float64 `json:"wllama"`
	Issue  float64 `json:"issueWllama"` // the issue's wllama figure (its machine, its day)
	Ratio  float64 `json:"ratio"`
	Met    bool    `json:"met"`
}

// issueFigures are issue 7's wllama figures (tokens/s) per random model:
// best single-thread decode, best two-thread decode, single-thread F32
// prefill.
var issueFigures = map[string][3]float64{
	"stories15M":   {245, 345, 1800},
	"smollm2-135m": {33.9, 46.2, 130},
}

// find returns the first row matching engine, runtime, type and threads
// (0: any) that has results, or nil.
func (m *modelResult) find(engine, runtime, typ string, threads int) *row {
	for i := range m.Rows {
		r := &m.Rows[i]
		if r.Engine == engine && r.Runtime == runtime && r.Type == typ && (threads == 0 || r.Threads == threads) && r.Error == "" && r.Decode.ok() {
			return r
		}
	}
	return nil
}

// bestWllama returns the highest median decode and prefill rates of
// wllama with the given threads over both types.
func (m *modelResult) bestWllama(threads int) (decode, prefill float64) {
	for _, r := range m.Rows {
		if r.Engine == "wllama" && r.Threads == threads && r.Error == "" {
			decode = max(decode, r.Decode.Median)
			prefill = max(prefill, r.Prefill.Median)
		}
	}
	return decode, prefill
}

// besideMinBytes is the least weight bytes per token for which a read of
// the model's bytes measures memory rather than the caches (32 MiB of L3
// here): smaller models' reads beside their runs are left out.
const besideMinBytes = 128 << 20

// besideShare returns the share of the read beside its runs that the
// row's decode reached, or 0 when it has no such read or its model's
// weights would fit the caches.
func (m *modelResult) besideShare(r *row) float64 {
	n := m.WeightBytes[r.Type]
	if !r.ReadBeside.ok() || n < besideMinBytes {
		return 0
	}
	return ratio(r.Decode.Median*float64(n), r.ReadBeside.Median*1e9)
}

// derive fills in the rows' ratios and memory-bound fractions and the
// report's targets.
func (rep *report) derive() {
	rep.Targets = nil
	for mi := range rep.Models {
		m := &rep.Models[mi]
		native := m.find("wisp", "native", "F16", 1)
		w1Decode, w1Prefill := m.bestWllama(1)
		for i := range m.Rows {
			r := &m.Rows[i]
			if native != nil {
				r.DecodeVsNative = ratio(r.Decode.Median, native.Decode.Median)
				r.PrefillVsNative = ratio(r.Prefill.Median, native.Prefill.Median)
			}
			r.DecodeVsWllama1 = ratio(r.Decode.Median, w1Decode)
			r.PrefillVsWllama1 = ratio(r.Prefill.Median, w1Prefill)
			bw := rep.Bandwidth
			if r.Threads > 1 && rep.BandwidthAll > 0 {
				bw = rep.BandwidthAll // several threads read with several cores
			}
			r.MemoryBound = ratio(r.Decode.Median*float64(m.WeightBytes[r.Type]), bw*1e9)
			r.MemoryBoundBeside = m.besideShare(r)
		}
		fig, ok := issueFigures[m.Key]
		if !ok {
			continue
		}
		var wisp row
		if w := m.find("wisp", "chromium", "F16", 1); w != nil {
			wisp = *w
		}
		w2Decode, _ := m.bestWllama(2)
		var f32Prefill float64
		if w := m.fastest("wllama", "F32", 1); w != nil {
			f32Prefill = w.Prefill.Median
		}
		add := func(goal string, factor float64, strict bool, wispV, wllamaV, issue float64) {
			t := target{Model: m.Key, Goal: goal, Factor: factor, Strict: strict, Wisp: wispV, Wllama: wllamaV, Issue: issue}
			t.Ratio = ratio(wispV, wllamaV)
			t.Met = t.Ratio > 0 && (t.Ratio > factor || (!strict && t.Ratio == factor))
			rep.Targets = append(rep.Targets, t)
		}
		add("decode ≥ 1.9× wllama's best single-thread decode", 1.9, false, wisp.Decode.Median, w1Decode, fig[0])
		add("decode > wllama's best two-thread decode", 1, true, wisp.Decode.Median, w2Decode, fig[1])
		add("prefill ≥ wllama's single-thread F32 prefill", 1, false, wisp.Prefill.Median, f32Prefill, fig[2])
	}
	rep.deriveChecks()
	rep.deriveThreads()
}

// num formats a rate or a time with three significant digits or so.
func num(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// cell formats a summary as "median (min–max)", or "–" when empty.
func cell(s summary) string {
	if !s.ok() {
		return "–"
	}
	if s.N == 1 {
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

// times formats a ratio as "1.23×", or "–" when there is none.
func times(x float64) string {
	if x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// percent formats a fraction as a percentage, or "–".
func percent(x float64) string {
	if x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// mib formats bytes in MiB, or "–" for 0.
func mib(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(b)/(1<<20))
}

// megabytes formats bytes in MB (10^6).
func megabytes(b int64) string {
	return fmt.Sprintf("%s MB", num(float64(b)/1e6))
}

// seconds formats a duration given in seconds, to the second (or to a
// tenth under ten seconds).
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// escape makes text safe inside a Markdown table cell.
func escape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// write prints the report's Markdown to stdout and, unless dir is empty,
// writes it and the report's JSON into dir as results.md and
// results.json.
func (rep *report) write(stdout io.Writer, dir string) error {
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644)
}

// markdown renders the report as the Markdown of bench/results.md.
func (rep *report) markdown() string {
	var b strings.Builder
	rep.headerMarkdown(&b)
	rep.targetsMarkdown(&b)
	rep.threadTargetsMarkdown(&b)
	rep.nativeTargetMarkdown(&b)
	rep.peersMarkdown(&b)
	rep.checksMarkdown(&b)
	rep.ceilingMarkdown(&b)
	rep.threadsMarkdown(&b)
	rep.modelsMarkdown(&b)
	rep.timeMarkdown(&b)
	rep.notesMarkdown(&b)
	return b.String()
}

// headerMarkdown writes the title, the machine and how the figures were made.
func (rep *report) headerMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	mc := rep.Machine
	st := rep.Settings
	p("# wisp benchmark\n\n")
	p("Made by `%s` on %s, in %s.\n\n", rep.Command, rep.Started.UTC().Format("2006-01-02 15:04 MST"), (time.Duration(rep.Elapsed) * time.Second).String())
	p("- Machine: %s, %d cores, %s; load average %s at the start, %s at the end.\n", mc.CPU, mc.Cores, mc.OS, mc.LoadStart, mc.LoadEnd)
	p("- Runtimes: Go %s; wazero %s; Node %s (V8 %s); Chromium %s (headless); @wllama/wllama %s (llama.cpp %s); native llama.cpp %s.\n",
		mc.Go, mc.Wazero, mc.Node, mc.NodeV8, mc.Chromium, mc.Wllama, mc.Libllama, mc.LlamaCpp)
	p("- wisp %s; kernels: %s.\n", mc.Git, mc.Kernels)
	p("- Each figure: the median of %d runs, (minimum–maximum). A run loads the model, generates %d tokens "+
		"after a %d-token prompt, then evaluates a prompt of %d tokens (BOS included) and decodes %d tokens greedily "+
		"(stopping early, as a note then says, if the decoding takes over %s); context %d. "+
		"Every runtime is warmed up first (a load and %s of short generations), and the runs of all runtimes "+
		"of a model are interleaved, so that a busy machine slows them alike. That is the native, wazero, Node and llama.cpp rows; "+
		"the Chromium rows (wisp and wllama) load once per row, warm up until their decode rate settles and then run on the loaded model "+
		"(the notes give every harness's settings). A row takes no further run once it has taken -max-row-seconds (a note says so), but for the wllama rows the honesty check measures, which take every run.\n\n",
		st.Runs, st.RunWarmupTokens, st.WarmupPrompt, st.PromptTokens, st.DecodeTokens,
		time.Duration(st.DecodeCapMs)*time.Millisecond, st.Context, time.Duration(st.WarmupMs)*time.Millisecond)
}

// targetsMarkdown writes issue 7's targets.
func (rep *report) targetsMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Targets) > 0 {
		p("## Issue 7's targets: wisp (Chromium, F16, one thread) against wllama\n\n")
		p("| model | target | wisp | wllama here | ratio | met | wllama in the issue |\n")
		p("| --- | --- | ---: | ---: | ---: | :---: | ---: |\n")
		for _, t := range rep.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", t.Model, t.Goal, num(t.Wisp), num(t.Wllama), times(t.Ratio), met, num(t.Issue))
		}
		p("\n")
	}
}

// nativeTargetShare is issue 12's native goal: wisp's F16 decode at one
// thread reads its weights at this share of the memory-bound limit.
const nativeTargetShare = 0.8

// nativeTargetMarkdown writes issue 12's native target for every model
// whose native F16 row at one thread has a share of the read beside its
// runs (besideShare), against both limits: the ceiling's read and that
// read.
func (rep *report) nativeTargetMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	met := func(share float64) string {
		if share >= nativeTargetShare {
			return "yes"
		}
		return "no"
	}
	header := false
	for _, m := range rep.Models {
		r := m.find("wisp", "native", "F16", 1)
		if r == nil || r.MemoryBoundBeside == 0 {
			continue
		}
		if !header {
			p("## Issue 12's native target: F16 decode at ≥ %s of the memory-bound limit\n\n", percent(nativeTargetShare))
			p("wisp natively, one thread. The limit is a plain read's GB/s, measured twice: by the ceiling (a 256 MiB block, at its own time in the run) and right after each decode run, reading the model's own bytes (%d times, the median), so in the same minutes as the decoding; this machine's read bandwidth moves by a third from one minute to the next. Models whose weights per token are under %s are left out, as their bytes fit the caches.\n\n", readRuns, megabytes(besideMinBytes))
			p("| model | decode, tok/s | weights read, GB/s | ceiling's read, GB/s | share | met | read beside the runs, GB/s | share | met |\n")
			p("| --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: | :---: |\n")
			header = true
		}
		weights := r.Decode.Median * float64(m.WeightBytes[r.Type]) / 1e9
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.Key, cell(r.Decode), num(weights), num(rep.Bandwidth),
			percent(r.MemoryBound), met(r.MemoryBound), cell(r.ReadBeside), percent(r.MemoryBoundBeside), met(r.MemoryBoundBeside))
	}
	if header {
		p("\n")
	}
}

// peersMarkdown writes wisp against wllama and llama.cpp, file by file.
func (rep *report) peersMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Peers) > 0 {
		p("## wisp against the peers, file by file\n\n")
		p("wisp in Chromium (one thread) against wllama in the same Chromium in the faster of its harness modes (the mode in brackets), " +
			"and wisp natively (one thread) against native llama.cpp; prefill / decode in tokens per second, ratios of medians.\n\n")
		p("| model | file | wisp Chromium | wllama 1t | wisp ÷ wllama 1t | wllama 2t | wisp ÷ wllama 2t | wisp native | llama.cpp 1t | wisp ÷ llama.cpp 1t | llama.cpp 2t | wisp ÷ llama.cpp 2t |\n")
		p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		pair := func(r rateMedians) string {
			if r.Decode <= 0 {
				return "–"
			}
			return num(r.Prefill) + " / " + num(r.Decode)
		}
		pr := func(prefill, decode float64) string {
			if prefill <= 0 && decode <= 0 {
				return "–"
			}
			return times(prefill) + " / " + times(decode)
		}
		mode := func(m string) string {
			if m == "" {
				return ""
			}
			return " (" + m + ")"
		}
		for _, x := range rep.Peers {
			p("| %s | %s | %s | %s%s | %s | %s%s | %s | %s | %s | %s | %s | %s |\n", x.Model, x.Type, pair(x.WispChromium),
				pair(x.Wllama1), mode(x.Wllama1Mode), pr(x.PrefillVsW1, x.DecodeVsW1), pair(x.Wllama2), mode(x.Wllama2Mode), pr(x.PrefillVsW2, x.DecodeVsW2),
				pair(x.WispNative), pair(x.LlamaCpp1), pr(x.NatPrefillVsL1, x.NatDecodeVsL1), pair(x.LlamaCpp2), pr(x.NatPrefillVsL2, x.NatDecodeVsL2))
		}
		p("\n")
	}
}

// checksMarkdown writes the honesty check: the bench's peer figures against the peers' own.
func (rep *report) checksMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Checks) > 0 || len(rep.Violations) > 0 {
		p("## The honesty check\n\n")
		p("The bench's figure for each peer against what the peer reports on its own for the same file in its fastest mode: "+
			"native llama.cpp's llama_perf_context for the same runs; wllama's own timings when it runs alone in a fresh browser "+
			"(a browser of its own with that one page, not sampled for memory; plain createCompletion, n_batch 512, loaded once and warmed up alike), "+
			"for the wllama rows wisp is compared against: its best mode on F32, its fastest file type here, at one and two threads. "+
			"The reference runs once right after each run of its row, so that the two see the machine alike: measured after all the rows, "+
			"as before, it met another load than its row had. "+
			"Limit ±%.0f%%: of the medians for the same runs (llama.cpp); for wllama, whose reference is other runs, of the distance "+
			"between the two ranges of runs (\"apart\": 0 when they overlap), since on two busy cores its runs vary by a quarter.\n\n",
			100*CheckTolerance)
		p("| model | row | rate | bench, tok/s | its own, tok/s | gap of medians | runs apart | within |\n| --- | --- | --- | ---: | ---: | ---: | ---: | :---: |\n")
		for _, c := range rep.Checks {
			ok := "yes"
			if !c.OK {
				ok = "**NO**"
			}
			ap := "same runs"
			if c.OtherRuns {
				ap = fmt.Sprintf("%+.0f%%", 100*c.Apart)
			}
			p("| %s | %s | %s | %s | %s | %+.0f%% | %s | %s |\n", c.Model, escape(c.Row), c.What, num(c.Bench), num(c.Own), 100*c.Gap, ap, ok)
		}
		p("\n")
		for _, n := range rep.RefNotes {
			p("- %s\n", n)
		}
		if len(rep.RefNotes) > 0 {
			p("\n")
		}
		if len(rep.Violations) > 0 {
			p("**Violations** (make bench fails):\n\n")
			for _, v := range rep.Violations {
				p("- %s\n", v)
			}
			p("\n")
		} else {
			p("Every figure is within the limit.\n\n")
		}
	}
}

// ceilingMarkdown writes the machine's read bandwidth and kernel speed on one core.
func (rep *report) ceilingMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Ceiling) > 0 {
		p("## The machine's ceiling (one core)\n\n")
		var cols []string
		for _, c := range rep.Ceiling {
			if len(c.Read)+len(c.MatVec) > len(cols) {
				cols = cols[:0]
				for _, s := range c.Read {
					cols = append(cols, "read "+s.Name+", GB/s")
				}
				for _, s := range c.MatVec {
					cols = append(cols, "matvec "+s.Name+", GFLOP/s")
				}
			}
		}
		p("| runtime | %s |\n", strings.Join(cols, " | "))
		p("| --- |%s\n", strings.Repeat(" ---: |", len(cols)))
		for _, c := range rep.Ceiling {
			cells := make([]string, 0, len(cols))
			if c.Error != "" {
				cells = append(cells, escape("failed: "+c.Error))
			}
			for _, s := range c.Read {
				cells = append(cells, cell(s.summary))
			}
			for _, s := range c.MatVec {
				cells = append(cells, cell(s.summary))
			}
			for len(cells) < len(cols) {
				cells = append(cells, "")
			}
			p("| %s | %s |\n", c.Runtime, strings.Join(cells, " | "))
		}
		p("\nRead: a block of that size summed with 8-byte loads (native Go) or SIMD128 loads (wasm). "+
			"Matvec: one matrix-vector product by wisp's kernel (F16 weights widened in registers; F32 as is; "+
			"2·rows·cols flops): package simd's native kernels (see the kernels line above) natively, kernels.wasm elsewhere. "+
			"A decode figure's share of the memory-bound limit is its weight bytes per second over %s GB/s (%s).\n\n",
			num(rep.Bandwidth), rep.BandwidthFrom)
	}
}

// modelsMarkdown writes a table of every row per model.
func (rep *report) modelsMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	for _, m := range rep.Models {
		p("## %s\n\n", m.Title)
		var wb, lim []string
		for _, t := range fileTypes {
			if n := m.WeightBytes[t.name]; n > 0 {
				wb = append(wb, t.name+" "+megabytes(n))
				if rep.Bandwidth > 0 {
					lim = append(lim, t.name+" "+num(rep.Bandwidth*1e9/float64(n)))
				}
			}
		}
		p("%s; %s parameters. Weights read per decoded token: %s; ", m.Shape, fmt.Sprintf("%.2fM", float64(m.Params)/1e6), strings.Join(wb, ", "))
		if rep.Bandwidth > 0 {
			p("memory-bound decode limit (tok/s) %s.\n\n", strings.Join(lim, ", "))
		} else {
			p("no bandwidth was measured.\n\n")
		}
		p("| engine, runtime | weights | threads | load, ms | prefill, tok/s | decode, tok/s | peak RSS, MiB | decode ÷ native | decode ÷ wllama 1t | prefill ÷ wllama 1t | of memory bound | bench time |\n")
		p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range m.Rows {
			if r.Skipped != "" {
				p("| %s | %s | %d | %s | | | | | | | | |\n", r.label(), r.Type, r.Threads, escape("not measured: "+r.Skipped))
				continue
			}
			if r.Error != "" {
				p("| %s | %s | %d | %s | | | | | | | | %s |\n", r.label(), r.Type, r.Threads, escape("failed: "+r.Error), seconds(r.Seconds))
				continue
			}
			p("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.label(), r.Type, r.Threads,
				cell(r.LoadMs), cell(r.Prefill), cell(r.Decode), mib(r.PeakRSS),
				times(r.DecodeVsNative), times(r.DecodeVsWllama1), times(r.PrefillVsWllama1), r.memoryBoundCell(), seconds(r.Seconds))
		}
		p("\n")
	}
}

// timeMarkdown writes where the bench spent its time.
func (rep *report) timeMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Time) > 0 {
		p("## Where the time went\n\n")
		p("| part | time |\n| --- | ---: |\n")
		for _, t := range rep.Time {
			p("| %s | %s |\n", escape(t.Part), seconds(t.Seconds))
		}
		p("| total | %s |\n\n", seconds(rep.Elapsed))
	}
}

// notesMarkdown writes the notes.
func (rep *report) notesMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range rep.Notes {
			p("- %s\n", n)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"wisp/engine"
	"wisp/internal/readsum"
)

// Issue 16's targets for threads, on the SmolLM2-135M shape on a 2-core
// machine: prefill at two threads at least 1.8 times wisp's one thread,
// decode at least 1.3 times, and both faster than wllama's two threads on
// the same file.
const (
	threadsTargetModel   = "smollm2-135m"
	threadsTargetPrefill = 1.8
	threadsTargetDecode  = 1.3
)

// wasmMinWork is threads.wasm's default min_work (engine.js's and the
// wazero host's): a product of fewer than twice as many multiply-adds
// stays on the calling thread.
const wasmMinWork = 65536

// estimateThreads are the thread counts the scaling estimate shows.
var estimateThreads = []int{4, 8, 16}

// threadRatio is a row at several threads against the same engine,
// runtime, harness mode and file at one.
type threadRatio struct {
	Model   string      `json:"model"`
	Row     string      `json:"row"`
	Type    string      `json:"type"`
	Threads int         `json:"threads"`
	One     rateMedians `json:"one"`
	Many    rateMedians `json:"many"`
	Prefill float64     `json:"prefillRatio"`
	Decode  float64     `json:"decodeRatio"`
}

// threadTarget is one of issue 16's goals for one runtime and file.
type threadTarget struct {
	Model   string  `json:"model"`
	Runtime string  `json:"runtime"`
	Type    string  `json:"type"`
	Goal    string  `json:"goal"`
	Wisp    float64 `json:"wisp"`    // wisp's figure at two threads
	Against float64 `json:"against"` // wisp's at one, or wllama's at two
	Factor  float64 `json:"factor"`  // the ratio to reach
	Strict  bool    `json:"strict"`  // and exceed
	Ratio   float64 `json:"ratio"`
	Met     bool    `json:"met"`
}

// dispatchCost is threads.wasm's round trip beyond the kernel, as
// site/bench/dispatch.js measures it in Node: microseconds per product,
// the kernel called directly, dispatched while the helpers spin (hot) and
// after they have gone to sleep (cold).
type dispatchCost struct {
	Helpers int     `json:"helpers"`
	Direct  summary `json:"directMicroseconds"`
	Hot     summary `json:"hotMicroseconds"`
	Cold    summary `json:"coldMicroseconds"`
	Error   string  `json:"error,omitempty"`
}

// scalingRow estimates one rate of one row at more threads from its one-
// and two-thread medians (see fitScaling).
type scalingRow struct {
	Model      string    `json:"model"`
	Row        string    `json:"row"`
	Type       string    `json:"type"`
	What       string    `json:"what"` // "prefill" or "decode"
	One        float64   `json:"one"`  // tok/s
	Two        float64   `json:"two"`
	SerialMs   float64   `json:"serialMs"`
	ParallelMs float64   `json:"parallelMs"`
	DispatchMs float64   `json:"dispatchMs"`
	Threads    []int     `json:"threads"`
	Estimate   []float64 `json:"estimate"` // tok/s at Threads
	NeedGBps   []float64 `json:"needGBps"` // decode: the weight bytes those rates read per second
}

// fitScaling splits a rate's time per token, measured at one thread (one
// tok/s) and two (two tok/s), into a serial part s and a parallel part p
// with t1 = s + p and t2 = s + p/2 + c, c being the dispatch cost per
// token (0: none), and returns s and p in seconds. A two-thread rate past
// twice the one-thread rate fits as all parallel, one below it as all
// serial.
func fitScaling(one, two, c float64) (s, p float64) {
	t1, t2 := 1/one, 1/two
	p = 2 * (t1 - t2 + c)
	p = min(max(p, 0), t1)
	return t1 - p, p
}

// estimateRate is the rate at n threads of a fit: 1/(s + p/n + c).
func estimateRate(s, p, c float64, n int) float64 {
	return 1 / (s + p/float64(n) + c)
}

// splitProducts returns how many of the matrix products of one decoded
// token threads.wasm splits (those of at least 2·wasmMinWork
// multiply-adds and 8 rows): the attention projections, the
// feed-forward's and the classifier.
func splitProducts(m *engine.Model) int {
	hd := m.Dim / max(m.Heads, 1)
	q, kv := m.Heads*hd, m.KVHeads*hd
	perLayer := [][2]int{{q, m.Dim}, {kv, m.Dim}, {kv, m.Dim}, {m.Dim, q}, {m.HiddenDim, m.Dim}, {m.HiddenDim, m.Dim}, {m.Dim, m.HiddenDim}}
	split := func(rows, cols int) int {
		if rows*cols >= 2*wasmMinWork && rows >= 8 {
			return 1
		}
		return 0
	}
	n := 0
	for _, mc := range perLayer {
		n += split(mc[0], mc[1])
	}
	return n*m.Layers + split(m.VocabSize, m.Dim)
}

// nativeReadAll measures the read bandwidth of threads goroutines at once,
// each on a thread of its own summing a block of n bytes of its own (as
// the ceiling's one-core read does), samples times, each after as long a
// round untimed; GB/s of all of them together.
func nativeReadAll(n, threads, samples int, minMs float64) []float64 {
	blocks := make([][]uint64, threads)
	for t := range blocks {
		w := make([]uint64, n/8)
		for i := range w {
			w[i] = uint64(i+t) * 0x9e3779b97f4a7c15
		}
		blocks[t] = w
	}
	t0 := time.Now()
	sink := readsum.Xor(blocks[0])
	reps := max(1, int(math.Ceil(minMs/(float64(time.Since(t0))/1e6))))
	round := func() time.Duration {
		var wg sync.WaitGroup
		start := make(chan struct{})
		sinks := make([]uint64, threads)
		for t := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				<-start
				for range reps {
					sinks[t] ^= readsum.Xor(blocks[t])
				}
			}()
		}
		time.Sleep(time.Millisecond) // every goroutine at the start line
		t0 := time.Now()
		close(start)
		wg.Wait()
		for _, x := range sinks {
			sink ^= x
		}
		return time.Since(t0)
	}
	var out []float64
	for range samples {
		round()
		d := round()
		out = append(out, float64(threads)*float64(n)*float64(reps)/d.Seconds()/1e9)
	}
	runtime.KeepAlive(sink)
	return out
}

// measureDispatch runs site/bench/dispatch.js in Node with a helper on
// every other core.
func (b *bench) measureDispatch() *dispatchCost {
	d := &dispatchCost{Helpers: max(1, runtime.NumCPU()-1)}
	cmd := exec.Command(b.nodeBin, "bench/dispatch.js", fmt.Sprint(d.Helpers), "--json")
	cmd.Dir = b.site
	out, err := cmd.Output()
	var a struct {
		Helpers           int
		Direct, Hot, Cold []float64
	}
	if err == nil {
		err = json.Unmarshal(out, &a)
	}
	if err != nil {
		d.Error = firstLine(err.Error())
		return d
	}
	d.Helpers, d.Direct, d.Hot, d.Cold = a.Helpers, summarize(a.Direct), summarize(a.Hot), summarize(a.Cold)
	return d
}

// deriveThreads fills in the thread ratios, issue 16's targets and the
// scaling estimates.
func (rep *report) deriveThreads() {
	rep.ThreadRatios, rep.ThreadTargets, rep.Scaling = nil, nil, nil
	for mi := range rep.Models {
		m := &rep.Models[mi]
		for i := range m.Rows {
			r := &m.Rows[i]
			if r.Threads <= 1 || r.Error != "" || !r.Decode.ok() {
				continue
			}
			one := m.same(r, 1)
			if one == nil {
				continue
			}
			rep.ThreadRatios = append(rep.ThreadRatios, threadRatio{Model: m.Key, Row: r.label(), Type: r.Type, Threads: r.Threads,
				One: rm(one), Many: rm(r), Prefill: ratio(r.Prefill.Median, one.Prefill.Median), Decode: ratio(r.Decode.Median, one.Decode.Median)})
		}
		if m.Key == threadsTargetModel {
			rep.threadTargets(m)
		}
		rep.scaling(m)
	}
}

// same returns the row of r's engine, runtime, mode and type at the given
// threads, with results, or nil.
func (m *modelResult) same(r *row, threads int) *row {
	for i := range m.Rows {
		o := &m.Rows[i]
		if o.Engine == r.Engine && o.Runtime == r.Runtime && o.Mode == r.Mode && o.Type == r.Type && o.Threads == threads && o.Error == "" && o.Decode.ok() {
			return o
		}
	}
	return nil
}

// threadTargets adds issue 16's targets for a model: for wisp natively,
// in Node and in Chromium on each file, two threads against one; and
// wisp in Chromium at two threads against wllama at two on the same file
// (its fastest mode), or on F32 where wllama's F16 was not measured.
func (rep *report) threadTargets(m *modelResult) {
	add := func(t threadTarget) {
		t.Model = m.Key
		t.Ratio = ratio(t.Wisp, t.Against)
		t.Met = t.Ratio > 0 && (t.Ratio > t.Factor || (!t.Strict && t.Ratio == t.Factor))
		rep.ThreadTargets = append(rep.ThreadTargets, t)
	}
	names := map[string]string{"native": "native (Go)", "node": "Node", "chromium": "Chromium"}
	for _, rt := range []string{"native", "node", "chromium"} {
		for _, t := range fileTypes {
			two := m.find("wisp", rt, t.name, 2)
			one := m.find("wisp", rt, t.name, 1)
			if two == nil && one == nil {
				continue
			}
			var w2, w1 row
			if two != nil {
				w2 = *two
			}
			if one != nil {
				w1 = *one
			}
			add(threadTarget{Runtime: names[rt], Type: t.name, Goal: fmt.Sprintf("prefill at 2 threads ≥ %.1f× at 1", threadsTargetPrefill),
				Wisp: w2.Prefill.Median, Against: w1.Prefill.Median, Factor: threadsTargetPrefill})
			add(threadTarget{Runtime: names[rt], Type: t.name, Goal: fmt.Sprintf("decode at 2 threads ≥ %.1f× at 1", threadsTargetDecode),
				Wisp: w2.Decode.Median, Against: w1.Decode.Median, Factor: threadsTargetDecode})
			if rt != "chromium" {
				continue
			}
			peer, on := m.fastest("wllama", t.name, 2), t.name
			if peer == nil && t.name == "F16" {
				peer, on = m.fastest("wllama", "F32", 2), "F32 (its F16 not measured)"
			}
			var p row
			if peer != nil {
				p = *peer
			}
			add(threadTarget{Runtime: names[rt], Type: t.name, Goal: "prefill at 2 threads > wllama's 2 threads on " + on,
				Wisp: w2.Prefill.Median, Against: p.Prefill.Median, Factor: 1, Strict: true})
			add(threadTarget{Runtime: names[rt], Type: t.name, Goal: "decode at 2 threads > wllama's 2 threads on " + on,
				Wisp: w2.Decode.Median, Against: p.Decode.Median, Factor: 1, Strict: true})
		}
	}
}

// scaling adds the estimates at more threads for wisp in Chromium on a
// model's files, from its one- and two-thread medians, with the measured
// dispatch cost (hot, per split product) for decode; prefill's products
// carry a whole prompt each, so that its dispatch per token is left out.
func (rep *report) scaling(m *modelResult) {
	hot := 0.0
	if rep.Dispatch != nil && rep.Dispatch.Hot.ok() {
		hot = math.Max(rep.Dispatch.Hot.Median-rep.Dispatch.Direct.Median, 0) * 1e-6
	}
	for _, t := range fileTypes {
		one, two := m.find("wisp", "chromium", t.name, 1), m.find("wisp", "chromium", t.name, 2)
		if one == nil || two == nil {
			continue
		}
		for _, what := range []string{"prefill", "decode"} {
			r1, r2, c := one.Prefill.Median, two.Prefill.Median, 0.0
			if what == "decode" {
				r1, r2, c = one.Decode.Median, two.Decode.Median, hot*float64(m.SplitProducts)
			}
			if r1 <= 0 || r2 <= 0 {
				continue
			}
			s, p := fitScaling(r1, r2, c)
			sr := scalingRow{Model: m.Key, Row: two.label(), Type: t.name, What: what, One: r1, Two: r2,
				SerialMs: s * 1e3, ParallelMs: p * 1e3, DispatchMs: c * 1e3, Threads: estimateThreads}
			for _, n := range estimateThreads {
				est := estimateRate(s, p, c, n)
				sr.Estimate = append(sr.Estimate, est)
				if what == "decode" {
					sr.NeedGBps = append(sr.NeedGBps, est*float64(m.WeightBytes[t.name])/1e9)
				}
			}
			rep.Scaling = append(rep.Scaling, sr)
		}
	}
}

// threadsMarkdown renders issue 16's targets, the ratios of threads and
// what a visitor with more cores should expect.
func (rep *report) threadsMarkdown(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	if len(rep.ThreadRatios) > 0 {
		p("## Threads: N threads ÷ 1\n\n")
		p("Each row at more threads against the same engine, runtime, harness and file at one; prefill / decode in tokens per second, ratios of medians. " +
			"wisp at one thread runs its plain build, at more its threaded build (shared memory, helper Workers: threads.wasm), as a page or Node's load gets them.\n\n")
		p("| model | engine, runtime | file | threads | 1 thread | N threads | prefill N ÷ 1 | decode N ÷ 1 |\n")
		p("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, t := range rep.ThreadRatios {
			p("| %s | %s | %s | %d | %s / %s | %s / %s | %s | %s |\n", t.Model, t.Row, t.Type, t.Threads,
				num(t.One.Prefill), num(t.One.Decode), num(t.Many.Prefill), num(t.Many.Decode), times(t.Prefill), times(t.Decode))
		}
		p("\n")
	}
	if len(rep.Scaling) > 0 || rep.BandwidthAll > 0 || rep.Dispatch != nil {
		p("## What a visitor with more cores should expect\n\n")
		p("This machine has %d cores, so beyond two threads this is an estimate, not a measured curve (-threads 2,4,8 measures one where there "+
			"are the cores).", rep.Machine.Cores)
		if rep.Bandwidth > 0 {
			p(" One core reads %s GB/s (%s)", num(rep.Bandwidth), rep.BandwidthFrom)
			if rep.BandwidthAll > 0 {
				p("; %d threads at once, each its own block of the same size, read %s GB/s together (native Go, median of 3), %s one core's",
					rep.BandwidthAllThreads, num(rep.BandwidthAll), times(rep.BandwidthAll/rep.Bandwidth))
			}
			p(".")
		}
		if d := rep.Dispatch; d != nil {
			if d.Error != "" {
				p(" The dispatch cost was not measured: %s.", escape(d.Error))
			} else {
				p(" A product handed to the kernel threads costs %s µs beyond the kernel while the helpers spin (hot) and %s µs once they sleep (cold): "+
					"site/bench/dispatch.js in Node with helpers on %d other core(s), a 16×8 matmul_f32 (nothing to compute) through threads.wasm's dispatcher against the "+
					"kernel called directly (%s µs), medians of 3 rounds of 20000 calls back to back (hot) and of 200 calls 1 ms apart (cold).",
					num(math.Max(d.Hot.Median-d.Direct.Median, 0)), num(d.Cold.Median), d.Helpers, num(d.Direct.Median))
			}
		}
		p("\n\n")
		if len(rep.Scaling) > 0 {
			p("Method: a rate's time per token at one thread, t1 = s + p, and at two, t2 = s + p/2 + c, split it into a serial part s "+
				"(what stays on the engine's thread: attention, norms, sampling, the products too small to split) and a parallel part p, c being the dispatch "+
				"cost per token (decode: the hot cost times the products a token splits; prefill: left out, as each product carries the whole prompt); "+
				"then n threads give 1/(s + p/n + c), an upper bound where n is past the helpers the dispatch was measured with, as more cost more to wake and join. "+
				"Decode also reads every weight once per token: at n threads it needs the GB/s in the last columns, and goes no faster than the "+
				"visitor's memory gives all its cores together (%s GB/s here).\n\n", num(rep.BandwidthAll))
			p("| model | row | file | rate | 1t, tok/s | 2t, tok/s | s, ms | p, ms | c, ms |")
			for _, n := range estimateThreads {
				p(" %dt, tok/s |", n)
			}
			for _, n := range estimateThreads {
				p(" %dt needs, GB/s |", n)
			}
			p("\n| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |%s%s\n", strings.Repeat(" ---: |", len(estimateThreads)), strings.Repeat(" ---: |", len(estimateThreads)))
			for _, s := range rep.Scaling {
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", s.Model, s.Row, s.Type, s.What, num(s.One), num(s.Two), num(s.SerialMs), num(s.ParallelMs), num(s.DispatchMs))
				for _, e := range s.Estimate {
					p(" %s |", num(e))
				}
				for i := range s.Threads {
					if i < len(s.NeedGBps) {
						p(" %s |", num(s.NeedGBps[i]))
					} else {
						p(" |")
					}
				}
				p("\n")
			}
			p("\n")
		}
	}
}

// threadTargetsMarkdown renders issue 16's targets table.
func (rep *report) threadTargetsMarkdown(b *strings.Builder) {
	if len(rep.ThreadTargets) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Issue 16's targets: wisp at two threads\n\n")
	p("| model | runtime | file | target | wisp 2t | against | ratio | met |\n")
	p("| --- | --- | --- | --- | ---: | ---: | ---: | :---: |\n")
	for _, t := range rep.ThreadTargets {
		met := "no"
		if t.Met {
			met = "yes"
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", t.Model, t.Runtime, t.Type, t.Goal, orDash(t.Wisp), orDash(t.Against), times(t.Ratio), met)
	}
	p("\n")
}

// orDash formats a rate, or "–" for none.
func orDash(x float64) string {
	if x <= 0 {
		return "–"
	}
	return num(x)
}

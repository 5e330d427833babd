package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// entry is one row of a model's measurement: the row, the runner that
// measures it and its runs so far. A reference (see referenceEntries)
// has checks set: the row whose figures it checks; its runs fill that
// row's RefPrefill and RefDecode rather than a row of their own.
type entry struct {
	row    row
	r      runner
	runs   []sample
	checks *entry // the row a reference checks
	// checked: a reference checks this row, so it takes every run
	// whatever -max-row-seconds says (one run each measured the check's
	// noise, not the harness: 114 against 91 tok/s on two busy cores).
	checked bool
	ranIn   int // the round of its last run, -1 before any
}

// live reports whether the entry is to be warmed up and run.
func (e *entry) live() bool { return e.row.Error == "" && e.row.Skipped == "" }

// tag names the entry in the log: "[model] label type Nt".
func (e *entry) tag(pm *preparedModel) string {
	return fmt.Sprintf("[%s] %s %s %dt", pm.spec.Key, e.row.label(), e.row.Type, e.row.Threads)
}

// measure measures one model in every runtime: it starts a runner per
// row (entries), warms each up (warmUp), runs them in turn, run after run
// (runRounds), then ends them and summarizes their runs (finish).
func (b *bench) measure(pm *preparedModel) modelResult {
	es := b.entries(pm)
	b.warmUp(pm, es)
	b.runRounds(pm, es)
	res := pm.result
	for _, e := range es { // the references first: they fill in their rows
		if e.checks != nil {
			b.finishReference(pm, e)
		}
	}
	for _, e := range es {
		if e.checks == nil {
			res.Rows = append(res.Rows, b.finish(pm, e))
		}
	}
	return res
}

// entries starts the runners of a model's rows: wisp's in every runtime
// at each thread count, native llama.cpp's, wllama's, and the honesty
// check's references, each beside the row it checks.
func (b *bench) entries(pm *preparedModel) []*entry {
	var es []*entry
	add := func(rw row, r runner, err error) {
		e := &entry{row: rw, r: r, ranIn: -1}
		if err != nil {
			e.row.Error = firstLine(err.Error())
			b.logf("[%s] %s %s: %v", pm.spec.Key, rw.label(), rw.Type, err)
		}
		es = append(es, e)
	}
	b.wispEntries(pm, add)
	b.llamacppEntries(pm, add)
	b.wllamaEntries(pm, add)
	return b.referenceEntries(pm, es)
}

// threadCounts returns the thread counts wisp runs at in a runtime on a
// model: one, and -threads's where -threads-runtimes and -threads-models
// name them.
func (o *options) threadCounts(runtime, model string) []int {
	counts := []int{1}
	if !slices.Contains(o.threadsRuntimes, runtime) || !containsFold(o.threadsModels, model) {
		return counts
	}
	for _, n := range o.threads {
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	return counts
}

// wispEntries adds wisp's rows, file type by file type: natively and in
// wazero (bench -child), in Node (node.bench.js) and in Chromium (the
// page), each runtime's thread counts side by side.
func (b *bench) wispEntries(pm *preparedModel, add func(row, runner, error)) {
	o := b.o
	st := b.rep.Settings
	exe, exeErr := os.Executable()
	for _, typ := range o.types {
		if !slices.Contains(pm.types, typ) {
			continue
		}
		file := filepath.Join(b.dir, fileName(pm.spec.Key, typ))
		for _, rt := range []string{"native", "wazero", "node", "chromium"} {
			if o.skipped(rt) || (rt == "chromium" && b.browser == nil) {
				continue
			}
			for _, threads := range o.threadCounts(rt, pm.spec.Key) {
				rw := row{Engine: "wisp", Runtime: rt, Type: typ, Threads: threads}
				switch rt {
				case "native", "wazero":
					if exeErr != nil {
						add(rw, nil, exeErr)
						continue
					}
					cfg := childConfig{Runtime: rt, Model: file, Wasm: filepath.Join(b.site, "wasm", "wisp.wasm"), Threads: threads,
						PromptIDs: pm.promptIDs, WarmupIDs: pm.warmupIDs, MaxTokens: o.decodeTokens, WarmupTokens: o.warmupTokens,
						RunWarmupTokens: st.RunWarmupTokens, Context: st.Context, WarmupMs: float64(st.WarmupMs), DecodeCapMs: float64(st.DecodeCapMs)}
					p, err := b.start(rt+" runner", []string{exe, "-child"}, b.root, cfg, nil)
					add(rw, procRunnerOf(p, err), err)
				case "node":
					cfg := map[string]any{"wasmDir": filepath.Join(b.site, "wasm"), "model": file, "promptIds": pm.promptIDs, "warmupIds": pm.warmupIDs,
						"maxTokens": o.decodeTokens, "warmupTokens": o.warmupTokens, "runWarmupTokens": st.RunWarmupTokens, "context": st.Context,
						"warmupMs": st.WarmupMs, "decodeCapMs": st.DecodeCapMs, "threads": threads}
					var hello struct {
						Node string `json:"node"`
						V8   string `json:"v8"`
					}
					p, err := b.start("node.bench.js", []string{b.nodeBin, "--expose-gc", "bench/node.bench.js"}, b.site, cfg, &hello)
					if err == nil {
						b.rep.Machine.Node, b.rep.Machine.NodeV8 = hello.Node, hello.V8
					}
					add(rw, procRunnerOf(p, err), err)
				case "chromium":
					id := pm.spec.Key + "/wisp/" + typ
					if threads > 1 {
						id += fmt.Sprintf("/%dt", threads)
					}
					job := browserJob{ID: id, Engine: "wisp", Mode: "page", File: fileName(pm.spec.Key, typ), Threads: threads,
						Prompt: pm.result.Prompt, Warmup: pm.warmupText, MaxTokens: o.decodeTokens, WarmupTokens: o.warmupTokens,
						RunWarmupTokens: st.RunWarmupTokens, DecodeCapMs: st.DecodeCapMs}
					add(rw, &browserRunner{p: b.browser, job: job}, nil)
				}
			}
		}
	}
}

// procRunnerOf returns the runner of a started process, or nil.
func procRunnerOf(p *lineProc, err error) runner {
	if err != nil {
		return nil
	}
	return &procRunner{p: p}
}

// llamacppEntries adds native llama.cpp's rows (-llamacpp-runs).
func (b *bench) llamacppEntries(pm *preparedModel, add func(row, runner, error)) {
	o := b.o
	if o.llamacppBin == "" || o.skipped("llamacpp") {
		return
	}
	st := b.rep.Settings
	for _, c := range o.llamacpp {
		if !slices.Contains(pm.types, c.typ) {
			continue
		}
		rw := row{Engine: "llama.cpp", Runtime: "native", Mode: "llama_decode", Type: c.typ, Threads: c.threads}
		argv := []string{o.llamacppBin, filepath.Join(b.dir, fileName(pm.spec.Key, c.typ)), strconv.Itoa(c.threads), strconv.Itoa(st.Context),
			strconv.Itoa(o.decodeTokens), strconv.Itoa(o.warmupTokens), strconv.Itoa(st.RunWarmupTokens), strconv.Itoa(st.WarmupMs),
			strconv.Itoa(st.DecodeCapMs), joinInts(pm.promptIDs), joinInts(pm.warmupIDs)}
		var hello struct {
			Libllama string `json:"libllama"`
			System   string `json:"system"`
		}
		p, err := b.start("llamabench", argv, b.root, map[string]string{}, &hello)
		if err == nil {
			b.rep.Machine.LlamaCpp, b.rep.Machine.LlamaCppSystem = hello.Libllama, hello.System
		}
		add(rw, procRunnerOf(p, err), err)
	}
}

// wllamaEntries adds wllama's rows in Chromium (-wllama), skipping its F16
// files on models over -wllama-f16-max.
func (b *bench) wllamaEntries(pm *preparedModel, add func(row, runner, error)) {
	o := b.o
	if b.browser == nil || o.skipped("wllama") {
		return
	}
	for _, c := range o.wllama {
		if !slices.Contains(pm.types, c.typ) {
			continue
		}
		rw := row{Engine: "wllama", Runtime: "chromium", Mode: c.mode, Type: c.typ, Threads: c.threads}
		if c.typ == "F16" && o.wllamaF16Max > 0 && float64(pm.result.Params) > o.wllamaF16Max {
			rw.Skipped = "F16 is wllama's slowest path; -wllama-f16-max 0 measures it"
			add(rw, nil, nil)
			continue
		}
		job := b.wllamaJob(pm, c, fmt.Sprintf("%s/wllama/%s/%s/%d", pm.spec.Key, c.mode, c.typ, c.threads))
		add(rw, &browserRunner{p: b.browser, job: job}, nil)
	}
}

// wllamaJob is the browser's job for wllama in a mode, type and threads.
func (b *bench) wllamaJob(pm *preparedModel, c wllamaConfig, id string) browserJob {
	st := b.rep.Settings
	nBatch := 0
	if c.mode == "best" {
		nBatch = 512
	}
	return browserJob{ID: id, Engine: "wllama", Mode: c.mode, NBatch: nBatch,
		File: fileName(pm.spec.Key, c.typ), Threads: c.threads, Prompt: pm.result.Prompt, Warmup: pm.warmupText, MaxTokens: b.o.decodeTokens,
		WarmupTokens: b.o.warmupTokens, RunWarmupTokens: st.RunWarmupTokens, DecodeCapMs: st.DecodeCapMs}
}

// referenceRows returns, at one and at two threads, the index of the
// wllama row the honesty check measures a reference for: its best mode
// on F32, wllama's fastest file type here (its F16 path widens halves one
// at a time, and every committed run has decoded F32 fastest), or where
// F32 is not measured, its first best-mode row at those threads. The
// choice is made before the runs, so that the reference can run beside
// its row; derive notes a row that then decodes faster.
func referenceRows(rows []row) []int {
	var out []int
	for _, threads := range []int{1, 2} {
		pick := -1
		for i, r := range rows {
			if r.Engine != "wllama" || r.Mode != "best" || r.Threads != threads || r.Error != "" || r.Skipped != "" {
				continue
			}
			if pick < 0 || (r.Type == "F32" && rows[pick].Type != "F32") {
				pick = i
			}
		}
		if pick >= 0 {
			out = append(out, pick)
		}
	}
	return out
}

// referenceEntries inserts, right after each row that referenceRows
// picks, its reference: the same wllama job alone in a fresh browser of
// its own (launched for it, with that one page), loaded once and warmed
// up alike, which runs once right after each run of its row, so that the
// two see the machine alike (issue 16: on two busy cores wllama's runs
// vary by a quarter from minute to minute, and a reference measured after
// all the rows failed the check on load that had changed meanwhile).
func (b *bench) referenceEntries(pm *preparedModel, es []*entry) []*entry {
	if !b.o.check || b.browser == nil || b.o.skipped("wllama") {
		return es
	}
	rows := make([]row, len(es))
	for i, e := range es {
		rows[i] = e.row
	}
	picked := referenceRows(rows)
	var out []*entry
	for i, e := range es {
		out = append(out, e)
		if !slices.Contains(picked, i) {
			continue
		}
		c := wllamaConfig{mode: "best", typ: e.row.Type, threads: e.row.Threads}
		job := b.wllamaJob(pm, c, fmt.Sprintf("%s/reference/%s/%d", pm.spec.Key, c.typ, c.threads))
		job.Alone = true
		e.checked = true
		ref := &entry{row: e.row, r: &browserRunner{p: b.browser, job: job}, checks: e, ranIn: -1}
		ref.row.Mode = "reference"
		out = append(out, ref)
	}
	return out
}

// warmUp loads every row's model the first time and warms its runtime up.
func (b *bench) warmUp(pm *preparedModel, es []*entry) {
	for _, e := range es {
		if !e.live() {
			continue
		}
		if e.checks != nil {
			b.logf("[%s] reference: wllama %s %dt alone in a fresh browser: first load and warm-up", pm.spec.Key, e.row.Type, e.row.Threads)
		} else {
			b.logf("%s: first load and warm-up", e.tag(pm))
		}
		begin := time.Now()
		cold, err := e.r.warmup()
		e.row.Seconds += time.Since(begin).Seconds()
		if err != nil {
			e.row.Error = "cannot load or run it: " + firstLine(err.Error())
			b.logf("%s: %v", e.tag(pm), err)
			continue
		}
		e.row.ColdLoadMs = cold
	}
}

// runRounds runs every row once per round, -runs rounds, a row that has
// taken -max-row-seconds skipping the rest; a reference runs right after
// its row, in the rounds its row ran.
func (b *bench) runRounds(pm *preparedModel, es []*entry) {
	o := b.o
	for i := range o.runs {
		for _, e := range es {
			if !e.live() {
				continue
			}
			if e.checks != nil {
				if e.checks.ranIn != i {
					continue
				}
			} else if o.maxRowSeconds > 0 && !e.checked && len(e.runs) > 0 && e.row.Seconds >= o.maxRowSeconds {
				continue // noted by finish
			}
			begin := time.Now()
			s, err := e.r.run()
			e.row.Seconds += time.Since(begin).Seconds()
			if err != nil {
				e.row.Error = fmt.Sprintf("run %d: %s", i+1, firstLine(err.Error()))
				b.logf("%s: %v", e.tag(pm), err)
				continue
			}
			b.logf("%s run %d/%d: load %.0f ms, prefill %s tok/s, decode %s tok/s (%d + %d tokens)", e.tag(pm),
				i+1, o.runs, s.LoadMs, num(s.Prefill), num(s.Decode), s.PromptTokens, s.Tokens)
			e.runs = append(e.runs, s)
			e.ranIn = i
		}
	}
}

// close ends an entry's runner, keeping its peak memory.
func (b *bench) close(pm *preparedModel, e *entry) {
	if e.r == nil {
		return
	}
	peak, err := e.r.close()
	if err != nil {
		b.logf("[%s] %s %s: closing: %v", pm.spec.Key, e.row.label(), e.row.Type, err)
	}
	e.row.PeakRSS = peak
}

// finish ends a row's runner and summarizes its runs into the row, with
// notes for runs cut short or left out.
func (b *bench) finish(pm *preparedModel, e *entry) row {
	o := b.o
	b.close(pm, e)
	var load, prefill, decode, ownPrefill, ownDecode, read []float64
	short := 0
	for _, s := range e.runs {
		load = append(load, s.LoadMs)
		prefill = append(prefill, s.Prefill)
		decode = append(decode, s.Decode)
		if s.PerfDecode > 0 {
			ownPrefill = append(ownPrefill, s.PerfPrefill)
			ownDecode = append(ownDecode, s.PerfDecode)
		}
		if s.ReadGBps > 0 {
			read = append(read, s.ReadGBps)
		}
		e.row.Prompt = append(e.row.Prompt, s.PromptTokens)
		e.row.Tokens = append(e.row.Tokens, s.Tokens)
		e.row.Reasons = append(e.row.Reasons, s.Reason)
		if s.Threads > 0 {
			e.row.Threads = s.Threads
		}
		if s.Libllama != "" {
			b.rep.Machine.Libllama = s.Libllama
		}
		if s.PromptTokens != o.promptTokens || s.Tokens != o.decodeTokens {
			short++
		}
	}
	if short > 0 {
		b.note("%s, %s %s %dt: %d of %d runs did not count %d prompt tokens and decode %d (prompt tokens %v, decoded %v, ended %q).",
			pm.spec.Key, e.row.label(), e.row.Type, e.row.Threads, short, len(e.runs), o.promptTokens, o.decodeTokens, e.row.Prompt, e.row.Tokens, e.row.Reasons)
	}
	if len(e.runs) > 0 && len(e.runs) < o.runs && e.row.Error == "" {
		b.note("%s, %s %s %dt: %d of %d runs, as its warm-up and first runs took %s (-max-row-seconds %g).",
			pm.spec.Key, e.row.label(), e.row.Type, e.row.Threads, len(e.runs), o.runs, seconds(e.row.Seconds), o.maxRowSeconds)
	}
	e.row.LoadMs, e.row.Prefill, e.row.Decode = summarize(load), summarize(prefill), summarize(decode)
	e.row.OwnPrefill, e.row.OwnDecode = summarize(ownPrefill), summarize(ownDecode)
	e.row.ReadBeside = summarize(read)
	return e.row
}

// finishReference ends a reference and puts its runs into the row it
// checks (their rates, or why it has none), and its time into the
// report's parts.
func (b *bench) finishReference(pm *preparedModel, e *entry) {
	b.close(pm, e)
	target := &e.checks.row
	var prefill, decode []float64
	for _, s := range e.runs {
		prefill = append(prefill, s.Prefill)
		decode = append(decode, s.Decode)
	}
	target.RefPrefill, target.RefDecode = summarize(prefill), summarize(decode)
	target.RefSeconds = e.row.Seconds
	switch {
	case e.row.Error != "":
		target.CheckError = "reference failed: " + e.row.Error
	case len(e.runs) == 0 && target.Error == "":
		target.CheckError = "the reference took no run"
	}
	b.rep.Time = append(b.rep.Time, timing{Part: fmt.Sprintf("%s: wllama %s %dt reference in a fresh browser, beside its row (within the next line)",
		pm.spec.Key, e.row.Type, e.row.Threads), Seconds: e.row.Seconds})
	if len(e.runs) > 0 {
		b.logf("[%s] reference %s %dt: prefill %s tok/s, decode %s tok/s", pm.spec.Key, e.row.Type, e.row.Threads,
			num(target.RefPrefill.Median), num(target.RefDecode.Median))
	}
}

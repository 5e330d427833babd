// Command bench is make bench: one benchmark of every runtime wisp runs in,
// and of its peers, on the same model files with the same prompt and
// settings (issues 7, 11 and 12).
//
// For each model (stories260K from ../shared/models when present, and
// random models of the TinyStories-15M and SmolLM2-135M shapes in F16 and
// F32, quantized to Q8_0 and Q4_K_M by llama.cpp's own quantizer from the
// F32 file, as the files users download are made), it measures load time,
// prefill speed on a 128-token prompt, decode speed over 128 greedy tokens
// and peak memory: of wisp natively, in wazero, in Node and in headless
// Chromium (the page's Worker, through wisp.js), at one thread and, on
// the larger models, natively, in Node and in Chromium at two (-threads,
// issue 16: each runtime's thread counts side by side, interleaved like
// the runtimes); of @wllama/wllama
// (llama.cpp in wasm) in the same Chromium, in its fastest mode (plain
// createCompletion, n_batch 512) and as a chat page streams, at one and
// two threads; and of native llama.cpp (tools/bench/csrc/llamabench.c on
// the prebuilt libraries of make oracle) at one and two threads. It
// measures the machine's ceiling too: read bandwidth and the
// matrix-vector kernel's GFLOP/s, natively and in each wasm runtime, the
// read bandwidth of every core at once, and threads.wasm's dispatch cost
// (site/bench/dispatch.js), from which it estimates what a visitor with
// more cores should expect. Every
// runtime is warmed up, then the runs of all runtimes of a model are
// interleaved, so that a busy machine slows them alike.
//
// The honesty check: the bench's figures for native llama.cpp must stay
// within 15 % of its own llama_perf_context figures for the same runs, and
// the runs of the wllama rows wisp is compared against within 15 % of
// those runs whose own timings wllama reports alone in a fresh browser,
// a reference run right after each run of its row (the two ranges of
// runs overlap or are at most 15 % apart); a
// violation is reported and fails the command (after the report is
// written). It prints a Markdown report and writes it, with the JSON, to
// bench/results.md and bench/results.json.
//
// Usage, from the repository's root, after make site oracle (and npm ci in
// site):
//
//	go run ./tools/bench [-runs 3] [-models stories15M,...] [-skip wllama,...] [-out bench]
//
// The Node and Chromium parts are site/bench/node.bench.js and
// site/bench/browser.bench.js; bench -child is the native and wazero
// runner, started by the bench itself.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wisp/simd"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		if err := childMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs, promptTokens, decodeTokens int
	warmupPrompt, warmupTokens       int // the warm-up's prompt tokens and decoded tokens
	warmup, decodeCap                time.Duration
	out, site, shared, dir           string
	models, skip                     []string
	types                            []string       // wisp's file types
	wllama                           []wllamaConfig // wllama's runs
	llamacpp                         []wllamaConfig // native llama.cpp's runs (mode unused)
	wllamaF16Max                     float64        // parameters; larger models skip wllama's F16 rows (0: never skip)
	oracle, llamacppBin              string         // llama.cpp's quantizer (build/oracle/oracle) and llamabench
	maxRowSeconds                    float64        // a row takes no further run once its bench time passes this
	check                            bool           // the honesty check: a violation fails the bench
	wispF32                          bool
	// threads are wisp's thread counts beyond one, for the runtimes
	// threadsRuntimes names on the models threadsModels names.
	threads                        []int
	threadsRuntimes, threadsModels []string
}

// wllamaConfig is one way of running a peer: a harness mode, a file type
// and threads.
type wllamaConfig struct {
	mode    string // wllama: "best" or "chat"
	typ     string // "F16", "F32", "Q8_0" or "Q4_K_M"
	threads int
}

// fileTypes are the file types the bench makes: F16 and F32 by wisp's
// synth (or conversion), Q8_0 and Q4_K_M by llama.cpp's own quantizer
// from the F32 file, with its llama_ftype numbers.
var fileTypes = []struct {
	name  string
	ftype int // llama_ftype for llama_model_quantize; 0: not quantized
}{{"F16", 0}, {"F32", 0}, {"Q8_0", 7}, {"Q4_K_M", 15}}

// knownType returns the canonical name of a file type, or "".
func knownType(s string) string {
	for _, t := range fileTypes {
		if strings.EqualFold(s, t.name) {
			return t.name
		}
	}
	return ""
}

// parsePeer parses a list of [MODE:]TYPE/THREADS (the mode only where
// modes is not empty; its first entry is the default).
func parsePeer(flag, s string, modes []string) ([]wllamaConfig, error) {
	var out []wllamaConfig
	for _, f := range list(s) {
		mode, rest := "", f
		if len(modes) > 0 {
			mode = modes[0]
			if m, r, ok := strings.Cut(f, ":"); ok {
				mode, rest = strings.ToLower(m), r
			}
		}
		typ, th, ok := strings.Cut(rest, "/")
		n := 0
		if ok {
			n, _ = strconv.Atoi(th)
		}
		typ = knownType(typ)
		okMode := len(modes) == 0 || slices.Contains(modes, mode)
		if typ == "" || n < 1 || n > 64 || !okMode {
			want := "TYPE/THREADS, such as F32/2"
			if len(modes) > 0 {
				want = "[MODE:]TYPE/THREADS, such as chat:F32/2 (MODE " + strings.Join(modes, " or ") + ")"
			}
			return nil, fmt.Errorf("%s %s: give %s (TYPE F16, F32, Q8_0 or Q4_K_M)", flag, f, want)
		}
		out = append(out, wllamaConfig{mode: mode, typ: typ, threads: n})
	}
	return out, nil
}

// left returns s if cond, else "".
func left(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// list splits a comma-separated flag value.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.IntVar(&o.runs, "runs", 3, "measured runs per runtime (the report shows their median, minimum and maximum)")
	fs.IntVar(&o.promptTokens, "prompt", 128, "prompt tokens, BOS included")
	fs.IntVar(&o.decodeTokens, "tokens", 128, "greedy tokens to decode")
	fs.DurationVar(&o.warmup, "warmup", 1500*time.Millisecond, "warm-up of each runtime before its runs")
	fs.DurationVar(&o.decodeCap, "decode-cap", 10*time.Second, "stop a run's decoding after this long (the rate is of the tokens decoded by then)")
	fs.StringVar(&o.out, "out", "bench", "folder for results.md and results.json (empty: write neither)")
	fs.StringVar(&o.site, "site", "site", "the site folder, with wasm/ made by make site and node_modules/ by npm ci")
	fs.StringVar(&o.shared, "shared", "../shared", "the shared folder, whose models/ may hold stories260K.bin and tok512.bin")
	fs.StringVar(&o.dir, "dir", "", "folder for the model files (default: a temporary folder, removed afterwards)")
	models := fs.String("models", "", "comma-separated models to measure: stories260K, stories15M, smollm2-135m (default: all)")
	skip := fs.String("skip", "", "comma-separated parts to skip: ceiling, native, wazero, node, chromium, wllama, llamacpp")
	fs.BoolVar(&o.wispF32, "wisp-f32", false, "measure wisp on the F32 files too")
	fs.StringVar(&o.oracle, "oracle", "build/oracle/oracle", "llama.cpp's quantizer (make oracle), which makes the Q8_0 and Q4_K_M files from the F32 ones (empty: no quantized files)")
	fs.StringVar(&o.llamacppBin, "llamacpp", "build/oracle/llamabench", "native llama.cpp's runner (tools/bench/csrc/llamabench.c; empty: no llama.cpp rows)")
	types := fs.String("types", "F16,Q8_0,Q4_K_M", "wisp's file types, in every runtime (F32 also with -wisp-f32)")
	llamacpp := fs.String("llamacpp-runs", "F16/1,F16/2,Q8_0/1,Q8_0/2,Q4_K_M/1,Q4_K_M/2", "native llama.cpp's runs: TYPE/THREADS")
	fs.Float64Var(&o.maxRowSeconds, "max-row-seconds", 30, "a row whose warm-up and runs have taken this long takes no further run (it keeps at least one; the rows the honesty check measures take every run; 0: no limit)")
	fs.BoolVar(&o.check, "check", true, "the honesty check: wllama's best figures against a reference run in a fresh browser, llama.cpp's against its own llama_perf figures; a gap over 15% fails the bench (after writing the report)")
	threads := fs.String("threads", "2", "wisp's thread counts beyond one, comma-separated, in the runtimes of -threads-runtimes on the models of -threads-models (empty: one thread only)")
	threadsRuntimes := fs.String("threads-runtimes", "native,node,chromium", "the runtimes wisp runs at -threads's counts too: native, wazero, node, chromium "+
		"(wazero's threads measured 1.0x at two, so they are left out by default)")
	threadsModels := fs.String("threads-models", "stories15M,smollm2-135m", "the models wisp runs at -threads's counts too "+
		"(stories260K is left out by default: its products are too small to split)")
	fs.Float64Var(&o.wllamaF16Max, "wllama-f16-max", 50e6, "measure wllama on F16 files only for models of at most this many parameters (0: always); "+
		"its F16 path is its slowest, and on the SmolLM2-135M shape its rows took 2m21s of an 11m14s run")
	wllama := fs.String("wllama", "best:F16/1,best:F32/1,best:F32/2,best:Q8_0/1,best:Q8_0/2,best:Q4_K_M/1,best:Q4_K_M/2,chat:Q4_K_M/1,chat:Q4_K_M/2",
		"wllama's runs: comma-separated [MODE:]TYPE/THREADS; MODE best (plain createCompletion, n_batch 512: its fastest) or chat (streamed token by token "+
			"with per-token timings, its default batch, as a chat page runs it); F32 is wllama's fastest unquantized type here, as its F16 path widens halves one at a time")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: go run ./tools/bench [flags]\n\nMeasures wisp natively, in wazero, Node and Chromium, and wllama in Chromium, on the same models (make bench).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.runs < 1 || o.promptTokens < 2 || o.decodeTokens < 1 || o.decodeCap <= 0 {
		return nil, fmt.Errorf("-runs, -prompt, -tokens and -decode-cap must be at least 1, 2, 1 and positive")
	}
	o.warmupPrompt, o.warmupTokens = min(16, o.promptTokens), 8
	o.models, o.skip = list(*models), list(*skip)
	for _, t := range list(*threads) {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-threads %s: give thread counts from 1 to 64, such as 2,4", t)
		}
		if n > 1 && !slices.Contains(o.threads, n) {
			o.threads = append(o.threads, n)
		}
	}
	o.threadsRuntimes, o.threadsModels = list(*threadsRuntimes), list(*threadsModels)
	for _, r := range o.threadsRuntimes {
		if !slices.Contains([]string{"native", "wazero", "node", "chromium"}, r) {
			return nil, fmt.Errorf("-threads-runtimes %s: choose among native, wazero, node, chromium", r)
		}
	}
	var err error
	if o.wllama, err = parsePeer("-wllama", *wllama, []string{"best", "chat"}); err != nil {
		return nil, err
	}
	if o.llamacpp, err = parsePeer("-llamacpp-runs", *llamacpp, nil); err != nil {
		return nil, err
	}
	for _, t := range list(*types) {
		k := knownType(t)
		if k == "" || k == "F32" {
			return nil, fmt.Errorf("-types %s: choose among F16, Q8_0 and Q4_K_M (F32: -wisp-f32)", t)
		}
		o.types = append(o.types, k)
	}
	if o.wispF32 {
		o.types = append(o.types, "F32")
	}
	for _, s := range o.skip {
		switch s {
		case "ceiling", "native", "wazero", "node", "chromium", "wllama", "llamacpp":
		default:
			return nil, fmt.Errorf("-skip %s: choose among ceiling, native, wazero, node, chromium, wllama, llamacpp", s)
		}
	}
	return o, nil
}

// skipped reports whether a part is to be skipped.
func (o *options) skipped(part string) bool {
	for _, s := range o.skip {
		if s == part {
			return true
		}
	}
	return false
}

// runWarmupTokens is what the short generation before each measured run
// decodes: every runtime was warmed up before the runs, this only touches
// the new instance's code and data.
const runWarmupTokens = 2

// runWarmupTokensBrowser is what each warm-up generation of a Chromium
// job decodes (browser.bench.js's WARM_TOKENS).
const runWarmupTokensBrowser = 32

// bench is one run of the command: its options, paths, log and report.
type bench struct {
	o       *options
	root    string // the repository's root (the working directory)
	site    string // absolute
	dir     string // the models folder, absolute
	tempDir bool   // dir is ours to remove
	log     io.Writer
	rep     report
	browser *lineProc
	nodeBin string

	mu    sync.Mutex
	procs []*lineProc // every process started, for stop
}

// start starts a runner process (see startProc) and keeps it for stop.
func (b *bench) start(name string, argv []string, dir string, cfg, hello any) (*lineProc, error) {
	p, err := startProc(name, argv, dir, cfg, hello)
	if err == nil {
		b.mu.Lock()
		b.procs = append(b.procs, p)
		b.mu.Unlock()
	}
	return p, err
}

// stop ends every process the bench started that still runs (asking
// each to clean up first: the browser's runner closes Chromium and its
// server) and removes a temporary models folder. It is for an
// interrupted bench.
func (b *bench) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.procs {
		if p.cmd.ProcessState == nil && p.cmd.Process != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range b.procs {
		for p.cmd.Process != nil && p.cmd.Process.Signal(syscall.Signal(0)) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		p.cmd.Process.Kill()
	}
	if b.tempDir && b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// logf writes a line of progress, with the time since the start.
func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "bench %s: "+format+"\n", append([]any{time.Since(b.rep.Started).Round(time.Second)}, a...)...)
}

// timed records how long a part of the bench took since begin.
func (b *bench) timed(part string, begin time.Time) {
	b.rep.Time = append(b.rep.Time, timing{Part: part, Seconds: time.Since(begin).Seconds()})
}

// note adds a note to the report.
func (b *bench) note(format string, a ...any) {
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(format, a...))
}

// run is the bench: flags -> options -> a bench that measures every
// runtime into its report, which then writes itself.
func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(o, args, stderr)
	if err != nil {
		return err
	}
	defer b.stopOnInterrupt()()
	if err := b.measureAll(); err != nil {
		return err
	}
	b.complete()
	return b.writeReport(stdout)
}

// newBench sets up one run of the command: its paths, the settings and
// machine the report records, and the tools and site files the runtimes
// need (check).
func newBench(o *options, args []string, log io.Writer) (*bench, error) {
	start := time.Now()
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, root: root, log: log, rep: report{Started: start}}
	if b.site, err = filepath.Abs(o.site); err != nil {
		return nil, err
	}
	b.rep.Command = "go run ./tools/bench"
	if len(args) > 0 {
		b.rep.Command += " " + strings.Join(args, " ")
	}
	b.rep.Settings = o.settings()
	b.machine()
	b.logf("%s, %d cores, load average %s", b.rep.Machine.CPU, b.rep.Machine.Cores, b.rep.Machine.LoadStart)
	if err := b.check(); err != nil {
		return nil, err
	}
	return b, nil
}

// settings are the measurement's settings as the report records them.
func (o *options) settings() settings {
	return settings{PromptTokens: o.promptTokens, DecodeTokens: o.decodeTokens, Context: o.promptTokens + o.decodeTokens,
		Runs: o.runs, WarmupMs: int(o.warmup / time.Millisecond), WarmupPrompt: o.warmupPrompt, WarmupTokens: o.warmupTokens,
		RunWarmupTokens: runWarmupTokens,
		DecodeCapMs:     int(o.decodeCap / time.Millisecond)}
}

// stopOnInterrupt makes an interrupted bench leave no runner, browser or
// server behind; the function it returns stops listening.
func (b *bench) stopOnInterrupt() (stopListening func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			b.logf("interrupted: stopping the runners")
			b.stop()
			os.Exit(130)
		}
	}()
	return func() { signal.Stop(sigs) }
}

// measureAll makes the model files, starts Chromium if a part needs it,
// and measures the ceiling and every model into the report; the model
// files go, and Chromium closes, when it returns.
func (b *bench) measureAll() error {
	removeDir, err := b.modelsDir()
	if err != nil {
		return err
	}
	defer removeDir()
	models, err := b.prepareModels()
	if err != nil {
		return err
	}
	if !b.o.skipped("chromium") || !b.o.skipped("wllama") {
		if err := b.startBrowser(); err != nil {
			return err
		}
		defer b.closeBrowser()
	}
	if !b.o.skipped("ceiling") {
		begin := time.Now()
		b.ceiling()
		b.timed("the ceiling", begin)
	}
	for _, pm := range models {
		begin := time.Now()
		res := b.measure(pm)
		b.rep.Models = append(b.rep.Models, res)
		b.timed(pm.spec.Key+" (each row's share: its table's last column)", begin)
	}
	return nil
}

// modelsDir makes the folder for the model files, -dir or a temporary
// one, and returns what removes it when the bench ends (a temporary one
// only).
func (b *bench) modelsDir() (remove func(), err error) {
	if b.o.dir != "" {
		if b.dir, err = filepath.Abs(b.o.dir); err != nil {
			return nil, err
		}
		return func() {}, os.MkdirAll(b.dir, 0o755)
	}
	if b.dir, err = os.MkdirTemp("", "wisp-bench-"); err != nil {
		return nil, err
	}
	b.tempDir = true
	return func() { os.RemoveAll(b.dir) }, nil
}

// prepareModels makes every model's files in the models folder.
func (b *bench) prepareModels() ([]*preparedModel, error) {
	o := b.o
	specs, err := modelSpecs(o.shared, o.models)
	if err != nil {
		return nil, err
	}
	var models []*preparedModel
	begin := time.Now()
	for _, s := range specs {
		b.logf("making %s (F16, F32 and, by llama.cpp's quantizer, Q8_0 and Q4_K_M) in %s", s.Key, b.dir)
		pm, err := prepare(s, b.dir, o.oracle, o.promptTokens, o.decodeTokens, o.warmupPrompt)
		if err != nil {
			return nil, err
		}
		models = append(models, pm)
	}
	b.timed("making the model files", begin)
	return models, nil
}

// startBrowser starts Chromium with the page, through
// browser.bench.js, and records its and wllama's versions.
func (b *bench) startBrowser() error {
	var hello struct {
		Chromium    string `json:"chromium"`
		Wllama      string `json:"wllama"`
		BaselineRSS int64  `json:"baselineRSS"`
	}
	b.logf("starting Chromium")
	begin := time.Now()
	cfg := map[string]any{"models": b.dir, "context": b.rep.Settings.Context, "warmupMs": b.rep.Settings.WarmupMs}
	var err error
	if b.browser, err = b.start("browser.bench.js", []string{b.nodeBin, "bench/browser.bench.js"}, b.site, cfg, &hello); err != nil {
		return err
	}
	b.rep.Machine.Chromium, b.rep.Machine.Wllama = hello.Chromium, hello.Wllama
	b.timed("starting Chromium", begin)
	if hello.BaselineRSS > 0 {
		b.note("Chromium's peak RSS is the largest resident set of the renderer process that runs the page and its workers, "+
			"sampled every 25 ms while a row loads and warms up (Chromium resets its high-water mark now and then) and before and after each "+
			"measured run, never during one: sampling a renderer's /proc status every 25 ms while it decoded cut wisp's stories15M "+
			"Q8_0 decode in Chromium from about 1150 to 286 tok/s. A renderer with the empty page holds %s MiB.", mib(hello.BaselineRSS))
	}
	return nil
}

// closeBrowser closes Chromium, if it runs, and says so if that fails.
func (b *bench) closeBrowser() {
	if b.browser == nil {
		return
	}
	err := b.browser.finish(nil)
	b.browser = nil
	if err != nil {
		b.logf("closing Chromium: %v", err)
	}
}

// complete records the end of the run and derives the report's
// comparisons, checks and notes from its rows.
func (b *bench) complete() {
	b.rep.Machine.LoadEnd = loadAverage()
	b.rep.Elapsed = time.Since(b.rep.Started).Seconds()
	b.rep.derive()
	b.notes()
}

// writeReport prints the report, writes it into -out, and fails if the
// honesty check found a violation and -check asks it to.
func (b *bench) writeReport(stdout io.Writer) error {
	o := b.o
	if err := b.rep.write(stdout, o.out); err != nil {
		return err
	}
	if o.out != "" {
		b.logf("wrote %s and %s", filepath.Join(o.out, "results.md"), filepath.Join(o.out, "results.json"))
	}
	b.logf("done in %s", time.Since(b.rep.Started).Round(time.Second))
	if o.check && len(b.rep.Violations) > 0 {
		return fmt.Errorf("the honesty check failed: %s", strings.Join(b.rep.Violations, "; "))
	}
	return nil
}

// check finds node and the site's build outputs the runtimes need.
func (b *bench) check() error {
	needNode := !b.o.skipped("node") || !b.o.skipped("chromium") || !b.o.skipped("wllama")
	if needNode {
		p, err := exec.LookPath("node")
		if err != nil {
			return fmt.Errorf("node is missing (Node 20 or later): %w", err)
		}
		b.nodeBin = p
	}
	need := []string{"bench/read.wasm"}
	if !b.o.skipped("wazero") || needNode {
		need = append(need, "wasm/wisp.wasm", "wasm/kernels.wasm", "wasm/forward.wasm")
	}
	threadedJS := false
	for _, rt := range []string{"node", "chromium"} {
		threadedJS = threadedJS || (len(b.o.threads) > 0 && !b.o.skipped(rt) && slices.Contains(b.o.threadsRuntimes, rt))
	}
	if threadedJS || (!b.o.skipped("ceiling") && !b.o.skipped("node")) {
		need = append(need, "wasm/wisp-shared.wasm", "wasm/kernels-shared.wasm", "wasm/threads.wasm", "helper.js")
	}
	if !b.o.skipped("chromium") || !b.o.skipped("wllama") {
		need = append(need, "node_modules/playwright-core/package.json")
	}
	if !b.o.skipped("wllama") {
		need = append(need, "node_modules/@wllama/wllama/esm/wasm/wllama.wasm")
	}
	for _, f := range []*string{&b.o.oracle, &b.o.llamacppBin} {
		if *f == "" {
			continue
		}
		if _, err := os.Stat(*f); err != nil {
			b.note("%s is missing (make oracle and make bench build it): the bench ran without it.", *f)
			b.logf("%s is missing: going on without it", *f)
			*f = ""
		} else if *f, err = filepath.Abs(*f); err != nil {
			return err
		}
	}
	if b.o.oracle == "" {
		b.note("No quantized files: llama.cpp's quantizer (-oracle) was missing.")
	}
	for _, f := range need {
		if _, err := os.Stat(filepath.Join(b.site, f)); err != nil {
			return fmt.Errorf("%s is missing: run make site, and npm ci in %s", filepath.Join(b.site, f), b.site)
		}
	}
	return nil
}

// machine fills in the report's description of the machine and versions.
func (b *bench) machine() {
	m := &b.rep.Machine
	m.CPU = cpuModel()
	m.Cores = runtime.NumCPU()
	m.OS = runtime.GOOS + "/" + runtime.GOARCH
	m.LoadStart = loadAverage()
	m.Go = runtime.Version()
	m.Wazero = "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				m.Wazero = d.Version
			}
		}
	}
	m.Git = "?"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Git = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Git += "-dirty"
		}
	}
	sum := sha256.Sum256(simd.KernelsWasm())
	m.Kernels = "native " + simd.Kernels() + ", wasm kernels.wasm " + hex.EncodeToString(sum[:6])
	if site, err := os.ReadFile(filepath.Join(b.site, "wasm", "kernels.wasm")); err == nil && !bytes.Equal(site, simd.KernelsWasm()) {
		b.note("site/wasm/kernels.wasm (Node, Chromium) differs from simd/kernels.wasm (wazero): run make site.")
	}
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// loadAverage returns /proc/loadavg's 1, 5 and 15 minute load averages,
// or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " / ")
}

// allCoreThreads is how many threads the ceiling's all-core read runs:
// every core.
var allCoreThreads = runtime.NumCPU()

// ceiling measures read bandwidth and the kernel natively, in wazero, in
// Node and in Chromium; natively also the read bandwidth of every core at
// once; in Node threads.wasm's dispatch cost.
func (b *bench) ceiling() {
	spec := defaultCeiling(3)
	b.logf("ceiling: native")
	nat := nativeCeiling(spec)
	b.rep.Ceiling = append(b.rep.Ceiling, nat.row("native (Go)", spec))
	if s := summarize(nat.Read[fmt.Sprint(spec.Read[0])]); s.ok() {
		b.rep.Bandwidth = s.Median
		b.rep.BandwidthFrom = "native read of " + sizeName(spec.Read[0]) + ", median"
	}
	add := func(name string, a ceilingAnswer, err error) {
		if err != nil {
			b.logf("ceiling: %s: %v", name, err)
			b.rep.Ceiling = append(b.rep.Ceiling, ceilingRow{Runtime: name, Error: firstLine(err.Error())})
			return
		}
		b.rep.Ceiling = append(b.rep.Ceiling, a.row(name, spec))
	}
	b.logf("ceiling: native, %d threads", allCoreThreads)
	if s := summarize(nativeReadAll(spec.Read[0], allCoreThreads, 3, spec.MinMs)); s.ok() {
		b.rep.BandwidthAll, b.rep.BandwidthAllThreads = s.Median, allCoreThreads
	}
	readWasm, err := os.ReadFile(filepath.Join(b.site, "bench", "read.wasm"))
	if !b.o.skipped("wazero") {
		b.logf("ceiling: wazero")
		var a ceilingAnswer
		if err == nil {
			a, err = wazeroCeiling(context.Background(), readWasm, spec)
		}
		add("wazero", a, err)
	}
	if !b.o.skipped("node") {
		b.logf("ceiling: Node")
		var a ceilingAnswer
		cfg := map[string]string{"wasmDir": filepath.Join(b.site, "wasm"), "readWasm": filepath.Join(b.site, "bench", "read.wasm")}
		p, err := b.start("node.bench.js", []string{b.nodeBin, "bench/node.bench.js"}, b.site, cfg, nil)
		if err == nil {
			err = p.call(map[string]any{"op": "ceiling", "spec": spec}, &a)
			if ferr := p.finish(nil); err == nil {
				err = ferr
			}
		}
		add("Node", a, err)
	}
	if !b.o.skipped("node") {
		b.logf("ceiling: threads.wasm's dispatch cost (dispatch.js, Node)")
		b.rep.Dispatch = b.measureDispatch()
		if d := b.rep.Dispatch; d.Error != "" {
			b.logf("dispatch.js: %s", d.Error)
		}
	}
	if b.browser != nil && !b.o.skipped("chromium") {
		b.logf("ceiling: Chromium")
		var a ceilingAnswer
		err := b.browser.call(map[string]any{"op": "ceiling", "spec": spec}, &a)
		add("Chromium", a, err)
	}
}

// joinInts joins ints with commas.
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// busy reports whether a load average string's first figure is at least
// cores - 0.5: the machine had about no core to spare.
func busy(load string, cores int) bool {
	f, _, _ := strings.Cut(load, " ")
	x, err := strconv.ParseFloat(f, 64)
	return err == nil && x >= float64(cores)-0.5
}

// notes adds the report's definitions.
func (b *bench) notes() {
	mc := b.rep.Machine
	if busy(mc.LoadStart, mc.Cores) || busy(mc.LoadEnd, mc.Cores) {
		b.note("Other work kept the machine busy (load average %s at the start, %s at the end, on %d cores): every figure is lower "+
			"than on an idle machine and noisier, and two-thread figures suffer most, as llama.cpp's threads wait for each other "+
			"at every operation while the other core runs something else.", mc.LoadStart, mc.LoadEnd, mc.Cores)
	}
	b.note("Load: from the file on disk (native, wazero, Node) or on a local HTTP server that forbids caching (Chromium) " +
		"to a model ready for a prompt, runtime set-up included: native, reading the file and engine.Load; wazero, host.New " +
		"(its compiled code cached on disk, as wisp run does) and Load; Node, compiling and instantiating the modules and " +
		"copying the model in; Chromium, wisp.load (download, compile, the Worker, copy) or wllama.loadModelFromUrl. " +
		"The runs' loads follow a first load in the same process or page, so V8 may reuse code it compiled then; " +
		"results.json has that first load as coldLoadMs.")
	b.note("Prefill: prompt tokens per second of evaluating the prompt; decode: generated tokens per second of the decoding " +
		"steps (each with its sampling). wisp's figures in Chromium are those its Worker reports; wllama's are llama.cpp's " +
		"own (timings.prompt_per_second, timings.predicted_per_second).")
	b.note("Harness modes. wisp in Chromium (page): the page's API, wisp.load once per row (its Worker), warmed up with generations "+
		"of %d tokens after the measured prompt until their decode rate settles (at least %s and two generations, then until one is "+
		"no more than 5%% faster than the one before, at most 12 s), then each run one model.generate on the loaded model: the load "+
		"column is that one load. wllama, both modes: loaded once per row the same way (n_ctx %d, n_parallel 1, n_gpu_layers 0, "+
		"its flash attention and cache defaults, temperature 0, ignore_eos, cache_prompt false; the prompt goes in as text and its "+
		"tokenizer's count is checked against wisp's), warmed up alike, its own timings (timings.prompt_per_second, "+
		"timings.predicted_per_second). wllama best: plain createCompletion (not streamed), n_batch and n_ubatch 512: its fastest. "+
		"wllama chat: createCompletion streamed token by token (stream, onData, timings_per_token), its default batch sizes, as a "+
		"chat page streams a reply. llama.cpp native (llama_decode): tools/bench/csrc/llamabench.c on the prebuilt "+
		"@node-llama-cpp/linux-x64 libraries, wisp's prompt token ids, the prompt in one llama_decode, then one token per "+
		"llama_decode, greedy; llama.cpp's defaults otherwise (F16 key/value cache, flash attention auto, its CPU backend for this CPU: %s); "+
		"it loads per run as the native, wazero and Node runners of wisp do. "+
		"The rows of native, wazero and Node load the model again for every run and warm up with %d tokens only before each.",
		runWarmupTokensBrowser, time.Duration(b.rep.Settings.WarmupMs)*time.Millisecond, b.rep.Settings.Context,
		firstLine(b.rep.Machine.LlamaCppSystem), b.rep.Settings.RunWarmupTokens)
	b.note("Why the bench's wllama figures were about half of wllama's own before (issue 12): each run loaded wllama afresh and " +
		"measured after a 2-token warm-up, so the timed completion ran wasm that V8 had not yet tiered up (in a fresh page here " +
		"the first completions after a load decoded at 45-75%% of the settled rate), and the committed run had other work on the " +
		"machine (load average above 2 on 2 cores). Streaming itself measured within the noise of plain createCompletion.")
	if len(b.o.threads) > 0 {
		b.note("Threads: wisp at %s threads natively splits each large product's rows among goroutines (engine.Model.Threads); in Node it runs "+
			"the threaded build (wisp-shared.wasm, kernels-shared.wasm, threads.wasm) with worker_threads running helper.js, as site/node.js's "+
			"load({threads}) does; in Chromium wisp.load(url, {threads}) in the cross-origin isolated page (helper Workers). At one thread every "+
			"runtime runs its plain build, as a page or load does by default. Runtimes at more threads: %s; models: %s.%s%s",
			joinInts(b.o.threads), strings.Join(b.o.threadsRuntimes, ", "), strings.Join(b.o.threadsModels, ", "), left(!slices.Contains(b.o.threadsRuntimes, "wazero"),
				" wazero is left out: its helper instances measured 1.0× at two threads when threads landed (-threads-runtimes adds it)."),
			left(!containsFold(b.o.threadsModels, "stories260K"),
				" stories260K is left out: none of its products is large enough to split (threads.wasm keeps a product under 131072 multiply-adds on one thread)."))
	}
	b.note("Peak RSS: the high-water mark (VmHWM) of the process that ran the model, runtime included: a runner " +
		"process of the bench for native and wazero, node.bench.js for Node. Each run drops its instance before the next.")
	b.note("Of memory bound: decode tokens/s × weight bytes per token ÷ the read bandwidth (one core's; at several threads, every core's " +
		"together, where it was measured); the KV cache's reads are not counted. Above 100%% means the weights are read partly from cache " +
		"rather than from memory.")
	b.note("Ratios are of medians; \"wllama 1t\" is wllama's best single-thread figure on this model (any file, any mode).")
}

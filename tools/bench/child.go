package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"time"
	"unsafe"

	"wisp/engine/option"
	"wisp/internal/readsum"
	"wisp/wasm/backend"
)

// childConfig is the first line a runner process of the bench itself
// (bench -child) reads: it runs wisp natively or in wazero, in a process
// of its own so that its peak memory is the model's alone.
type childConfig struct {
	Runtime string `json:"runtime"` // "native" or "wazero"
	Model   string `json:"model"`
	Wasm    string `json:"wasm"` // the engine module, for wazero
	// Threads is how many threads split the matrix products
	// (backend.Config.Threads); 0 or 1 is one.
	Threads      int   `json:"threads"`
	PromptIDs    []int `json:"promptIds"`
	WarmupIDs    []int `json:"warmupIds"`
	MaxTokens    int   `json:"maxTokens"`
	WarmupTokens int   `json:"warmupTokens"`
	// RunWarmupTokens is what the short generation before each measured
	// run decodes: the runtime was warmed up before the runs, this only
	// touches the new instance's code and data.
	RunWarmupTokens int     `json:"runWarmupTokens"`
	Context         int     `json:"context"`
	WarmupMs        float64 `json:"warmupMs"`
	// DecodeCapMs stops a measured decoding early (reason "time cap") once
	// it has taken that long.
	DecodeCapMs float64 `json:"decodeCapMs"`
}

// sample is one measured run, as every runner answers it.
type sample struct {
	LoadMs       float64 `json:"loadMs"`
	Prefill      float64 `json:"prefill"` // tokens per second
	Decode       float64 `json:"decode"`  // tokens per second
	PromptTokens int     `json:"promptTokens"`
	Tokens       int     `json:"tokens"`
	Reason       string  `json:"reason"`
	Threads      int     `json:"threads"`
	Libllama     string  `json:"libllama"`
	// PerfPrefill and PerfDecode are native llama.cpp's own figures
	// (llama_perf_context) for the same run, beside the bench's timing.
	PerfPrefill float64 `json:"perfPrefill"`
	PerfDecode  float64 `json:"perfDecode"`
	// ReadGBps is how fast a plain read of the model file's bytes (the
	// weights a native decode streams) ran right after the run, natively:
	// the memory-bound limit of that minute, since this machine's
	// bandwidth swings by a third from one minute to the next.
	ReadGBps float64 `json:"readGBps,omitempty"`
}

// generation is what one prompt and its decoding took.
type generation struct {
	prompt, decode time.Duration
	tokens         int
	reason         string
}

// capReason is the reason of a decoding stopped by its time cap.
const capReason = "time cap"

// wispRunner is wisp in one runtime (wisp/wasm/backend), its wasm
// module's compiled code cached on disk as wisp run --runtime wazero
// caches it: load makes a fresh instance and loads the model, generate
// runs one greedy generation on it (its decoding stopped after limit, if
// positive), unload frees it.
type wispRunner struct {
	cfg  *childConfig
	ctx  context.Context
	m    backend.Model
	data []byte // the model file's bytes, which a native model's weights view
	sink uint64 // what readGBps read, so that the reads are kept
}

func (r *wispRunner) load() error {
	data, err := os.ReadFile(r.cfg.Model)
	if err != nil {
		return err
	}
	r.data = data
	cfg := backend.Config{Runtime: r.cfg.Runtime, Threads: r.cfg.Threads}
	if cfg.Runtime == "wazero" {
		if cfg.Wasm, err = os.ReadFile(r.cfg.Wasm); err != nil {
			return err
		}
	}
	r.m, err = backend.Open(r.ctx, cfg, data)
	return err
}

func (r *wispRunner) generate(ids []int, maxTokens int, limit time.Duration) (generation, error) {
	var g generation
	t0 := time.Now()
	if _, err := r.m.PromptTokens(ids, option.Options{Context: r.cfg.Context, MaxTokens: maxTokens}); err != nil {
		return g, err
	}
	t1 := time.Now()
	for {
		if _, err := r.m.Next(); err == io.EOF {
			g.reason = r.m.Done()
			break
		} else if err != nil {
			return g, err
		}
		if limit > 0 && time.Since(t1) >= limit {
			g.reason = capReason
			break
		}
	}
	g.prompt, g.decode = t1.Sub(t0), time.Since(t1)
	g.tokens = r.m.Generated()
	return g, nil
}

func (r *wispRunner) unload() error {
	if r.m == nil {
		return nil
	}
	err := r.m.Close()
	r.m, r.data = nil, nil
	return err
}

// readRuns is how many plain reads of the model's bytes follow a native
// run; their median is the run's ReadGBps.
const readRuns = 3

// readGBps reads the model file's bytes readRuns times as the bench's
// ceiling reads its block (readsum.Xor) and returns the median GB/s.
func (r *wispRunner) readGBps() float64 {
	n := len(r.data) / 8
	if n == 0 {
		return 0
	}
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&r.data[0])), n)
	rates := make([]float64, readRuns)
	for i := range rates {
		t0 := time.Now()
		r.sink ^= readsum.Xor(words)
		rates[i] = float64(n*8) / time.Since(t0).Seconds() / 1e9
	}
	return summarize(rates).Median
}

// perSecond returns n per the duration, or 0 for no time.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// childMain is bench -child: it answers the runners' line protocol (see
// site/bench/node.bench.js) for wisp natively or in wazero.
func childMain(stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReaderSize(stdin, 1<<16)
	enc := json.NewEncoder(stdout)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("bench -child: reading the configuration: %w", err)
	}
	var cfg childConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("bench -child: configuration: %w", err)
	}
	if !slices.Contains(backend.Runtimes, cfg.Runtime) {
		return fmt.Errorf("bench -child: runtime %q: choose native or wazero", cfg.Runtime)
	}
	r := &wispRunner{cfg: &cfg, ctx: context.Background()}
	if err := enc.Encode(map[string]string{"go": runtime.Version()}); err != nil {
		return err
	}
	// once loads the model, runs warm-up generations for at least warm
	// (at least one), then the measured one if measure is set; a measured
	// run's warm-up decodes only RunWarmupTokens.
	once := func(warm time.Duration, measure bool) (sample, error) {
		var s sample
		defer func() {
			runtime.GC()
			debug.FreeOSMemory()
		}()
		t0 := time.Now()
		if err := r.load(); err != nil {
			return s, err
		}
		defer r.unload()
		s.LoadMs = float64(time.Since(t0)) / 1e6
		for w0 := time.Now(); ; {
			n := cfg.WarmupTokens
			if measure {
				n = cfg.RunWarmupTokens
			}
			if _, err := r.generate(cfg.WarmupIDs, n, 0); err != nil {
				return s, fmt.Errorf("warm-up: %w", err)
			}
			if time.Since(w0) >= warm {
				break
			}
		}
		if !measure {
			return s, nil
		}
		// A session keeps its cache between prompts, and the warm-up's
		// prompt begins the measured one: without a reset the run would
		// evaluate only the rest.
		if err := r.m.Reset(); err != nil {
			return s, err
		}
		g, err := r.generate(cfg.PromptIDs, cfg.MaxTokens, time.Duration(cfg.DecodeCapMs*1e6))
		if err != nil {
			return s, err
		}
		s.Prefill = perSecond(len(cfg.PromptIDs), g.prompt)
		s.Decode = perSecond(g.tokens, g.decode)
		s.PromptTokens, s.Tokens, s.Reason, s.Threads = len(cfg.PromptIDs), g.tokens, g.reason, max(cfg.Threads, 1)
		if cfg.Runtime == "native" && s.Threads == 1 {
			s.ReadGBps = r.readGBps()
		}
		return s, nil
	}
	for {
		line, err := in.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		} else if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		var req struct {
			Op string `json:"op"`
		}
		var answer any
		if err := json.Unmarshal(line, &req); err != nil {
			answer = map[string]string{"error": "bench -child: " + err.Error()}
		} else {
			switch req.Op {
			case "warmup":
				s, err := once(time.Duration(cfg.WarmupMs*1e6), false)
				answer = map[string]float64{"coldLoadMs": s.LoadMs}
				if err != nil {
					answer = map[string]string{"error": err.Error()}
				}
			case "run":
				s, err := once(0, true)
				answer = s
				if err != nil {
					answer = map[string]string{"error": err.Error()}
				}
			default:
				answer = map[string]string{"error": fmt.Sprintf("bench -child: unknown op %q", req.Op)}
			}
		}
		if err := enc.Encode(answer); err != nil {
			return err
		}
	}
	return enc.Encode(map[string]int64{"peakRSS": peakRSS()})
}

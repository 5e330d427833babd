package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// lineProc is a process that speaks the runners' line protocol: a JSON
// request per line on its stdin, a JSON answer per line on its stdout (see
// site/bench/node.bench.js). Its stderr passes through to ours.
type lineProc struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex
}

// startProc starts argv in dir, sends it cfg as the first line and decodes
// its first answer into hello.
func startProc(name string, argv []string, dir string, cfg, hello any) (*lineProc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &lineProc{name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	if err := p.call(cfg, hello); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// call sends req and decodes the answer into resp; an answer holding
// "error" is returned as an error.
func (p *lineProc) call(req, resp any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return p.read(resp)
}

// read decodes the next answer line into resp.
func (p *lineProc) read(resp any) error {
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: no answer: %w", p.name, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(bytes.TrimSpace(line), resp); err != nil {
		return fmt.Errorf("%s: answer %.200q: %w", p.name, line, err)
	}
	return nil
}

// finish closes the process's stdin, decodes its last answer into resp
// (when resp is not nil) and waits for it to exit.
func (p *lineProc) finish(resp any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in.Close()
	var err error
	if resp != nil {
		err = p.read(resp)
	}
	if werr := p.cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("%s: %w", p.name, werr)
	}
	return err
}

// kill ends the process at once.
func (p *lineProc) kill() {
	p.in.Close()
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	p.cmd.Wait()
}

// runner measures one row: warmup loads the model the first time and
// warms the runtime up, run measures one run, close ends it and returns
// the peak memory in bytes.
type runner interface {
	warmup() (coldLoadMs float64, err error)
	run() (sample, error)
	close() (peakRSS int64, err error)
}

// procRunner is a runner with a process of its own: bench -child, or
// node.bench.js.
type procRunner struct{ p *lineProc }

func (r *procRunner) warmup() (float64, error) {
	var a struct {
		ColdLoadMs float64 `json:"coldLoadMs"`
	}
	err := r.p.call(map[string]string{"op": "warmup"}, &a)
	return a.ColdLoadMs, err
}

func (r *procRunner) run() (sample, error) {
	var s sample
	err := r.p.call(map[string]string{"op": "run"}, &s)
	return s, err
}

func (r *procRunner) close() (int64, error) {
	var a struct {
		PeakRSS int64 `json:"peakRSS"`
	}
	err := r.p.finish(&a)
	return a.PeakRSS, err
}

// browserJob is the job of the browser for one row: Chromium runs them all
// (browser.bench.js), each in a context of its own.
type browserJob struct {
	ID     string `json:"id"`
	Engine string `json:"engine"` // "wisp" or "wllama"
	Mode   string `json:"mode"`   // wllama: "best" or "chat"; wisp: "page"
	NBatch int    `json:"nBatch"` // wllama's n_batch and n_ubatch (0: its defaults)
	// Alone runs the job in a browser of its own, launched for it with
	// that one page (the honesty check's reference).
	Alone           bool   `json:"alone"`
	File            string `json:"file"`
	Threads         int    `json:"threads"`
	Prompt          string `json:"prompt"`
	Warmup          string `json:"warmup"`
	MaxTokens       int    `json:"maxTokens"`
	WarmupTokens    int    `json:"warmupTokens"`
	RunWarmupTokens int    `json:"runWarmupTokens"`
	DecodeCapMs     int    `json:"decodeCapMs"`
}

// browserRunner is a runner whose job runs in the shared browser process.
type browserRunner struct {
	p   *lineProc
	job browserJob
}

func (r *browserRunner) warmup() (float64, error) {
	var a struct {
		ColdLoadMs float64 `json:"coldLoadMs"`
	}
	err := r.p.call(map[string]any{"op": "open", "job": r.job}, &a)
	return a.ColdLoadMs, err
}

func (r *browserRunner) run() (sample, error) {
	var s sample
	err := r.p.call(map[string]string{"op": "run", "id": r.job.ID}, &s)
	return s, err
}

func (r *browserRunner) close() (int64, error) {
	var a struct {
		PeakRSS int64 `json:"peakRSS"`
	}
	err := r.p.call(map[string]string{"op": "close", "id": r.job.ID}, &a)
	return a.PeakRSS, err
}

// firstLine returns the first line of s, for short error messages.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

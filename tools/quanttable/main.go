// Command quanttable measures what each tensor type costs a model and
// writes make quant-table's table and picture: for every type wisp
// converts to, the file size (what a page downloads), the bits per weight,
// the held-out perplexity, and the KL divergence and top-1 agreement
// against the reference the conversions start from.
//
// Usage:
//
//	go run ./tools/quanttable -wisp bin/wisp -model NAME=REF.gguf:TEXT [-model …] [-md OUT.md] [-svg OUT.svg]
//
// Each -model names a reference GGUF and a held-out text to score on; the
// text may be "samples:N", N stories sampled from the reference itself at
// temperature 1 (seeds 1…N), for models without a held-out corpus. The
// conversions and evaluations run the wisp command (convert, eval --json),
// so the figures are the ones a user of the command line gets.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"wisp/engine"
	"wisp/engine/option"
	"wisp/tools/eval"
)

// types are the conversions measured, largest first.
var types = []string{"f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k", "q5_1", "q5_0", "q4_k_m", "q4_k", "q4_1", "q4_0"}

// modelSpec is one -model flag.
type modelSpec struct{ name, ref, text string }

// row is one type's figures.
type row struct {
	Type       string  `json:"type"`
	Bytes      int64   `json:"bytes"`
	Params     int64   `json:"params"`
	Perplexity float64 `json:"perplexity"`
	KL         float64 `json:"kl"`
	Top1       float64 `json:"top1"`
}

// result is one model's rows.
type result struct {
	Name, Text string
	Tokens     int
	Rows       []row
}

func main() {
	var specs []modelSpec
	flag.Func("model", "NAME=REFERENCE.gguf:TEXT (repeatable); TEXT is a file or samples:N", func(s string) error {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want NAME=REFERENCE.gguf:TEXT")
		}
		ref, text, ok := strings.Cut(rest, ".gguf:")
		if !ok {
			return fmt.Errorf("want NAME=REFERENCE.gguf:TEXT")
		}
		specs = append(specs, modelSpec{name, ref + ".gguf", text})
		return nil
	})
	wisp := flag.String("wisp", "bin/wisp", "the wisp command")
	dir := flag.String("dir", "build/quant", "where to write the converted models and texts")
	md := flag.String("md", "quant-table.md", "the Markdown table to write")
	svg := flag.String("svg", "quant.svg", "the picture to write")
	maxTokens := flag.Int("max-tokens", 0, "score at most this many tokens of each text (0: all)")
	typeList := flag.String("types", strings.Join(types, ","), "the conversions to measure")
	flag.Parse()
	if len(specs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	types = strings.Split(*typeList, ",")
	var results []result
	for _, s := range specs {
		r, err := measure(s, *wisp, *dir, *maxTokens, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "quanttable:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	var out bytes.Buffer
	writeMarkdown(&out, results)
	if err := os.WriteFile(*md, out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "quanttable:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out.Bytes())
	if err := os.WriteFile(*svg, []byte(plot(results)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "quanttable:", err)
		os.Exit(1)
	}
}

// measure converts the reference to every type and evaluates each.
func measure(s modelSpec, wisp, dir string, maxTokens int, log io.Writer) (result, error) {
	r := result{Name: s.name, Text: s.text}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	text := s.text
	if n, ok := strings.CutPrefix(s.text, "samples:"); ok {
		var count int
		if _, err := fmt.Sscan(n, &count); err != nil || count <= 0 {
			return r, fmt.Errorf("%s: %q: want samples:N with N > 0", s.name, s.text)
		}
		data, err := os.ReadFile(s.ref)
		if err != nil {
			return r, err
		}
		m, err := engine.Load(data)
		if err != nil {
			return r, fmt.Errorf("%s: %w", s.ref, err)
		}
		samples, err := eval.Samples(m, count, option.Options{Temperature: 1, Seed: 1})
		if err != nil {
			return r, err
		}
		text = filepath.Join(dir, s.name+"-samples.txt")
		if err := os.WriteFile(text, []byte(samples), 0o644); err != nil {
			return r, err
		}
		r.Text = fmt.Sprintf("%d stories sampled from the reference at temperature 1", count)
	}
	for _, typ := range types {
		out := filepath.Join(dir, fmt.Sprintf("%s-%s.gguf", s.name, typ))
		fmt.Fprintf(log, "%s: %s\n", s.name, typ)
		if msg, err := exec.Command(wisp, "convert", "--type", typ, "-o", out, s.ref).CombinedOutput(); err != nil {
			return r, fmt.Errorf("%s: wisp convert --type %s: %v\n%s", s.name, typ, err, msg)
		}
		args := []string{"eval", "--json", "--greedy", "0", "-m", out, "--ref", s.ref, "--text", text}
		if maxTokens > 0 {
			args = append(args, "--max-tokens", fmt.Sprint(maxTokens))
		}
		cmd := exec.Command(wisp, args...)
		cmd.Stderr = log
		js, err := cmd.Output()
		if err != nil {
			return r, fmt.Errorf("%s: wisp eval of %s: %v", s.name, typ, err)
		}
		var e struct {
			Tokens      int     `json:"tokens"`
			PerplexityB float64 `json:"perplexityB"`
			KL          float64 `json:"kl"`
			Top1        float64 `json:"top1"`
			Params      int64   `json:"params"`
		}
		if err := json.Unmarshal(js, &e); err != nil {
			return r, fmt.Errorf("%s: wisp eval --json of %s: %v", s.name, typ, err)
		}
		st, err := os.Stat(out)
		if err != nil {
			return r, err
		}
		r.Tokens = e.Tokens
		r.Rows = append(r.Rows, row{Type: typ, Bytes: st.Size(), Params: e.Params, Perplexity: e.PerplexityB, KL: e.KL, Top1: e.Top1})
	}
	return r, nil
}

// f16Row returns the model's F16 row, the baseline of the table.
func (r *result) f16Row() *row {
	for i := range r.Rows {
		if r.Rows[i].Type == "f16" {
			return &r.Rows[i]
		}
	}
	return &r.Rows[0]
}

// Smallest returns the smallest type whose perplexity is within limit
// (a fraction, such as 0.02) of F16's, and its row.
func (r *result) Smallest(limit float64) *row {
	base := r.f16Row()
	var best *row
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.Perplexity <= base.Perplexity*(1+limit) && (best == nil || x.Bytes < best.Bytes) {
			best = x
		}
	}
	return best
}

func writeMarkdown(w io.Writer, results []result) {
	for _, r := range results {
		base := r.f16Row()
		fmt.Fprintf(w, "### %s\n\nHeld-out text: %s (%d tokens scored). KL and top-1 against the reference the conversions start from.\n\n", r.Name, r.Text, r.Tokens)
		fmt.Fprintln(w, "| type | file | bits per weight | perplexity | vs F16 | KL (nats/token) | top-1 agreement |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, x := range r.Rows {
			bpw := 8 * float64(x.Bytes) / float64(max(x.Params, 1))
			fmt.Fprintf(w, "| %s | %s | %.2f | %.3f | %+.2f %% | %.4f | %.1f %% |\n", strings.ToUpper(x.Type), size(x.Bytes), bpw, x.Perplexity,
				100*(x.Perplexity/base.Perplexity-1), x.KL, 100*x.Top1)
		}
		if s := r.Smallest(0.02); s != nil {
			fmt.Fprintf(w, "\nThe smallest type within 2 %% of F16's perplexity: %s (%s, %.1f %% of F16's size).\n\n", strings.ToUpper(s.Type), size(s.Bytes), 100*float64(s.Bytes)/float64(base.Bytes))
		}
	}
}

func size(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f KB", float64(n)/1e3)
}

// plot draws one panel per model: download size (x, logarithmic) against
// held-out perplexity (y), each type a labelled point, and the line 2 %
// above F16's perplexity.
func plot(results []result) string {
	const pw, ph, ml, mr, mt, mb = 420, 300, 64, 16, 40, 48
	w := len(results) * (pw + ml + mr)
	h := ph + mt + mb
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	for i, r := range results {
		x0 := i*(pw+ml+mr) + ml
		minB, maxB := math.Inf(1), 0.0
		minP, maxP := math.Inf(1), 0.0
		for _, x := range r.Rows {
			minB, maxB = min(minB, float64(x.Bytes)), max(maxB, float64(x.Bytes))
			minP, maxP = min(minP, x.Perplexity), max(maxP, x.Perplexity)
		}
		limit := r.f16Row().Perplexity * 1.02
		maxP = max(maxP, limit)
		pad := (maxP - minP) * 0.08
		minP, maxP = minP-pad, maxP+pad
		lb0, lb1 := math.Log(minB)-0.1, math.Log(maxB)+0.1
		px := func(bytes float64) float64 { return float64(x0) + (math.Log(bytes)-lb0)/(lb1-lb0)*pw }
		py := func(p float64) float64 { return float64(mt) + (maxP-p)/(maxP-minP)*ph }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x0, mt-16, esc(r.Name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, mt, pw, ph)
		// The 2 % line.
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c33" stroke-dasharray="4 3"/>`+"\n", x0, x0+pw, py(limit), py(limit))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#c33" text-anchor="end">F16 + 2 %%</text>`+"\n", x0+pw-4, py(limit)-4)
		// Axes: a few size ticks, perplexity ticks.
		for _, t := range sizeTicks(minB, maxB) {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
				px(t), px(t), mt+ph, mt+ph+4, px(t), mt+ph+16, size(int64(t)))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">file size (log scale)</text>`+"\n", x0+pw/2, mt+ph+34)
		for k := 0; k <= 4; k++ {
			p := minP + (maxP-minP)*float64(k)/4
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n", x0-4, py(p)+4, p)
		}
		fmt.Fprintf(&b, `<text transform="translate(%d %d) rotate(-90)" text-anchor="middle">held-out perplexity</text>`+"\n", x0-46, mt+ph/2)
		rows := slices.Clone(r.Rows)
		slices.SortFunc(rows, func(a, b row) int { return int(a.Bytes - b.Bytes) })
		var path strings.Builder
		for j, x := range rows {
			sep := "L"
			if j == 0 {
				sep = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", sep, px(float64(x.Bytes)), py(x.Perplexity))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#36c" stroke-opacity="0.4"/>`+"\n", path.String())
		for j, x := range rows {
			dy := -6.0
			if j%2 == 1 {
				dy = 14
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#36c"/><text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n",
				px(float64(x.Bytes)), py(x.Perplexity), px(float64(x.Bytes)), py(x.Perplexity)+dy, strings.ToUpper(x.Type))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// sizeTicks returns round sizes (1, 2, 5 × a power of ten bytes) between lo
// and hi.
func sizeTicks(lo, hi float64) []float64 {
	var ticks []float64
	for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if t := m * p; t >= lo && t <= hi {
				ticks = append(ticks, t)
			}
		}
	}
	return ticks
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

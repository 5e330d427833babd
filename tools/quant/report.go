package quant

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"wisp/engine/gguf"
)

// Report says what a model's conversion stored: tensors, parameters, bytes
// and round-trip error per tensor type, and which tensors fell back to
// another type for their row length. The zero Report is ready to use.
type Report struct {
	Types     map[gguf.TensorType]*Stats
	Fallbacks []Fallback
	// Dequantized counts the input tensors, by their type, that were
	// quantized already and were dequantized before being stored again.
	// Their errors are measured against the dequantized values.
	Dequantized map[gguf.TensorType]int
}

// Fallback is a tensor stored in another type than its scheme chose,
// because its rows are not whole blocks of that type.
type Fallback struct {
	Name         string
	Cols         uint64
	Wanted, Type gguf.TensorType
}

// Encode stores v, a tensor of the given dims, as c.Type and adds what
// that cost to the report.
func (r *Report) Encode(name string, c Choice, dims []uint64, v []float32) ([]byte, error) {
	if len(dims) == 0 {
		return nil, fmt.Errorf("quant: tensor %q has no dims", name)
	}
	b, st, err := Encode(c.Type, int(dims[0]), v)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	r.add(name, c, dims, st)
	return b, nil
}

// Keep adds a tensor stored unchanged (exactly) as c.Type to the report.
func (r *Report) Keep(name string, c Choice, dims []uint64, data []byte) {
	n := int64(1)
	for _, d := range dims {
		n *= int64(d)
	}
	r.add(name, c, dims, Stats{Tensors: 1, Values: n, Bytes: int64(len(data))})
}

func (r *Report) add(name string, c Choice, dims []uint64, st Stats) {
	if r.Types == nil {
		r.Types = map[gguf.TensorType]*Stats{}
	}
	if r.Types[c.Type] == nil {
		r.Types[c.Type] = &Stats{}
	}
	r.Types[c.Type].Add(st)
	if c.Fallback() {
		r.Fallbacks = append(r.Fallbacks, Fallback{Name: name, Cols: dims[0], Wanted: c.Wanted, Type: c.Type})
	}
}

// NoteDequantized records an input tensor of type t that was dequantized.
func (r *Report) NoteDequantized(t gguf.TensorType) {
	if r.Dequantized == nil {
		r.Dequantized = map[gguf.TensorType]int{}
	}
	r.Dequantized[t]++
}

// Total returns the stats of every tensor together.
func (r *Report) Total() Stats {
	var s Stats
	for _, t := range r.types() {
		s.Add(*r.Types[t])
	}
	return s
}

// types returns the types stored, in the order of StorableTypes.
func (r *Report) types() []gguf.TensorType {
	var ts []gguf.TensorType
	for _, t := range StorableTypes {
		if r.Types[t] != nil {
			ts = append(ts, t)
		}
	}
	return ts
}

// Write prints the report as a table, one row per type and a total, then
// the fallbacks and the dequantized inputs.
func (r *Report) Write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\ttensors\tparameters\tbytes\tbits/weight\tRMSE\trel RMSE\tmax abs error\t")
	row := func(name string, s Stats) {
		bits := 0.0
		if s.Values > 0 {
			bits = 8 * float64(s.Bytes) / float64(s.Values)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.3g\t%.3f %%\t%.3g\t\n", name, s.Tensors, s.Values, s.Bytes, bits, s.RMSE(), 100*s.RelRMSE(), s.MaxAbsErr)
	}
	for _, t := range r.types() {
		row(t.String(), *r.Types[t])
	}
	row("total", r.Total())
	tw.Flush()
	if f := r.Types[gguf.F16]; f != nil && f.FP16.Values > 0 {
		fmt.Fprintf(w, "f16: %v\n", f.FP16)
	}
	// Fallbacks, grouped by what changed.
	type key struct {
		cols        uint64
		wanted, got gguf.TensorType
	}
	groups := map[key][]string{}
	var keys []key
	for _, f := range r.Fallbacks {
		k := key{f.Cols, f.Wanted, f.Type}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], f.Name)
	}
	for _, k := range keys {
		names := groups[k]
		why := fmt.Sprintf("rows of %d are not a multiple of %d", k.cols, blockLen(k.wanted))
		list := names
		if len(list) > 4 {
			list = append(slices.Clone(list[:3]), fmt.Sprintf("and %d more", len(names)-3))
		}
		fmt.Fprintf(w, "fallback: %d tensors %v → %v (%s): %s\n", len(names), k.wanted, k.got, why, strings.Join(list, ", "))
	}
	for _, t := range StorableTypes {
		if n := r.Dequantized[t]; n > 0 {
			fmt.Fprintf(w, "dequantized: %d input tensors were %v; they were dequantized first, and their errors are against the dequantized values\n", n, t)
		}
	}
}

func blockLen(t gguf.TensorType) int {
	if q, ok := qtypes[t]; ok {
		return q.BlockLen()
	}
	return 1
}

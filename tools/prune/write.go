package prune

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"wisp/engine/gguf"
)

// Selection is what a pruned model keeps, by original index, and how it was
// chosen. Indices are in increasing order, so the survivors keep their
// relative order.
type Selection struct {
	Layers []int   // the blocks kept
	FFN    [][]int // for each kept block (in the order of Layers), its neurons kept
	Groups [][]int // for each kept block, its key/value groups kept
	// Method is how the units were scored, recorded in the file; "" is
	// recorded as "manual".
	Method Method
	// CalibSHA256 is the hex SHA-256 of the calibration text, and
	// CalibTokens how many of its tokens were run (both zero for none).
	CalibSHA256 string
	CalibTokens int
	// PerLayer lets the kept blocks keep different numbers of groups and
	// neurons (see Source.SelectPerLayer). The file then gives every
	// width that differs between blocks as an array of one per block,
	// which llama.cpp's llama and qwen2 loaders do not accept. Without
	// it, every block must keep as many as the first.
	PerLayer bool
}

// Shape returns the dimensions the selection keeps (zero if it is
// empty): its blocks, and the groups and neurons of its first block, which
// are every block's unless PerLayer.
func (sel *Selection) Shape() Shape {
	sh := Shape{Layers: len(sel.Layers)}
	if len(sel.FFN) > 0 {
		sh.FFN = len(sel.FFN[0])
	}
	if len(sel.Groups) > 0 {
		sh.Groups = len(sel.Groups[0])
	}
	return sh
}

// first returns the selection that keeps the first units of each kind; its
// file has the size and parameter count of any selection of that shape.
func (s *Source) first(sh Shape) Selection {
	iota := func(n int) []int {
		v := make([]int, max(n, 0))
		for i := range v {
			v[i] = i
		}
		return v
	}
	sel := Selection{Layers: iota(sh.Layers)}
	for range sel.Layers {
		sel.FFN = append(sel.FFN, iota(sh.FFN))
		sel.Groups = append(sel.Groups, iota(sh.Groups))
	}
	return sel
}

// checkSelection reports a selection that names units the model does not
// have, keeps none of a kind in a block, or is not uniform without
// PerLayer.
func (s *Source) checkSelection(sel *Selection) error {
	full := s.Full()
	if err := s.check(sel.Shape()); err != nil {
		return err
	}
	increasing := func(what string, v []int, n int) error {
		for i, x := range v {
			if x < 0 || x >= n || (i > 0 && x <= v[i-1]) {
				return fmt.Errorf("prune: selection of %s %v is not increasing indices below %d", what, v, n)
			}
		}
		return nil
	}
	if err := increasing("blocks", sel.Layers, full.Layers); err != nil {
		return err
	}
	if len(sel.FFN) != len(sel.Layers) || len(sel.Groups) != len(sel.Layers) {
		return fmt.Errorf("prune: selection has %d blocks but neurons for %d and groups for %d", len(sel.Layers), len(sel.FFN), len(sel.Groups))
	}
	sh := sel.Shape()
	for i, l := range sel.Layers {
		if len(sel.FFN[i]) < 1 || len(sel.Groups[i]) < 1 {
			return fmt.Errorf("prune: selection keeps %d neurons and %d groups in block %d: every block keeps at least one of each", len(sel.FFN[i]), len(sel.Groups[i]), l)
		}
		if !sel.PerLayer && (len(sel.FFN[i]) != sh.FFN || len(sel.Groups[i]) != sh.Groups) {
			return fmt.Errorf("prune: selection keeps %d neurons and %d groups in block %d but %d and %d in the first: dimensions must be uniform unless PerLayer",
				len(sel.FFN[i]), len(sel.Groups[i]), l, sh.FFN, sh.Groups)
		}
		if err := increasing(fmt.Sprintf("neurons of block %d", l), sel.FFN[i], full.FFN); err != nil {
			return err
		}
		if err := increasing(fmt.Sprintf("groups of block %d", l), sel.Groups[i], full.Groups); err != nil {
			return err
		}
	}
	if sel.Method != "" {
		if err := sel.Method.check(); err != nil {
			return err
		}
	}
	if sel.CalibTokens < 0 || int64(sel.CalibTokens) > 1<<32-1 {
		return fmt.Errorf("prune: selection's calibration token count %d is out of range", sel.CalibTokens)
	}
	return nil
}

// outTensor is one tensor of the pruned file: a source tensor, renamed,
// with some of its rows and columns kept.
type outTensor struct {
	name string
	src  *gguf.Tensor
	dims []uint64
	rows []int // source rows kept (nil: all); for a vector, always nil
	cols []int // source columns (a vector's elements) kept (nil: all)
}

// params returns the number of elements of the tensors.
func params(ts []outTensor) int64 {
	var n int64
	for _, t := range ts {
		e := int64(1)
		for _, d := range t.dims {
			e *= int64(d)
		}
		n += e
	}
	return n
}

// layout lists the tensors of the file the selection gives, in the source's
// order. It fails on a tensor it does not know how to cut.
func (s *Source) layout(sel Selection) ([]outTensor, error) {
	if err := s.checkSelection(&sel); err != nil {
		return nil, err
	}
	c := &s.Model.Config
	hd, per := c.HeadDim, c.Heads/c.KVHeads
	newIndex := make([]int, c.Layers) // new index of each source block, or -1
	for i := range newIndex {
		newIndex[i] = -1
	}
	for i, l := range sel.Layers {
		newIndex[l] = i
	}
	var out []outTensor
	for i := range s.Model.File.Tensors {
		t := &s.Model.File.Tensors[i]
		rest, ok := strings.CutPrefix(t.Name, "blk.")
		if !ok {
			out = append(out, outTensor{name: t.Name, src: t, dims: t.Dims})
			continue
		}
		num, suffix, _ := strings.Cut(rest, ".")
		l, err := strconv.Atoi(num)
		if err != nil || l < 0 || l >= c.Layers || strconv.Itoa(l) != num {
			return nil, fmt.Errorf("prune: tensor %q names no block of the model's %d", t.Name, c.Layers)
		}
		ni := newIndex[l]
		if ni < 0 {
			continue
		}
		o := outTensor{name: fmt.Sprintf("blk.%d.%s", ni, suffix), src: t}
		var qRows, kvRows []int
		for _, g := range sel.Groups[ni] {
			for r := g * per * hd; r < (g+1)*per*hd; r++ {
				qRows = append(qRows, r)
			}
			for r := g * hd; r < (g+1)*hd; r++ {
				kvRows = append(kvRows, r)
			}
		}
		// want is the source shape [cols, rows] (or [n]); the kept rows
		// and columns follow.
		var want []int
		switch suffix {
		case "attn_norm.weight", "ffn_norm.weight":
			want = []int{c.Dim}
		case "attn_q.weight":
			want, o.rows = []int{c.Dim, c.QDim()}, qRows
		case "attn_q.bias":
			want, o.cols = []int{c.QDim()}, qRows
		case "attn_k.weight", "attn_v.weight":
			want, o.rows = []int{c.Dim, c.KVDim()}, kvRows
		case "attn_k.bias", "attn_v.bias":
			want, o.cols = []int{c.KVDim()}, kvRows
		case "attn_output.weight":
			want, o.cols = []int{c.QDim(), c.Dim}, qRows
		case "ffn_gate.weight", "ffn_up.weight":
			want, o.rows = []int{c.Dim, c.HiddenDim}, sel.FFN[ni]
		case "ffn_down.weight":
			want, o.cols = []int{c.HiddenDim, c.Dim}, sel.FFN[ni]
		default:
			return nil, fmt.Errorf("prune: tensor %q: wisp does not know how to prune it", t.Name)
		}
		if len(t.Dims) != len(want) {
			return nil, fmt.Errorf("prune: tensor %q has shape %v, want %v", t.Name, t.Dims, want)
		}
		for k := range want {
			if t.Dims[k] != uint64(want[k]) {
				return nil, fmt.Errorf("prune: tensor %q has shape %v, want %v", t.Name, t.Dims, want)
			}
		}
		if (o.rows != nil || o.cols != nil) && t.Type != gguf.F32 && t.Type != gguf.F16 {
			return nil, fmt.Errorf("prune: tensor %q has type %v; wisp prunes F32 and F16 tensors", t.Name, t.Type)
		}
		o.dims = append([]uint64(nil), t.Dims...)
		if o.cols != nil {
			o.dims[0] = uint64(len(o.cols))
		}
		if o.rows != nil {
			o.dims[1] = uint64(len(o.rows))
		}
		out = append(out, o)
	}
	return out, nil
}

// data returns the kept elements of the tensor, in the source's type.
func (t *outTensor) data() []byte {
	if t.rows == nil && t.cols == nil {
		return t.src.Data
	}
	es := 4
	if t.src.Type == gguf.F16 {
		es = 2
	}
	cols := int(t.src.Dims[0])
	nrows := 1
	if len(t.src.Dims) > 1 {
		nrows = int(t.src.Dims[1])
	}
	rows := t.rows
	if rows == nil {
		rows = make([]int, nrows)
		for i := range rows {
			rows[i] = i
		}
	}
	width := cols
	if t.cols != nil {
		width = len(t.cols)
	}
	out := make([]byte, 0, len(rows)*width*es)
	for _, r := range rows {
		row := t.src.Data[r*cols*es : (r+1)*cols*es]
		if t.cols == nil {
			out = append(out, row...)
			continue
		}
		for _, c := range t.cols {
			out = append(out, row[c*es:(c+1)*es]...)
		}
	}
	return out
}

// builder assembles the pruned file. With zeros set, tensors are filled
// from it instead of their data, which is enough to measure the file.
func (s *Source) builder(sel Selection, zeros []byte) (*gguf.Builder, error) {
	ts, err := s.layout(sel)
	if err != nil {
		return nil, err
	}
	c := &s.Model.Config
	full, sh := s.Full(), sel.Shape()
	b := gguf.NewBuilder()
	for _, kv := range s.Model.File.KV {
		if !strings.HasPrefix(kv.Key, "wisp.prune.") {
			b.Set(kv.Key, kv.Value)
		}
	}
	// The pruned shape: each block's widths (a single number when every
	// block has the same, else, PerLayer, an array of one per block, as
	// llama.cpp reads them).
	per := c.Heads / c.KVHeads
	pc := *c
	pc.Layers = sh.Layers
	ffn, groups, heads := make([]int, sh.Layers), make([]int, sh.Layers), make([]int, sh.Layers)
	for i := range sel.Layers {
		ffn[i], groups[i] = len(sel.FFN[i]), len(sel.Groups[i])
		heads[i] = groups[i] * per
	}
	if err := pc.SetBlockWidths(ffn, heads, groups); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	pc.SetGGUF(b)

	method := string(sel.Method)
	if method == "" {
		method = "manual"
	}
	b.Set("wisp.prune.source_sha256", s.SHA256)
	b.Set("wisp.prune.method", method)
	if sel.PerLayer {
		b.Set("wisp.prune.per_layer", true)
	}
	if sel.CalibSHA256 != "" {
		b.Set("wisp.prune.calibration_sha256", sel.CalibSHA256)
		b.Set("wisp.prune.calibration_tokens", uint32(sel.CalibTokens))
	}
	b.Set("wisp.prune.params_before", uint64(s.Model.Params()))
	b.Set("wisp.prune.params_after", uint64(params(ts)))
	b.Set("wisp.prune.block_count_before", uint32(full.Layers))
	b.Set("wisp.prune.head_count_kv_before", uint32(full.Groups))
	b.Set("wisp.prune.feed_forward_length_before", uint32(full.FFN))
	flat := func(v [][]int) []int32 {
		var out []int32
		for _, row := range v {
			for _, x := range row {
				out = append(out, int32(x))
			}
		}
		return out
	}
	if sh.Layers < full.Layers {
		var removed []int32
		for l, k := 0, 0; l < full.Layers; l++ {
			if k < len(sel.Layers) && sel.Layers[k] == l {
				k++
			} else {
				removed = append(removed, int32(l))
			}
		}
		b.Set("wisp.prune.layers_kept", flat([][]int{sel.Layers}))
		b.Set("wisp.prune.layers_removed", removed)
	}
	if slices.Min(groups) < full.Groups {
		b.Set("wisp.prune.groups_kept", flat(sel.Groups))
	}
	if slices.Min(ffn) < full.FFN {
		b.Set("wisp.prune.ffn_kept", flat(sel.FFN))
	}

	for i := range ts {
		t := &ts[i]
		var data []byte
		if zeros != nil {
			n, err := byteSize(t)
			if err != nil {
				return nil, err
			}
			data = zeros[:n]
		} else {
			data = t.data()
		}
		if err := b.AddTensor(t.name, t.src.Type, t.dims, data); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	return b, nil
}

// byteSize returns the bytes of the tensor's data in the pruned file.
func byteSize(t *outTensor) (int, error) {
	if t.rows == nil && t.cols == nil {
		return len(t.src.Data), nil
	}
	n := 1
	for _, d := range t.dims {
		n *= int(d)
	}
	switch t.src.Type {
	case gguf.F32:
		return 4 * n, nil
	case gguf.F16:
		return 2 * n, nil
	}
	return 0, fmt.Errorf("prune: tensor %q has type %v; wisp prunes F32 and F16 tensors", t.src.Name, t.src.Type)
}

// counter counts the bytes written to it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// FileSize returns the size in bytes of the file Apply writes for a
// selection of the shape chosen by the method (which decides the metadata
// recorded: calibration keys for Wanda).
func (s *Source) FileSize(sh Shape, m Method) (int64, error) {
	return s.fileSize(sh, m, make([]byte, s.largest()))
}

// largest returns the size of the largest tensor of the source, which no
// tensor of a pruned file exceeds.
func (s *Source) largest() int {
	most := 0
	for i := range s.Model.File.Tensors {
		most = max(most, len(s.Model.File.Tensors[i].Data))
	}
	return most
}

// fileSize is FileSize with a buffer of zeros at least as long as the
// largest tensor.
func (s *Source) fileSize(sh Shape, m Method, zeros []byte) (int64, error) {
	sel := s.first(sh)
	sel.Method = m
	if m == Wanda {
		sel.CalibSHA256 = strings.Repeat("0", 64)
	}
	return s.selectionSize(sel, zeros)
}

// selectionSize returns the size of the file Apply writes for the
// selection, with a buffer of zeros at least as long as the largest tensor.
func (s *Source) selectionSize(sel Selection, zeros []byte) (int64, error) {
	b, err := s.builder(sel, zeros)
	if err != nil {
		return 0, err
	}
	var w counter
	if _, err := b.WriteTo(&w); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return w.n, nil
}

// Apply writes the model cut to the selection as a GGUF file: the source's
// metadata and tensor types, the new dimensions, and the selection's
// history under wisp.prune.* (source_sha256, method, per_layer (true) if
// the selection is PerLayer, calibration_sha256 and calibration_tokens,
// params_before and params_after, the source's block_count, head_count_kv
// and feed_forward_length as *_before, and for every kind of unit that was
// cut the original indices kept: layers_kept and layers_removed, and
// groups_kept and ffn_kept flattened block by block, each block's run as
// long as its head_count_kv or feed_forward_length). wisp.prune.* keys of
// the source are replaced.
//
// The new dimensions are single numbers when every block has the same,
// which is what llama.cpp reads; a PerLayer selection whose blocks differ
// gets llama.cpp's per-layer arrays for the widths that differ.
func (s *Source) Apply(sel Selection) ([]byte, error) {
	b, err := s.builder(sel, nil)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return buf.Bytes(), nil
}

// Package oracle is wisp's independent reference for quantized GGUF files:
// llama.cpp itself. The C program csrc/oracle.c, built by make
// oracle against the prebuilt native llama.cpp of npm's
// @node-llama-cpp/linux-x64@3.22.1, quantizes a model with
// llama_model_quantize, widens every tensor of a file with ggml's own
// dequantize_row_* functions and evaluates tokens with llama_decode.
//
// This package runs that program, makes the fixtures the engine's tests
// check against (testdata/llamacpp, written by make oracle-fixtures and
// committed, so that the tests need no llama.cpp), reads them back, and
// holds what those tests share: wisp's widening of each tensor, wisp's
// logits and the comparisons. README.md says how it fits together.
package oracle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
	"wisp/simd"
)

// Package names the llama.cpp build the fixtures were made with.
const Package = "@node-llama-cpp/linux-x64@3.22.1 (llama.cpp release v0.5.0)"

// Bases are the random models the fixtures quantize, written by synth in
// F32. "k" has every matrix row a multiple of 256 weights, so that the
// k-quants apply to every matrix; it is as small as that allows (one
// block, 427 520 parameters). "small" is for the formats of blocks of 32:
// two blocks with grouped-query attention (90 304 parameters).
var Bases = map[string]synth.Shape{
	"k":     {Arch: "llama", Dim: 256, HiddenDim: 256, Layers: 1, Heads: 4, KVHeads: 1, Vocab: 259, ContextLen: 64, RopeBase: 10000, Tied: true},
	"small": {Arch: "llama", Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 259, ContextLen: 64, RopeBase: 10000, Tied: true},
}

// Spec is one fixture: a base model quantized by llama.cpp to an ftype.
type Spec struct {
	Name  string // the fixture's name, its files' stem
	FType int    // llama.cpp's llama_ftype
	Pure  bool   // every tensor of the ftype's default type, no k-quant mixture
	Base  string // a key of Bases
}

// Specs are the fixtures, in the order they are made and checked. The _M
// ftypes are llama.cpp's mixtures (Q4_K_M here: Q4_K, with Q6_K for the
// value and down projections and the embedding); the pure ones give every
// matrix, the embedding included, the one type.
var Specs = []Spec{
	{"Q8_0", 7, false, "small"},
	{"Q4_0", 2, false, "small"},
	{"Q4_1", 3, false, "small"},
	{"Q5_0", 8, false, "small"},
	{"Q5_1", 9, false, "small"},
	{"BF16", 32, false, "small"},
	{"Q4_K_M", 15, false, "k"},
	{"Q5_K_M", 17, false, "k"},
	{"Q6_K", 18, false, "k"},
	{"Q4_K_S-pure", 14, true, "k"},
	{"Q5_K_S-pure", 16, true, "k"},
}

// Controls are unquantized models, checked by the live test only (they
// are not committed): on them llama.cpp and wisp compute the same
// arithmetic but for the order of sums (and llama.cpp rounds the inputs of
// F16 products to F16), which shows that what the quantized fixtures
// measure is the quantized products.
var Controls = []Spec{
	{"F32", 0, false, "small"},
	{"F16", 1, false, "small"},
	{"F32-k", 0, false, "k"},
}

// Tokens is the sequence every fixture's logits are computed for: BOS,
// then the byte tokens of "Hello, ".
var Tokens = []int{1, 75, 104, 111, 111, 114, 47, 35}

// FixtureSeed is the seed of the base models of the committed fixtures.
// Both engines quantize the inputs of each product to 8 bits, differently
// (see the README), so where llama.cpp's two best logits are within about
// 1 % of the logits' range of each other either may win; of the first
// twelve seeds, 11 is the one where wisp and llama.cpp pick the same
// greedy token at every position of every fixture, which lets the tests
// demand exactly that.
const FixtureSeed = 11

// Oracle is the built C program.
type Oracle struct {
	Bin string
}

// Locate finds the oracle: $WISP_ORACLE if set, else build/oracle/oracle
// in the repository that holds the working directory. It fails when the
// program is not there (make oracle builds it).
func Locate() (Oracle, error) {
	if p := os.Getenv("WISP_ORACLE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return Oracle{}, fmt.Errorf("oracle: WISP_ORACLE: %w", err)
		}
		return Oracle{p}, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return Oracle{}, err
	}
	p := filepath.Join(root, "build", "oracle", "oracle")
	if _, err := os.Stat(p); err != nil {
		return Oracle{}, fmt.Errorf("oracle: %s is not built (run make oracle): %w", p, err)
	}
	return Oracle{p}, nil
}

// RepoRoot returns the directory holding go.mod, from the working
// directory up.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("oracle: no go.mod above %s", wd)
		}
	}
}

// FixtureDir returns the folder of the committed fixtures.
func FixtureDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", "llamacpp"), nil
}

func (o Oracle) run(args ...string) ([]byte, error) {
	cmd := exec.Command(o.Bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("oracle %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Quantize has llama.cpp quantize the GGUF file in to out as llama_ftype
// ftype, as llama-quantize does (pure: without the k-quant mixtures).
func (o Oracle) Quantize(in, out string, ftype int, pure bool) error {
	args := []string{"quantize", in, out, strconv.Itoa(ftype)}
	if pure {
		args = append(args, "pure")
	}
	_, err := o.run(args...)
	return err
}

// Widened is one tensor widened to float32.
type Widened struct {
	Name, Type string // ggml's names, such as "q4_K"
	Values     []float32
}

// Dequant has ggml widen every tensor of the GGUF file to float32, in the
// file's order.
func (o Oracle) Dequant(path string) ([]Widened, error) {
	tmp, err := os.CreateTemp("", "oracle-*.f32")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	list, err := o.run("dequant", path, tmp.Name())
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	vals := floats(raw)
	var out []Widened
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("oracle dequant: bad line %q", line)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n > len(vals) {
			return nil, fmt.Errorf("oracle dequant: bad count in %q", line)
		}
		out = append(out, Widened{f[0], f[1], vals[:n:n]})
		vals = vals[n:]
	}
	if len(vals) != 0 {
		return nil, fmt.Errorf("oracle dequant: %d values left over", len(vals))
	}
	return out, nil
}

// Logits has llama.cpp evaluate the tokens one position at a time and
// returns its logits after each. llama.cpp runs on the CPU with an F32
// key/value cache and without flash attention (see csrc/oracle.c).
func (o Oracle) Logits(path string, tokens []int) ([][]float32, error) {
	tmp, err := os.CreateTemp("", "oracle-*.logits")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"logits", path, tmp.Name()}
	for _, t := range tokens {
		args = append(args, strconv.Itoa(t))
	}
	if _, err := o.run(args...); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	return splitLogits(floats(raw), len(tokens))
}

func splitLogits(v []float32, n int) ([][]float32, error) {
	if n == 0 || len(v)%n != 0 {
		return nil, fmt.Errorf("oracle: %d logits do not split into %d positions", len(v), n)
	}
	vocab := len(v) / n
	out := make([][]float32, n)
	for p := range out {
		out[p] = v[p*vocab : (p+1)*vocab : (p+1)*vocab]
	}
	return out, nil
}

func floats(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// Manifest describes a folder of fixtures (manifest.json).
type Manifest struct {
	Oracle   string    // the llama.cpp build that made them
	Seed     uint64    // the seed of the base models
	Tokens   []int     // the tokens the logits are for
	Fixtures []Fixture // in the order of Specs
}

// Fixture is one quantized model and what llama.cpp made of it. Its files
// are NAME.gguf (the model llama.cpp wrote), NAME.logits (llama.cpp's
// logits after each of Tokens, float32, positions × vocabulary) and
// NAME.rowcrc (the CRC-32 of each row of llama.cpp's dequantization, as
// little-endian uint32, tensor after tensor).
type Fixture struct {
	Spec
	Tensors []Digest
}

// Digest is llama.cpp's dequantization of one tensor, in brief: the
// SHA-256 of its float32 values (little-endian) and, in the .rowcrc file,
// the CRC-32 of each row, to tell which row differs.
type Digest struct {
	Name   string
	Type   string // ggml's name of the stored type
	Dims   []uint64
	SHA256 string
}

// Rows returns the number of rows of the tensor (1 for a vector).
func (d Digest) Rows() int {
	n := 1
	for _, x := range d.Dims[1:] {
		n *= int(x)
	}
	return n
}

// digest returns the SHA-256 of the values and the CRC-32 of each row of
// cols values.
func digest(v []float32, cols int) (string, []uint32) {
	b := floatBytes(v)
	sum := sha256.Sum256(b)
	var crcs []uint32
	for o := 0; o < len(b); o += 4 * cols {
		crcs = append(crcs, crc32.ChecksumIEEE(b[o:o+4*cols]))
	}
	return hex.EncodeToString(sum[:]), crcs
}

// Generate makes the fixtures of specs (Specs for the committed ones) in
// dir from base models of the given seed, with the oracle, and writes
// manifest.json there.
func Generate(o Oracle, dir string, seed uint64, specs []Spec) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "oracle-bases-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	m := &Manifest{Oracle: Package, Seed: seed, Tokens: Tokens}
	for _, s := range specs {
		base := filepath.Join(tmp, s.Base+".gguf")
		if _, err := os.Stat(base); err != nil {
			data, err := synth.Bytes(Bases[s.Base], synth.Options{Type: gguf.F32, Seed: seed, Name: "oracle base " + s.Base})
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(base, data, 0o644); err != nil {
				return nil, err
			}
		}
		f, err := makeFixture(o, dir, base, s)
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", s.Name, err)
		}
		m.Fixtures = append(m.Fixtures, *f)
	}
	js, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(dir, "manifest.json"), append(js, '\n'), 0o644)
}

func makeFixture(o Oracle, dir, base string, s Spec) (*Fixture, error) {
	path := filepath.Join(dir, s.Name+".gguf")
	if err := o.Quantize(base, path, s.FType, s.Pure); err != nil {
		return nil, err
	}
	file, err := gguf.ReadFile(path)
	if err != nil {
		return nil, err
	}
	wide, err := o.Dequant(path)
	if err != nil {
		return nil, err
	}
	if len(wide) != len(file.Tensors) {
		return nil, fmt.Errorf("llama.cpp widened %d tensors of %d", len(wide), len(file.Tensors))
	}
	f := &Fixture{Spec: s}
	var crcs []byte
	for i, w := range wide {
		t := &file.Tensors[i]
		if t.Name != w.Name || uint64(len(w.Values)) != t.Elements() {
			return nil, fmt.Errorf("tensor %d: llama.cpp widened %s (%d values), the file holds %s (%d)", i, w.Name, len(w.Values), t.Name, t.Elements())
		}
		sum, rows := digest(w.Values, int(t.Dims[0]))
		f.Tensors = append(f.Tensors, Digest{Name: w.Name, Type: w.Type, Dims: t.Dims, SHA256: sum})
		for _, c := range rows {
			crcs = binary.LittleEndian.AppendUint32(crcs, c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, s.Name+".rowcrc"), crcs, 0o644); err != nil {
		return nil, err
	}
	logits, err := o.Logits(path, Tokens)
	if err != nil {
		return nil, err
	}
	var lb []byte
	for _, row := range logits {
		lb = append(lb, floatBytes(row)...)
	}
	return f, os.WriteFile(filepath.Join(dir, s.Name+".logits"), lb, 0o644)
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	js, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("oracle: %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	return &m, nil
}

// Files are a fixture's model, llama.cpp's logits and its row CRCs.
type Files struct {
	Model  []byte
	Logits [][]float32
	RowCRC []uint32
}

// ReadFiles reads the files of fixture f from dir.
func (m *Manifest) ReadFiles(dir string, f *Fixture) (*Files, error) {
	model, err := os.ReadFile(filepath.Join(dir, f.Name+".gguf"))
	if err != nil {
		return nil, err
	}
	lb, err := os.ReadFile(filepath.Join(dir, f.Name+".logits"))
	if err != nil {
		return nil, err
	}
	logits, err := splitLogits(floats(lb), len(m.Tokens))
	if err != nil {
		return nil, err
	}
	cb, err := os.ReadFile(filepath.Join(dir, f.Name+".rowcrc"))
	if err != nil {
		return nil, err
	}
	crcs := make([]uint32, len(cb)/4)
	for i := range crcs {
		crcs[i] = binary.LittleEndian.Uint32(cb[4*i:])
	}
	return &Files{model, logits, crcs}, nil
}

// WispWiden widens a tensor to float32 as wisp does: simd.Dequantize for
// the quantized formats, simd.F16 and simd.BF16 for the halves.
func WispWiden(t *gguf.Tensor) ([]float32, error) {
	n := t.Elements()
	out := make([]float32, n)
	switch t.Type {
	case gguf.F32:
		copy(out, floats(t.Data))
	case gguf.F16, gguf.BF16:
		conv := simd.F16
		if t.Type == gguf.BF16 {
			conv = simd.BF16
		}
		for i := range out {
			out[i] = conv(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		q, ok := qtypes[t.Type]
		if !ok {
			return nil, fmt.Errorf("tensor %s: wisp does not widen %v", t.Name, t.Type)
		}
		simd.Dequantize(q, out, t.Data)
	}
	return out, nil
}

var qtypes = map[gguf.TensorType]simd.QType{
	gguf.Q8_0: simd.Q8_0, gguf.Q4_0: simd.Q4_0, gguf.Q4_1: simd.Q4_1,
	gguf.Q5_0: simd.Q5_0, gguf.Q5_1: simd.Q5_1, gguf.Q4_K: simd.Q4_K,
	gguf.Q5_K: simd.Q5_K, gguf.Q6_K: simd.Q6_K,
}

// A Mismatch is a tensor whose widening by wisp differs from llama.cpp's.
type Mismatch struct {
	Tensor, Type string
	Row          int    // the first row that differs, -1 if unknown
	Detail       string // where and how
}

func (m Mismatch) Error() string {
	return fmt.Sprintf("tensor %s (%s): %s", m.Tensor, m.Type, m.Detail)
}

// CheckDigests widens every tensor of the model with wisp and compares it
// with llama.cpp's digests: every value must have the very bits. It returns
// the number of values compared by type and the tensors that differ, each
// with the first row whose CRC differs.
func CheckDigests(model []byte, f *Fixture, crcs []uint32) (map[string]int, []Mismatch, error) {
	file, err := gguf.Parse(model)
	if err != nil {
		return nil, nil, err
	}
	if len(file.Tensors) != len(f.Tensors) {
		return nil, nil, fmt.Errorf("the model has %d tensors, the manifest %d", len(file.Tensors), len(f.Tensors))
	}
	counts := map[string]int{}
	var bad []Mismatch
	for i, d := range f.Tensors {
		t := &file.Tensors[i]
		if t.Name != d.Name || !strings.EqualFold(t.Type.String(), d.Type) || t.Elements() != product(d.Dims) {
			return nil, nil, fmt.Errorf("tensor %d is %s %v %v in the model, %s %s %v in the manifest", i, t.Name, t.Type, t.Dims, d.Name, d.Type, d.Dims)
		}
		rows := d.Rows()
		if len(crcs) < rows {
			return nil, nil, errors.New("the row CRCs end early")
		}
		mine := crcs[:rows]
		crcs = crcs[rows:]
		v, err := WispWiden(t)
		if err != nil {
			return nil, nil, err
		}
		counts[d.Type] += len(v)
		sum, got := digest(v, int(t.Dims[0]))
		if sum == d.SHA256 {
			continue
		}
		m := Mismatch{Tensor: d.Name, Type: d.Type, Row: -1, Detail: "SHA-256 differs, yet every row's CRC agrees"}
		for r := range mine {
			if got[r] != mine[r] {
				cols := int(t.Dims[0])
				m.Row = r
				m.Detail = fmt.Sprintf("row %d (values %d..%d) differs first; wisp gives %v…", r, r*cols, (r+1)*cols, v[r*cols:r*cols+min(cols, 8)])
				break
			}
		}
		bad = append(bad, m)
	}
	return counts, bad, nil
}

// CompareWidened widens every tensor of the model with wisp and compares
// it value by value with llama.cpp's widening (from Oracle.Dequant).
func CompareWidened(model []byte, ref []Widened) (map[string]int, []Mismatch, error) {
	file, err := gguf.Parse(model)
	if err != nil {
		return nil, nil, err
	}
	if len(file.Tensors) != len(ref) {
		return nil, nil, fmt.Errorf("the model has %d tensors, llama.cpp widened %d", len(file.Tensors), len(ref))
	}
	counts := map[string]int{}
	var bad []Mismatch
	for i, w := range ref {
		t := &file.Tensors[i]
		v, err := WispWiden(t)
		if err != nil {
			return nil, nil, err
		}
		if t.Name != w.Name || len(v) != len(w.Values) {
			return nil, nil, fmt.Errorf("tensor %d is %s (%d values) in the model, %s (%d) in llama.cpp's widening", i, t.Name, len(v), w.Name, len(w.Values))
		}
		counts[w.Type] += len(v)
		var first, n int
		for j := range v {
			if math.Float32bits(v[j]) != math.Float32bits(w.Values[j]) {
				if n == 0 {
					first = j
				}
				n++
			}
		}
		if n > 0 {
			cols := int(t.Dims[0])
			bad = append(bad, Mismatch{Tensor: w.Name, Type: w.Type, Row: first / cols, Detail: fmt.Sprintf(
				"%d of %d values differ; the first is %d (row %d, column %d): wisp %v (%#08x), llama.cpp %v (%#08x)",
				n, len(v), first, first/cols, first%cols, v[first], math.Float32bits(v[first]), w.Values[first], math.Float32bits(w.Values[first]))})
		}
	}
	return counts, bad, nil
}

func product(d []uint64) uint64 {
	n := uint64(1)
	for _, x := range d {
		n *= x
	}
	return n
}

// WispLogits loads the model into wisp's engine and evaluates the tokens
// one position at a time, returning the logits after each.
func WispLogits(model []byte, tokens []int) ([][]float32, error) {
	m, err := engine.Load(bytes.Clone(model))
	if err != nil {
		return nil, err
	}
	st, err := m.NewState(0)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	for p, tok := range tokens {
		l, err := st.Forward([]int{tok})
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", p, err)
		}
		out = append(out, append([]float32(nil), l...))
	}
	return out, nil
}

// LogitDiff compares wisp's logits with llama.cpp's at each position.
type LogitDiff struct {
	// Rel is the largest |wisp - llama.cpp| of a position over the range
	// (max - min) of llama.cpp's logits there, the worst position's.
	Rel float64
	// MaxAbs is the largest |wisp - llama.cpp| anywhere, and Range the
	// smallest range of llama.cpp's logits at a position.
	MaxAbs, Range float64
	// Argmax lists the positions where the greedy tokens differ.
	Argmax []ArgmaxDiff
}

// ArgmaxDiff is a position where wisp and llama.cpp pick different tokens.
type ArgmaxDiff struct {
	Pos, Wisp, Llama int
	// Margin is how much llama.cpp prefers its token to wisp's: the
	// difference of its logits for the two over their range there.
	Margin float64
}

// CompareLogits measures how far wisp's logits are from llama.cpp's.
func CompareLogits(wisp, llama [][]float32) (LogitDiff, error) {
	if len(wisp) != len(llama) {
		return LogitDiff{}, fmt.Errorf("%d positions from wisp, %d from llama.cpp", len(wisp), len(llama))
	}
	d := LogitDiff{Range: math.Inf(1)}
	for p := range llama {
		w, l := wisp[p], llama[p]
		if len(w) != len(l) {
			return LogitDiff{}, fmt.Errorf("position %d: %d logits from wisp, %d from llama.cpp", p, len(w), len(l))
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		var diff float64
		for i := range l {
			lo, hi = min(lo, float64(l[i])), max(hi, float64(l[i]))
			diff = max(diff, math.Abs(float64(w[i])-float64(l[i])))
		}
		if math.IsNaN(diff) || math.IsInf(diff, 0) {
			return LogitDiff{}, fmt.Errorf("position %d: logits not finite", p)
		}
		d.MaxAbs = max(d.MaxAbs, diff)
		d.Range = min(d.Range, hi-lo)
		d.Rel = max(d.Rel, diff/(hi-lo))
		if aw, al := argmax(w), argmax(l); aw != al {
			d.Argmax = append(d.Argmax, ArgmaxDiff{p, aw, al, (float64(l[al]) - float64(l[aw])) / (hi - lo)})
		}
	}
	return d, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

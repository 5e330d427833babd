package quant

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"wisp/engine/gguf"
)

// A Scheme says which type each tensor of a model is stored as: what
// `wisp convert --type` names. Most schemes store every matrix as one
// type; q4_k_m and q5_k_m are llama.cpp's mixtures.
//
// In every scheme, tensors of one dimension (norms, biases) stay F32, as
// llama.cpp keeps them, and a matrix whose rows are not a whole number of
// its type's blocks falls back as llama.cpp's llama_tensor_get_type does:
// Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0 (for rows not a multiple of
// 256), and any quantized type to F16 when the rows are not a multiple of
// 32 either (where llama.cpp falls back to F16 after a k-quant, or gives up
// for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1).
//
// The mixtures follow llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M and
// LLAMA_FTYPE_MOSTLY_Q5_K_M (llama_tensor_get_type in llama-quant.cpp),
// for the tensors of the llama and qwen2 architectures:
//
//   - output.weight is Q6_K (Q8_0 if its rows are not a multiple of 256).
//     When the model has no output.weight (its output is tied to the token
//     embedding), token_embd.weight takes that rule instead; otherwise
//     token_embd.weight is the base type.
//   - attn_v.weight is Q6_K in the blocks use_more_bits picks, counting
//     the attn_v (and attn_qkv) tensors in llama.cpp's order (by block
//     number, then name): block i of n is picked when i < n/8, i >= 7n/8
//     or (i - n/8) % 3 == 2, integer division. Elsewhere it is the base
//     type.
//   - ffn_down (any tensor whose name holds "ffn_down") is Q6_K in the
//     blocks use_more_bits picks, counting the ffn_down tensors in the same
//     order against n = the number of blocks; elsewhere the base type.
//   - attn_qkv.weight (fused attention, which llama and qwen2 files do not
//     have) is Q5_K in q4_k_m and Q6_K in q5_k_m.
//   - Every other matrix is the base type: Q4_K for q4_k_m, Q5_K for
//     q5_k_m.
//
// Unlike llama-quantize, the single-type schemes (q4_0, q8_0, q4_k, ...)
// do not promote output.weight to Q6_K: they are what llama-quantize
// --pure writes, plus the row-length fallback.
type Scheme struct {
	name     string
	base     gguf.TensorType
	fileType uint32
	mix      bool
	about    string
}

// llama.cpp's llama_ftype values (general.file_type).
const (
	ftypeAllF32  = 0
	ftypeF16     = 1
	ftypeQ4_0    = 2
	ftypeQ4_1    = 3
	ftypeQ8_0    = 7
	ftypeQ5_0    = 8
	ftypeQ5_1    = 9
	ftypeQ4_K_S  = 14
	ftypeQ4_K_M  = 15
	ftypeQ5_K_S  = 16
	ftypeQ5_K_M  = 17
	ftypeQ6_K    = 18
	ftypeBF16    = 32
	qntVersion   = 2 // GGML_QNT_VERSION, general.quantization_version
	superBlock   = 256
	legacyBlock  = 32
	outputName   = "output.weight"
	tokenEmbName = "token_embd.weight"
)

var schemes = []Scheme{
	{"f32", gguf.F32, ftypeAllF32, false, "32-bit floats, exact"},
	{"f16", gguf.F16, ftypeF16, false, "IEEE half, round to nearest even, halves too small to be normal flushed to zero"},
	{"bf16", gguf.BF16, ftypeBF16, false, "bfloat16 (float32's top half), round to nearest even"},
	{"q8_0", gguf.Q8_0, ftypeQ8_0, false, "8.5 bits a weight: blocks of 32 int8 with a half scale"},
	{"q6_k", gguf.Q6_K, ftypeQ6_K, false, "6.56 bits: super-blocks of 256, 6-bit quants, 8-bit scales per 16"},
	{"q5_k", gguf.Q5_K, ftypeQ5_K_S, false, "5.5 bits: super-blocks of 256, 5-bit quants, 6-bit scales and mins per 32"},
	{"q5_1", gguf.Q5_1, ftypeQ5_1, false, "6 bits: blocks of 32, 5-bit quants, half scale and min"},
	{"q5_0", gguf.Q5_0, ftypeQ5_0, false, "5.5 bits: blocks of 32, 5-bit quants, half scale"},
	{"q4_k", gguf.Q4_K, ftypeQ4_K_S, false, "4.5 bits: super-blocks of 256, 4-bit quants, 6-bit scales and mins per 32"},
	{"q4_1", gguf.Q4_1, ftypeQ4_1, false, "5 bits: blocks of 32, 4-bit quants, half scale and min"},
	{"q4_0", gguf.Q4_0, ftypeQ4_0, false, "4.5 bits: blocks of 32, 4-bit quants, half scale"},
	{"q5_k_m", gguf.Q5_K, ftypeQ5_K_M, true, "llama.cpp's Q5_K_M: Q5_K, with Q6_K for the output and some attn_v and ffn_down"},
	{"q4_k_m", gguf.Q4_K, ftypeQ4_K_M, true, "llama.cpp's Q4_K_M: Q4_K, with Q6_K for the output and some attn_v and ffn_down"},
}

// Schemes lists every scheme, from the largest files to the smallest.
func Schemes() []Scheme { return slices.Clone(schemes) }

// SchemeNames returns the names of the schemes, in the order of Schemes.
func SchemeNames() []string {
	names := make([]string, len(schemes))
	for i, s := range schemes {
		names[i] = s.name
	}
	return names
}

// ParseScheme returns the scheme of the given name (case does not matter).
func ParseScheme(name string) (Scheme, error) {
	for _, s := range schemes {
		if strings.EqualFold(s.name, name) {
			return s, nil
		}
	}
	return Scheme{}, fmt.Errorf("unknown type %q; choose one of %s", name, strings.Join(SchemeNames(), ", "))
}

// Uniform returns the scheme that stores every matrix as t.
func Uniform(t gguf.TensorType) (Scheme, error) {
	for _, s := range schemes {
		if s.base == t && !s.mix {
			return s, nil
		}
	}
	return Scheme{}, fmt.Errorf("cannot write tensors of type %v; wisp writes %s", t, storableNames())
}

// Name returns the scheme's name, as --type spells it ("q4_k_m").
func (s Scheme) Name() string { return s.name }

// String returns the name.
func (s Scheme) String() string { return s.name }

// IsZero reports whether s is the zero Scheme, which names no scheme.
func (s Scheme) IsZero() bool { return s.name == "" }

// Base returns the type of most matrices.
func (s Scheme) Base() gguf.TensorType { return s.base }

// Mixture reports whether some matrices get another type than Base by
// their name.
func (s Scheme) Mixture() bool { return s.mix }

// About describes the scheme in a line.
func (s Scheme) About() string { return s.about }

// FileType returns llama.cpp's llama_ftype for the scheme, the value of
// general.file_type. ggml has none for "every matrix Q4_K" or "Q5_K"; those
// get the nearest, LLAMA_FTYPE_MOSTLY_Q4_K_S (14) and Q5_K_S (16).
func (s Scheme) FileType() uint32 { return s.fileType }

// SetFileType sets general.file_type, and general.quantization_version
// for a scheme that quantizes, on a builder.
func (s Scheme) SetFileType(b *gguf.Builder) {
	b.Set("general.file_type", s.fileType)
	if _, q := qtypes[s.base]; q {
		b.Set("general.quantization_version", uint32(qntVersion))
	}
}

// Tensor names a tensor and its dims (ggml's ne, columns first), for Plan.
type Tensor struct {
	Name string
	Dims []uint64
}

// Choice is the type chosen for one tensor.
type Choice struct {
	Type gguf.TensorType // what to store
	// Wanted is the type the scheme's rules chose, before the fallback for
	// rows that are not whole blocks; equal to Type without fallback.
	Wanted gguf.TensorType
	// Rule says why Wanted differs from the scheme's base type, or is "".
	Rule string
}

// Fallback reports whether the row length changed the type.
func (c Choice) Fallback() bool { return c.Type != c.Wanted }

// Plan chooses the type of every tensor of a model, in the order given.
func (s Scheme) Plan(ts []Tensor) []Choice {
	out := make([]Choice, len(ts))
	hasOutput := false
	layers := 0
	for _, t := range ts {
		hasOutput = hasOutput || t.Name == outputName
		if l, ok := layerOf(t.Name); ok {
			layers = max(layers, l+1)
		}
	}
	// llama.cpp counts attn_v and ffn_down tensors in the order of its
	// weights map: by block number (none first), then by name.
	order := make([]int, len(ts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		la, oka := layerOf(ts[a].Name)
		lb, okb := layerOf(ts[b].Name)
		if !oka {
			la = -1
		}
		if !okb {
			lb = -1
		}
		if la != lb {
			return la - lb
		}
		return strings.Compare(ts[a].Name, ts[b].Name)
	})
	nAttnV := 0
	for _, t := range ts {
		if isAttnV(t.Name) {
			nAttnV++
		}
	}
	iAttnV, iFFNDown := 0, 0
	for _, i := range order {
		t := ts[i]
		c := &out[i]
		if len(t.Dims) < 2 {
			*c = Choice{Type: gguf.F32, Wanted: gguf.F32, Rule: "1-D"}
			continue
		}
		want, rule := s.base, ""
		if s.mix {
			switch {
			case t.Name == outputName || (!hasOutput && t.Name == tokenEmbName):
				want, rule = gguf.Q6_K, "output"
				if t.Dims[0]%superBlock != 0 {
					want, rule = gguf.Q8_0, "output, rows not a multiple of 256"
				}
			case strings.Contains(t.Name, "attn_v.weight"):
				if useMoreBits(iAttnV, nAttnV) {
					want, rule = gguf.Q6_K, "attn_v, use_more_bits"
				}
				iAttnV++
			case strings.Contains(t.Name, "ffn_down"):
				if useMoreBits(iFFNDown, layers) {
					want, rule = gguf.Q6_K, "ffn_down, use_more_bits"
				}
				iFFNDown++
			case strings.Contains(t.Name, "attn_qkv.weight"):
				want, rule = gguf.Q5_K, "attn_qkv"
				if s.base == gguf.Q5_K {
					want = gguf.Q6_K
				}
			}
		}
		*c = Choice{Type: fallback(want, t.Dims[0]), Wanted: want, Rule: rule}
	}
	return out
}

// isAttnV reports a tensor llama.cpp counts in n_attention_wv (those of
// its architectures that wisp converts have only attn_v).
func isAttnV(name string) bool {
	return strings.Contains(name, "attn_v.weight") || strings.Contains(name, "attn_qkv.weight") || strings.Contains(name, "attn_kv_b.weight")
}

// useMoreBits is llama.cpp's use_more_bits: the first and last eighth of
// the blocks, and every third block between.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// fallback returns the type llama.cpp stores rows of cols values in when
// they are not whole blocks of t.
func fallback(t gguf.TensorType, cols uint64) gguf.TensorType {
	q, ok := qtypes[t]
	if !ok || cols%uint64(q.BlockLen()) == 0 {
		return t
	}
	switch t {
	case gguf.Q4_K:
		t = gguf.Q5_0
	case gguf.Q5_K:
		t = gguf.Q5_1
	case gguf.Q6_K:
		t = gguf.Q8_0
	}
	if cols%legacyBlock != 0 {
		t = gguf.F16
	}
	return t
}

// layerOf returns N of a name that starts "blk.N.".
func layerOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

package engine_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"testing"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// checkShape is small, with rows of a multiple of 256 so that every
// quantized type fits its matrices.
var checkShape = synth.Shape{Arch: "llama", Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, ContextLen: 128, RopeBase: 10000}

// edited returns a random model of checkShape as a file, after edit has
// changed its metadata and tensors (a tensor whose Data is nil gets zero
// bytes of the size its type and dims need).
func edited(t *testing.T, edit func(f *gguf.File)) []byte {
	t.Helper()
	b, err := synth.Edited(checkShape, synth.Options{Type: gguf.F16, Seed: 3}, edit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setKV sets or adds a key.
func setKV(f *gguf.File, key string, v any) {
	for i := range f.KV {
		if f.KV[i].Key == key {
			f.KV[i].Value = v
			return
		}
	}
	f.KV = append(f.KV, gguf.KV{Key: key, Value: v})
}

// retype gives a tensor another type (and zero data).
func retype(f *gguf.File, name string, typ gguf.TensorType) {
	t, _ := f.Tensor(name)
	t.Type, t.Data = typ, nil
}

// TestCheckHeaderMatchesLoad loads bad models whole and checks them from
// their headers: CheckHeader must give Load's very error, from a prefix
// that holds the header (with the file's size known or not) and from the
// whole file, and must give none where Load gives none.
func TestCheckHeaderMatchesLoad(t *testing.T) {
	cases := []struct {
		name string
		file func(t *testing.T) []byte
		want string // what Load's error must say; "" for a good file
	}{
		{"good", func(t *testing.T) []byte { return edited(t, func(*gguf.File) {}) }, ""},
		{"good-q4k", func(t *testing.T) []byte {
			b, err := synth.Bytes(checkShape, synth.Options{Type: gguf.Q4_K, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, ""},
		{"architecture", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { setKV(f, "general.architecture", "mamba") })
		}, `engine: unsupported architecture "mamba" (wisp runs llama and qwen2)`},
		{"iq2-tensor", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { retype(f, "blk.1.ffn_down.weight", gguf.IQ2_XXS) })
		}, `engine: tensor "blk.1.ffn_down.weight" has type IQ2_XXS; wisp reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K`},
		{"q2k-embedding", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { retype(f, "token_embd.weight", gguf.Q2_K) })
		}, `engine: tensor "token_embd.weight" has type Q2_K`},
		{"i32-norm", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { retype(f, "output_norm.weight", gguf.I32) })
		}, `engine: tensor "output_norm.weight" has type I32`},
		{"quantized-norm", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { retype(f, "blk.0.attn_norm.weight", gguf.Q8_0) })
		}, `engine: tensor "blk.0.attn_norm.weight": a vector of type Q8_0; norms and biases must be F32, F16 or BF16`},
		{"shape", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) {
				w, _ := f.Tensor("blk.0.attn_q.weight")
				w.Dims, w.Data = []uint64{256, 128}, nil
			})
		}, `engine: tensor "blk.0.attn_q.weight" has shape [256 128], want [256 256]`},
		{"missing", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) {
				f.Tensors = slices.DeleteFunc(f.Tensors, func(t gguf.Tensor) bool { return t.Name == "blk.1.ffn_up.weight" })
			})
		}, `engine: tensor "blk.1.ffn_up.weight" is missing`},
		{"vocabulary", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) {
				toks, _ := f.Strings("tokenizer.ggml.tokens")
				setKV(f, "tokenizer.ggml.tokens", toks[:299])
			})
		}, "engine: token_embd.weight has 300 rows but the tokenizer has 299 tokens"},
		{"no-tokenizer", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) {
				f.KV = slices.DeleteFunc(f.KV, func(kv gguf.KV) bool { return kv.Key == "tokenizer.ggml.model" })
			})
		}, `tokenizer: gguf: key "tokenizer.ggml.model": key not found`},
		{"heads", func(t *testing.T) []byte {
			return edited(t, func(f *gguf.File) { setKV(f, "llama.attention.head_count_kv", uint32(3)) })
		}, "engine: head count 4 is not a multiple of the key/value head count 3"},
		{"two-problems", func(t *testing.T) []byte {
			// The first in Load's order is the one named.
			return edited(t, func(f *gguf.File) {
				retype(f, "blk.1.attn_k.weight", gguf.IQ4_XS)
				retype(f, "blk.0.ffn_gate.weight", gguf.TQ1_0)
			})
		}, `engine: tensor "blk.0.ffn_gate.weight" has type TQ1_0`},
		{"data-cut", func(t *testing.T) []byte {
			b := edited(t, func(*gguf.File) {})
			return b[:len(b)-1000]
		}, `run past the end of the file`},
		{"header-cut", func(t *testing.T) []byte {
			b := edited(t, func(*gguf.File) {})
			return b[:3000]
		}, `unexpected EOF`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.file(t)
			_, loadErr := engine.Load(bytes.Clone(full))
			switch {
			case tc.want == "" && loadErr != nil:
				t.Fatalf("Load: %v", loadErr)
			case tc.want != "" && (loadErr == nil || !bytes.Contains([]byte(loadErr.Error()), []byte(tc.want))):
				t.Fatalf("Load = %v, want an error saying %q", loadErr, tc.want)
			}
			// The header alone, or the whole file: the end of the tensor
			// infos, wherever that is, lies before DataOffset.
			hdrLen := len(full)
			if h, err := gguf.ParseHeader(full); err == nil {
				hdrLen = int(h.DataOffset)
			}
			for _, p := range []struct {
				n    int
				size int64
			}{{hdrLen, int64(len(full))}, {len(full), int64(len(full))}, {hdrLen, -1}} {
				h, err := engine.CheckHeader(full[:p.n], p.size)
				if p.size < 0 && tc.name == "data-cut" {
					// Without the size, the header is fine.
					if err != nil {
						t.Errorf("CheckHeader(%d bytes, size unknown) = %v", p.n, err)
					}
					continue
				}
				if p.size < 0 && tc.name == "header-cut" {
					// Without the size, the end of the bytes may not be
					// the end of the file.
					if _, more := engine.MoreBytes(err, p.n, p.size); !more {
						t.Errorf("CheckHeader(%d bytes, size unknown) = %v, want a request for more", p.n, err)
					}
					continue
				}
				if _, more := engine.MoreBytes(err, p.n, p.size); more {
					t.Errorf("CheckHeader(%d bytes of %d) asks for more: %v", p.n, p.size, err)
				}
				if (err == nil) != (loadErr == nil) || (err != nil && err.Error() != loadErr.Error()) {
					t.Errorf("CheckHeader(%d bytes of %d) = %v\nLoad = %v", p.n, p.size, err, loadErr)
				}
				if err == nil && loadErr == nil {
					m, _ := engine.Load(bytes.Clone(full))
					if !reflect.DeepEqual(h.Config, m.Config) || h.VocabSize != checkShape.Vocab {
						t.Errorf("CheckHeader's config %+v, Load's %+v", h.Config, m.Config)
					}
					if h.StateBytes(64) != m.StateBytes(64) {
						t.Errorf("StateBytes(64) = %d from the header, %d from the model", h.StateBytes(64), m.StateBytes(64))
					}
					if p.size >= 0 && h.Size != uint64(p.size) || p.size < 0 && h.Size != h.File.DataEnd() {
						t.Errorf("Size %d, file %d", h.Size, len(full))
					}
				}
			}
		})
	}
}

// TestCheckHeaderPrefixes follows MoreBytes from a prefix of 16 bytes of
// the default model, as the page does, and refuses a prefix longer than
// the file.
func TestCheckHeaderPrefixes(t *testing.T) {
	full, err := os.ReadFile("../models/default.gguf")
	if err != nil {
		t.Skip(err)
	}
	size := int64(len(full))
	n, steps := 16, 0
	for {
		h, err := engine.CheckHeader(full[:n], size)
		if err == nil {
			if h.Arch != "llama" || h.Size != uint64(size) {
				t.Errorf("header %+v", h)
			}
			break
		}
		need, more := engine.MoreBytes(err, n, size)
		if !more || need <= uint64(n) || !errors.Is(err, gguf.ErrShortHeader) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix of %d bytes: %v (more %v, need %d)", n, err, more, need)
		}
		n = max(int(need), 2*n) // grow geometrically, as the page does
		steps++
	}
	t.Logf("header read from a prefix of %d bytes after %d steps", n, steps)
	if _, err := engine.CheckHeader(full[:100], 50); err == nil {
		t.Error("a prefix longer than the file was accepted")
	}
	// A file that ends inside its header: the whole file gives the error,
	// and it asks for nothing more.
	cut := full[:4000]
	_, err = engine.CheckHeader(cut, int64(len(cut)))
	_, loadErr := engine.Load(bytes.Clone(cut))
	if _, more := engine.MoreBytes(err, len(cut), int64(len(cut))); more || err == nil || loadErr == nil || err.Error() != loadErr.Error() {
		t.Errorf("a file cut in its header: CheckHeader %v (more %v), Load %v", err, more, loadErr)
	}
	_, err = engine.CheckHeader(cut[:100], int64(len(cut)))
	if need, more := engine.MoreBytes(err, 100, int64(len(cut))); !more || need > uint64(len(cut)) {
		t.Errorf("a prefix of a file cut in its header: need %d (more %v)", need, more)
	}
}

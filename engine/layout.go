package engine

import "fmt"

// A Role is what a tensor of a llama-family model holds.
type Role int

// The roles, in the order Tensors lists them within a model and a block.
const (
	RoleEmbedding  Role = iota // token_embd.weight: a row per token
	RoleAttnNorm               // blk.N.attn_norm.weight
	RoleQ                      // blk.N.attn_q.weight
	RoleK                      // blk.N.attn_k.weight
	RoleV                      // blk.N.attn_v.weight
	RoleQBias                  // blk.N.attn_q.bias (QKVBias)
	RoleKBias                  // blk.N.attn_k.bias (QKVBias)
	RoleVBias                  // blk.N.attn_v.bias (QKVBias)
	RoleAttnOutput             // blk.N.attn_output.weight
	RoleFFNNorm                // blk.N.ffn_norm.weight
	RoleGate                   // blk.N.ffn_gate.weight
	RoleUp                     // blk.N.ffn_up.weight
	RoleDown                   // blk.N.ffn_down.weight
	RoleOutputNorm             // output_norm.weight
	RoleOutput                 // output.weight, absent when tied to the embedding
)

// names are the roles' GGUF names, without a block's "blk.N." prefix.
var names = [...]string{
	RoleEmbedding: "token_embd.weight", RoleAttnNorm: "attn_norm.weight",
	RoleQ: "attn_q.weight", RoleK: "attn_k.weight", RoleV: "attn_v.weight",
	RoleQBias: "attn_q.bias", RoleKBias: "attn_k.bias", RoleVBias: "attn_v.bias",
	RoleAttnOutput: "attn_output.weight", RoleFFNNorm: "ffn_norm.weight",
	RoleGate: "ffn_gate.weight", RoleUp: "ffn_up.weight", RoleDown: "ffn_down.weight",
	RoleOutputNorm: "output_norm.weight", RoleOutput: "output.weight",
}

// String returns the role's GGUF name, without a block's prefix.
func (r Role) String() string {
	if r < 0 || int(r) >= len(names) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return names[r]
}

// InBlock reports whether the role's tensors belong to a block ("blk.N.").
func (r Role) InBlock() bool { return r >= RoleAttnNorm && r <= RoleDown }

// Vector reports whether the role's tensors are vectors (norms, biases).
func (r Role) Vector() bool {
	switch r {
	case RoleAttnNorm, RoleQBias, RoleKBias, RoleVBias, RoleFFNNorm, RoleOutputNorm:
		return true
	}
	return false
}

// TensorName returns the GGUF name of the tensor of role r in block layer
// (ignored for a role outside blocks).
func TensorName(r Role, layer int) string {
	if r.InBlock() {
		return fmt.Sprintf("blk.%d.%s", layer, r)
	}
	return r.String()
}

// A TensorSpec is one tensor of a model's file: its GGUF name, what it
// holds, its block (-1 outside blocks), and its shape: Rows × Cols for a
// matrix (row-major, a row of Cols values per output), Rows 0 for a vector
// of Cols values.
type TensorSpec struct {
	Name       string
	Role       Role
	Layer      int
	Rows, Cols int
}

// Dims returns the spec's shape as GGUF writes it: [Cols] for a vector,
// [Cols, Rows] for a matrix.
func (s TensorSpec) Dims() []uint64 {
	if s.Rows == 0 {
		return []uint64{uint64(s.Cols)}
	}
	return []uint64{uint64(s.Cols), uint64(s.Rows)}
}

// Size returns the number of values the tensor holds.
func (s TensorSpec) Size() int { return max(s.Rows, 1) * s.Cols }

// Tensors lists the tensors of a model of this configuration, in the
// order wisp writes them (llama.cpp's): the embedding (VocabSize rows);
// each block's attention norm, Q, K, V (and their biases with QKVBias),
// attention output, FFN norm, gate, up and down, of the block's widths;
// the output norm; and the output matrix unless tied to the embedding.
// Every writer of a model (convert, synth, train, prune) lists its
// tensors from here, and Load reads these names and shapes.
func (c *Config) Tensors(tied bool) []TensorSpec {
	var ts []TensorSpec
	add := func(r Role, layer, rows, cols int) {
		ts = append(ts, TensorSpec{Name: TensorName(r, layer), Role: r, Layer: layer, Rows: rows, Cols: cols})
	}
	add(RoleEmbedding, -1, c.VocabSize, c.Dim)
	for l := range c.Layers {
		q, kv, h := c.QDimOf(l), c.KVDimOf(l), c.HiddenOf(l)
		add(RoleAttnNorm, l, 0, c.Dim)
		add(RoleQ, l, q, c.Dim)
		add(RoleK, l, kv, c.Dim)
		add(RoleV, l, kv, c.Dim)
		if c.QKVBias {
			add(RoleQBias, l, 0, q)
			add(RoleKBias, l, 0, kv)
			add(RoleVBias, l, 0, kv)
		}
		add(RoleAttnOutput, l, c.Dim, q)
		add(RoleFFNNorm, l, 0, c.Dim)
		add(RoleGate, l, h, c.Dim)
		add(RoleUp, l, h, c.Dim)
		add(RoleDown, l, c.Dim, h)
	}
	add(RoleOutputNorm, -1, 0, c.Dim)
	if !tied {
		add(RoleOutput, -1, c.VocabSize, c.Dim)
	}
	return ts
}

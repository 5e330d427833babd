package engine

// A Probe is a point in a block of the forward pass where an Observer sees
// the activations.
type Probe uint8

// The probes of a block, in the order the forward pass reaches them. Each
// names the width of the rows the Observer sees.
const (
	// BlockInput is the residual stream entering the block (Dim).
	BlockInput Probe = iota
	// AttnInput is the input of Wq, Wk and Wv: the stream after the
	// attention norm (Dim).
	AttnInput
	// AttnOutput is the input of Wo: the heads' outputs (QDimOf(layer)).
	AttnOutput
	// FFNInput is the input of the gate and up matrices: the stream after
	// the feed-forward norm (Dim).
	FFNInput
	// FFNHidden is the input of the down matrix: silu(gate)·up
	// (HiddenOf(layer)).
	FFNHidden
	// BlockOutput is the residual stream leaving the block (Dim).
	BlockOutput
)

// String returns the probe's name.
func (p Probe) String() string {
	switch p {
	case BlockInput:
		return "BlockInput"
	case AttnInput:
		return "AttnInput"
	case AttnOutput:
		return "AttnOutput"
	case FFNInput:
		return "FFNInput"
	case FFNHidden:
		return "FFNHidden"
	case BlockOutput:
		return "BlockOutput"
	}
	return "Probe(?)"
}

// An Observer sees the activations of every token a State evaluates, at
// each probe of each block: x holds n rows (one per token, in order) of
// the probe's width. x is the State's own scratch, valid only during the
// call; an Observer must not change it, and copies what it keeps. Pruning
// measures its calibration statistics this way (tools/prune).
type Observer interface {
	Observe(layer int, at Probe, x []float32, n int)
}

// Observe makes the State show o the activations of every token it
// evaluates from now on (nil stops it). Observing does not change what
// the State computes.
func (s *State) Observe(o Observer) { s.obs = o }

// observe shows the first n rows of width w of x to the Observer, if any.
func (s *State) observe(layer int, at Probe, x []float32, n, w int) {
	if s.obs != nil {
		s.obs.Observe(layer, at, x[:n*w], n)
	}
}

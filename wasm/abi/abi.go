// Package abi holds the data that crosses the boundary of wisp's WebAssembly
// module (wisp/wasm/module): its status codes and the JSON documents it reads
// and writes. The module and its hosts (wisp/wasm/host, the site's
// JavaScript) share these definitions; the functions themselves are
// documented in wisp/wasm/module.
package abi

// Version is the ABI version that the module's wisp_abi_version export
// returns. It changes whenever an export changes meaning.
const Version = 2

// Status codes returned by the module's exports. Zero and positive values
// mean success; a negative value is an error whose text wisp_error_ptr and
// wisp_error_len give.
const (
	// StatusOK is success.
	StatusOK = 0
	// StatusDone is wisp_step's success when generation has ended.
	StatusDone = 1
	// StatusFailed is an error from the engine: a corrupt model, a prompt
	// longer than the context, invalid UTF-8, invalid options.
	StatusFailed = -1
	// StatusUsage is a call in the wrong order or with arguments that do
	// not name memory the module handed out.
	StatusUsage = -2
	// StatusMemory is a request that does not fit in the module's memory.
	StatusMemory = -3
	// StatusPanic is an internal error of the module, recovered.
	StatusPanic = -4
)

// Options are the sampling and generation options that wisp_options reads
// as JSON. The zero value (and the empty document) samples greedily over the
// model's whole context until an end token. Fields mirror
// engine.SessionOptions and sample.Options.
type Options struct {
	// Context is the number of positions a session holds; 0 means the
	// model's context length.
	Context int `json:"context,omitempty"`
	// Temperature divides the logits; 0 picks the most likely token.
	Temperature float32 `json:"temperature,omitempty"`
	// TopK keeps only the K most likely tokens; 0 keeps all.
	TopK int `json:"topK,omitempty"`
	// TopP keeps the most likely tokens up to this total probability; 0 or
	// 1 keeps all.
	TopP float32 `json:"topP,omitempty"`
	// MinP drops tokens less likely than MinP times the most likely one.
	MinP float32 `json:"minP,omitempty"`
	// RepeatPenalty penalises tokens seen in the last RepeatLastN tokens;
	// 0 or 1 is none.
	RepeatPenalty float32 `json:"repeatPenalty,omitempty"`
	// RepeatLastN is how many recent tokens the penalty looks at; 0 means
	// 64.
	RepeatLastN int `json:"repeatLastN,omitempty"`
	// Seed seeds the sampler's random numbers; 0 is the same as 1. (In
	// JavaScript, seeds above 2^53 lose precision.)
	Seed uint64 `json:"seed,omitempty"`
	// MaxTokens is how many tokens wisp_step may generate after the
	// prompt; 0 means until the context is full.
	MaxTokens int `json:"maxTokens,omitempty"`
	// Stop lists strings that end generation; the text is cut before them.
	Stop []string `json:"stop,omitempty"`
}

// Info describes a loaded model; wisp_info_ptr and wisp_info_len give it as
// JSON. In a model whose blocks differ in width (pruned per layer),
// HiddenDim, Heads and KVHeads are the largest over the blocks.
type Info struct {
	Architecture  string `json:"architecture"`  // "llama" or "qwen2"
	Name          string `json:"name"`          // general.name, if any
	Params        int64  `json:"params"`        // parameters, a tied output counted once
	FileSize      int64  `json:"fileSize"`      // bytes of the GGUF file
	ContextLength int    `json:"contextLength"` // positions the model was trained for
	VocabSize     int    `json:"vocabSize"`     // tokens, and logits per step
	Dim           int    `json:"dim"`           // embedding length
	HiddenDim     int    `json:"hiddenDim"`     // feed-forward length (the largest over blocks)
	Layers        int    `json:"layers"`        // transformer blocks
	Heads         int    `json:"heads"`         // attention heads (the largest over blocks)
	KVHeads       int    `json:"kvHeads"`       // key/value heads (the largest over blocks)
	HeadDim       int    `json:"headDim"`       // values per head
	F16           bool   `json:"f16"`           // whether the token embeddings are half precision
	// TensorTypes counts the file's tensors by type, such as {"Q4_K": 12,
	// "Q6_K": 3, "F32": 9}.
	TensorTypes map[string]int `json:"tensorTypes"`
	Flushed     int            `json:"flushed"` // subnormal halves set to zero at load
	BOS         int            `json:"bos"`     // the beginning-of-sequence token, or -1
	EOS         int            `json:"eos"`     // the end-of-sequence token, or -1
	Kernels     string         `json:"kernels"` // "wasm-simd128", or "go" in a purego build
}

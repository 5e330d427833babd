// Package abi is the one table of wisp's WebAssembly module's interface
// (wisp/wasm/module): its version, its exports with their wasm signatures,
// its status codes and the JSON documents it writes (the options it reads
// are wisp/engine/option.Options). The module and the wazero host
// (wisp/wasm/host) use these definitions, site/abi.js and abi.d.ts are
// generated from them for the page (internal/jsgen), and tests hold the module's exports, its doc.go and
// site/engine.js to them; the functions themselves are documented in
// wisp/wasm/module.
package abi

//go:generate go run ./internal/writejs ../../site

// Version is the ABI version that the module's wisp_abi_version export
// returns. It changes whenever an export changes meaning, or the JSON of
// Info or of the options (wisp/engine/option.Options) changes.
const Version = 3

// SharedMemory is the memory that the threaded build of the engine
// module (site/wasm/wisp-shared.wasm) and of its kernels
// (kernels-shared.wasm) import, shared, instead of the engine's own: from
// Module.Name, starting at MinPages and growing to MaxPages pages of 64
// KiB (see wisp/wasm/sharedmem). A host creates it with these limits.
var SharedMemory = struct {
	Module, Name       string
	MinPages, MaxPages uint32
}{"env", "memory", 256, 65536}

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

// Statuses names every status code, for site/abi.js's Status (a test
// checks that it lists every Status constant).
var Statuses = []struct {
	Name string
	Code int32
}{
	{"OK", StatusOK}, {"DONE", StatusDone},
	{"FAILED", StatusFailed}, {"USAGE", StatusUsage}, {"MEMORY", StatusMemory}, {"PANIC", StatusPanic},
}

// An Export is one function of the module: its name, and the wasm types of
// its parameters and result.
type Export struct {
	Name   string
	Params []string // "i32" or "i64" each
	Result string
}

// Exports lists the module's functions, which wisp/wasm/module's exports.go
// defines and its doc.go documents (tests compare the three and the names
// site/engine.js calls); the wazero host and site/abi.js take the names
// from here.
var Exports = []Export{
	{"wisp_abi_version", nil, i32},
	{"wisp_alloc", []string{i32}, i32},
	{"wisp_free", []string{i32}, i32},
	{"wisp_memory_limit", []string{i32}, i32},
	{"wisp_error_status", nil, i32},
	{"wisp_error_ptr", nil, i32},
	{"wisp_error_len", nil, i32},

	{"wisp_check", []string{i32, i32, i64}, i32},
	{"wisp_load", []string{i32, i32}, i32},
	{"wisp_unload", nil, i32},
	{"wisp_info_ptr", nil, i32},
	{"wisp_info_len", nil, i32},
	{"wisp_vocab_size", nil, i32},
	{"wisp_tokenize", []string{i32, i32, i32}, i32},
	{"wisp_tokens_ptr", nil, i32},
	{"wisp_tokens_len", nil, i32},

	{"wisp_options", []string{i32, i32}, i32},
	{"wisp_prompt", []string{i32, i32}, i32},
	{"wisp_prompt_tokens", []string{i32, i32}, i32},
	{"wisp_step", nil, i32},
	{"wisp_piece_ptr", nil, i32},
	{"wisp_piece_len", nil, i32},
	{"wisp_token", nil, i32},
	{"wisp_done_ptr", nil, i32},
	{"wisp_done_len", nil, i32},
	{"wisp_logits_ptr", nil, i32},

	{"wisp_detokenize", []string{i32, i32}, i32},
	{"wisp_text_ptr", nil, i32},
	{"wisp_text_len", nil, i32},
	{"wisp_chat", []string{i32, i32}, i32},
	{"wisp_reused", nil, i32},
	{"wisp_reset", nil, i32},
}

const i32, i64 = "i32", "i64"

// ChatRequest is what wisp_chat reads as JSON: a conversation to render
// with the model's chat template into prompt tokens.
type ChatRequest struct {
	Messages []Message `json:"messages"`
	// AddGenerationPrompt ends the prompt with the start of the
	// assistant's reply.
	AddGenerationPrompt bool `json:"addGenerationPrompt,omitempty"`
	// Overflow says what a conversation that does not fit in the context
	// gets: "error" (the default, "" too) or "drop-oldest" (see
	// wisp/engine/chat.OverflowDropOldest).
	Overflow string `json:"overflow,omitempty"`
}

// Message is one message of a ChatRequest.
type Message struct {
	Role    string `json:"role"` // "system", "user", "assistant" or "tool"
	Content string `json:"content"`
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

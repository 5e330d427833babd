package main

import (
	"unsafe"

	"wisp/wasm/abi"
)

// The exports: thin wrappers around the state's methods (see doc.go for the
// ABI). Addresses and lengths are uint32 in Go and i32 in wasm.

//go:wasmexport wisp_abi_version
func wispABIVersion() int32 { return abi.Version }

//go:wasmexport wisp_alloc
func wispAlloc(size uint32) uint32 {
	var a uint32
	inst.run("wisp_alloc", func() (int32, error) {
		var err error
		a, err = inst.alloc(size)
		return ok(err)
	})
	return a
}

//go:wasmexport wisp_memory_limit
func wispMemoryLimit(mib uint32) int32 {
	return inst.run("wisp_memory_limit", func() (int32, error) { return ok(inst.setLimitMiB(mib)) })
}

//go:wasmexport wisp_free
func wispFree(addr uint32) int32 {
	return inst.run("wisp_free", func() (int32, error) { return ok(inst.free(addr)) })
}

//go:wasmexport wisp_error_status
func wispErrorStatus() int32 { return inst.errStatus }

//go:wasmexport wisp_error_ptr
func wispErrorPtr() uint32 { return strPtr(inst.errText) }

//go:wasmexport wisp_error_len
func wispErrorLen() uint32 { return uint32(len(inst.errText)) }

//go:wasmexport wisp_load
func wispLoad(addr, n uint32) int32 {
	return inst.run("wisp_load", func() (int32, error) { return ok(inst.load(addr, n)) })
}

//go:wasmexport wisp_check
func wispCheck(addr, n uint32, size int64) int32 {
	return inst.run("wisp_check", func() (int32, error) { return inst.check(addr, n, size) })
}

//go:wasmexport wisp_unload
func wispUnload() int32 {
	return inst.run("wisp_unload", func() (int32, error) { inst.unload(); return ok(nil) })
}

//go:wasmexport wisp_info_ptr
func wispInfoPtr() uint32 { return bytesPtr(inst.info) }

//go:wasmexport wisp_info_len
func wispInfoLen() uint32 { return uint32(len(inst.info)) }

//go:wasmexport wisp_vocab_size
func wispVocabSize() int32 {
	if inst.model == nil {
		return 0
	}
	return int32(inst.model.VocabSize)
}

//go:wasmexport wisp_tokenize
func wispTokenize(addr, n uint32, bos int32) int32 {
	return inst.run("wisp_tokenize", func() (int32, error) { return ok(inst.tokenize(addr, n, bos != 0)) })
}

//go:wasmexport wisp_tokens_ptr
func wispTokensPtr() uint32 {
	if len(inst.tokens) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&inst.tokens[0])))
}

//go:wasmexport wisp_tokens_len
func wispTokensLen() uint32 { return uint32(len(inst.tokens)) }

//go:wasmexport wisp_options
func wispOptions(addr, n uint32) int32 {
	return inst.run("wisp_options", func() (int32, error) { return ok(inst.setOptions(addr, n)) })
}

//go:wasmexport wisp_prompt
func wispPrompt(addr, n uint32) int32 {
	return inst.run("wisp_prompt", func() (int32, error) { return ok(inst.prompt(addr, n)) })
}

//go:wasmexport wisp_prompt_tokens
func wispPromptTokens(addr, n uint32) int32 {
	return inst.run("wisp_prompt_tokens", func() (int32, error) { return ok(inst.promptTokens(addr, n)) })
}

//go:wasmexport wisp_step
func wispStep() int32 { return inst.run("wisp_step", inst.step) }

//go:wasmexport wisp_piece_ptr
func wispPiecePtr() uint32 { return strPtr(inst.piece) }

//go:wasmexport wisp_piece_len
func wispPieceLen() uint32 { return uint32(len(inst.piece)) }

//go:wasmexport wisp_token
func wispToken() int32 { return inst.token }

//go:wasmexport wisp_done_ptr
func wispDonePtr() uint32 { return strPtr(inst.done()) }

//go:wasmexport wisp_done_len
func wispDoneLen() uint32 { return uint32(len(inst.done())) }

//go:wasmexport wisp_logits_ptr
func wispLogitsPtr() uint32 {
	l := inst.logits()
	if len(l) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&l[0])))
}

//go:wasmexport wisp_detokenize
func wispDetokenize(addr, n uint32) int32 {
	return inst.run("wisp_detokenize", func() (int32, error) { return ok(inst.detokenize(addr, n)) })
}

//go:wasmexport wisp_text_ptr
func wispTextPtr() uint32 { return strPtr(inst.detok) }

//go:wasmexport wisp_text_len
func wispTextLen() uint32 { return uint32(len(inst.detok)) }

//go:wasmexport wisp_chat
func wispChat(addr, n uint32) int32 {
	return inst.run("wisp_chat", func() (int32, error) { return inst.chat(addr, n) })
}

//go:wasmexport wisp_reused
func wispReused() int32 {
	if inst.sess == nil {
		return 0
	}
	return int32(inst.sess.Reused())
}

//go:wasmexport wisp_reset
func wispReset() int32 {
	return inst.run("wisp_reset", func() (int32, error) { inst.endSession(); return ok(nil) })
}

// strPtr returns the address of a string's bytes, or 0 when it is empty.
func strPtr(s string) uint32 {
	if s == "" {
		return 0
	}
	return addr(unsafe.StringData(s))
}

// bytesPtr returns the address of a slice's bytes, or 0 when it is empty.
func bytesPtr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return addr(&b[0])
}

// Command module is wisp's engine as a WebAssembly reactor: the module that
// runs in browsers and in wazero. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o wisp.wasm ./wasm/module
//
// (wisp/wasm/host.BuildModule does exactly this). On other targets it builds
// to a program that does nothing.
//
// # Instantiation
//
// The module imports WASI preview1 (only clock_time_get, random_get,
// args_sizes_get, environ_sizes_get and fd_write are called) and, unless
// built with the purego tag, the kernels of module "simd" (see
// wisp/simd.ForwardWasm and wisp/simd.KernelsWasm). Instantiate it under the
// name "engine" without running start functions, instantiate the kernel
// module against its exported "memory", then call "_initialize" once before
// any other export.
//
// Memory grows during most calls: take views of "memory" again after every
// call. Addresses are unsigned: read every i32 that holds an address or a
// length as uint32.
//
// # Conventions
//
// One instance holds at most one model and at most one session. Every
// export that acts returns an i32 status: 0 (abi.StatusOK) or, for
// wisp_step only, 1 (abi.StatusDone) on success (wisp_check may return a
// byte count above 1 instead), a negative abi.Status* code on error. Such an export first clears the error, and on error sets
// it: wisp_error_ptr and wisp_error_len give its UTF-8 text,
// wisp_error_status its status (useful after wisp_alloc, which returns an
// address). No export traps on bad input; internal panics are recovered
// and reported as abi.StatusPanic. Requests for memory (buffers, the
// key/value cache of a session) are checked against the memory limit and
// refused with abi.StatusMemory; memory exhausted nonetheless is a fatal
// error of the Go runtime, which traps (unreachable) after writing
// "fatal error: out of memory" to stderr, and leaves the instance unusable.
//
// Text and token ids go in through buffers from wisp_alloc: the host
// allocates, writes, calls, and frees. An (addr, len) pair must lie inside
// one live buffer, except that len 0 needs no buffer (addr is ignored).
// Outputs are read through ptr/len accessors; what they point to stays
// valid until the next call of an export that acts.
//
// # Exports
//
// wisp/wasm/abi.Exports lists them with their wasm signatures; the host
// and the page take their names from there, and a test compares this list,
// abi.Exports and the module's exports.
//
// Memory:
//
//	wisp_abi_version() i32               abi.Version
//	wisp_alloc(size i32) i32             a buffer of size bytes, zeroed; 0 on failure (see the error)
//	wisp_free(addr i32) i32              frees the buffer that starts at addr
//	wisp_memory_limit(mib i32) i32       the memory the host lets the instance grow to,
//	                                     in MiB (default and at most 4096)
//	wisp_error_status() i32              the status of the last failure, 0 after a success
//	wisp_error_ptr() i32, wisp_error_len() i32
//
// Model:
//
//	wisp_check(addr, len i32, size i64) i32   checks the first len bytes of a GGUF file of size
//	                                     bytes (-1: unknown) as wisp_load would: 0 if it can load,
//	                                     N > 1 if the header runs past them (pass at least N bytes)
//	wisp_load(addr, len i32) i32         loads the GGUF file in [addr, addr+len) of a buffer
//	wisp_unload() i32                    drops the model, its session and its buffer
//	wisp_info_ptr() i32, wisp_info_len() i32   abi.Info as JSON ("" with no model)
//	wisp_vocab_size() i32                tokens in the vocabulary (0 with no model)
//	wisp_tokenize(addr, len, bos i32) i32      encodes UTF-8 text; with bos != 0 it adds BOS
//	                                     when the model asks for it, as a prompt does
//	wisp_tokens_ptr() i32, wisp_tokens_len() i32   the ids, as little-endian int32s (len counts ids)
//	wisp_detokenize(addr, n i32) i32     decodes n little-endian int32 ids (control tokens print nothing)
//	wisp_text_ptr() i32, wisp_text_len() i32       the text of the last wisp_detokenize
//
// wisp_check lets a host refuse a model before it fetches the whole file:
// with the header in hand (64 KiB is enough for most; a large vocabulary
// takes megabytes), it gives the error wisp_load would give for the file,
// byte for byte, from the architecture, the tokenizer, every tensor's
// type and shape, the size (whether size bytes hold every tensor) and the
// memory (whether the file and a session of 256 positions, or the model's
// whole context if shorter, fit: wisp_load refuses a model that does not,
// with the same error). A positive result N is no error: the bytes end
// inside the header, whose end is at least N bytes into the file (N is at
// most 2^31-1 and never more than size); call again with more. With len
// equal to size the bytes are the whole file and a header cut short is an
// error. The buffer stays the host's.
//
// wisp_load keeps no copy: the weights stay views into the buffer, which
// the model owns from a successful wisp_load on (the host must neither
// write nor free it; wisp_unload releases it). Loading flushes subnormal
// half-precision weights to zero in place, so after a failed load the
// buffer, still the host's, may have changed. Only one model may be loaded.
//
// Generation:
//
//	wisp_options(addr, len i32) i32      wisp/engine/option.Options as JSON, for the next prompts (len 0 resets)
//	wisp_prompt(addr, len i32) i32       a new generation: tokenizes the text (with BOS) and evaluates it
//	wisp_prompt_tokens(addr, n i32) i32  the same with n little-endian int32 ids at addr
//	wisp_step() i32                      samples one token: 0 goes on, 1 is the end
//	wisp_piece_ptr() i32, wisp_piece_len() i32   the text of the last prompt (its echo) or step
//	wisp_token() i32                     the token the last step sampled, or -1
//	wisp_done_ptr() i32, wisp_done_len() i32     why generation ended: "eos", "stop",
//	                                     "length", "context" ("" while it goes on)
//	wisp_logits_ptr() i32                the vocab_size float32 logits the last token was
//	                                     (or the next will be) sampled from; 0 before a prompt
//	wisp_reused() i32                    how many tokens of the last prompt were already in the cache
//	wisp_reset() i32                     drops the session and its cache
//
// Chat:
//
//	wisp_chat(addr, len i32) i32         renders the abi.ChatRequest (JSON) in [addr, addr+len) with
//	                                     the model's chat template into prompt tokens, read through
//	                                     wisp_tokens_ptr and wisp_tokens_len; returns how many of its
//	                                     messages it dropped (N >= 0) to fit the context
//
// The session outlives a generation: a prompt whose options ask for the
// session's context keeps the key/value cache of the longest common prefix
// of the tokens the session has evaluated and its own, and evaluates only
// the rest (at least its last token); its sampler, stop strings and
// counters start again (wisp/engine.Session.Reprompt). The echo, the
// logits and the text are those of a new session, bit for bit. A prompt
// that asks for another context, or fails, starts from a new session.
//
// wisp_chat renders with the GGUF's tokenizer.chat_template, or ChatML for
// a model without one (wisp/engine/chat.ChatML), and tokenizes the
// template's text with control tokens recognised and the messages' text
// as plain text: a user who types "<|im_end|>" gets those characters, never
// the control token. BOS comes first when the model asks for one and the
// template wrote none. Roles are system, user, assistant and tool. The
// conversation must leave room in the context of the options (wisp_options
// first) for the reply: MaxTokens positions, at most half the context
// (wisp/engine/chat.Reserve). When it does not, overflow "error" (the
// default) fails with the numbers, and "drop-oldest" drops the oldest turns
// after the leading system messages until it fits.
//
// The echo is the prompt as the model prints it (BOS hidden, the space after
// it stripped). A step's piece may be empty (an incomplete UTF-8 sequence,
// text held back because it may begin a stop string); the final step
// (status 1) may still carry text. Stepping after the end returns 1 again
// with an empty piece. The logits are those the sampler saw: unchanged for
// greedy sampling without a repeat penalty.
package main

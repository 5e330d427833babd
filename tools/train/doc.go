// Package train trains Llama-family models on the CPU, for the engine to
// run: from scratch on a token stream, or by distillation from a teacher.
//
// The model is exactly the engine's architecture "llama": token embedding;
// per block RMSNorm, q/k/v projections, RoPE on adjacent pairs, causal
// grouped-query attention, output projection and residual, then RMSNorm,
// SwiGLU feed-forward and residual; final RMSNorm; a classifier tied to
// the embedding or not. Heads may have a size of their own (a pruned
// model's). A Model holds every weight as float32 in one vector, in the
// order and with the names of its GGUF file, which Model.Builder writes and
// FromGGUF reads (F32 or F16).
//
// The forward and backward passes are written by hand in the style of
// llama2.c's train_gpt2.c: the forward pass keeps the activations the
// backward pass needs. Both are generic over the float type: training runs
// them in float32 with the matrix kernels of package simd, and the tests
// run the same code in float64 to check every gradient against finite
// differences. Work is spread over goroutines so that each value is
// computed by one task in a fixed order: results do not depend on the
// number of threads, to the bit.
//
// A Trainer takes optimizer steps: each step averages the gradient of the
// next-token cross-entropy over Accum micro-batches of Batch random windows
// of the token stream (each window starts with BOS, as generation does),
// clips it by global norm and applies AdamW (decoupled weight decay on
// matrices only) with a learning rate warming up linearly then decaying
// along a cosine to a floor. Given a Teacher, the loss mixes the
// temperature-softened KL divergence from the teacher's distribution with
// the cross-entropy. Evaluate scores held-out tokens.
//
// Checkpoint and Resume save and restore everything a run depends on
// (weights, Adam moments, step, the state of the window sampler, the
// options, a hash of the token stream) in a GGUF file that is also a
// loadable model, so that a resumed run gives the same losses and weights,
// to the bit, as one never interrupted.
package train

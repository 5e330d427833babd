// llama.h: the part of llama.cpp's and ggml's C interface that oracle.c and
// tools/bench/csrc/llamabench.c both call, declared by hand (no headers ship
// with the prebuilt libraries of npm's @node-llama-cpp/linux-x64@3.22.1,
// llama.cpp release v0.5.0; see oracle.c for how the layouts were checked).

#ifndef WISP_LLAMA_H
#define WISP_LLAMA_H

#include <stdint.h>

enum ggml_log_level { GGML_LOG_LEVEL_NONE = 0 };
typedef void (*ggml_log_callback)(enum ggml_log_level level, const char *text, void *user_data);
void ggml_backend_load_all_from_path(const char *dir_path);
void ggml_log_set(ggml_log_callback log_callback, void *user_data);

typedef int32_t llama_token;
struct llama_model;
struct llama_context;
struct llama_vocab;

// The parameter structs, as opaque bytes of this build's sizes (the
// highest offset each *_default_params() writes, rounded up to 8):
// llama_model_params 80 bytes, llama_context_params 160. Only fields whose
// offsets were checked in this build's disassembly are changed, after the
// library's own defaults fill them.
struct llama_model_params {
	_Alignas(8) unsigned char b[80];
};
struct llama_context_params {
	_Alignas(8) unsigned char b[160];
};

// llama_batch has kept this layout since llama.cpp introduced it.
struct llama_batch {
	int32_t n_tokens;
	llama_token *token;
	float *embd;
	int32_t *pos;
	int32_t *n_seq_id;
	int32_t **seq_id;
	int8_t *logits;
};

void llama_backend_init(void);
void llama_log_set(ggml_log_callback log_callback, void *user_data);
struct llama_model_params llama_model_default_params(void);
struct llama_context_params llama_context_default_params(void);
struct llama_model *llama_model_load_from_file(const char *path_model, struct llama_model_params params);
void llama_model_free(struct llama_model *model);
struct llama_context *llama_init_from_model(struct llama_model *model, struct llama_context_params params);
void llama_free(struct llama_context *ctx);
void llama_set_n_threads(struct llama_context *ctx, int32_t n_threads, int32_t n_threads_batch);
const struct llama_vocab *llama_model_get_vocab(const struct llama_model *model);
int32_t llama_vocab_n_tokens(const struct llama_vocab *vocab);
struct llama_batch llama_batch_get_one(llama_token *tokens, int32_t n_tokens);
int32_t llama_decode(struct llama_context *ctx, struct llama_batch batch);
float *llama_get_logits_ith(struct llama_context *ctx, int32_t i);

#endif

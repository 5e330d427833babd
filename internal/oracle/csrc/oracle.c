// oracle: llama.cpp's own quantizer, dequantizer and forward pass, for
// checking wisp against them (see README.md).
//
// It links against the prebuilt shared libraries of a native llama.cpp
// build (npm's @node-llama-cpp/linux-x64@3.22.1, whose metadata names
// llama.cpp release v0.5.0). No headers ship with them, so the prototypes
// used here are declared by hand from llama.h, ggml.h, ggml-quants.h and
// gguf.h. Structures passed by value (the parameter structs) are opaque
// byte arrays of the size this build uses: they are always filled by the
// library's own *_default_params(), and the only fields changed are those
// whose offsets were checked against the disassembly of those functions in
// this build (check_params verifies the defaults there before each use, so
// a different build fails loudly instead of misbehaving).
//
//   oracle quantize IN.gguf OUT.gguf FTYPE [pure]
//       llama_model_quantize into llama_ftype FTYPE (a number: 7 Q8_0, 2
//       Q4_0, 3 Q4_1, 8 Q5_0, 9 Q5_1, 14 Q4_K_S, 15 Q4_K_M, 16 Q5_K_S, 17
//       Q5_K_M, 18 Q6_K, 32 BF16); "pure" quantizes every tensor to the
//       ftype's default type (no k-quant mixture).
//   oracle dequant IN.gguf OUT.f32
//       every tensor widened to float32 by ggml's own functions
//       (dequantize_row_*, ggml_fp16_to_fp32_row, ggml_bf16_to_fp32_row),
//       written one after another in file order to OUT.f32; stdout gets
//       one line per tensor: name, ggml type name, element count.
//   oracle logits [-defaults] MODEL.gguf OUT.f32 TOKEN...
//       loads the model (llama_model_load_from_file, CPU), evaluates the
//       tokens one position at a time (llama_decode) and writes the
//       logits after each position (llama_get_logits_ith) as float32,
//       n_tokens × n_vocab, to OUT.f32. The key/value cache is F32 and
//       flash attention off (llama-cli's -ctk f32 -ctv f32 -fa off), so
//       that llama.cpp's float arithmetic outside the matrix products is
//       wisp's: on F32 weights the two agree to some 3e-7 of the logits'
//       range. -defaults keeps llama.cpp's defaults instead (an F16 cache,
//       flash attention when it chooses).
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

// ---- ggml.h / ggml-quants.h / gguf.h ----

enum ggml_type {
	GGML_TYPE_F32 = 0,
	GGML_TYPE_F16 = 1,
	GGML_TYPE_Q4_0 = 2,
	GGML_TYPE_Q4_1 = 3,
	GGML_TYPE_Q5_0 = 6,
	GGML_TYPE_Q5_1 = 7,
	GGML_TYPE_Q8_0 = 8,
	GGML_TYPE_Q4_K = 12,
	GGML_TYPE_Q5_K = 13,
	GGML_TYPE_Q6_K = 14,
	GGML_TYPE_BF16 = 30,
};


size_t ggml_type_size(enum ggml_type type);
int64_t ggml_blck_size(enum ggml_type type);
const char *ggml_type_name(enum ggml_type type);

void ggml_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
void ggml_bf16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
void dequantize_row_q4_0(const void *x, float *y, int64_t k);
void dequantize_row_q4_1(const void *x, float *y, int64_t k);
void dequantize_row_q5_0(const void *x, float *y, int64_t k);
void dequantize_row_q5_1(const void *x, float *y, int64_t k);
void dequantize_row_q8_0(const void *x, float *y, int64_t k);
void dequantize_row_q4_K(const void *x, float *y, int64_t k);
void dequantize_row_q5_K(const void *x, float *y, int64_t k);
void dequantize_row_q6_K(const void *x, float *y, int64_t k);


struct gguf_context;
struct ggml_context;
struct gguf_init_params {
	bool no_alloc;
	struct ggml_context **ctx;
};
struct gguf_context *gguf_init_from_file(const char *fname, struct gguf_init_params params);
void gguf_free(struct gguf_context *ctx);
size_t gguf_get_data_offset(const struct gguf_context *ctx);
int64_t gguf_get_n_tensors(const struct gguf_context *ctx);
const char *gguf_get_tensor_name(const struct gguf_context *ctx, int64_t tensor_id);
enum ggml_type gguf_get_tensor_type(const struct gguf_context *ctx, int64_t tensor_id);
size_t gguf_get_tensor_offset(const struct gguf_context *ctx, int64_t tensor_id);
size_t gguf_get_tensor_size(const struct gguf_context *ctx, int64_t tensor_id);

// ---- the rest of llama.h that the oracle uses (the common part is in
// llama.h beside this file) ----

// llama_model_quantize_params, as opaque bytes of this build's size (64).
struct llama_model_quantize_params {
	_Alignas(8) unsigned char b[64];
};

void llama_backend_free(void);
struct llama_model_quantize_params llama_model_quantize_default_params(void);
uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const struct llama_model_quantize_params *params);

// ---- checked offsets ----
//
// llama_model_quantize_params in this build (llama-quant.cpp's
// llama_model_quantize_default_params, disassembled): int32 nthread at 0
// (default 0), int32 ftype at 4 (default 7, Q8_0), int32
// output_tensor_type at 8 and token_embedding_type at 12 (default 43,
// GGML_TYPE_COUNT), bools allow_requantize 16 (false),
// quantize_output_tensor 17 (true), only_copy 18 (false), pure 19 (false),
// keep_split 20 and dry_run 21 (false), then the pointers imatrix,
// kv_overrides, tensor_types and prune_layers at 24..56 (NULL) and size_t
// max_buf_size at 56 (8 GiB).
enum {
	QP_NTHREAD = 0,
	QP_FTYPE = 4,
	QP_OUTPUT_TYPE = 8,
	QP_EMBD_TYPE = 12,
	QP_ALLOW_REQUANTIZE = 16,
	QP_QUANTIZE_OUTPUT = 17,
	QP_ONLY_COPY = 18,
	QP_PURE = 19,
	QP_IMATRIX = 24,
};

static int32_t get_i32(const unsigned char *b, int off) {
	int32_t v;
	memcpy(&v, b + off, 4);
	return v;
}

static void *get_ptr(const unsigned char *b, int off) {
	void *v;
	memcpy(&v, b + off, sizeof v);
	return v;
}

static void die(const char *msg) {
	fprintf(stderr, "oracle: %s\n", msg);
	exit(1);
}

// check_quantize_params refuses a build whose defaults are not where this
// program expects them.
static void check_quantize_params(const struct llama_model_quantize_params *p) {
	const unsigned char *b = p->b;
	if (get_i32(b, QP_NTHREAD) != 0 || get_i32(b, QP_FTYPE) != 7 ||
	    get_i32(b, QP_OUTPUT_TYPE) != get_i32(b, QP_EMBD_TYPE) || get_i32(b, QP_OUTPUT_TYPE) < 40 ||
	    b[QP_ALLOW_REQUANTIZE] != 0 || b[QP_QUANTIZE_OUTPUT] != 1 || b[QP_ONLY_COPY] != 0 ||
	    b[QP_PURE] != 0 || get_ptr(b, QP_IMATRIX) != NULL) {
		die("llama_model_quantize_default_params does not have the layout this program was written for "
		    "(see the offsets in oracle.c)");
	}
}

// llama_context_params in this build: uint32 n_ctx at 0 (default 512),
// n_batch at 4 (2048), n_ubatch at 8 (512), n_seq_max at 12 (1), checked
// and kept (a few positions fit the default context); then the four enums
// rope_scaling_type, pooling_type, attention_type and flash_attn_type at
// 0x28..0x34 (default -1 each: from the model, auto), the floats
// rope_freq_base at 0x38 (0) to defrag_thold at 0x54 (-1), the callback
// cb_eval and its data at 0x58 and 0x60 (NULL), and enum ggml_type type_k
// at 0x68 and type_v at 0x6c (default 1, F16).
enum {
	CP_FLASH_ATTN = 0x34,
	CP_TYPE_K = 0x68,
	CP_TYPE_V = 0x6c,
};

static void check_context_params(const struct llama_context_params *p) {
	const unsigned char *b = p->b;
	if (get_i32(b, 0) != 512 || get_i32(b, 4) != 2048 || get_i32(b, 8) != 512 || get_i32(b, 12) != 1 ||
	    get_i32(b, CP_FLASH_ATTN) != -1 || get_i32(b, CP_TYPE_K) != 1 || get_i32(b, CP_TYPE_V) != 1) {
		die("llama_context_default_params does not have the layout this program was written for "
		    "(see oracle.c)");
	}
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user_data) {
	(void)user_data;
	if (getenv("ORACLE_VERBOSE") || level == 4) { // GGML_LOG_LEVEL_ERROR
		fputs(text, stderr);
	}
}

// libdir returns the directory of the ggml libraries, where the CPU
// backends (libggml-cpu-*.so) are loaded from.
// It is compiled in (-DORACLE_LIBDIR=...); the environment variable of the
// same name overrides it.
static const char *libdir(void) {
	const char *d = getenv("ORACLE_LIBDIR");
	if (d && *d) {
		return d;
	}
#ifdef ORACLE_LIBDIR
	return ORACLE_LIBDIR;
#else
	die("ORACLE_LIBDIR is not set (the directory of libggml-cpu-*.so)");
	return NULL;
#endif
}

static void init(void) {
	llama_log_set(quiet_log, NULL);
	ggml_log_set(quiet_log, NULL);
	ggml_backend_load_all_from_path(libdir());
	llama_backend_init();
}

static int cmd_quantize(int argc, char **argv) {
	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "pure") != 0)) {
		die("usage: oracle quantize IN.gguf OUT.gguf FTYPE [pure]");
	}
	init();
	struct llama_model_quantize_params p = llama_model_quantize_default_params();
	check_quantize_params(&p);
	int32_t ftype = atoi(argv[2]);
	int32_t nthread = 1;
	memcpy(p.b + QP_FTYPE, &ftype, 4);
	memcpy(p.b + QP_NTHREAD, &nthread, 4);
	p.b[QP_PURE] = argc == 4;
	if (llama_model_quantize(argv[0], argv[1], &p) != 0) {
		die("llama_model_quantize failed");
	}
	llama_backend_free();
	return 0;
}

static int cmd_dequant(int argc, char **argv) {
	if (argc != 2) {
		die("usage: oracle dequant IN.gguf OUT.f32");
	}
	struct gguf_init_params gp = {true, NULL};
	struct gguf_context *g = gguf_init_from_file(argv[0], gp);
	if (!g) {
		die("gguf_init_from_file failed");
	}
	FILE *in = fopen(argv[0], "rb");
	FILE *out = fopen(argv[1], "wb");
	if (!in || !out) {
		die("cannot open the files");
	}
	size_t base = gguf_get_data_offset(g);
	int64_t n = gguf_get_n_tensors(g);
	for (int64_t i = 0; i < n; i++) {
		enum ggml_type t = gguf_get_tensor_type(g, i);
		size_t size = gguf_get_tensor_size(g, i);
		int64_t elems = (int64_t)(size / ggml_type_size(t)) * ggml_blck_size(t);
		unsigned char *src = malloc(size ? size : 1);
		float *dst = malloc(elems ? elems * sizeof(float) : 1);
		if (!src || !dst) {
			die("out of memory");
		}
		if (fseek(in, (long)(base + gguf_get_tensor_offset(g, i)), SEEK_SET) != 0 || fread(src, 1, size, in) != size) {
			die("short read");
		}
		switch (t) {
		case GGML_TYPE_F32: memcpy(dst, src, size); break;
		case GGML_TYPE_F16: ggml_fp16_to_fp32_row((const uint16_t *)src, dst, elems); break;
		case GGML_TYPE_BF16: ggml_bf16_to_fp32_row((const uint16_t *)src, dst, elems); break;
		case GGML_TYPE_Q4_0: dequantize_row_q4_0(src, dst, elems); break;
		case GGML_TYPE_Q4_1: dequantize_row_q4_1(src, dst, elems); break;
		case GGML_TYPE_Q5_0: dequantize_row_q5_0(src, dst, elems); break;
		case GGML_TYPE_Q5_1: dequantize_row_q5_1(src, dst, elems); break;
		case GGML_TYPE_Q8_0: dequantize_row_q8_0(src, dst, elems); break;
		case GGML_TYPE_Q4_K: dequantize_row_q4_K(src, dst, elems); break;
		case GGML_TYPE_Q5_K: dequantize_row_q5_K(src, dst, elems); break;
		case GGML_TYPE_Q6_K: dequantize_row_q6_K(src, dst, elems); break;
		default:
			fprintf(stderr, "oracle: tensor %s: type %s is not handled\n", gguf_get_tensor_name(g, i), ggml_type_name(t));
			return 1;
		}
		if (fwrite(dst, sizeof(float), elems, out) != (size_t)elems) {
			die("short write");
		}
		printf("%s\t%s\t%lld\n", gguf_get_tensor_name(g, i), ggml_type_name(t), (long long)elems);
		free(src);
		free(dst);
	}
	if (fclose(out) != 0) {
		die("cannot write the output");
	}
	fclose(in);
	gguf_free(g);
	return 0;
}

static int cmd_logits(int argc, char **argv) {
	bool defaults = argc > 0 && strcmp(argv[0], "-defaults") == 0;
	if (defaults) {
		argc--, argv++;
	}
	if (argc < 3) {
		die("usage: oracle logits [-defaults] MODEL.gguf OUT.f32 TOKEN...");
	}
	init();
	struct llama_model *model = llama_model_load_from_file(argv[0], llama_model_default_params());
	if (!model) {
		die("llama_model_load_from_file failed");
	}
	struct llama_context_params cp = llama_context_default_params();
	check_context_params(&cp);
	if (!defaults) {
		int32_t f32 = GGML_TYPE_F32, disabled = 0;
		memcpy(cp.b + CP_TYPE_K, &f32, 4);
		memcpy(cp.b + CP_TYPE_V, &f32, 4);
		memcpy(cp.b + CP_FLASH_ATTN, &disabled, 4);
	}
	struct llama_context *ctx = llama_init_from_model(model, cp);
	if (!ctx) {
		die("llama_init_from_model failed");
	}
	// One thread: the test models are tiny, and llama.cpp's threads spin
	// for work (0.6 s a token on two busy cores); results do not depend on it.
	llama_set_n_threads(ctx, 1, 1);
	int32_t nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
	FILE *out = fopen(argv[1], "wb");
	if (!out) {
		die("cannot open the output");
	}
	for (int i = 2; i < argc; i++) {
		llama_token tok = atoi(argv[i]);
		if (tok < 0 || tok >= nv) {
			die("token out of range");
		}
		if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) {
			die("llama_decode failed");
		}
		const float *logits = llama_get_logits_ith(ctx, -1);
		if (!logits || fwrite(logits, sizeof(float), nv, out) != (size_t)nv) {
			die("no logits");
		}
	}
	if (fclose(out) != 0) {
		die("cannot write the output");
	}
	llama_free(ctx);
	llama_model_free(model);
	llama_backend_free();
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 2 && strcmp(argv[1], "quantize") == 0) {
		return cmd_quantize(argc - 2, argv + 2);
	}
	if (argc >= 2 && strcmp(argv[1], "dequant") == 0) {
		return cmd_dequant(argc - 2, argv + 2);
	}
	if (argc >= 2 && strcmp(argv[1], "logits") == 0) {
		return cmd_logits(argc - 2, argv + 2);
	}
	fprintf(stderr, "usage: oracle quantize|dequant|logits ... (see oracle.c)\n");
	return 2;
}

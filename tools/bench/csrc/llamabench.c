// llamabench: native llama.cpp as a runner of make bench (tools/bench), on
// the same files, prompt token ids and settings as every other runtime.
//
// It links against the prebuilt shared libraries that make oracle installs
// (npm's @node-llama-cpp/linux-x64@3.22.1, llama.cpp release v0.5.0). No
// headers ship with them: the few prototypes used are declared by hand
// from llama.h, and the parameter structs are opaque bytes filled by the
// library's own *_default_params(); the only fields changed (n_ctx and
// no_perf) are checked against this build's defaults first, as
// internal/oracle/csrc/oracle.c does.
//
//   llamabench MODEL.gguf THREADS CONTEXT MAX_TOKENS WARMUP_TOKENS RUN_WARMUP_TOKENS WARMUP_MS DECODE_CAP_MS PROMPT_IDS WARMUP_IDS
//
// PROMPT_IDS and WARMUP_IDS are comma-separated token ids. It then speaks
// the runners' line protocol (site/bench/node.bench.js): it reads a first
// line (the configuration, ignored: everything is in argv) and answers
// {"libllama"}; then each line holding "warmup" is answered {"coldLoadMs"}
// (a first load, and short generations for at least WARMUP_MS), each line
// holding "run" with one measured run: a load of the model and a context,
// one short generation of RUN_WARMUP_TOKENS, a cleared cache, then
//
//   - prefill: one llama_decode of the whole prompt in one batch (n_batch
//     2048 and n_ubatch 512, llama.cpp's defaults, hold 128 tokens);
//   - decode: one token per llama_decode, greedy (the argmax of the
//     logits), MAX_TOKENS tokens or until DECODE_CAP_MS have passed;
//
// timed from outside the calls (prefill, decode), and llama.cpp's own
// llama_perf_context figures beside them (perfPrefill, perfDecode): its
// t_p_eval_ms over n_p_eval, its t_eval_ms over n_eval. THREADS is both
// n_threads and n_threads_batch (llama_set_n_threads). The rest is
// llama.cpp's defaults: an F16 key/value cache, flash attention as it
// chooses (auto), the CPU backend it picks for this CPU. At the end of
// stdin it answers {"peakRSS"}: the process's VmHWM in bytes.
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

// ---- the rest of llama.h that this runner uses (the common part is
// internal/oracle/csrc/llama.h) ----

typedef struct llama_memory_i *llama_memory_t;

// llama_perf_context_data: four doubles (ms) and three int32 counters;
// returned in memory (it is larger than two registers), so spare bytes at
// its end are harmless if a build has fewer counters.
struct llama_perf_context_data {
	double t_start_ms;
	double t_load_ms;
	double t_p_eval_ms;
	double t_eval_ms;
	int32_t n_p_eval;
	int32_t n_eval;
	int32_t n_reused;
	int32_t spare[3];
};

llama_memory_t llama_get_memory(const struct llama_context *ctx);
void llama_memory_clear(llama_memory_t mem, bool data);
struct llama_perf_context_data llama_perf_context(const struct llama_context *ctx);
void llama_perf_context_reset(struct llama_context *ctx);
const char *llama_print_system_info(void);

// ---- checked offsets of llama_context_params in this build ----
//
// uint32 n_ctx at 0 (default 512), n_batch 4 (2048), n_ubatch 8 (512),
// n_seq_max 12 (1); the trailing bools embeddings 128 (false),
// offload_kqv 129 (true), no_perf 130 (true), op_offload 131 (true).
enum { CP_N_CTX = 0, CP_NO_PERF = 130 };

static void die(const char *msg) {
	fprintf(stderr, "llamabench: %s\n", msg);
	exit(1);
}

static void check_context_params(const struct llama_context_params *p) {
	uint32_t v[4];
	memcpy(v, p->b, sizeof v);
	if (v[0] != 512 || v[1] != 2048 || v[2] != 512 || v[3] != 1 || p->b[128] != 0 || p->b[129] != 1 ||
	    p->b[CP_NO_PERF] != 1 || p->b[131] != 1) {
		die("llama_context_default_params does not have the layout this program was written for (see llamabench.c)");
	}
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user_data) {
	(void)user_data;
	if (getenv("LLAMABENCH_VERBOSE") || level == 4) { // GGML_LOG_LEVEL_ERROR
		fputs(text, stderr);
	}
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// parse_ids parses comma-separated token ids into a new array.
static llama_token *parse_ids(const char *s, int *n) {
	int cap = 1;
	for (const char *p = s; *p; p++) {
		cap += *p == ',';
	}
	llama_token *ids = malloc(sizeof *ids * cap);
	if (!ids) {
		die("out of memory");
	}
	*n = 0;
	for (const char *p = s; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p) {
			die("bad token ids");
		}
		ids[(*n)++] = (llama_token)v;
		p = *end == ',' ? end + 1 : end;
	}
	return ids;
}

static struct {
	const char *model;
	int threads, context, max_tokens, warmup_tokens, run_warmup_tokens;
	double warmup_ms, cap_ms;
	llama_token *prompt, *warm;
	int n_prompt, n_warm;
} cfg;

struct instance {
	struct llama_model *model;
	struct llama_context *ctx;
	int32_t n_vocab;
};

static void load(struct instance *in) {
	in->model = llama_model_load_from_file(cfg.model, llama_model_default_params());
	if (!in->model) {
		die("llama_model_load_from_file failed");
	}
	struct llama_context_params cp = llama_context_default_params();
	check_context_params(&cp);
	uint32_t n_ctx = (uint32_t)cfg.context;
	memcpy(cp.b + CP_N_CTX, &n_ctx, 4);
	cp.b[CP_NO_PERF] = 0;
	in->ctx = llama_init_from_model(in->model, cp);
	if (!in->ctx) {
		die("llama_init_from_model failed");
	}
	llama_set_n_threads(in->ctx, cfg.threads, cfg.threads);
	in->n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(in->model));
}

static void unload(struct instance *in) {
	llama_free(in->ctx);
	llama_model_free(in->model);
}

static llama_token argmax(struct instance *in) {
	const float *l = llama_get_logits_ith(in->ctx, -1);
	if (!l) {
		die("no logits");
	}
	llama_token best = 0;
	for (int32_t i = 1; i < in->n_vocab; i++) {
		if (l[i] > l[best]) {
			best = i;
		}
	}
	return best;
}

struct generation {
	double prompt_ms, decode_ms;
	int tokens;
	bool capped;
};

// generate evaluates ids in one batch, then decodes max tokens greedily,
// one per llama_decode (stopping once cap_ms have passed, if positive),
// from an empty cache.
static struct generation generate(struct instance *in, llama_token *ids, int n, int max, double cap_ms) {
	struct generation g = {0};
	llama_memory_clear(llama_get_memory(in->ctx), true);
	double t0 = now_ms();
	if (llama_decode(in->ctx, llama_batch_get_one(ids, n)) != 0) {
		die("llama_decode of the prompt failed");
	}
	llama_token tok = argmax(in);
	double t1 = now_ms();
	for (g.tokens = 0; g.tokens < max;) {
		if (llama_decode(in->ctx, llama_batch_get_one(&tok, 1)) != 0) {
			die("llama_decode of a token failed");
		}
		tok = argmax(in);
		g.tokens++;
		if (cap_ms > 0 && now_ms() - t1 >= cap_ms) {
			g.capped = g.tokens < max;
			break;
		}
	}
	g.prompt_ms = t1 - t0;
	g.decode_ms = now_ms() - t1;
	return g;
}

static long long peak_rss(void) {
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) {
		return 0;
	}
	char line[256];
	long long kb = 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	return kb * 1024;
}

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

// json_string prints s as a JSON string (its quotes and backslashes
// escaped, control characters dropped).
static void json_string(const char *s) {
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') {
			putchar('\\');
		}
		if ((unsigned char)*s >= 0x20) {
			putchar(*s);
		}
	}
	putchar('"');
}

int main(int argc, char **argv) {
	if (argc != 11) {
		fprintf(stderr, "usage: llamabench MODEL.gguf THREADS CONTEXT MAX_TOKENS WARMUP_TOKENS RUN_WARMUP_TOKENS "
				"WARMUP_MS DECODE_CAP_MS PROMPT_IDS WARMUP_IDS (see llamabench.c)\n");
		return 2;
	}
	cfg.model = argv[1];
	cfg.threads = atoi(argv[2]);
	cfg.context = atoi(argv[3]);
	cfg.max_tokens = atoi(argv[4]);
	cfg.warmup_tokens = atoi(argv[5]);
	cfg.run_warmup_tokens = atoi(argv[6]);
	cfg.warmup_ms = atof(argv[7]);
	cfg.cap_ms = atof(argv[8]);
	cfg.prompt = parse_ids(argv[9], &cfg.n_prompt);
	cfg.warm = parse_ids(argv[10], &cfg.n_warm);
	if (cfg.threads < 1 || cfg.context < cfg.n_prompt + cfg.max_tokens || cfg.n_prompt < 1 || cfg.n_warm < 1) {
		die("bad arguments");
	}

	llama_log_set(quiet_log, NULL);
	ggml_log_set(quiet_log, NULL);
	ggml_backend_load_all_from_path(libdir());
	llama_backend_init();

	char *line = NULL;
	size_t cap = 0;
	if (getline(&line, &cap, stdin) < 0) {
		return 0;
	}
	printf("{\"libllama\":\"v0.5.0 (@node-llama-cpp/linux-x64 3.22.1)\",\"system\":");
	json_string(llama_print_system_info());
	printf("}\n");
	fflush(stdout);

	while (getline(&line, &cap, stdin) >= 0) {
		bool measure = strstr(line, "\"run\"") != NULL;
		if (!measure && !strstr(line, "\"warmup\"")) {
			if (strspn(line, " \t\r\n") != strlen(line)) {
				printf("{\"error\":\"llamabench: unknown request\"}\n");
				fflush(stdout);
			}
			continue;
		}
		struct instance in;
		double t0 = now_ms();
		load(&in);
		double load_ms = now_ms() - t0;
		double w0 = now_ms();
		do {
			generate(&in, cfg.warm, cfg.n_warm, measure ? cfg.run_warmup_tokens : cfg.warmup_tokens, 0);
		} while (!measure && now_ms() - w0 < cfg.warmup_ms);
		if (!measure) {
			unload(&in);
			printf("{\"coldLoadMs\":%.3f}\n", load_ms);
			fflush(stdout);
			continue;
		}
		llama_perf_context_reset(in.ctx);
		struct generation g = generate(&in, cfg.prompt, cfg.n_prompt, cfg.max_tokens, cfg.cap_ms);
		struct llama_perf_context_data p = llama_perf_context(in.ctx);
		unload(&in);
		double perf_prefill = p.t_p_eval_ms > 0 ? 1e3 * p.n_p_eval / p.t_p_eval_ms : 0;
		double perf_decode = p.t_eval_ms > 0 ? 1e3 * p.n_eval / p.t_eval_ms : 0;
		printf("{\"loadMs\":%.3f,\"prefill\":%.4f,\"decode\":%.4f,\"promptTokens\":%d,\"tokens\":%d,\"reason\":\"%s\","
		       "\"threads\":%d,\"perfPrefill\":%.4f,\"perfDecode\":%.4f,\"perfPromptTokens\":%d,\"perfTokens\":%d}\n",
		       load_ms, 1e3 * cfg.n_prompt / g.prompt_ms, 1e3 * g.tokens / g.decode_ms, cfg.n_prompt, g.tokens,
		       g.capped ? "time cap" : "length", cfg.threads, perf_prefill, perf_decode, p.n_p_eval, p.n_eval);
		fflush(stdout);
	}
	printf("{\"peakRSS\":%lld}\n", peak_rss());
	free(line);
	return 0;
}

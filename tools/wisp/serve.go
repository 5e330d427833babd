package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"wisp/tools/chatapi"
	"wisp/tools/serve"
)

func serveCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[--addr 127.0.0.1:8080] [--site site] [--models models] [--model MODEL]",
		`Serves the page, the engine's wasm modules and a folder of GGUF models over
HTTP on loopback, with the right content types, ETags, Range requests and gzip.
/api/models lists the models with their sizes and SHA-256.

With --model, it also runs that model natively behind OpenAI's API:
POST /v1/chat/completions and POST /v1/completions (Server-Sent Events when
"stream" is true) and GET /v1/models. Requests take turns; the model keeps the cache of what a
request shares with the last, so a conversation's next turn evaluates only its
new tokens.`, stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	site := fs.String("site", "site", "folder of the page")
	models := fs.String("models", "models", "folder of .gguf models")
	model := fs.String("model", "", "a GGUF model to serve at /v1/chat/completions and /v1/completions (OpenAI-compatible)")
	ctxFlag := fs.Int("ctx", 0, "with --model: positions of the session; 0 means the model's context length")
	queue := fs.Int("queue", 8, "with --model: requests that may wait while one runs; more get 429")
	timeout := fs.Duration("timeout", 5*time.Minute, "with --model: the longest a request may take, its wait included")
	maxBody := fs.Int64("max-body", 1<<20, "with --model: the largest request body, in bytes")
	runtime := fs.String("runtime", "native", "with --model: where the engine runs: native or wazero")
	isolate := fs.Bool("isolate", false, "send COOP/COEP headers (cross-origin isolation, for multi-threaded wasm)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	srv, err := serve.New(serve.Options{Site: *site, Models: *models, Isolate: *isolate})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var handler http.Handler = srv
	api := ""
	if *model != "" {
		be, err := runtimeFlags{runtime: *runtime, threads: 1}.openBackend(*model, "", stderr)
		if err != nil {
			ln.Close()
			return err
		}
		defer be.Close()
		name := strings.TrimSuffix(filepath.Base(*model), filepath.Ext(*model))
		h, err := chatapi.New(chatapi.Options{Model: be, Name: name, Context: *ctxFlag, Queue: *queue, Timeout: *timeout, MaxBody: *maxBody})
		if err != nil {
			ln.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/", h)
		mux.Handle("/", srv)
		handler = mux
		api = fmt.Sprintf("; %s at http://%s/v1/chat/completions", name, ln.Addr())
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "wisp serve: http://%s/ (site %s, models %s%s); Ctrl-C stops\n", ln.Addr(), *site, *models, api)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

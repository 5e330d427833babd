package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"wisp/tools/serve"
)

func serveCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[--addr 127.0.0.1:8080] [--site site] [--models models]",
		`Serves the page, the engine's wasm modules and a folder of GGUF models over
HTTP on loopback, with the right content types, ETags, Range requests and gzip.
/api/models lists the models with their sizes and SHA-256.`, stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	site := fs.String("site", "site", "folder of the page")
	models := fs.String("models", "models", "folder of .gguf models")
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
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "wisp serve: http://%s/ (site %s, models %s); Ctrl-C stops\n", ln.Addr(), *site, *models)
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

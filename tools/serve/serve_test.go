package serve

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func setup(t *testing.T, opt Options) (*httptest.Server, []byte) {
	t.Helper()
	dir := t.TempDir()
	site, models := filepath.Join(dir, "site"), filepath.Join(dir, "models")
	os.MkdirAll(filepath.Join(site, "wasm"), 0o755)
	os.MkdirAll(models, 0o755)
	js := []byte(strings.Repeat("export const x = 1;\n", 200))
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<!doctype html><title>wisp</title>"), 0o644)
	os.WriteFile(filepath.Join(site, "wisp.js"), js, 0o644)
	os.WriteFile(filepath.Join(site, "wasm", "kernels.0123abcd.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	model := make([]byte, 10000)
	for i := range model {
		model[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(models, "tiny.gguf"), model, 0o644)
	os.WriteFile(filepath.Join(models, "notes.txt"), []byte("not a model"), 0o644)
	opt.Site, opt.Models = site, models
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, model
}

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// Ask for gzip explicitly so that the transport does not decode it.
	if _, ok := hdr["Accept-Encoding"]; !ok {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestContentTypesAndCaching(t *testing.T) {
	ts, _ := setup(t, Options{})
	for _, c := range []struct {
		path, ctype, cache string
	}{
		{"/", "text/html", "no-cache"},
		{"/wisp.js", "text/javascript", "no-cache"},
		{"/wasm/kernels.0123abcd.wasm", "application/wasm", "immutable"},
		{"/models/tiny.gguf", "application/octet-stream", "no-cache"},
	} {
		resp := get(t, ts.URL+c.path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, c.ctype) {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, c.cache) {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", c.path)
			continue
		}
		if r2 := get(t, ts.URL+c.path, map[string]string{"If-None-Match": etag}); r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation with its ETag gave %d, want 304", c.path, r2.StatusCode)
		}
	}
	for _, p := range []string{"/missing.js", "/models/notes.txt", "/models/../site/index.html", "/../etc/passwd"} {
		if resp := get(t, ts.URL+p, nil); resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestGzip(t *testing.T) {
	ts, _ := setup(t, Options{})
	resp := get(t, ts.URL+"/wisp.js", map[string]string{"Accept-Encoding": "br, gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if !strings.HasPrefix(string(b), "export const x") || len(b) != 4000 {
		t.Errorf("decoded %d bytes", len(b))
	}
	// Models are never compressed.
	if resp := get(t, ts.URL+"/models/tiny.gguf", map[string]string{"Accept-Encoding": "gzip"}); resp.Header.Get("Content-Encoding") != "" {
		t.Error("a model was compressed")
	}
}

func TestRange(t *testing.T) {
	ts, model := setup(t, Options{})
	resp := get(t, ts.URL+"/models/tiny.gguf", map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != string(model[100:200]) {
		t.Error("wrong range")
	}
}

func TestModelList(t *testing.T) {
	ts, model := setup(t, Options{})
	resp := get(t, ts.URL+"/api/models", nil)
	var list []Model
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	want := Model{Name: "tiny.gguf", URL: "models/tiny.gguf", Size: int64(len(model)), SHA256: hex.EncodeToString(sum[:])}
	if len(list) != 1 || list[0] != want {
		t.Errorf("got %+v, want [%+v]", list, want)
	}
}

func TestIsolate(t *testing.T) {
	ts, _ := setup(t, Options{Isolate: true})
	resp := get(t, ts.URL+"/", nil)
	if resp.Header.Get("Cross-Origin-Opener-Policy") != "same-origin" || resp.Header.Get("Cross-Origin-Embedder-Policy") != "require-corp" {
		t.Errorf("no isolation headers: %v", resp.Header)
	}
}

func TestNewChecksFolders(t *testing.T) {
	if _, err := New(Options{Site: "/nonexistent"}); err == nil {
		t.Error("a missing site folder was accepted")
	}
	if _, err := New(Options{Site: t.TempDir(), Models: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "models") {
		t.Errorf("missing models folder: %v", err)
	}
}

func TestCORS(t *testing.T) {
	ts, _ := setup(t, Options{})
	for _, p := range []string{"/wisp.js", "/models/tiny.gguf", "/api/models"} {
		if got := get(t, ts.URL+p, nil).Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", p, got)
		}
	}
}

// Package serve is the HTTP server behind "wisp serve": it serves the page
// (site/), the engine's wasm modules and a folder of models, on loopback.
//
// Every response carries a strong ETag (a SHA-256 of the content), so a
// browser revalidates cheaply; files whose names carry a content hash
// (name.0123abcd.ext) are immutable. Every response allows cross-origin
// use, so that pages elsewhere can embed the engine. JavaScript, CSS, HTML, JSON and wasm
// are gzip-compressed when the client accepts it. Models are served with
// Range support (never compressed: they are large and barely compress) and
// listed with their sizes and hashes at /api/models.
package serve

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	Site   string // folder of the page
	Models string // folder of .gguf models; may be empty
	// Isolate sends the cross-origin isolation headers (COOP/COEP) that
	// SharedArrayBuffer, and so multi-threaded wasm, needs.
	Isolate bool
}

// Server is an http.Handler serving the site and the models.
type Server struct {
	opt   Options
	mu    sync.Mutex
	cache map[string]*entry // by absolute path
}

// entry is what the server remembers of a file: its hash and, for
// compressible files, its gzip encoding.
type entry struct {
	size    int64
	modTime time.Time
	sha256  string
	gz      []byte
}

// Model describes one model in the /api/models listing.
type Model struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// New returns a Server, checking that the folders exist.
func New(opt Options) (*Server, error) {
	if st, err := os.Stat(opt.Site); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("serve: site folder %q: not a folder", opt.Site)
	}
	if opt.Models != "" {
		if st, err := os.Stat(opt.Models); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("serve: models folder %q: not a folder (make one, or run make models)", opt.Models)
		}
	}
	return &Server{opt: opt, cache: map[string]*entry{}}, nil
}

var hashed = regexp.MustCompile(`\.[0-9a-f]{8,64}\.[a-z0-9]+$`)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// A page on another origin may embed wisp: let it fetch the scripts,
	// the wasm and the models.
	h.Set("Access-Control-Allow-Origin", "*")
	if s.opt.Isolate {
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Embedder-Policy", "require-corp")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
	}
	p := path.Clean("/" + r.URL.Path)
	switch {
	case p == "/api/models":
		s.serveList(w, r)
	case strings.HasPrefix(p, "/models/"):
		if s.opt.Models == "" {
			http.NotFound(w, r)
			return
		}
		name := strings.TrimPrefix(p, "/models/")
		if strings.Contains(name, "/") || !strings.HasSuffix(name, ".gguf") {
			http.NotFound(w, r)
			return
		}
		s.serveFile(w, r, filepath.Join(s.opt.Models, name), false)
	default:
		if strings.HasSuffix(p, "/") {
			p += "index.html"
		}
		s.serveFile(w, r, filepath.Join(s.opt.Site, filepath.FromSlash(p)), true)
	}
}

// compressible reports whether a content type is worth gzipping.
func compressible(ctype string) bool {
	for _, t := range []string{"text/", "application/javascript", "application/json", "application/wasm", "image/svg"} {
		if strings.HasPrefix(ctype, t) {
			return true
		}
	}
	return false
}

func contentType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".wasm":
		return "application/wasm"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".ts":
		return "text/plain; charset=utf-8"
	case ".gguf":
		return "application/octet-stream"
	default:
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

// serveFile serves one file with its ETag, caching rules and, where it
// pays, gzip.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, name string, compress bool) {
	f, err := os.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	ctype := contentType(name)
	compress = compress && compressible(ctype)
	e, err := s.entry(name, f, st, compress)
	if err != nil {
		http.Error(w, "cannot read file", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	if hashed.MatchString(name) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Add("Vary", "Accept-Encoding")
	etag := `"` + e.sha256 + `"`
	if e.gz != nil && r.Header.Get("Range") == "" && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", `"`+e.sha256+`-gz"`)
		http.ServeContent(w, r, "", e.modTime, bytes.NewReader(e.gz))
		return
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", e.modTime, f)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}

// entry returns the file's cached hash (and gzip), computing it when the
// file is new or changed.
func (s *Server) entry(name string, f *os.File, st os.FileInfo, compress bool) (*entry, error) {
	s.mu.Lock()
	e := s.cache[name]
	s.mu.Unlock()
	if e != nil && e.size == st.Size() && e.modTime.Equal(st.ModTime()) && (!compress || e.gz != nil) {
		return e, nil
	}
	e = &entry{size: st.Size(), modTime: st.ModTime()}
	hash := sha256.New()
	var gz bytes.Buffer
	var dst io.Writer = hash
	var zw *gzip.Writer
	if compress {
		zw, _ = gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
		dst = io.MultiWriter(hash, zw)
	}
	if _, err := io.Copy(dst, f); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	e.sha256 = hex.EncodeToString(hash.Sum(nil))
	if zw != nil {
		zw.Close()
		if int64(gz.Len()) < st.Size() {
			e.gz = gz.Bytes()
		}
	}
	s.mu.Lock()
	s.cache[name] = e
	s.mu.Unlock()
	return e, nil
}

// Models lists the .gguf files of the models folder, by name.
func (s *Server) Models() ([]Model, error) {
	if s.opt.Models == "" {
		return []Model{}, nil
	}
	des, err := os.ReadDir(s.opt.Models)
	if err != nil {
		return nil, err
	}
	list := []Model{}
	for _, de := range des {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".gguf") {
			continue
		}
		name := filepath.Join(s.opt.Models, de.Name())
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		e, err := s.entry(name, f, st, false)
		f.Close()
		if err != nil {
			return nil, err
		}
		list = append(list, Model{Name: de.Name(), URL: "models/" + de.Name(), Size: e.size, SHA256: e.sha256})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	list, err := s.Models()
	if err != nil {
		http.Error(w, "cannot list models", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(list)
}

// Package chatapi serves a model through OpenAI's API: POST
// /v1/chat/completions and POST /v1/completions (with Server-Sent Events
// when the request streams) and GET /v1/models, for "wisp serve --model". Requests take turns on the
// one model, whose session keeps the key/value cache of what a request
// shares with the last (a conversation's next turn evaluates only its new
// tokens; usage.prompt_tokens_details.cached_tokens says how many were
// kept). A bounded number wait; the rest are refused with 429. Request
// bodies, max_tokens and the time a request may take are bounded, and
// every bad request gets a JSON error in OpenAI's shape ({"error":
// {"message", "type", "param", "code"}}) and leaves the server serving.
package chatapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"wisp/engine"
	"wisp/engine/chat"
	"wisp/engine/option"
	"wisp/wasm/backend"
)

// Options configures a Handler.
type Options struct {
	// Model is the model the API runs; the Handler uses it alone.
	Model backend.Model
	// Name is the model's id in responses and in /v1/models.
	Name string
	// Context is the positions of the session; 0 means the model's
	// context length.
	Context int
	// MaxBody bounds a request's body in bytes; default 1 MiB.
	MaxBody int64
	// Queue is how many requests may wait while one runs; default 8. A
	// negative value lets none wait.
	Queue int
	// Timeout bounds a request, its wait included; default 5 minutes.
	Timeout time.Duration
}

// Handler is the http.Handler of the API.
type Handler struct {
	opt     Options
	ctx     int           // positions of the session
	run     chan struct{} // held by the request that runs
	mu      sync.Mutex
	waiting int
}

// New returns the API's handler for the model.
func New(opt Options) (*Handler, error) {
	if opt.Model == nil {
		return nil, errors.New("chatapi: no model")
	}
	if opt.Name == "" {
		opt.Name = "wisp"
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.Queue == 0 {
		opt.Queue = 8
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Minute
	}
	ctx := opt.Context
	if ctx <= 0 || ctx > opt.Model.ContextLen() {
		if ctx > opt.Model.ContextLen() {
			return nil, fmt.Errorf("chatapi: a context of %d positions is longer than the model's %d", ctx, opt.Model.ContextLen())
		}
		ctx = opt.Model.ContextLen()
	}
	return &Handler{opt: opt, ctx: ctx, run: make(chan struct{}, 1)}, nil
}

// apiError is an error in OpenAI's shape, with its HTTP status.
type apiError struct {
	status int
	Msg    string  `json:"message"`
	Type   string  `json:"type"`
	Param  *string `json:"param"`
	Code   *string `json:"code"`
}

func (e *apiError) Error() string { return e.Msg }

func badRequest(param, code, format string, args ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch r.URL.Path {
	case "/v1/models":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Msg: "GET /v1/models", Type: "invalid_request_error"})
			return
		}
		hd.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{
			map[string]any{"id": h.opt.Name, "object": "model", "created": 0, "owned_by": "wisp"},
		}})
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			hd.Set("Allow", "POST")
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Msg: "POST a JSON request to /v1/chat/completions", Type: "invalid_request_error"})
			return
		}
		h.completions(w, r, false)
	case "/v1/completions":
		if r.Method != http.MethodPost {
			hd.Set("Allow", "POST")
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Msg: "POST a JSON request to /v1/completions", Type: "invalid_request_error"})
			return
		}
		h.completions(w, r, true)
	default:
		writeError(w, &apiError{status: http.StatusNotFound, Msg: fmt.Sprintf("no %s %s: this server has POST /v1/chat/completions, POST /v1/completions and GET /v1/models", r.Method, r.URL.Path), Type: "invalid_request_error"})
	}
}

// request is what /v1/chat/completions reads.
type request struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"` // of /v1/completions
	Echo                bool            `json:"echo"`   // of /v1/completions
	Stream              bool            `json:"stream"`
	StreamOptions       *struct{}       `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	N                   *int            `json:"n"`
	// wisp's own.
	TopK          *int     `json:"top_k"`
	MinP          *float64 `json:"min_p"`
	RepeatPenalty *float64 `json:"repeat_penalty"`
	Overflow      string   `json:"overflow"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parse reads and checks a request: of /v1/completions (its prompt in
// the message of a "prompt" role) when legacy, else of
// /v1/chat/completions.
func (h *Handler) parse(w http.ResponseWriter, r *http.Request, legacy bool) (*request, []chat.Message, option.Options, *apiError) {
	var opt option.Options
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opt.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, nil, opt, &apiError{status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("the request is larger than %d bytes", h.opt.MaxBody), Type: "invalid_request_error"}
		}
		return nil, nil, opt, badRequest("", "", "reading the request: %v", err)
	}
	var req request
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&req); err != nil {
		return nil, nil, opt, badRequest("", "invalid_json", "the request is not the JSON of a chat completion: %v", err)
	}
	if d.More() {
		return nil, nil, opt, badRequest("", "invalid_json", "the request holds more than one JSON value")
	}
	var prompt string
	if legacy {
		var many []string
		if json.Unmarshal(req.Prompt, &prompt) != nil {
			if json.Unmarshal(req.Prompt, &many) != nil || len(many) != 1 {
				return nil, nil, opt, badRequest("prompt", "", "prompt must be a string (or an array of one string)")
			}
			prompt = many[0]
		}
		req.Messages = nil
	} else if len(req.Messages) == 0 {
		return nil, nil, opt, badRequest("messages", "", "messages is missing or empty: give at least one {role, content}")
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		text, err := content(m.Content)
		if err != nil {
			return nil, nil, opt, badRequest(fmt.Sprintf("messages[%d].content", i), "", "messages[%d].content: %v", i, err)
		}
		msgs[i] = chat.Message{Role: m.Role, Content: text}
	}
	if req.N != nil && *req.N != 1 {
		return nil, nil, opt, badRequest("n", "", "n = %d: this server makes one choice per request", *req.N)
	}
	if legacy {
		msgs = []chat.Message{{Role: "prompt", Content: prompt}}
	}
	max := 0
	if legacy {
		max = 16 // OpenAI's default for completions
	}
	param := "max_tokens"
	if req.MaxTokens != nil {
		max = *req.MaxTokens
	} else if req.MaxCompletionTokens != nil {
		max, param = *req.MaxCompletionTokens, "max_completion_tokens"
	}
	if max < 0 || max > h.ctx {
		return nil, nil, opt, badRequest(param, "", "%s = %d is out of range: at most the context of %d positions", param, max, h.ctx)
	}
	opt = option.Options{Context: h.ctx, MaxTokens: max, Temperature: 1, TopP: 1}
	if req.Temperature != nil {
		opt.Temperature = float32(*req.Temperature)
	}
	if req.TopP != nil {
		opt.TopP = float32(*req.TopP)
	}
	if req.TopK != nil {
		opt.TopK = *req.TopK
	}
	if req.MinP != nil {
		opt.MinP = float32(*req.MinP)
	}
	if req.RepeatPenalty != nil {
		opt.RepeatPenalty = float32(*req.RepeatPenalty)
	}
	if req.Seed != nil {
		opt.Seed = uint64(*req.Seed)
	} else {
		opt.Seed = uint64(time.Now().UnixNano())
	}
	if len(req.Stop) > 0 && string(req.Stop) != "null" {
		var one string
		if json.Unmarshal(req.Stop, &one) == nil {
			opt.Stop = []string{one}
		} else if err := json.Unmarshal(req.Stop, &opt.Stop); err != nil {
			return nil, nil, opt, badRequest("stop", "", "stop must be a string or an array of strings")
		}
	}
	if err := opt.Validate(); err != nil {
		var oe *option.Error
		name := ""
		if errors.As(err, &oe) {
			name = map[string]string{"temperature": "temperature", "topP": "top_p", "topK": "top_k", "minP": "min_p", "repeatPenalty": "repeat_penalty", "stop": "stop", "seed": "seed"}[oe.Spec.Name]
		}
		return nil, nil, opt, badRequest(name, "", "%v", err)
	}
	return &req, msgs, opt, nil
}

// content is a message's text: a string, or the text parts of an array.
func content(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("must be a string or an array of {type: \"text\", text}")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("a part of type %q: this model reads text only", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// acquire waits for the model, or returns an error when the queue is full
// or ctx ends.
func (h *Handler) acquire(ctx context.Context) *apiError {
	select {
	case h.run <- struct{}{}:
		return nil
	default:
	}
	h.mu.Lock()
	if h.waiting >= max(h.opt.Queue, 0) {
		h.mu.Unlock()
		return &apiError{status: http.StatusTooManyRequests, Msg: fmt.Sprintf("the server is busy: %d requests wait already; try again later", h.waiting), Type: "rate_limit_error"}
	}
	h.waiting++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.waiting--
		h.mu.Unlock()
	}()
	select {
	case h.run <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &apiError{status: http.StatusServiceUnavailable, Msg: "the request waited too long for the model: " + ctx.Err().Error(), Type: "server_error"}
	}
}

var finishReasons = map[string]string{engine.DoneEOS: "stop", engine.DoneStop: "stop", engine.DoneLength: "length", engine.DoneContext: "length"}

type usage struct {
	Prompt     int `json:"prompt_tokens"`
	Completion int `json:"completion_tokens"`
	Total      int `json:"total_tokens"`
	Details    struct {
		Cached int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// completions answers POST /v1/chat/completions, or /v1/completions when
// legacy is set.
func (h *Handler) completions(w http.ResponseWriter, r *http.Request, legacy bool) {
	req, msgs, opt, aerr := h.parse(w, r, legacy)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opt.Timeout)
	defer cancel()
	if aerr := h.acquire(ctx); aerr != nil {
		writeError(w, aerr)
		return
	}
	defer func() { <-h.run }()
	c, aerr := h.start(req, msgs, opt, legacy)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if req.Stream {
		c.stream(ctx, w)
	} else {
		c.write(ctx, w)
	}
}

// completion is one request's reply as it is generated and written, in
// the shapes of chat completions, or of legacy completions.
type completion struct {
	be              backend.Model
	legacy          bool
	id, name        string
	kind, chunkKind string
	created         int64
	echo            string // the prompt's text, for a legacy echo
	usage           usage
}

// start evaluates the request's prompt and returns its completion, ready
// to generate.
func (h *Handler) start(req *request, msgs []chat.Message, opt option.Options, legacy bool) (*completion, *apiError) {
	be := h.opt.Model
	var ids []int
	var err error
	param := "messages"
	if legacy {
		param = "prompt"
		if ids, err = be.Tokenize(msgs[0].Content); err == nil && len(ids) == 0 {
			err = errors.New("the prompt is empty and the model adds no BOS token")
		} else if err == nil && len(ids) > h.ctx-1 {
			err = fmt.Errorf("the prompt is %d tokens but the context of %d positions has room for %d beside the reply", len(ids), h.ctx, h.ctx-1)
		}
	} else {
		ids, _, err = be.Chat(msgs, true, req.Overflow, opt)
	}
	if err != nil {
		code := ""
		if strings.Contains(err.Error(), "tokens but the context") {
			code = "context_length_exceeded"
		}
		return nil, badRequest(param, code, "%v", err)
	}
	echo, err := be.PromptTokens(ids, opt)
	if err != nil {
		return nil, &apiError{status: http.StatusInternalServerError, Msg: err.Error(), Type: "server_error"}
	}
	c := &completion{be: be, legacy: legacy, name: h.opt.Name, created: time.Now().Unix()}
	if legacy && req.Echo {
		c.echo = echo
	}
	c.usage.Prompt, c.usage.Details.Cached = len(ids), be.Reused()
	c.id, c.kind, c.chunkKind = "chatcmpl-"+randomHex(), "chat.completion", "chat.completion.chunk"
	if legacy {
		c.id, c.kind, c.chunkKind = "cmpl-"+randomHex(), "text_completion", "text_completion"
	}
	return c, nil
}

// object is a response or a chunk of the kind with its one choice.
func (c *completion) object(kind string, choice map[string]any) map[string]any {
	choice["index"], choice["logprobs"] = 0, nil
	return map[string]any{"id": c.id, "object": kind, "created": c.created, "model": c.name, "choices": []any{choice}}
}

// finish returns the usage of the completion once it has ended, and its
// finish_reason.
func (c *completion) finish() (usage, string) {
	u := c.usage
	u.Completion = c.be.Generated()
	u.Total = u.Prompt + u.Completion
	return u, finishReasons[c.be.Done()]
}

// write generates the whole reply and writes it as one JSON response.
func (c *completion) write(ctx context.Context, w http.ResponseWriter) {
	var out strings.Builder
	out.WriteString(c.echo)
	for {
		if err := ctx.Err(); err != nil {
			writeError(w, &apiError{status: http.StatusServiceUnavailable, Msg: "the request took too long: " + err.Error(), Type: "server_error"})
			return
		}
		piece, err := c.be.Next()
		out.WriteString(piece)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, &apiError{status: http.StatusInternalServerError, Msg: err.Error(), Type: "server_error"})
			return
		}
	}
	u, reason := c.finish()
	choice := map[string]any{"message": map[string]any{"role": "assistant", "content": out.String()}}
	if c.legacy {
		choice = map[string]any{"text": out.String()}
	}
	choice["finish_reason"] = reason
	resp := c.object(c.kind, choice)
	resp["usage"] = u
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// stream generates the reply as Server-Sent Events, a chunk per piece of
// text, the usage in the last, then [DONE].
func (c *completion) stream(ctx context.Context, w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	flusher, _ := w.(http.Flusher)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	// delta is a chunk's choice with the text t.
	delta := func(t string) map[string]any {
		if c.legacy {
			return map[string]any{"text": t, "finish_reason": nil}
		}
		return map[string]any{"delta": map[string]any{"content": t}, "finish_reason": nil}
	}
	first := map[string]any{"delta": map[string]any{"role": "assistant", "content": c.echo}, "finish_reason": nil}
	if c.legacy {
		first = delta(c.echo)
	}
	if (!c.legacy || c.echo != "") && send(c.object(c.chunkKind, first)) != nil {
		return
	}
	for {
		if err := ctx.Err(); err != nil {
			// The client went away, or the time is up: the model is free
			// for the next request.
			send(map[string]any{"error": &apiError{Msg: "the request took too long or was cancelled: " + err.Error(), Type: "server_error"}})
			return
		}
		piece, err := c.be.Next()
		if piece != "" && send(c.object(c.chunkKind, delta(piece))) != nil {
			return
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			send(map[string]any{"error": &apiError{Msg: err.Error(), Type: "server_error"}})
			return
		}
	}
	u, reason := c.finish()
	end := map[string]any{"delta": map[string]any{}, "finish_reason": reason}
	if c.legacy {
		end = map[string]any{"text": "", "finish_reason": reason}
	}
	last := c.object(c.chunkKind, end)
	last["usage"] = u
	if send(last) != nil {
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func randomHex() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package chatapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/internal/synth"
	"wisp/wasm/backend"
)

var chatModel []byte

func open(t *testing.T) backend.Model {
	t.Helper()
	if chatModel == nil {
		var err error
		chatModel, err = synth.Bytes(synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 400, ContextLen: 512, RopeBase: 10000, Tied: true},
			synth.Options{Type: gguf.F16, Seed: 8, ChatML: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	m, err := backend.Open(context.Background(), backend.Config{Runtime: "native"}, chatModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func server(t *testing.T, opt Options) (*Handler, *httptest.Server) {
	t.Helper()
	if opt.Model == nil {
		opt.Model = open(t)
	}
	opt.Name = "chat"
	h, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

type response struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Text  *string `json:"text"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		Prompt     int `json:"prompt_tokens"`
		Completion int `json:"completion_tokens"`
		Total      int `json:"total_tokens"`
		Details    struct {
			Cached int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func post(t *testing.T, url, body string) (int, response) {
	t.Helper()
	return postTo(t, url+"/v1/chat/completions", body)
}

func postTo(t *testing.T, url, body string) (int, response) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c response
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return resp.StatusCode, c
}

// stream posts a streaming request and returns its chunks.
func stream(t *testing.T, url, body string) []response {
	t.Helper()
	return streamFrom(t, url+"/v1/chat/completions", body)
}

func streamFrom(t *testing.T, url, body string) []response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var out []response
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || done {
			t.Fatalf("line %q (after [DONE]: %v)", line, done)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c response
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if !done {
		t.Error("the stream did not end with [DONE]")
	}
	return out
}

const turn1 = `{"model":"chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"}],"max_tokens":12,"temperature":0.8,"seed":4}`

func TestCompletion(t *testing.T) {
	_, srv := server(t, Options{Context: 300})
	code, c := post(t, srv.URL, turn1)
	if code != 200 || c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Model != "chat" || len(c.Choices) != 1 {
		t.Fatalf("%d %+v", code, c)
	}
	ch := c.Choices[0]
	if ch.Message.Role != "assistant" || ch.FinishReason == nil || (*ch.FinishReason != "stop" && *ch.FinishReason != "length") {
		t.Errorf("choice %+v", ch)
	}
	u := c.Usage
	if u == nil || u.Completion == 0 || u.Completion > 12 || u.Total != u.Prompt+u.Completion || u.Details.Cached != 0 {
		t.Errorf("usage %+v", u)
	}
	reply := ch.Message.Content

	// The next turn reuses the cache: at least the whole last prompt.
	next := `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"},{"role":"assistant","content":` + quote(reply) + `},{"role":"user","content":"more <|im_end|>"}],"max_tokens":12,"temperature":0.8,"seed":4}`
	code, c2 := post(t, srv.URL, next)
	if code != 200 || c2.Usage.Details.Cached < u.Prompt || c2.Usage.Details.Cached >= c2.Usage.Prompt {
		t.Fatalf("the second turn: %d, usage %+v after a prompt of %d", code, c2.Usage, u.Prompt)
	}
	// ...and replies as a server without the cache does.
	_, fresh := server(t, Options{Context: 300})
	_, c3 := post(t, fresh.URL, next)
	if c3.Choices[0].Message.Content != c2.Choices[0].Message.Content || c3.Usage.Details.Cached != 0 {
		t.Errorf("with the cache %q, without %q (cached %d)", c2.Choices[0].Message.Content, c3.Choices[0].Message.Content, c3.Usage.Details.Cached)
	}

	// Streamed, the same text: a role, the pieces, the end with usage.
	chunks := stream(t, srv.URL, strings.Replace(turn1, `"max_tokens"`, `"stream":true,"stream_options":{"include_usage":true},"max_tokens"`, 1))
	if len(chunks) < 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var text strings.Builder
	for i, k := range chunks {
		if k.Object != "chat.completion.chunk" || k.ID != chunks[0].ID || len(k.Choices) != 1 {
			t.Fatalf("chunk %d: %+v", i, k)
		}
		d := k.Choices[0].Delta
		switch {
		case i == 0:
			if d.Role == nil || *d.Role != "assistant" || k.Choices[0].FinishReason != nil {
				t.Errorf("first chunk %+v", k)
			}
		case i == len(chunks)-1:
			if d.Content != nil || k.Choices[0].FinishReason == nil || *k.Choices[0].FinishReason != *ch.FinishReason || k.Usage == nil || k.Usage.Completion != u.Completion {
				t.Errorf("last chunk %+v", k)
			}
		default:
			if d.Content == nil || k.Choices[0].FinishReason != nil || k.Usage != nil {
				t.Errorf("chunk %d: %+v", i, k)
			}
			text.WriteString(*d.Content)
		}
	}
	if text.String() != reply {
		t.Errorf("streamed %q, not streamed %q", text.String(), reply)
	}

	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var models struct {
		Object string `json:"object"`
		Data   []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "chat" {
		t.Errorf("/v1/models: %+v", models)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBadRequests: each gets a JSON error that says what is wrong, and the
// server goes on serving.
func TestBadRequests(t *testing.T) {
	_, srv := server(t, Options{Context: 128, MaxBody: 4096})
	long := strings.Repeat("many words here ", 300)
	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"messages": [`, 400, "not the JSON"},
		{`{"messages": []}`, 400, "messages is missing"},
		{`{"messages": [{"role": "wizard", "content": "hi"}]}`, 400, `role "wizard"`},
		{`{"messages": [{"role": "user", "content": 5}]}`, 400, "messages[0].content"},
		{`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000000000}`, 400, "max_tokens = 1000000000 is out of range: at most the context of 128"},
		{`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}`, 400, "max_tokens = -1"},
		{`{"messages": [{"role": "user", "content": "hi"}], "temperature": -2}`, 400, "temperature = -2"},
		{`{"messages": [{"role": "user", "content": "hi"}], "n": 3}`, 400, "n = 3"},
		{`{"messages": [{"role": "user", "content": "hi"}], "stop": 7}`, 400, "stop must be"},
		{`{"messages": [{"role": "user", "content": ` + quote(long[:3000]) + `}], "max_tokens": 16}`, 400, "context of 128 positions"},
		{`{"messages": [{"role": "user", "content": ` + quote(long) + `}]}`, 413, "larger than 4096 bytes"},
	} {
		code, resp := post(t, srv.URL, c.body)
		if code != c.status || resp.Error == nil || !strings.Contains(resp.Error.Message, c.want) {
			t.Errorf("%.60s: %d %+v; want %d and %q", c.body, code, resp.Error, c.status, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /v1/chat/completions: %d", resp.StatusCode)
	}
	if code, c := post(t, srv.URL, turn1); code != 200 || c.Usage == nil {
		t.Errorf("a good request after the bad ones: %d %+v", code, c.Error)
	}
}

// TestBusyAndDisconnect: a request that finds the queue full gets 429; a
// client that goes away mid-stream frees the model for the next.
func TestBusyAndDisconnect(t *testing.T) {
	h, srv := server(t, Options{Context: 500, Queue: -1})
	h.run <- struct{}{} // a request runs
	code, c := post(t, srv.URL, turn1)
	if code != 429 || c.Error == nil || c.Error.Type != "rate_limit_error" {
		t.Errorf("busy: %d %+v", code, c.Error)
	}
	<-h.run

	// A model slow enough that the client leaves long before the reply's end.
	slowData, err := synth.Bytes(synth.Shapes()["stories15M"], synth.Options{Type: gguf.F16, Seed: 1, ChatML: true})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := backend.Open(context.Background(), backend.Config{Runtime: "native"}, slowData)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	h, srv = server(t, Options{Model: slow, Context: 256})
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":240,"temperature":0}`
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	for chunks := 0; chunks < 4; { // the role, then three pieces of text
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			chunks++
		}
	}
	cancel()
	io.Copy(io.Discard, r)
	resp.Body.Close()
	// The generation stops: the model is free before the reply's end.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if len(h.run) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the model is still busy after the client left")
		}
	}
	t.Logf("the reply stopped after %d tokens", slow.Generated())
	if n := slow.Generated(); slow.Done() != "" || n < 3 || n >= 240 {
		t.Errorf("after the client left mid-stream the reply went on: %d tokens, done %q", n, slow.Done())
	}
	// A request that takes longer than the timeout gets a JSON error, and
	// frees the model.
	_, quick := server(t, Options{Model: slow, Context: 256, Timeout: 30 * time.Millisecond})
	code, c = post(t, quick.URL, `{"messages":[{"role":"user","content":"hi"}],"max_tokens":240,"temperature":0}`)
	if code != 503 || c.Error == nil || !strings.Contains(c.Error.Message, "took too long") {
		t.Errorf("past the timeout: %d %+v", code, c.Error)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, c := post(t, srv.URL, turn1)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a disconnect: %d %+v", code, c.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTextCompletion: POST /v1/completions continues a prompt as a
// backend does, streamed or not, with the echo when asked.
func TestTextCompletion(t *testing.T) {
	be := open(t)
	_, srv := server(t, Options{Context: 300})
	body := `{"prompt": "the cat sat", "max_tokens": 10, "temperature": 0.7, "seed": 2}`
	code, c := postTo(t, srv.URL+"/v1/completions", body)
	if code != 200 || c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || len(c.Choices) != 1 || c.Choices[0].Text == nil || c.Choices[0].FinishReason == nil {
		t.Fatalf("%d %+v", code, c)
	}
	if c.Usage == nil || c.Usage.Completion == 0 || c.Usage.Completion > 10 {
		t.Errorf("usage %+v", c.Usage)
	}
	// What the backend prints for the prompt with the same options.
	ids, err := be.Tokenize("the cat sat")
	if err != nil {
		t.Fatal(err)
	}
	echo, err := be.PromptTokens(ids, option.Options{Context: 300, MaxTokens: 10, Temperature: 0.7, TopP: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for {
		piece, err := be.Next()
		want.WriteString(piece)
		if err != nil {
			break
		}
	}
	if *c.Choices[0].Text != want.String() {
		t.Errorf("text %q, the backend %q", *c.Choices[0].Text, want.String())
	}
	_, e := postTo(t, srv.URL+"/v1/completions", strings.Replace(body, `"max_tokens"`, `"echo": true, "max_tokens"`, 1))
	if *e.Choices[0].Text != echo+want.String() {
		t.Errorf("with echo %q, want %q", *e.Choices[0].Text, echo+want.String())
	}
	var streamed strings.Builder
	chunks := streamFrom(t, srv.URL+"/v1/completions", strings.Replace(body, `"max_tokens"`, `"stream": true, "max_tokens"`, 1))
	for _, k := range chunks {
		if k.Object != "text_completion" || k.Choices[0].Text == nil {
			t.Fatalf("chunk %+v", k)
		}
		streamed.WriteString(*k.Choices[0].Text)
	}
	if last := chunks[len(chunks)-1]; last.Usage == nil || last.Choices[0].FinishReason == nil || streamed.String() != want.String() {
		t.Errorf("streamed %q, last chunk %+v", streamed.String(), last)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"prompt": 5}`, "prompt must be a string"},
		{`{"prompt": ["a", "b"]}`, "prompt must be a string"},
		{`{"prompt": "` + strings.Repeat("word ", 400) + `"}`, "context of 300 positions"},
	} {
		code, c := postTo(t, srv.URL+"/v1/completions", bad.body)
		if code != 400 || c.Error == nil || !strings.Contains(c.Error.Message, bad.want) {
			t.Errorf("%.40s: %d %+v", bad.body, code, c.Error)
		}
	}
}

package chat_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"wisp/engine/chat"
)

const dataDir = "../../testdata/chat"

type conversationTable struct {
	Templates map[string]struct {
		BOS string `json:"bos_token"`
		EOS string `json:"eos_token"`
	} `json:"templates"`
	Conversations []struct {
		Name     string `json:"name"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	} `json:"conversations"`
}

type fixture struct {
	Template string `json:"template"`
	Renderer string `json:"renderer"`
	BOS      string `json:"bos_token"`
	EOS      string `json:"eos_token"`
	Cases    []struct {
		Conversation        string  `json:"conversation"`
		AddGenerationPrompt bool    `json:"add_generation_prompt"`
		Output              *string `json:"output"`
		Error               *string `json:"error"`
	} `json:"cases"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func conversations(t *testing.T) (*conversationTable, map[string][]chat.Message) {
	t.Helper()
	var tab conversationTable
	readJSON(t, filepath.Join(dataDir, "conversations.json"), &tab)
	byName := map[string][]chat.Message{}
	for _, c := range tab.Conversations {
		var ms []chat.Message
		for _, m := range c.Messages {
			ms = append(ms, chat.Message{Role: m.Role, Content: m.Content})
		}
		byName[c.Name] = ms
	}
	return &tab, byName
}

func templateNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "templates", "*.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".jinja"))
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no templates in testdata/chat/templates")
	}
	return names
}

func parseFile(t *testing.T, name string) *chat.Template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dataDir, "templates", name+".jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := chat.Parse(string(src))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tmpl
}

// pythonDiffers lists the renderings where @huggingface/jinja (which made
// the fixtures) and Python's Jinja2 (which Hugging Face's
// apply_chat_template runs, and which engine/chat follows) disagree: the
// key is template/conversation, want is Python's output.
var pythonDiffers = map[string]struct{ want, why string }{
	// In Python '' != False is True (a str never equals a bool), so an
	// empty system message still opens the <<SYS>> block;
	// @huggingface/jinja compares '' and false as equal and leaves it out.
	"llama2/empty-system": {
		want: "<s>[INST] <<SYS>>\n\n<</SYS>>\n\nhi [/INST]",
		why:  "'' != false is True in Python",
	},
}

// TestFixtures renders every conversation of testdata/chat/conversations.json
// with every template and compares the text byte for byte with
// @huggingface/jinja's (testdata/chat/fixtures, made by
// tools/chatref/render.mjs), and errors from raise_exception by message.
func TestFixtures(t *testing.T) {
	tab, convs := conversations(t)
	for _, name := range templateNames(t) {
		t.Run(name, func(t *testing.T) {
			tmpl := parseFile(t, name)
			var fx fixture
			readJSON(t, filepath.Join(dataDir, "fixtures", name+".json"), &fx)
			if tok := tab.Templates[name]; fx.BOS != tok.BOS || fx.EOS != tok.EOS {
				t.Fatalf("fixture made with tokens %q %q, conversations.json has %q %q: remake the fixtures", fx.BOS, fx.EOS, tok.BOS, tok.EOS)
			}
			if len(fx.Cases) != 2*len(convs) {
				t.Fatalf("fixture has %d cases for %d conversations: remake the fixtures", len(fx.Cases), len(convs))
			}
			for _, c := range fx.Cases {
				msgs, ok := convs[c.Conversation]
				if !ok {
					t.Fatalf("fixture case %q is not in conversations.json: remake the fixtures", c.Conversation)
				}
				got, err := tmpl.Render(msgs, chat.Options{AddGenerationPrompt: c.AddGenerationPrompt, BOSToken: fx.BOS, EOSToken: fx.EOS})
				id := c.Conversation
				if c.AddGenerationPrompt {
					id += "+gen"
				}
				switch {
				case c.Error != nil:
					var ce *chat.Error
					if err == nil {
						t.Errorf("%s: rendered %q, want the error %q", id, got.String(), *c.Error)
					} else if !errors.As(err, &ce) || !ce.Raised || ce.Msg != *c.Error {
						t.Errorf("%s: error %v, want raise_exception(%q)", id, err, *c.Error)
					}
				case err != nil:
					t.Errorf("%s: %v", id, err)
				default:
					want := *c.Output
					if d, ok := pythonDiffers[name+"/"+c.Conversation]; ok {
						if want == d.want {
							t.Errorf("%s: @huggingface/jinja now renders as Python does (%s): drop the entry from pythonDiffers", id, d.why)
						}
						want = d.want
					}
					if s := got.String(); s != want {
						t.Errorf("%s:\n got %q\nwant %q", id, s, want)
					}
				}
			}
		})
	}
}

// TestFixturesLive remakes the fixtures with @huggingface/jinja itself
// when it is installed in build/chatref (make chat-fixtures installs it)
// and demands the committed files, so that they cannot drift from it.
func TestFixturesLive(t *testing.T) {
	dir := filepath.Join("..", "..", "build", "chatref")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@huggingface", "jinja", "package.json")); err != nil {
		t.Skip("@huggingface/jinja is not installed in build/chatref (make chat-fixtures installs it); the committed fixtures are checked by TestFixtures")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	out := t.TempDir()
	cmd := exec.Command(node, filepath.Join("..", "..", "tools", "chatref", "render.mjs"), "-jinja", dir, "-data", dataDir, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("render.mjs: %v\n%s", err, b)
	}
	for _, name := range templateNames(t) {
		got, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dataDir, "fixtures", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: @huggingface/jinja now renders differently from testdata/chat/fixtures/%s.json: run make chat-fixtures and find out why", name, name)
		}
	}
}

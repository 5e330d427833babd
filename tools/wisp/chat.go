package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/term"

	"wisp/engine/chat"
	"wisp/engine/option"
	"wisp/wasm/backend"
)

func chatCmd(args []string, stdout, stderr io.Writer) error {
	return chatSession(args, os.Stdin, stdout, stderr)
}

// lineReader reads the user's lines.
type lineReader interface {
	// ReadLine shows the prompt and returns the next line, or io.EOF.
	ReadLine() (string, error)
}

// plainLines reads lines from a pipe or a file, writing the prompt first.
type plainLines struct {
	sc    *bufio.Scanner
	write func(string) error
}

func (p *plainLines) ReadLine() (string, error) {
	if err := p.write("> "); err != nil {
		return "", err
	}
	if !p.sc.Scan() {
		if err := p.sc.Err(); err != nil {
			return "", err
		}
		p.write("\n")
		return "", io.EOF
	}
	return p.sc.Text(), nil
}

// termLines reads lines from a terminal with line editing and history
// (golang.org/x/term): the terminal is raw only while a line is read, so
// that replies print as usual and Ctrl-C interrupts them.
type termLines struct {
	fd int
	t  *term.Terminal
}

func (l *termLines) ReadLine() (string, error) {
	old, err := term.MakeRaw(l.fd)
	if err != nil {
		return "", err
	}
	defer term.Restore(l.fd, old)
	return l.t.ReadLine()
}

// newLineReader edits lines where in and out are one terminal, and reads
// plain lines elsewhere.
func newLineReader(in io.Reader, out io.Writer, write func(string) error) lineReader {
	fi, ok1 := in.(*os.File)
	fo, ok2 := out.(*os.File)
	if ok1 && ok2 && term.IsTerminal(int(fi.Fd())) && term.IsTerminal(int(fo.Fd())) {
		return &termLines{fd: int(fi.Fd()), t: term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{fi, fo}, "> ")}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &plainLines{sc: sc, write: write}
}

// chatConfig is what wisp chat's flags ask for.
type chatConfig struct {
	model, system, overflow string
	opt                     option.Options
	quiet                   bool
	runtimeFlags
}

// parseChatFlags reads wisp chat's flags.
func parseChatFlags(args []string, stderr io.Writer) (chatConfig, error) {
	var c chatConfig
	fs := newFlags("chat", "-m MODEL [--system TEXT] [flags]",
		`Holds a conversation with a model in the terminal: each line you type is a
user message, and the reply streams back. The conversation is rendered with the
model's chat template (its GGUF's tokenizer.chat_template, or ChatML for a
model without one), and the model keeps its key/value cache between turns, so
each turn evaluates only its new tokens. /reset starts the conversation over
(keeping the system prompt), /exit (or the end of input, Ctrl-D) ends it.
In a terminal, lines can be edited and Up recalls earlier ones; Ctrl-C stops
a reply. Statistics go to stderr.`, stderr)
	fs.StringVar(&c.model, "m", "", "the model: a GGUF file")
	fs.StringVar(&c.system, "system", "", "the system prompt (default: none)")
	maxTokens := fs.Int("n", 256, "tokens per reply at most; 0: until the context is full")
	ctxFlag := fs.Int("ctx", 0, "positions of the conversation's context; 0 means the model's context length")
	fs.StringVar(&c.overflow, "overflow", chat.OverflowError, `a conversation longer than the context: "error" (say so; /reset to go on) or "drop-oldest" (drop the oldest turns after the system prompt)`)
	storeOptions := option.Flags(fs, &c.opt)
	fs.BoolVar(&c.quiet, "q", false, "print no statistics to stderr")
	c.runtimeFlags.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return c, err
	}
	storeOptions()
	if c.model == "" && len(pos) == 1 {
		c.model, pos = pos[0], nil
	}
	if len(pos) > 0 || c.model == "" {
		fs.Usage()
		return c, errUsage
	}
	if c.overflow != chat.OverflowError && c.overflow != chat.OverflowDropOldest {
		return c, fmt.Errorf("--overflow %q: choose %q or %q", c.overflow, chat.OverflowError, chat.OverflowDropOldest)
	}
	if c.opt.Seed == 0 {
		c.opt.Seed = uint64(time.Now().UnixNano())
	}
	c.opt.MaxTokens, c.opt.Context = *maxTokens, *ctxFlag
	// ChatML's markers end a reply also where they are text.
	c.opt.Stop = append(c.opt.Stop, "<|im_end|>", "<|im_start|>")
	if err := c.opt.Validate(); err != nil {
		return c, flagError(err)
	}
	return c, nil
}

// chatSession is wisp chat reading the user's lines from in.
func chatSession(args []string, in io.Reader, stdout, stderr io.Writer) error {
	c, err := parseChatFlags(args, stderr)
	if err != nil {
		return err
	}
	be, err := c.openBackend(c.model, "", stderr)
	if err != nil {
		return err
	}
	defer be.Close()

	out := bufio.NewWriter(stdout)
	write := func(s string) error {
		if _, err := out.WriteString(s); err != nil {
			return err
		}
		return out.Flush()
	}
	conv := newConversation(be, c.system, c.overflow, c.opt)
	if !c.quiet {
		fmt.Fprintln(stderr, "/reset starts over, /exit ends.")
	}
	lines := newLineReader(in, stdout, write)
	interrupt := make(chan os.Signal, 1)
	defer signal.Stop(interrupt)
	for {
		text, err := lines.ReadLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		line := strings.TrimSpace(text)
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		case "/reset":
			if err := conv.reset(); err != nil {
				return err
			}
			if err := write("(a new conversation)\n"); err != nil {
				return err
			}
			continue
		}
		// Ctrl-C stops a reply, not the conversation.
		signal.Notify(interrupt, os.Interrupt)
		st, err := conv.turn(line, write, func() bool { return len(interrupt) > 0 })
		signal.Stop(interrupt)
		for len(interrupt) > 0 {
			<-interrupt
		}
		var refused *turnError
		if errors.As(err, &refused) {
			fmt.Fprintf(stderr, "wisp chat: %v\n", refused.err)
			continue
		}
		if err != nil {
			return err
		}
		if err := write("\n"); err != nil {
			return err
		}
		if !c.quiet {
			fmt.Fprintln(stderr, st)
		}
	}
}

// conversation is a chat's messages and the model that keeps their cache.
type conversation struct {
	be       backend.Model
	start    []chat.Message // the system prompt, if any
	msgs     []chat.Message
	overflow string
	opt      option.Options
}

// newConversation starts a conversation with the system prompt, if any.
func newConversation(be backend.Model, system, overflow string, opt option.Options) *conversation {
	c := &conversation{be: be, overflow: overflow, opt: opt}
	if system != "" {
		c.start = []chat.Message{{Role: "system", Content: system}}
	}
	c.msgs = append([]chat.Message(nil), c.start...)
	return c
}

// reset starts the conversation over, keeping the system prompt.
func (c *conversation) reset() error {
	c.msgs = append(c.msgs[:0], c.start...)
	return c.be.Reset()
}

// turnError is a turn the model refused (its prompt did not fit, say):
// the conversation is as it was, and can go on.
type turnError struct{ err error }

func (e *turnError) Error() string { return e.err.Error() }

// turnStats is what one turn cost.
type turnStats struct {
	prompt, reused, generated, dropped int
	prefill, reply                     time.Duration
	done                               string
}

// String is the line wisp chat prints to stderr after a reply.
func (s turnStats) String() string {
	line := fmt.Sprintf("[prompt %d tokens, %d reused, %d evaluated in %.0f ms; reply %d tokens, %.1f tok/s, %s", s.prompt, s.reused, s.prompt-s.reused, ms(s.prefill), s.generated, rate(s.generated, s.reply), s.done)
	if s.dropped > 0 {
		line += fmt.Sprintf("; %d oldest messages dropped", s.dropped)
	}
	return line + "]"
}

// turn adds the user's line, streams the reply through write until it
// ends or stopped says so, and keeps the reply in the conversation.
func (c *conversation) turn(line string, write func(string) error, stopped func() bool) (turnStats, error) {
	var st turnStats
	c.msgs = append(c.msgs, chat.Message{Role: "user", Content: line})
	ids, dropped, err := c.be.Chat(c.msgs, true, c.overflow, c.opt)
	if err != nil {
		c.msgs = c.msgs[:len(c.msgs)-1]
		return st, &turnError{err}
	}
	if dropped > 0 {
		// Drop them from the conversation for good: the next turn
		// then starts where this one's cache does.
		c.msgs = append(c.msgs[:len(c.start)], c.msgs[len(c.start)+dropped:]...)
	}
	t0 := time.Now()
	if _, err := c.be.PromptTokens(ids, c.opt); err != nil {
		c.msgs = c.msgs[:len(c.msgs)-1]
		return st, &turnError{err}
	}
	st.prefill = time.Since(t0)
	t1 := time.Now()
	var reply strings.Builder
	interrupted := false
	for {
		if stopped() {
			interrupted = true
			break
		}
		piece, err := c.be.Next()
		reply.WriteString(piece)
		if werr := write(piece); werr != nil {
			return st, werr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
	}
	st.reply = time.Since(t1)
	c.msgs = append(c.msgs, chat.Message{Role: "assistant", Content: reply.String()})
	st.prompt, st.reused, st.generated, st.dropped = len(ids), c.be.Reused(), c.be.Generated(), dropped
	st.done = c.be.Done()
	if interrupted {
		st.done = "stopped"
	}
	return st, nil
}

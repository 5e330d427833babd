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

// chatSession is wisp chat reading the user's lines from in.
func chatSession(args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("chat", "-m MODEL [--system TEXT] [flags]",
		`Holds a conversation with a model in the terminal: each line you type is a
user message, and the reply streams back. The conversation is rendered with the
model's chat template (its GGUF's tokenizer.chat_template, or ChatML for a
model without one), and the model keeps its key/value cache between turns, so
each turn evaluates only its new tokens. /reset starts the conversation over
(keeping the system prompt), /exit (or the end of input, Ctrl-D) ends it.
In a terminal, lines can be edited and Up recalls earlier ones; Ctrl-C stops
a reply. Statistics go to stderr.`, stderr)
	model := fs.String("m", "", "the model: a GGUF file")
	system := fs.String("system", "", "the system prompt (default: none)")
	maxTokens := fs.Int("n", 256, "tokens per reply at most; 0: until the context is full")
	ctxFlag := fs.Int("ctx", 0, "positions of the conversation's context; 0 means the model's context length")
	overflow := fs.String("overflow", chat.OverflowError, `a conversation longer than the context: "error" (say so; /reset to go on) or "drop-oldest" (drop the oldest turns after the system prompt)`)
	var opt option.Options
	storeOptions := option.Flags(fs, &opt)
	quiet := fs.Bool("q", false, "print no statistics to stderr")
	runtime, wasmPath, threads := runtimeFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	storeOptions()
	if *model == "" && len(pos) == 1 {
		*model, pos = pos[0], nil
	}
	if len(pos) > 0 || *model == "" {
		fs.Usage()
		return errUsage
	}
	if *overflow != chat.OverflowError && *overflow != chat.OverflowDropOldest {
		return fmt.Errorf("--overflow %q: choose %q or %q", *overflow, chat.OverflowError, chat.OverflowDropOldest)
	}
	if opt.Seed == 0 {
		opt.Seed = uint64(time.Now().UnixNano())
	}
	opt.MaxTokens, opt.Context = *maxTokens, *ctxFlag
	// ChatML's markers end a reply also where they are text.
	opt.Stop = append(opt.Stop, "<|im_end|>", "<|im_start|>")
	if err := opt.Validate(); err != nil {
		return flagError(err)
	}
	be, err := openBackend(*runtime, *model, "", *wasmPath, *threads, stderr)
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
	var start []chat.Message
	if *system != "" {
		start = append(start, chat.Message{Role: "system", Content: *system})
	}
	msgs := append([]chat.Message(nil), start...)
	if !*quiet {
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
			msgs = append(msgs[:0], start...)
			if err := be.Reset(); err != nil {
				return err
			}
			if err := write("(a new conversation)\n"); err != nil {
				return err
			}
			continue
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: line})
		ids, dropped, err := be.Chat(msgs, true, *overflow, opt)
		if err != nil {
			msgs = msgs[:len(msgs)-1]
			fmt.Fprintf(stderr, "wisp chat: %v\n", err)
			continue
		}
		if dropped > 0 {
			// Drop them from the conversation for good: the next turn
			// then starts where this one's cache does.
			msgs = append(msgs[:len(start)], msgs[len(start)+dropped:]...)
		}
		t0 := time.Now()
		if _, err := be.PromptTokens(ids, opt); err != nil {
			msgs = msgs[:len(msgs)-1]
			fmt.Fprintf(stderr, "wisp chat: %v\n", err)
			continue
		}
		prefill := time.Since(t0)
		t1 := time.Now()
		var reply strings.Builder
		// Ctrl-C stops a reply, not the conversation.
		signal.Notify(interrupt, os.Interrupt)
		stopped := false
		for {
			select {
			case <-interrupt:
				stopped = true
			default:
			}
			if stopped {
				break
			}
			piece, err := be.Next()
			reply.WriteString(piece)
			if werr := write(piece); werr != nil {
				return werr
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		signal.Stop(interrupt)
		for len(interrupt) > 0 {
			<-interrupt
		}
		if err := write("\n"); err != nil {
			return err
		}
		msgs = append(msgs, chat.Message{Role: "assistant", Content: reply.String()})
		if !*quiet {
			reused := be.Reused()
			done := be.Done()
			if stopped {
				done = "stopped"
			}
			fmt.Fprintf(stderr, "[prompt %d tokens, %d reused, %d evaluated in %.0f ms; reply %d tokens, %.1f tok/s, %s", len(ids), reused, len(ids)-reused, ms(prefill), be.Generated(), rate(be.Generated(), time.Since(t1)), done)
			if dropped > 0 {
				fmt.Fprintf(stderr, "; %d oldest messages dropped", dropped)
			}
			fmt.Fprintln(stderr, "]")
		}
	}
}

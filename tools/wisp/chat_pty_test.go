//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skip(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skip(err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Skip(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

// TestChatTerminal drives wisp chat in a pseudo-terminal: a line edited
// with the arrow keys, then recalled from the history with Up, give the
// conversation that the same lines piped in give.
func TestChatTerminal(t *testing.T) {
	data, err := synth.Bytes(synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 400, ContextLen: 512, RopeBase: 10000, Tied: true},
		synth.Options{Type: gguf.F16, Seed: 2, ChatML: true})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "chat.gguf")
	if err := os.WriteFile(model, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-m", model, "-n", "8", "-t", "0.8", "--seed", "5"}
	stats := regexp.MustCompile(`\[prompt \d+ tokens, \d+ reused, \d+ evaluated`)

	var pipedErr bytes.Buffer
	if err := chatSession(args, strings.NewReader("hello world\nhello world\n"), io.Discard, &pipedErr); err != nil {
		t.Fatal(err)
	}
	want := stats.FindAllString(pipedErr.String(), -1)

	master, slave := openPTY(t)
	screen := &syncBuffer{}
	read := make(chan struct{})
	go func() {
		io.Copy(screen, master)
		close(read)
	}()
	ttyErr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- chatSession(args, slave, slave, ttyErr) }()
	// "helo world", the cursor back 7 places, "l": "hello world". Then Up
	// recalls it. Ctrl-D ends. Each line is typed at its prompt, while the
	// terminal is raw.
	for i, line := range []string{"helo world\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dl\r", "\x1b[A\r", "\x04"} {
		for deadline := time.Now().Add(30 * time.Second); strings.Count(screen.String(), "> ") <= i; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no prompt %d; screen %q, stderr %q", i+1, screen.String(), ttyErr.String())
			}
		}
		time.Sleep(50 * time.Millisecond) // the prompt is written just before the terminal goes raw
		if _, err := master.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("wisp chat did not end; screen %q, stderr %q", screen.String(), ttyErr.String())
	}
	got := stats.FindAllString(ttyErr.String(), -1)
	if len(want) != 2 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("in the terminal %q\npiped %q\nscreen %q", got, want, screen.String())
	}
	slave.Close()
	master.Close()
	<-read
}

// syncBuffer is a bytes.Buffer for one writer and one reader at a time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

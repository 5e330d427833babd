// Command wisp runs, inspects and prepares small language models: the
// native half of wisp, whose engine also runs in a web page as WebAssembly.
//
// Usage:
//
//	wisp run -m MODEL [-z TOKENIZER] [-p PROMPT] [-n STEPS] [-t TEMP] ...
//	wisp chat -m MODEL [--system TEXT] [-n MAX_TOKENS] [--ctx N] ...
//	wisp tokenize -m MODEL_OR_VOCAB.gguf [--bos] -- TEXT
//	wisp convert -o OUT.gguf [--type f32|f16] MODEL [-z TOKENIZER]
//	wisp prune -m MODEL -o OUT.gguf --calib TEXT [--params RATIO] ...
//	wisp train --train TEXT --eval TEXT -o OUT.gguf [--vocab N --dim D ...]
//	wisp distil --teacher MODEL [--student MODEL] --train TEXT -o OUT.gguf
//	wisp eval -m MODEL --text FILE [--ref REFERENCE] [--json]
//	wisp synth -o OUT.gguf --shape NAME [--type f32|f16]
//	wisp serve [--addr 127.0.0.1:8080] [--site site] [--models models] [--model MODEL]
//
// Run "wisp COMMAND --help" for the flags of each command.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// A command is one subcommand of wisp.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "generate text from a model", runCmd},
		{"chat", "hold a conversation with a model in the terminal", chatCmd},
		{"tokenize", "print the token ids of a text", tokenizeCmd},
		{"convert", "convert a Hugging Face folder, a llama2.c checkpoint or a GGUF file to GGUF (F32, F16, BF16 or quantized)", convertCmd},
		{"prune", "remove whole FFN neurons, attention heads and layers, by importance on calibration text", pruneCmd},
		{"train", "train a model from a text corpus on the CPU", trainCmd},
		{"distil", "train a student on a teacher's output distributions", distilCmd},
		{"eval", "measure perplexity, or KL divergence and agreement against a reference", evalCmd},
		{"synth", "write a model of random weights with a given shape", synthCmd},
		{"serve", "serve the page and a folder of models over HTTP", serveCmd},
	}
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs wisp with the arguments after the program name and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "wisp %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "wisp: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage reports bad flags, whose message the flag package has printed.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "wisp runs small language models natively and prepares them for the web page.")
	fmt.Fprintln(w, "\nUsage: wisp COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'wisp COMMAND --help' for the flags of a command.")
}

// newFlags returns a flag set that prints a usage line and the flags.
func newFlags(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wisp %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere among the arguments (not only before the
// first positional one, as the flag package does) and returns the
// positional arguments. Everything after "--" is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, rest...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// Command chatgen turns the King James Bible into chat conversations for
// fine-tuning a chat model (wisp train --chat): questions that name a book,
// chapter and verse, answered with the verses; questions that quote a verse,
// answered with its reference; and a few turns that ask for the next verse.
// Some conversations start with a system prompt.
//
// It reads the text `bible -f` prints (one verse a line, "Ge1:1 In the
// beginning ...", the books in canonical order) and writes two files of
// JSON lines, one conversation a line, in the shape OpenAI's chat API takes:
//
//	{"messages":[{"role":"user","content":"Recite Genesis 1:1."},{"role":"assistant","content":"In the beginning ..."}]}
//
// The books named by -held (the abbreviations `bible -f` prints) go only to
// the evaluation file, all others only to the training file, so that the
// evaluation is on text the model never trained on. The output depends only
// on the input and -seed.
//
// Usage: chatgen [-seed N] [-train-n N] [-eval-n N] -held "Ruth Eccl ..." -train OUT -eval OUT < kjv-all.txt
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// books are the 66 books in canonical order: the abbreviation `bible -f`
// prints, the book's name, and the name of one of its chapters (Psalm 23,
// not Psalms 23).
var books = []struct{ abbr, name, chapter string }{
	{"Ge", "Genesis", ""}, {"Exo", "Exodus", ""}, {"Lev", "Leviticus", ""}, {"Num", "Numbers", ""},
	{"Deu", "Deuteronomy", ""}, {"Josh", "Joshua", ""}, {"Jdgs", "Judges", ""}, {"Ruth", "Ruth", ""},
	{"1Sm", "1 Samuel", ""}, {"2Sm", "2 Samuel", ""}, {"1Ki", "1 Kings", ""}, {"2Ki", "2 Kings", ""},
	{"1Chr", "1 Chronicles", ""}, {"2Chr", "2 Chronicles", ""}, {"Ezra", "Ezra", ""}, {"Neh", "Nehemiah", ""},
	{"Est", "Esther", ""}, {"Job", "Job", ""}, {"Psa", "Psalms", "Psalm"}, {"Prv", "Proverbs", ""},
	{"Eccl", "Ecclesiastes", ""}, {"SSol", "Song of Solomon", ""}, {"Isa", "Isaiah", ""}, {"Jer", "Jeremiah", ""},
	{"Lam", "Lamentations", ""}, {"Eze", "Ezekiel", ""}, {"Dan", "Daniel", ""}, {"Hos", "Hosea", ""},
	{"Joel", "Joel", ""}, {"Amos", "Amos", ""}, {"Obad", "Obadiah", ""}, {"Jonah", "Jonah", ""},
	{"Mic", "Micah", ""}, {"Nahum", "Nahum", ""}, {"Hab", "Habakkuk", ""}, {"Zep", "Zephaniah", ""},
	{"Hag", "Haggai", ""}, {"Zec", "Zechariah", ""}, {"Mal", "Malachi", ""}, {"Mat", "Matthew", ""},
	{"Mark", "Mark", ""}, {"Luke", "Luke", ""}, {"John", "John", ""}, {"Acts", "Acts", ""},
	{"Rom", "Romans", ""}, {"1Cor", "1 Corinthians", ""}, {"2Cor", "2 Corinthians", ""}, {"Gal", "Galatians", ""},
	{"Eph", "Ephesians", ""}, {"Phi", "Philippians", ""}, {"Col", "Colossians", ""}, {"1Th", "1 Thessalonians", ""},
	{"2Th", "2 Thessalonians", ""}, {"1Tim", "1 Timothy", ""}, {"2Tim", "2 Timothy", ""}, {"Titus", "Titus", ""},
	{"Phmn", "Philemon", ""}, {"Heb", "Hebrews", ""}, {"Jas", "James", ""}, {"1Pet", "1 Peter", ""},
	{"2Pet", "2 Peter", ""}, {"1Jn", "1 John", ""}, {"2Jn", "2 John", ""}, {"3Jn", "3 John", ""},
	{"Jude", "Jude", ""}, {"Rev", "Revelation", ""},
}

// verse is one verse of the text.
type verse struct {
	book, chapter, verse int // book index into books; chapter and verse from 1
	text                 string
}

var refRE = regexp.MustCompile(`^([1-3]?[A-Za-z]+)([0-9]+):([0-9]+)$`)

// parse reads the output of bible -f.
func parse(r io.Reader) ([]verse, error) {
	index := map[string]int{}
	for i, b := range books {
		index[b.abbr] = i
	}
	var vs []verse
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		ref, text, _ := strings.Cut(line, " ")
		m := refRE.FindStringSubmatch(ref)
		if m == nil {
			return nil, fmt.Errorf("line %d has no verse reference: %.40q", n, line)
		}
		b, ok := index[m[1]]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown book %q", n, m[1])
		}
		c, _ := strconv.Atoi(m[2])
		v, _ := strconv.Atoi(m[3])
		text = strings.Join(strings.Fields(text), " ")
		if text == "" {
			continue
		}
		vs = append(vs, verse{b, c, v, text})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, errors.New("no verses in the input")
	}
	return vs, nil
}

// Message and Conversation are the JSON written, one conversation a line.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Conversation struct {
	Messages []Message `json:"messages"`
}

// maxAnswer bounds the characters of an answer of several verses, so that a
// whole conversation stays well inside a context of 256 tokens.
const maxAnswer = 420

var systems = []string{
	"You answer from the King James Bible.",
	"Answer briefly.",
	"You are a helpful assistant.",
	"Quote the King James Version.",
	"You know the scriptures.",
}

// gen makes conversations from the verses of some books.
type gen struct {
	vs  []verse // consecutive, in order
	rng *rand.Rand
	// chapterStart indexes the first verse of each chapter in vs.
	chapterStart []int
	bookStart    []int
}

func newGen(vs []verse, seed uint64) *gen {
	g := &gen{vs: vs, rng: rand.New(rand.NewPCG(seed, 0x6b6a76))}
	for i, v := range vs {
		if i == 0 || v.chapter != vs[i-1].chapter || v.book != vs[i-1].book {
			g.chapterStart = append(g.chapterStart, i)
		}
		if i == 0 || v.book != vs[i-1].book {
			g.bookStart = append(g.bookStart, i)
		}
	}
	return g
}

func chapterName(v verse) string {
	b := books[v.book]
	if b.chapter != "" {
		return b.chapter + " " + strconv.Itoa(v.chapter)
	}
	return b.name + " " + strconv.Itoa(v.chapter)
}

func ref(v verse) string { return chapterName(v) + ":" + strconv.Itoa(v.verse) }

func (g *gen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// sameChapter reports whether vs[i] and vs[j] are in one chapter.
func (g *gen) sameChapter(i, j int) bool {
	return j < len(g.vs) && g.vs[i].book == g.vs[j].book && g.vs[i].chapter == g.vs[j].chapter
}

// run returns the verses from i on, in its chapter, at most k of them and
// at most maxAnswer characters (always at least one).
func (g *gen) run(i, k int) []verse {
	out := []verse{g.vs[i]}
	n := len(g.vs[i].text)
	for j := i + 1; len(out) < k && g.sameChapter(i, j); j++ {
		if n+1+len(g.vs[j].text) > maxAnswer {
			break
		}
		n += 1 + len(g.vs[j].text)
		out = append(out, g.vs[j])
	}
	return out
}

func join(vs []verse) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.text
	}
	return strings.Join(parts, " ")
}

// opening returns the first words of s, about n of them, and an ellipsis
// when there are more.
func opening(s string, n int) string {
	w := strings.Fields(s)
	if len(w) <= n {
		return strings.TrimRight(s, ".,;:")
	}
	return strings.TrimRight(strings.Join(w[:n], " "), ".,;:") + "..."
}

// one returns one conversation.
func (g *gen) one() Conversation {
	var msgs []Message
	if g.rng.IntN(10) < 3 {
		msgs = append(msgs, Message{"system", g.pick(systems)})
	}
	ask := func(q, a string) {
		msgs = append(msgs, Message{"user", q}, Message{"assistant", a})
	}
	i := g.rng.IntN(len(g.vs))
	v := g.vs[i]
	switch k := g.rng.IntN(100); {
	case k < 35: // one verse by its reference
		q := g.pick([]string{"What does %s say?", "Recite %s.", "Quote %s.", "%s?", "What is written in %s?", "Read me %s."})
		ask(fmt.Sprintf(q, ref(v)), v.text)
	case k < 55: // a few verses
		vs := g.run(i, 2+g.rng.IntN(3))
		r := ref(v)
		if len(vs) > 1 {
			r += "-" + strconv.Itoa(vs[len(vs)-1].verse)
		}
		q := g.pick([]string{"Recite %s.", "What do %s say?", "Quote %s.", "Read %s."})
		ask(fmt.Sprintf(q, r), join(vs))
	case k < 70: // how a chapter begins
		c := g.chapterStart[g.rng.IntN(len(g.chapterStart))]
		vs := g.run(c, 1+g.rng.IntN(3))
		q := g.pick([]string{"What does %s say?", "How does %s begin?", "Recite the beginning of %s.", "Tell me %s."})
		ask(fmt.Sprintf(q, chapterName(g.vs[c])), join(vs))
	case k < 80: // where a verse is
		q := g.pick([]string{"Where is it written: %s", "Which verse says: %s", "Where does it say: %s"})
		a := g.pick([]string{"In %s.", "%s.", "It is written in %s."})
		ask(fmt.Sprintf(q, opening(v.text, 10)), fmt.Sprintf(a, ref(v)))
	case k < 85: // which book or chapter begins so
		if g.rng.IntN(2) == 0 {
			b := g.bookStart[g.rng.IntN(len(g.bookStart))]
			ask(fmt.Sprintf("Which book begins: %s?", opening(g.vs[b].text, 8)),
				fmt.Sprintf("The book of %s: %s", books[g.vs[b].book].name, g.vs[b].text))
		} else {
			c := g.chapterStart[g.rng.IntN(len(g.chapterStart))]
			ask(fmt.Sprintf("Which chapter begins: %s?", opening(g.vs[c].text, 8)),
				fmt.Sprintf("%s: %s", chapterName(g.vs[c]), g.vs[c].text))
		}
	case k < 93: // finish a verse
		w := strings.Fields(v.text)
		if len(w) < 6 {
			ask(fmt.Sprintf("Recite %s.", ref(v)), v.text)
			break
		}
		ask(fmt.Sprintf("Finish the verse: %s", strings.Join(w[:len(w)/2], " ")), v.text)
	default: // a verse, then the next ones
		ask(fmt.Sprintf(g.pick([]string{"What does %s say?", "Recite %s."}), ref(v)), v.text)
		for turns := 1 + g.rng.IntN(2); turns > 0 && g.sameChapter(i, i+1); turns-- {
			i++
			ask(g.pick([]string{"And the next verse?", "Go on.", "What comes next?"}), g.vs[i].text)
		}
	}
	return Conversation{msgs}
}

func write(path string, g *gen, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for range n {
		if err := enc.Encode(g.one()); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// split returns the verses of the books held out and the others.
func split(vs []verse, held []string) (train, eval []verse, err error) {
	out := map[int]bool{}
	for _, h := range held {
		found := false
		for i, b := range books {
			if b.abbr == h {
				out[i], found = true, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("-held: unknown book %q", h)
		}
	}
	for _, v := range vs {
		if out[v.book] {
			eval = append(eval, v)
		} else {
			train = append(train, v)
		}
	}
	if len(train) == 0 || len(eval) == 0 {
		return nil, nil, fmt.Errorf("%d training and %d held-out verses: want some of each", len(train), len(eval))
	}
	return train, eval, nil
}

func main() {
	seed := flag.Uint64("seed", 1, "random seed")
	trainN := flag.Int("train-n", 24000, "training conversations")
	evalN := flag.Int("eval-n", 1000, "held-out conversations")
	held := flag.String("held", "", "the books held out, as bible -f abbreviates them, separated by spaces")
	trainOut := flag.String("train", "", "the training conversations to write (JSON lines)")
	evalOut := flag.String("eval", "", "the held-out conversations to write (JSON lines)")
	flag.Parse()
	if err := mainErr(os.Stdin, *seed, *trainN, *evalN, *held, *trainOut, *evalOut); err != nil {
		fmt.Fprintln(os.Stderr, "chatgen:", err)
		os.Exit(1)
	}
}

func mainErr(in io.Reader, seed uint64, trainN, evalN int, held, trainOut, evalOut string) error {
	if trainOut == "" || evalOut == "" || held == "" {
		return errors.New("give -held, -train and -eval")
	}
	vs, err := parse(in)
	if err != nil {
		return err
	}
	tv, ev, err := split(vs, strings.Fields(held))
	if err != nil {
		return err
	}
	if err := write(trainOut, newGen(tv, seed), trainN); err != nil {
		return err
	}
	if err := write(evalOut, newGen(ev, seed+1), evalN); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "chatgen: %d training conversations from %d verses, %d held-out from %d\n", trainN, len(tv), evalN, len(ev))
	return nil
}

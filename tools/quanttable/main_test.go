package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

var tiny = []result{{
	Name: "tiny <model>", Text: "a text", Tokens: 100,
	Rows: []row{
		{Type: "f16", Bytes: 2_000_000, Params: 1_000_000, Perplexity: 10},
		{Type: "q8_0", Bytes: 1_062_500, Params: 1_000_000, Perplexity: 10.05},
		{Type: "q6_k", Bytes: 820_000, Params: 1_000_000, Perplexity: 10.15},
		{Type: "q4_0", Bytes: 562_500, Params: 1_000_000, Perplexity: 10.9},
	},
}}

func TestSmallest(t *testing.T) {
	r := tiny[0]
	if got := r.Smallest(0.02); got == nil || got.Type != "q6_k" {
		t.Errorf("Smallest(2 %%) = %+v, want q6_k (1.5 %% worse than F16)", got)
	}
	if got := r.Smallest(0); got.Type != "f16" {
		t.Errorf("Smallest(0) = %+v, want f16", got)
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	writeMarkdown(&b, tiny)
	for _, want := range []string{"| Q8_0 | 1.06 MB | 8.50 | 10.050 | +0.50 % |", "within 2 % of F16's perplexity: Q6_K"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPlotIsSVG(t *testing.T) {
	s := plot(tiny)
	d := xml.NewDecoder(strings.NewReader(s))
	circles, labels := 0, map[string]bool{}
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "circle" {
			circles++
		}
		if cd, ok := tok.(xml.CharData); ok {
			labels[string(cd)] = true
		}
	}
	if circles != len(tiny[0].Rows) {
		t.Errorf("%d points, want %d", circles, len(tiny[0].Rows))
	}
	for _, want := range []string{"Q4_0", "F16", "tiny <model>", "F16 + 2 %"} {
		if !labels[want] {
			t.Errorf("no label %q", want)
		}
	}
	if !strings.Contains(s, "&lt;model&gt;") {
		t.Error("the model's name is not escaped")
	}
}

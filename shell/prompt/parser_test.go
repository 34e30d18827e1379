package prompt

import (
	"reflect"
	"testing"

	goprompt "xenmanager/shell/prompt/third_party/goprompt"
)

// fakeParser returns the chunks a terminal delivered, one per Read.
type fakeParser struct {
	goprompt.ConsoleParser
	chunks [][]byte
}

func (f *fakeParser) Read() ([]byte, error) {
	if len(f.chunks) == 0 {
		return []byte{}, nil
	}
	c := f.chunks[0]
	f.chunks = f.chunks[1:]
	return c, nil
}

func TestKeyParserSplitsPastes(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"pasted lines run one by one", []string{"list Vm\rshow Vm name=a\r"}, []string{"list Vm", "\r", "show Vm name=a", "\r"}},
		{"arrow keys stay whole", []string{"\x1b[A\x1b[B"}, []string{"\x1b[A", "\x1b[B"}},
		{"control keys alone", []string{"ab\x03cd\x04"}, []string{"ab", "\x03", "cd", "\x04"}},
		{"alt and escape", []string{"\x1bb", "\x1b"}, []string{"\x1bb", "\x1b"}},
		{"utf-8 text", []string{"name=café\r"}, []string{"name=café", "\r"}},
		{"delete key sequence", []string{"\x1b[3~x"}, []string{"\x1b[3~", "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeParser{}
			for _, c := range tc.chunks {
				f.chunks = append(f.chunks, []byte(c))
			}
			p := &keyParser{ConsoleParser: f}
			var got []string
			for {
				b, _ := p.Read()
				if len(b) == 0 {
					break
				}
				got = append(got, string(b))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("keys = %q, want %q", got, tc.want)
			}
		})
	}
}

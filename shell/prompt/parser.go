package prompt

import (
	"bytes"

	goprompt "xenmanager/shell/prompt/third_party/goprompt"
)

// keyParser hands go-prompt one key at a time. go-prompt matches a whole
// read as one key, so a pasted "list Vm\rshow Vm\r" would be inserted as
// text and never run; split, each line is typed and each Enter runs it.
type keyParser struct {
	goprompt.ConsoleParser
	pending []byte
	wait    *waitFDs // nil: go-prompt polls as upstream does
}

func (p *keyParser) Read() ([]byte, error) {
	if len(p.pending) == 0 {
		b, err := p.ConsoleParser.Read()
		if err != nil || len(b) == 0 {
			return b, err
		}
		p.pending = b
	}
	n := nextKey(p.pending)
	key := p.pending[:n:n]
	p.pending = p.pending[n:]
	return key, nil
}

// nextKey returns the length of the first key in b: an escape sequence, a
// control byte, or a run of printable text.
func nextKey(b []byte) int {
	switch {
	case b[0] == 0x1b:
		// An escape sequence: ESC [ ... final byte, ESC O x, or ESC alone.
		if len(b) >= 2 && (b[1] == '[' || b[1] == 'O') {
			for i := 2; i < len(b); i++ {
				if b[i] >= 0x40 && b[i] <= 0x7e {
					return i + 1
				}
			}
			return len(b)
		}
		if len(b) >= 2 {
			return 2 // Alt+key
		}
		return 1
	case b[0] < 0x20 || b[0] == 0x7f:
		return 1
	}
	if i := bytes.IndexFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }); i > 0 {
		return i
	}
	return len(b)
}

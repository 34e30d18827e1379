package shell

import (
	"bytes"
	"io"
	"testing"
)

// Ctrl-C reaches the plain editor as Ctrl-E Ctrl-U, whatever the size of
// the reads; other bytes pass unchanged.
func TestCtrlCClears(t *testing.T) {
	for _, c := range []struct {
		in, want string
		bufSize  int
	}{
		{"list Vm\r", "list Vm\r", 64},
		{"sta\x03show\r", "sta\x05\x15show\r", 64},
		{"\x03\x03", "\x05\x15\x05\x15", 1},
		{"ab\x03", "ab\x05\x15", 3},
	} {
		r := &ctrlCClears{ReadWriter: &bufRW{Reader: bytes.NewReader([]byte(c.in))}}
		var got []byte
		buf := make([]byte, c.bufSize)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF && len(r.pending) == 0 {
				break
			}
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		if string(got) != c.want {
			t.Errorf("%q read %d at a time = %q, want %q", c.in, c.bufSize, got, c.want)
		}
	}
}

// bufRW reads from Reader and discards what is written.
type bufRW struct{ io.Reader }

func (b *bufRW) Write(p []byte) (int, error) { return len(p), nil }

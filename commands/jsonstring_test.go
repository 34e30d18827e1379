package commands

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\back`, "\x00\x1f\x7f\u0085\u2028\u2029", "caf\u00e9 \U0001F600", "bad\xff\xfe", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		jsonString(&b, s)
		out := b.String()
		var got string
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("jsonString(%q) = %s: not JSON: %v", s, out, err)
		}
		// Valid text comes back unchanged; invalid bytes come back as U+FFFD.
		if utf8.ValidString(s) && got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		if !utf8.ValidString(s) && (!utf8.ValidString(got) || !strings.Contains(got, "\ufffd")) {
			t.Fatalf("invalid %q came back as %q", s, got)
		}
		for _, c := range out {
			if c < 0x20 || c == 0x7f || c >= 0x80 && c <= 0x9f || c == 0x2028 || c == 0x2029 {
				t.Fatalf("jsonString(%q) = %q holds a raw control character", s, out)
			}
		}
	})
}

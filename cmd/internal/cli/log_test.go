package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"strings"
	"testing"
)

// The log flags choose the format and the least severe level written.
func TestLoggingFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // what the warning's line begins with; "" for nothing written
		info bool   // whether the info record is written too
	}{
		{nil, "time=", true},
		{[]string{"--log-format", "json"}, `{"time":`, true},
		{[]string{"--log-format=JSON", "--log-level=warn"}, `{"time":`, false},
		{[]string{"--log-level", "error"}, "", false},
		{[]string{"--log-level", "Debug", "--log-format", "text"}, "time=", true},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var l Logging
		l.AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		var out bytes.Buffer
		log := l.Logger(&out)
		log.Info("started", "n", 1)
		log.Warn("disk low", "free_mib", 12)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		wantLines := 0
		if tc.want != "" {
			wantLines++
		}
		if tc.info {
			wantLines++
		}
		if len(lines) != wantLines {
			t.Errorf("%q: %d lines, want %d:\n%s", tc.args, len(lines), wantLines, out.String())
			continue
		}
		if wantLines == 0 {
			continue
		}
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, tc.want) {
			t.Errorf("%q: the warning reads %q, want it to begin %q", tc.args, last, tc.want)
		}
		if l.JSON {
			var rec map[string]any
			if err := json.Unmarshal([]byte(last), &rec); err != nil || rec["level"] != "WARN" || rec["msg"] != "disk low" || rec["free_mib"] != 12.0 {
				t.Errorf("%q: the warning is not the JSON record wanted: %v %v", tc.args, rec, err)
			}
		}
	}
}

// Bad values are refused with what is accepted.
func TestLoggingFlagsRefuse(t *testing.T) {
	for args, want := range map[string]string{
		"--log-level=verbose": `invalid value "verbose" for flag -log-level: use debug, info, warn or error`,
		"--log-format=xml":    `invalid value "xml" for flag -log-format: use text or json`,
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var l Logging
		l.AddFlags(fs)
		var stderr bytes.Buffer
		fs.SetOutput(&stderr)
		if err := fs.Parse([]string{args}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

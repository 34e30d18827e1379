package commands

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Passwords never reach the output or the log, however the command is
// mistyped.
func TestSecretsNeverEchoed(t *testing.T) {
	lines := []string{
		"discoverServer ipAddress=10.0.0.1 password=it'sS3cret",
		"discoverServer ipAddress=10.0.0.1 port=0 password=abS3cret;cdS3cret",
		"discoverServer ipAddress=10.0.0.1 password=my S3cret",
		"discoverServer ipAddress=10.0.0.1 pasword=S3cret",
		`discoverServer ipAddress=10.0.0.1 "password"=S3cret`,
		"discoverServer ipAddress=10.0.0.1 password=\"S3cret",
		"discoverServer ipAddress=10.0.0.1 port=99999 password=S3cret",
	}
	for _, line := range lines {
		var out, logBuf bytes.Buffer
		s := &Session{reg: Default, out: &out, log: slog.New(slog.NewTextHandler(&logBuf, nil)),
			now: fixedNow, settings: Settings{OutputMode: ModeVerbose, CommandTimeout: DefaultCommandTimeout, EndLineChars: "LF"}}
		s.RunLine(context.Background(), line)
		for _, where := range []struct {
			name string
			text string
		}{{"output", out.String()}, {"log", logBuf.String()}} {
			if strings.Contains(where.text, "S3cret") {
				t.Errorf("%q: the password appears in the %s:\n%s", line, where.name, where.text)
			}
		}
		if !strings.Contains(out.String(), "Status: Failure") {
			t.Errorf("%q: want a failure\n%s", line, out.String())
		}
	}
}

func fixedNow() time.Time { return time.Date(2026, 11, 21, 10, 20, 23, 345e6, time.UTC) }

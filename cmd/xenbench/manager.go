package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// managerProc is a running `xenmanager serve` on a free loopback port.
type managerProc struct {
	*listener
	data     string
	password string
	log      string // its stderr
}

var listeningRx = regexp.MustCompile(`^xenmanager listening on 127\.0\.0\.1:(\d+)$`)

// startManager runs the manager binary of dir bin on data and waits until it
// listens.
func startManager(ctx context.Context, bin, data string, extra ...string) (*managerProc, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", data}, extra...)
	cmd := exec.Command(filepath.Join(bin, "xenmanager"), args...)
	logPath := filepath.Join(data, "..", filepath.Base(data)+".log")
	l, err := startListener(ctx, cmd, "xenmanager", logPath, listeningRx, 120*time.Second, 15*time.Second)
	if err != nil {
		return nil, err
	}
	m := &managerProc{listener: l, data: data, log: logPath}
	pw, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("admin password: %w", err)
	}
	m.password = strings.TrimSpace(string(pw))
	return m, nil
}

// stop ends the manager (SIGTERM, then SIGKILL after 15 s) and waits.
func (m *managerProc) stop() {
	if m != nil {
		m.listener.stop()
	}
}

func (m *managerProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// tail returns the end of a log file for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return strings.TrimSpace(string(b))
}

// goSSH runs commands as admin with the password through Go's SSH client
// (setup only; every measured figure uses the stock OpenSSH client). With
// batch, script is fed on stdin as a batch; otherwise it is the exec
// command. It fails when the exit status is not 0.
func (m *managerProc) goSSH(ctx context.Context, script string, batch bool) (string, error) {
	c, err := m.dialSSH()
	if err != nil {
		return "", err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	// stdout and stderr are copied by two goroutines: one locked buffer.
	var out lockedBuffer
	s.Stdout, s.Stderr = &out, &out
	if batch {
		s.Stdin = strings.NewReader(script)
		err = s.Shell()
		if err == nil {
			err = s.Wait()
		}
	} else {
		err = s.Run(script)
	}
	if err != nil {
		var ee *gossh.ExitError
		if errors.As(err, &ee) {
			return out.String(), fmt.Errorf("exit status %d: %s", ee.ExitStatus(), firstFailure(out.String()))
		}
		return out.String(), err
	}
	return out.String(), nil
}

// dialSSH logs in as admin with the password through Go's SSH client, on
// a connection the caller closes.
func (m *managerProc) dialSSH() (*gossh.Client, error) {
	cfg := &gossh.ClientConfig{
		User:            "admin",
		Auth:            []gossh.AuthMethod{gossh.Password(m.password)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // our own manager on loopback
		Timeout:         30 * time.Second,
	}
	c, err := gossh.Dial("tcp", m.addr(), cfg)
	if err != nil {
		return nil, fmt.Errorf("ssh to the manager: %w", err)
	}
	return c, nil
}

// lockedBuffer is a bytes.Buffer several goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// firstFailure picks the first failed command of a manager's output.
func firstFailure(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Status: Failure") {
			from := max(i-1, 0)
			to := min(i+6, len(lines))
			return oneLine(strings.Join(lines[from:to], " | "))
		}
	}
	return oneLine(out)
}

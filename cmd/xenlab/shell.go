package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyAlias names the manager in the lab's known_hosts, whatever its
// port: the key belongs to the manager's data directory, not to an address.
const hostKeyAlias = "xenlab-manager"

// commandTimeout bounds one command sent to the manager.
const commandTimeout = 2 * time.Minute

// managerShell is a connection to the manager's SSH command shell as admin.
type managerShell struct {
	c *ssh.Client
}

// dialManager logs in to the manager at addr as admin with password,
// accepting the manager's host key on first use and recording it in
// knownHostsPath; a key that differs from the recorded one is refused.
func dialManager(ctx context.Context, addr, password, knownHostsPath string) (*managerShell, error) {
	cfg := &ssh.ClientConfig{
		User:            "admin",
		Auth:            []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: trustOnFirstUse(knownHostsPath),
		Timeout:         20 * time.Second,
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the manager at %s: %w", addr, err)
	}
	conn.SetDeadline(time.Now().Add(cfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("log in to the manager at %s as admin: %w", addr, err)
	}
	conn.SetDeadline(time.Time{})
	return &managerShell{c: ssh.NewClient(c, chans, reqs)}, nil
}

// trustOnFirstUse checks the manager's host key against the one recorded
// in path under hostKeyAlias, recording it when there is none.
func trustOnFirstUse(path string) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				return err
			}
		}
		check, err := knownhosts.New(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		err = check(hostKeyAlias+":22", remote, key)
		var keyErr *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = fmt.Fprintln(f, knownhosts.Line([]string{hostKeyAlias}, key))
			return err
		case errors.As(err, &keyErr):
			return fmt.Errorf("the manager's host key %s is not the one recorded in %s: if you recreated the manager's data directory, remove that file", ssh.FingerprintSHA256(key), path)
		default:
			return err
		}
	}
}

// fingerprintOfLine is the SHA256 fingerprint of the key of a
// known_hosts line of the manager, "" for any other line.
func fingerprintOfLine(line string) string {
	host, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || host != hostKeyAlias {
		return ""
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(key)
}

// result is one command's outcome as the manager prints it in Verbose,
// the output every exec session starts in (docs/output-formats.md), so
// that xenlab needs no set of its own.
type result struct {
	command string
	ok      bool
	errMsg  string              // "<code>: <message>" on failure
	rows    []map[string]string // list: id and name of each row
	attrs   map[string]string   // show: Key = value
}

// parseVerbose reads the Verbose output of one command.
func parseVerbose(out string) (result, bool) {
	var r result
	status := false
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "Command: "):
			r.command = strings.TrimPrefix(line, "Command: ")
		case strings.HasPrefix(line, "Status: "):
			r.ok, status = strings.TrimPrefix(line, "Status: ") == "Success", true
		case strings.HasPrefix(line, "Error Msg: "):
			r.errMsg = strings.TrimPrefix(line, "Error Msg: ")
		case strings.HasPrefix(line, "  id:"):
			row := map[string]string{}
			for _, f := range strings.Split(strings.TrimSpace(line), "  ") {
				if k, v, ok := strings.Cut(f, ":"); ok {
					row[k] = v
				}
			}
			r.rows = append(r.rows, row)
		case strings.HasPrefix(line, "  "):
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "  "), " = "); ok {
				if r.attrs == nil {
					r.attrs = map[string]string{}
				}
				r.attrs[k] = v
			}
		}
	}
	return r, status
}

// run runs one command of the OVM language and returns its result; a
// command that fails is an error saying the command (secrets masked) and
// the manager's message.
func (m *managerShell) run(ctx context.Context, command string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	s, err := m.c.NewSession()
	if err != nil {
		return result{}, fmt.Errorf("%s: open a session: %w", mask(command), err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	done := make(chan error, 1)
	go func() { done <- s.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Close()
		return result{}, fmt.Errorf("%s: no answer within %v", mask(command), commandTimeout)
	}
	r, found := parseVerbose(out.String())
	switch {
	case !found:
		return result{}, fmt.Errorf("%s: no result from the manager (%v): %s%s", mask(command), err, out.String(), errOut.String())
	case !r.ok:
		msg := r.errMsg
		if msg == "" {
			msg = "failed"
		}
		return r, fmt.Errorf("%s: %s", r.command, msg)
	case err != nil:
		return r, fmt.Errorf("%s: %w", r.command, err)
	}
	return r, nil
}

func (m *managerShell) close() { m.c.Close() }

var passwordRx = regexp.MustCompile(`(?i)(password=)("[^"]*"|\S+)`)

// mask hides the passwords of a command, for messages.
func mask(command string) string {
	return passwordRx.ReplaceAllString(command, "${1}*****")
}

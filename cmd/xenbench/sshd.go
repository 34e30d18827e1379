package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"
)

// sshdProc is the baseline: Debian's OpenSSH sshd on its own loopback port,
// host key and configuration, accepting the harness's key for the current
// user and running only ForceCommand.
type sshdProc struct {
	cmd    *exec.Cmd
	pid    int
	port   int
	user   string
	alias  string
	log    string
	exited chan struct{}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startSSHD starts sshd -D with a configuration written to dir/name.conf
// whose ForceCommand is force. Any reason it cannot run is returned as an
// error for the caller to report as "baseline missing".
func startSSHD(ctx context.Context, dir, name, force string, o *openSSH) (*sshdProc, error) {
	bin := "/usr/sbin/sshd"
	if !fileExists(bin) {
		p, err := exec.LookPath("sshd")
		if err != nil {
			return nil, fmt.Errorf("sshd not installed (Debian: apt-get install openssh-server)")
		}
		bin = p
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	if os.Geteuid() == 0 && !fileExists("/run/sshd") {
		// sshd running as root needs its privilege separation directory,
		// which Debian's service start creates; there is no service here.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("sshd needs /run/sshd: %w", err)
		}
	}
	hostKey := filepath.Join(dir, name+"_host_ed25519_key")
	if !fileExists(hostKey) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
			return nil, exitErr(fmt.Errorf("ssh-keygen for sshd's host key: %w", err), out)
		}
	}
	authKeys := filepath.Join(dir, name+"_authorized_keys")
	if err := os.WriteFile(authKeys, []byte(o.pub+"\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, name+".conf")
	cfg := strings.Join([]string{
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authKeys,
		"ForceCommand " + force,
		// sshd runs the forced command through the user's shell (bash -c);
		// Debian's bash sources ~/.bashrc when started by sshd at shell
		// level 1 (SSH_SOURCE_BASHRC). SHLVL=1 makes it level 2, so that no
		// shell start-up file is counted, only the exec of bash itself.
		"SetEnv SHLVL=1",
		"UsePAM no",
		"StrictModes no",
		"PidFile none",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + u.Username,
		"KexAlgorithms " + kexAlg,
		"HostKeyAlgorithms " + hostKeyAlg,
		"Ciphers " + cipherAlg,
		"PubkeyAcceptedAlgorithms ssh-ed25519",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"X11Forwarding no",
		"MaxStartups 200",
		"ClientAliveInterval 0",
		"LogLevel ERROR",
		"",
	}, "\n")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-t", "-f", conf).CombinedOutput(); err != nil {
		return nil, exitErr(fmt.Errorf("sshd -t refused the configuration: %w", err), out)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := procs.start(cmd); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	s := &sshdProc{cmd: cmd, pid: cmd.Process.Pid, port: port, user: u.Username, alias: "xenbench-" + name,
		log: logPath, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		procs.forget(cmd)
		close(s.exited)
	}()
	// Bounded wait for the port to accept connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("sshd exited at start: %s", tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd did not accept connections within 10 s: %s", tail(logPath))
		}
	}
	// One login proves the key and the configuration work for this user.
	check := o.command(port, s.alias, s.user, nil, "true")
	if out, err := check.CombinedOutput(); err != nil {
		s.stop()
		return nil, exitErr(fmt.Errorf("key login to the baseline sshd as %s failed: %w", u.Username, err),
			append(out, []byte(" sshd: "+tail(logPath))...))
	}
	return s, nil
}

func (s *sshdProc) stop() {
	if s == nil {
		return
	}
	procs.stop(s.cmd, 5*time.Second, s.exited)
	<-s.exited
}

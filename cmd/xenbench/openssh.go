package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The handshake both servers are made to pay: the same key exchange, host
// key type and cipher, forced on the client (and on the baseline sshd).
const (
	kexAlg     = "curve25519-sha256"
	hostKeyAlg = "ssh-ed25519"
	cipherAlg  = "chacha20-poly1305@openssh.com"
)

// openSSH is the stock OpenSSH client with the harness's own key and
// known_hosts file, ignoring the user's ~/.ssh/config.
type openSSH struct {
	bin   string // path of ssh
	key   string // private key file (ed25519)
	pub   string // the public key, as in authorized_keys
	known string
}

// newOpenSSH finds ssh and ssh-keygen and makes an ed25519 key in dir.
func newOpenSSH(dir string) (*openSSH, error) {
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, fmt.Errorf("OpenSSH client (ssh) not installed: %w", err)
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		return nil, fmt.Errorf("ssh-keygen not installed: %w", err)
	}
	key := filepath.Join(dir, "id_ed25519")
	os.Remove(key)
	os.Remove(key + ".pub")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "xenbench", "-f", key).CombinedOutput(); err != nil {
		return nil, exitErr(fmt.Errorf("ssh-keygen: %w", err), out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, err
	}
	return &openSSH{bin: bin, key: key, pub: strings.TrimSpace(string(pub)), known: filepath.Join(dir, "known_hosts")}, nil
}

// args are the client's arguments for user@127.0.0.1:port; alias keeps the
// host keys of the servers apart in known_hosts. extra come before the
// destination (e.g. -tt, -b ADDR).
func (o *openSSH) args(port int, alias, user string, extra ...string) []string {
	a := []string{"-F", "/dev/null", "-p", strconv.Itoa(port), "-i", o.key,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
		"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + o.known,
		"-o", "HostKeyAlias=" + alias, "-o", "UpdateHostKeys=no",
		"-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "KexAlgorithms=" + kexAlg, "-o", "HostKeyAlgorithms=" + hostKeyAlg,
		"-o", "Ciphers=" + cipherAlg, "-o", "PubkeyAcceptedAlgorithms=ssh-ed25519",
		"-o", "LogLevel=ERROR"}
	a = append(a, extra...)
	return append(a, user+"@127.0.0.1")
}

// command builds an ssh process running remote (may be empty: a batch on
// stdin or a shell).
func (o *openSSH) command(port int, alias, user string, extra []string, remote ...string) *exec.Cmd {
	return exec.Command(o.bin, append(o.args(port, alias, user, extra...), remote...)...)
}

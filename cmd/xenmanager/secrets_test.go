package main

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An install from before the host key lived in the database keeps its
// clients' known_hosts: its first start imports the key file (ssh-keygen's
// own, here) into the database and says so; a restart without the file
// presents the same key, which the stock OpenSSH client accepts under
// strict host key checking, and serve prints its fingerprint.
func TestServeImportsTheHostKeyFile(t *testing.T) {
	needTools(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(data, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "old install", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := keyFingerprint(t, keyFile+".pub")

	m := startManager(t, data, 0)
	if !strings.Contains(m.stderr.String(), "imported the SSH host key into the database") || !strings.Contains(m.stderr.String(), keyFile) {
		t.Fatalf("the first start does not say it imported %s:\n%s", keyFile, m.stderr)
	}
	// The clients of the old install know its key, and no other.
	fields := strings.Fields(string(pub))
	if err := os.WriteFile(m.known, []byte("xenmanager-e2e "+fields[0]+" "+fields[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, status := m.ssh("", true, "list Server"); status != 0 {
		t.Fatalf("the imported host key is not the one presented: exit %d\n%s", status, out)
	}
	m.stop()

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	m2 := startManager(t, data, 0)
	m2.known = m.known
	if out, status := m2.ssh("", true, "list Server"); status != 0 {
		t.Fatalf("after a restart without the key file: exit %d\n%s", status, out)
	}
	if want := "host key:      ED25519 key fingerprint is " + fingerprint; !hasLine(m2.stdout, want) {
		t.Fatalf("the restart does not print %q:\n%s", want, strings.Join(m2.stdout, "\n"))
	}
	if strings.Contains(m2.stderr.String(), "imported") || strings.Contains(m2.stderr.String(), "generated the SSH host key") {
		t.Fatalf("the restart made or imported a host key again:\n%s", m2.stderr)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the restart wrote the host key file again: %v", err)
	}
}

// keyFingerprint is the SHA256 fingerprint ssh-keygen -lf gives of a key file.
func keyFingerprint(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-lf", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -lf %s: %v\n%s", file, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -lf %s: %q", file, out)
	}
	return f[1]
}

// hasLine says whether lines holds want as a whole line.
func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// A manager given a secret key that is not its database's, or none, or a
// key file others may read, or one of the wrong length, does not start
// and touches nothing: the database is as it was (a job the previous run
// left Running is still Running: no recovery ran), no key file appears,
// and the refusal says what is wrong and how to mend it. A copy of the
// database's key file elsewhere is the same key: that manager starts.
func TestServeRefusesAnotherSecretKey(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	first := startManager(t, data, 1)
	first.stop()
	db := openForInspection(t, filepath.Join(data, "manager.db"))
	const jobID = "0004fb0000110000e2e0000000000002"
	if _, err := db.Exec(`INSERT INTO jobs (id, summary, user_name, status, created_at) VALUES ($1, 'left running', 'admin', 'Running', $2)`,
		jobID, time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	before := dumpDatabase(t, db)
	theKey := filepath.Join(data, "secret.key")
	key, err := os.ReadFile(theKey)
	if err != nil {
		t.Fatal(err)
	}

	writeKey := func(name string, content []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	otherKey := writeKey("other.key", []byte((rand.Text() + rand.Text())[:32]), 0o600)
	groupReadable := writeKey("group.key", key, 0o640)
	short := writeKey("short.key", key[:16], 0o600)
	missing := filepath.Join(dir, "missing.key")
	mend := "give every manager of this database the same --secret-key-file, the one the database was set up with"
	for _, tc := range []struct {
		name string
		file string   // --secret-key-file; "" for the default
		want []string // in the refusal
	}{
		{"another key", otherKey, []string{"this manager's secret key is not the one the database was set up with", mend, otherKey}},
		{"no key file", missing, []string{"the secret key file " + missing + " does not exist", mend}},
		{"a group-readable key file", groupReadable, []string{groupReadable + " has mode 0640", "chmod 600 " + groupReadable}},
		{"a key of 16 bytes", short, []string{short + " holds 16 bytes", "a secret key is 32 random bytes"}},
		{"the default key file readable by others", "", []string{theKey + " has mode 0604", "chmod 600 " + theKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--listen", "127.0.0.1:0", "--data", data, "--demo", "1"}
			if tc.file != "" {
				args = append(args, "--secret-key-file", tc.file)
			} else {
				if err := os.Chmod(theKey, 0o604); err != nil {
					t.Fatal(err)
				}
				defer os.Chmod(theKey, 0o600)
			}
			out, code := runSecondManager(t, args...)
			if code == 0 {
				t.Fatalf("the manager started:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, out)
				}
			}
			if after := dumpDatabase(t, db); after != before {
				t.Fatalf("the refused start changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the refused start wrote %s: %v", missing, err)
			}
		})
	}

	// The same key in another file, as a second manager is given it.
	copied := writeKey("copy.key", key, 0o600)
	m := startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--secret-key-file", copied)
	if out, status := m.ssh("", false, "list Server"); status != 0 || strings.Count(out, "  id:") != 1 {
		t.Fatalf("the manager with a copy of the key: exit %d\n%s", status, out)
	}
	var status string
	if err := db.QueryRow(`SELECT status FROM jobs WHERE id = $1`, jobID).Scan(&status); err != nil || status == "Running" {
		t.Fatalf("the job left running is %q (%v) after a start with the right key: want it ended", status, err)
	}
}

// dumpDatabase is every row of every table of db: what a test compares to
// see that nothing was written.
func dumpDatabase(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %q\n", table, vals)
		}
		rows.Close()
	}
	return b.String()
}

package backend_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/agent"
	"xenmanager/backend/agent/agenttest"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// A secret key file is taken only when its owner alone may read it (the
// rule OpenSSH keeps for private keys) and it holds 32 bytes; the refusal
// names the file, what is wrong and what is accepted.
func TestLoadSealerChecksTheKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, backend.SecretKeySize)
	rand.Read(key)
	for _, tc := range []struct {
		name    string
		mode    fs.FileMode
		content []byte
		want    []string // in the error; none: accepted
	}{
		{"owner read-write", 0o600, key, nil},
		{"owner read-only", 0o400, key, nil},
		{"group readable", 0o640, key, []string{"has mode 0640", "chmod 600"}},
		{"group writable", 0o620, key, []string{"has mode 0620", "chmod 600"}},
		{"others readable", 0o604, key, []string{"has mode 0604", "chmod 600"}},
		{"world readable", 0o644, key, []string{"has mode 0644", "chmod 600"}},
		{"short", 0o600, key[:31], []string{"holds 31 bytes", "a secret key is 32 random bytes"}},
		{"long", 0o600, append(append([]byte{}, key...), '\n'), []string{"holds more than 32 bytes", "a secret key is 32 random bytes"}},
		{"empty", 0o600, nil, []string{"holds 0 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := backend.LoadSealer(path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := backend.LoadSealer(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as the key file: %v", err)
	}
	if _, err := backend.LoadSealer(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing key file: %v, want fs.ErrNotExist", err)
	}
}

// dump is every row of every table of the database at path, read on a
// connection of its own: what a test compares to see that nothing was
// written.
func dump(t *testing.T, path string) string {
	t.Helper()
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(5000)&mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	eachRow(t, db, func(table string, row []any) { fmt.Fprintf(&b, "%s %q\n", table, row) })
	return b.String()
}

// eachRow calls fn with every row of every table of db, its values as
// strings or bytes.
func eachRow(t *testing.T, db *sql.DB, fn func(table string, row []any)) {
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
			fn(table, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
}

// A manager given another secret key than the one its database was set up
// with does not start, and writes nothing: whether the database has its
// key check, or is of an install from before the check, whose agent
// passwords the key must then open. The right key is taken, and gives an
// install from before its key check.
func TestManagerRefusesAnotherSecretKey(t *testing.T) {
	// It reads and dumps the SQLite file behind the store's back: SQLite
	// whatever the suite's engine (the secrets' queries run on both in
	// store's tests).
	t.Setenv(managertest.EngineEnv, "")
	for _, tc := range []struct {
		name       string
		noCheck    bool // the database is of an install from before the key check
		otherKey   bool
		wantErr    string // "": the manager starts
		wantChange bool   // the start writes (its key check)
	}{
		{name: "another key", otherKey: true, wantErr: "this manager's secret key is not the one the database was set up with"},
		{name: "another key, no check yet", noCheck: true, otherKey: true,
			wantErr: "it does not open the agent passwords of 1 of the 1 servers the database holds"},
		{name: "the same key", wantChange: false},
		{name: "the same key, no check yet", noCheck: true, wantChange: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := managertest.Ready(t, managertest.Options{Agents: 1})
			ctx := context.Background()
			if tc.noCheck {
				behind(t, c, `DELETE FROM secrets WHERE name = 'key_check'`)
			}
			sealer, err := backend.LoadSealer(filepath.Join(c.Dir, "secret.key"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.otherKey {
				if sealer, err = backend.CreateSecretKey(filepath.Join(t.TempDir(), "other.key")); err != nil {
					t.Fatal(err)
				}
			}
			dbPath := filepath.Join(c.Dir, "manager.db")
			before := dump(t, dbPath)
			m, err := backend.New(ctx, backend.Config{Store: c.Store, Sealer: sealer})
			if tc.wantErr != "" {
				if err == nil {
					m.Close()
					t.Fatal("the manager started")
				}
				if !errors.Is(err, backend.ErrWrongSecretKey) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("refusal %q: want ErrWrongSecretKey saying %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("the manager with the database's key was refused: %v", err)
				}
				m.Close()
			}
			if changed := dump(t, dbPath) != before; changed != tc.wantChange {
				t.Fatalf("the start changed the database: %v, want %v", changed, tc.wantChange)
			}
			if tc.wantChange {
				// The check now written holds: another key is refused.
				other, err := backend.CreateSecretKey(filepath.Join(t.TempDir(), "other.key"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := backend.New(ctx, backend.Config{Store: c.Store, Sealer: other}); !errors.Is(err, backend.ErrWrongSecretKey) {
					t.Fatalf("another key after the check was written: %v, want ErrWrongSecretKey", err)
				}
			}
		})
	}
}

// LoadSecretKey creates the key file of a new database, and takes an
// existing one; a manager of a database set up with a key whose file is
// missing is refused, without a new key file (which would trip the next
// start too).
func TestLoadSecretKeyCreatesOnlyForANewDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "manager.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keyFile := filepath.Join(dir, "secret.key")
	sealer, created, err := backend.LoadSecretKey(ctx, st, keyFile)
	if err != nil || !created {
		t.Fatalf("the key of a new database: created %v, %v", created, err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != backend.SecretKeySize {
		t.Fatalf("the key file written: %v, %v", fi, err)
	}
	m, err := backend.New(ctx, backend.Config{Store: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, created, err := backend.LoadSecretKey(ctx, st, keyFile); err != nil || created {
		t.Fatalf("the key file of a second start: created %v, %v", created, err)
	}

	missing := filepath.Join(dir, "elsewhere.key")
	_, _, err = backend.LoadSecretKey(ctx, st, missing)
	if !errors.Is(err, backend.ErrWrongSecretKey) || !strings.Contains(err.Error(), missing+" does not exist") {
		t.Fatalf("a missing key file for a database set up with a key: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused start wrote %s: %v", missing, err)
	}
}

// newHostKeyFile writes an ed25519 host key in OpenSSH's format to path,
// as an install from before kept it, and returns the private key.
func newHostKeyFile(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv
}

// The SSH host key lives in the database: a new database gets a new key,
// a database of an install from before imports the key file the manager
// kept (whose clients know it), and the key stored then stays: for a
// later start without the file, for another manager of the same database,
// and over a file that holds another key. A key file that is no key is
// refused, naming it.
func TestHostKeyLivesInTheDatabase(t *testing.T) {
	// It reads and dumps the SQLite file behind the store's back: SQLite
	// whatever the suite's engine (the secrets' queries run on both in
	// store's tests).
	t.Setenv(managertest.EngineEnv, "")
	ctx := context.Background()
	t.Run("generated", func(t *testing.T) {
		c := managertest.Open(t, managertest.Options{})
		k1, origin, err := c.Manager.HostKey(ctx, filepath.Join(t.TempDir(), "none"))
		if err != nil || origin != backend.HostKeyGenerated || k1.PublicKey().Type() != gossh.KeyAlgoED25519 {
			t.Fatalf("first start: origin %v, %v", origin, err)
		}
		k2, origin, err := c.Manager.HostKey(ctx, "")
		if err != nil || origin != backend.HostKeyStored || !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
			t.Fatalf("second start: origin %v, same key %v, %v", origin, err == nil && bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()), err)
		}
	})
	t.Run("imported", func(t *testing.T) {
		c := managertest.Open(t, managertest.Options{})
		file := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
		priv := newHostKeyFile(t, file)
		want, err := gossh.NewPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		k, origin, err := c.Manager.HostKey(ctx, file)
		if err != nil || origin != backend.HostKeyImported || gossh.FingerprintSHA256(k.PublicKey()) != gossh.FingerprintSHA256(want) {
			t.Fatalf("import: origin %v, %v", origin, err)
		}
		// The file is no longer used: another key in it changes nothing,
		// nor does its removal.
		newHostKeyFile(t, file)
		for _, step := range []string{"another key in the file", "the file removed"} {
			k, origin, err := c.Manager.HostKey(ctx, file)
			if err != nil || origin != backend.HostKeyStored || gossh.FingerprintSHA256(k.PublicKey()) != gossh.FingerprintSHA256(want) {
				t.Fatalf("%s: origin %v, fingerprint %s, %v; want the imported %s", step, origin, gossh.FingerprintSHA256(k.PublicKey()), err,
					gossh.FingerprintSHA256(want))
			}
			os.Remove(file)
		}
		// Another manager of the database (the same key) presents it too.
		sealer, err := backend.LoadSealer(filepath.Join(c.Dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		other, err := backend.New(ctx, backend.Config{Store: c.Store, Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if k, _, err := other.HostKey(ctx, ""); err != nil || gossh.FingerprintSHA256(k.PublicKey()) != gossh.FingerprintSHA256(want) {
			t.Fatalf("another manager presents %v, %v", k, err)
		}
	})
	t.Run("not a key", func(t *testing.T) {
		c := managertest.Open(t, managertest.Options{})
		file := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
		if err := os.WriteFile(file, []byte("not a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Manager.HostKey(ctx, file); err == nil || !strings.Contains(err.Error(), file) {
			t.Fatalf("a key file that holds no key: %v", err)
		}
		if _, err := c.Store.Read().Secret(ctx, "ssh_host_key"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a host key was stored from a file that holds none: %v", err)
		}
	})
}

// A copy of the database alone gives no secret away: neither the bytes of
// a backup (and of the live database and its log) nor any value of any row
// hold an agent password, the admin password, the host key's private key
// or the secret key, in clear or in the encodings the database could hold
// them in; yet the database does hold the host key and the agent
// password, sealed: the key opens them.
func TestDatabaseCopyHoldsNoSecretInClear(t *testing.T) {
	// The copy read here is backup's, which is SQLite's (on PostgreSQL,
	// pg_dump's holds the same rows): SQLite whatever the suite's engine.
	t.Setenv(managertest.EngineEnv, "")
	c := managertest.Open(t, managertest.Options{})
	ctx := c.Admin()
	agentPassword := "agent-" + rand.Text()
	a := agenttest.Start(t, agent.Config{Hostname: "ovs1", Password: agentPassword})
	if _, err := c.Manager.DiscoverServer(ctx, backend.DiscoverRequest{Address: "127.0.0.1", Port: a.Port(), Password: agentPassword}); err != nil {
		t.Fatal(err)
	}
	hostKeyFile := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	priv := newHostKeyFile(t, hostKeyFile)
	if _, origin, err := c.Manager.HostKey(ctx, hostKeyFile); err != nil || origin != backend.HostKeyImported {
		t.Fatalf("import the host key: %v, %v", origin, err)
	}
	hostKeyPEM, err := os.ReadFile(hostKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	secretKey, err := os.ReadFile(filepath.Join(c.Dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Manager.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}

	secrets := map[string][]byte{
		"the agent password":         []byte(agentPassword),
		"the admin password":         []byte(c.AdminPassword),
		"the host key's private key": priv.Seed(),
		"the host key's PEM":         bytes.TrimSpace(hostKeyPEM),
		"the host key's PEM body":    pemBody(t, hostKeyPEM),
		"the secret key":             secretKey,
	}
	forms := func(secret []byte) map[string][]byte {
		return map[string][]byte{"in clear": secret, "in hex": []byte(hex.EncodeToString(secret)),
			"in base64": []byte(strings.TrimRight(base64.StdEncoding.EncodeToString(secret), "="))}
	}
	look := func(where string, data []byte) {
		t.Helper()
		for name, secret := range secrets {
			for form, enc := range forms(secret) {
				if bytes.Contains(data, enc) {
					t.Errorf("%s holds %s %s", where, name, form)
				}
			}
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a PEM private key", where)
		}
	}
	for _, f := range []string{b.Path, filepath.Join(c.Dir, "manager.db"), filepath.Join(c.Dir, "manager.db-wal")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		look(filepath.Base(f), data)
	}

	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: b.Path, RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rowsSeen := 0
	eachRow(t, db, func(table string, row []any) {
		rowsSeen++
		for i, v := range row {
			var data []byte
			switch v := v.(type) {
			case string:
				data = []byte(v)
			case []byte:
				data = v
			default:
				continue
			}
			look(fmt.Sprintf("the copy's table %s, row %q, column %d", table, row[0], i), data)
		}
	})
	if rowsSeen == 0 {
		t.Fatal("the copy has no rows")
	}

	// What is sealed is there, and the key opens it: the copy is the
	// manager's, not an empty one.
	restored, err := store.Open(context.Background(), b.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	sealer, err := backend.LoadSealer(filepath.Join(c.Dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backend.New(context.Background(), backend.Config{Store: restored, Sealer: sealer})
	if err != nil {
		t.Fatalf("a manager on the copy with the key: %v", err)
	}
	defer m.Close()
	k, origin, err := m.HostKey(context.Background(), "")
	if want, _ := gossh.NewPublicKey(priv.Public()); err != nil || origin != backend.HostKeyStored ||
		gossh.FingerprintSHA256(k.PublicKey()) != gossh.FingerprintSHA256(want) {
		t.Fatalf("the copy's host key: origin %v, %v", origin, err)
	}
	servers, err := restored.Read().Servers(context.Background())
	if err != nil || len(servers) != 1 {
		t.Fatalf("the copy's servers: %d, %v", len(servers), err)
	}
	if pw, err := sealer.Open(servers[0].AgentPassword); err != nil || pw != agentPassword {
		t.Fatalf("the copy's agent password does not open to the agent's: %v", err)
	}
}

// pemBody is the base64 body of a PEM block on one line, as a database
// might hold it.
func pemBody(t *testing.T, data []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	return []byte(base64.StdEncoding.EncodeToString(block.Bytes))
}

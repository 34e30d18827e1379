package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A secret is stored once under its name: a second offer under the same
// name leaves the first in place and says so, other names are apart, a
// name never stored is ErrNotFound, and what was stored outlives a reopen.
func TestSecretsAreWrittenOnce(t *testing.T) {
	bothEngines(t, testSecretsAreWrittenOnce)
}

func testSecretsAreWrittenOnce(t *testing.T, db testDB) {
	s, err := Open(context.Background(), db.target)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name, sealed string
		wantStored   bool
		wantValue    string
	}{
		{"key_check", "c2VhbGVkLTE=", true, "c2VhbGVkLTE="},
		{"key_check", "c2VhbGVkLTI=", false, "c2VhbGVkLTE="},
		{"ssh_host_key", "aG9zdA==", true, "aG9zdA=="},
		{"ssh_host_key", "b3RoZXI=", false, "aG9zdA=="},
	}
	for _, st := range steps {
		var stored bool
		err := s.Write(ctx, func(q *Queries) error {
			var err error
			stored, err = q.AddSecret(ctx, st.name, st.sealed, time.Now())
			return err
		})
		if err != nil || stored != st.wantStored {
			t.Fatalf("AddSecret(%s, %s) = %v, %v; want %v", st.name, st.sealed, stored, err, st.wantStored)
		}
		if got, err := s.Read().Secret(ctx, st.name); err != nil || got != st.wantValue {
			t.Fatalf("Secret(%s) after offering %s = %q, %v; want %q", st.name, st.sealed, got, err, st.wantValue)
		}
	}
	if _, err := s.Read().Secret(ctx, "never_stored"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Secret of a name never stored: %v, want ErrNotFound", err)
	}
	s.Close()
	s2, err := Open(ctx, db.target)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for name, want := range map[string]string{"key_check": "c2VhbGVkLTE=", "ssh_host_key": "aG9zdA=="} {
		if got, err := s2.Read().Secret(ctx, name); err != nil || got != want {
			t.Errorf("Secret(%s) after a reopen = %q, %v; want %q", name, got, err, want)
		}
	}
}

// A database of an install from before the secrets were in the database
// gets an empty secrets table: its first start writes the key check and
// imports the host key file.
func TestMigrationSecretsOnAnExistingDatabase(t *testing.T) {
	bothEngines(t, testMigrationSecretsOnAnExistingDatabase)
}

func testMigrationSecretsOnAnExistingDatabase(t *testing.T, db testDB) {
	migs, err := loadMigrations(db.engine)
	if err != nil {
		t.Fatal(err)
	}
	before := -1 // the migrations before the one that makes the secrets table
	for i, m := range migs {
		if strings.HasSuffix(m.name, "_secrets.sql") {
			before = i
		}
	}
	if before < 0 {
		t.Fatal("no migration NNNN_secrets.sql")
	}
	openAtVersion(t, db, before, `INSERT INTO meta (key, value) VALUES ('manager_uuid', 'm1')`)
	s := db.open(t)
	if _, err := s.Read().Secret(context.Background(), "key_check"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key check of a migrated database: %v, want none (ErrNotFound)", err)
	}
}

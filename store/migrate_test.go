package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Servers recorded before 0009 get a hypervisor type: simulated when their
// agent_version is this project's simulated agent's, else xen (what the
// manager takes an agent without the field for), and no version.
func TestMigration0009HypervisorOfRecordedServers(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		openAtVersion(t, db, 8, `
		INSERT INTO servers (id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
			agent_version, status, created_at)
		VALUES ('s1', 'sim', 'u1', 'sim', '10.0.0.1', 8899, '', 'aa', '0.1.0-xensim', 'Running', 0),
		       ('s2', 'ovm', 'u2', 'ovm', '10.0.0.2', 8899, '', 'bb', '3.4.6.2105', 'Running', 0)`)
		s := db.open(t)
		servers, err := s.Read().Servers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"sim": "simulated", "ovm": "xen"}
		if len(servers) != len(want) {
			t.Fatalf("%d servers after the migration, want %d", len(servers), len(want))
		}
		for _, srv := range servers {
			if srv.HypervisorType != want[srv.Name] || srv.HypervisorVersion != "" {
				t.Errorf("server %s: hypervisor %q %q, want %q and no version", srv.Name, srv.HypervisorType, srv.HypervisorVersion, want[srv.Name])
			}
		}
	})
}

// Open's secret check runs before any migration of a database that holds
// the secret: refused, Open leaves the schema as it was; accepted, the
// migrations run. A database without the secret is migrated unchecked.
func TestSecretCheckedBeforeMigrating(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, err := Open(ctx, db.target)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Write(ctx, func(q *Queries) error {
			_, err := q.AddSecret(ctx, "key_check", "sealed-check", time.Now())
			return err
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Forget the newest migration (0028, the VMs' triggers, which
		// replaces two functions and may run again) behind the store's
		// back: it is pending.
		r := db.raw(t)
		var latest int
		pending := func() {
			t.Helper()
			if _, err := r.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = $1`, latest); err != nil {
				t.Fatal(err)
			}
		}
		version := func() int {
			t.Helper()
			var v int
			if err := r.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		latest = version()
		if latest != 28 {
			t.Fatalf("the schema is at %d: undo its newest migration in pending() instead of 0028's", latest)
		}
		pending()
		refused := errors.New("another key")
		var seen string
		_, err = Open(ctx, db.target, CheckSecretBeforeMigrating("key_check", func(sealed string) error { seen = sealed; return refused }))
		if !errors.Is(err, refused) || seen != "sealed-check" {
			t.Fatalf("Open with a refusing check = %v (check saw %q); want the check's error, on the sealed secret", err, seen)
		}
		if v := version(); v != latest-1 {
			t.Fatalf("after a refused check the schema is at %d; want %d, unmigrated", v, latest-1)
		}
		s, err = Open(ctx, db.target, CheckSecretBeforeMigrating("key_check", func(string) error { return nil }))
		if err != nil {
			t.Fatalf("Open with an accepting check: %v", err)
		}
		s.Close()
		if v := version(); v != latest {
			t.Fatalf("after an accepted check the schema is at %d; want %d", v, latest)
		}
		// No secret: migrated without the check.
		if _, err := r.ExecContext(ctx, `DELETE FROM secrets`); err != nil {
			t.Fatal(err)
		}
		pending()
		s, err = Open(ctx, db.target, CheckSecretBeforeMigrating("key_check", func(string) error { return refused }))
		if err != nil {
			t.Fatalf("Open of a database without the secret: %v", err)
		}
		s.Close()
		if v := version(); v != latest {
			t.Fatalf("a database without the secret is at %d; want %d", v, latest)
		}
	})
}

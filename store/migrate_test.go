package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// openAtVersion makes a database at path with the first n migrations
// applied, as a manager of that schema would have left it, runs seed on
// it, and closes it; Open then applies the rest.
func openAtVersion(t *testing.T, path string, n int, seed string) {
	t.Helper()
	migs, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for _, m := range migs[:n] {
		stmts = append(stmts, m.sql,
			fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	for _, s := range append(stmts, seed) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("at version %d: %v\n%s", n, err, s)
		}
	}
}

// Servers recorded before 0009 get a hypervisor type: simulated when their
// agent_version is this project's simulated agent's, else xen (what the
// manager takes an agent without the field for), and no version.
func TestMigration0009HypervisorOfRecordedServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "manager.db")
	openAtVersion(t, path, 8, `
		INSERT INTO servers (id, name, unique_id, hostname, address, port, agent_password, cert_spki_sha256,
			agent_version, status, created_at)
		VALUES ('s1', 'sim', 'u1', 'sim', '10.0.0.1', 8899, x'00', 'aa', '0.1.0-xensim', 'Running', 0),
		       ('s2', 'ovm', 'u2', 'ovm', '10.0.0.2', 8899, x'00', 'bb', '3.4.6.2105', 'Running', 0)`)
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
}

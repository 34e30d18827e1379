package store

import (
	"context"
	"testing"
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

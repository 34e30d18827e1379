package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xenmanager/store/pgtest"
)

// serve --database (here from XENMANAGER_DATABASE, then from the flag)
// keeps the manager's data in PostgreSQL: a VM created before a restart is
// there after it, no SQLite database is made in --data, and the URL's
// password is never printed (the startup line names the host, port and
// database).
func TestOpenSSHOnPostgreSQL(t *testing.T) {
	needTools(t)
	u, err := url.Parse(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	// The test server trusts loopback, so the password is never asked for;
	// it must not be shown either.
	const pw = "s3cret-db-pw"
	u.User = url.UserPassword(u.User.Username(), pw)
	dsn := u.String()
	dir := t.TempDir()
	port := startAgent(t, filepath.Join(dir, "agent"), "pg-agent-secret")
	data := filepath.Join(dir, "data")
	m := startManagerWith(t, data, []string{"XENMANAGER_DATABASE=" + dsn}, "--listen", "127.0.0.1:0", "--data", data)
	script := fmt.Sprintf(`discoverServer ipAddress=127.0.0.1 port=%s password=pg-agent-secret
create ServerPool name=pgpool
add Server name=standalone1 to ServerPool name=pgpool
create Repository name=pgrepo fsLocation=%s on ServerPool name=pgpool
create Vm name=kept repository=pgrepo memory=256
`, port, filepath.Join(dir, "repo"))
	if out, status := m.ssh(script, false); status != 0 {
		t.Fatalf("batch on PostgreSQL: exit %d\n%s", status, out)
	}
	wantLine := "database:      PostgreSQL database " + strings.TrimPrefix(u.Path, "/") + " on " + u.Host
	if !containsLine(m.stdout, wantLine) {
		t.Errorf("serve's startup lines do not name the database (%q):\n%s", wantLine, strings.Join(m.stdout, "\n"))
	}
	m.stop()
	if _, err := os.Stat(filepath.Join(data, "manager.db")); err == nil {
		t.Error("serve --database made a SQLite database in --data")
	}

	m2 := startManagerWith(t, data, nil, "--listen", "127.0.0.1:0", "--data", data, "--database", dsn)
	m2.known = m.known
	out, status := m2.ssh("", true, "start Vm name=kept; list Vm")
	if status != 0 || !strings.Contains(out, "kept") {
		t.Fatalf("after a restart on the same database: exit %d\n%s", status, out)
	}
	for _, mm := range []*manager{m, m2} {
		if all := strings.Join(mm.stdout, "\n") + mm.stderr.String(); strings.Contains(all, pw) {
			t.Fatalf("the database's password is shown:\n%s", all)
		}
	}
}

// containsLine reports whether a line of lines starts with prefix.
func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

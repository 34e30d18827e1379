package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to look into a running manager's database
)

// A second manager on the same database (a second make run) is refused
// before it changes anything: it neither rediscovers the demo servers at
// its own agents' addresses nor ends the first manager's running jobs, and
// the first manager still reaches its agents (issue 12, item 9).
func TestSecondManagerOnTheSameDatabaseIsRefused(t *testing.T) {
	needTools(t)
	data := filepath.Join(t.TempDir(), "data")
	first := startManager(t, data, 2)
	db := openForInspection(t, filepath.Join(data, "manager.db"))
	const jobID = "0004fb0000110000e2e0000000000001"
	// A job the first manager runs: its member's (a job of no manager, or
	// of a dead one, the first manager itself would end as orphaned).
	var member string
	if err := db.QueryRow(`SELECT id FROM managers WHERE ended = 0`).Scan(&member); err != nil {
		t.Fatalf("the first manager's row among the managers: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO jobs (id, summary, user_name, status, created_at, manager_id) VALUES ($1, 'a job of the first manager', 'admin', 'Running', $2, $3)`,
		jobID, time.Now().UnixMilli(), member); err != nil {
		t.Fatal(err)
	}
	serversBefore := serverAddresses(t, db)

	out, code := runSecondManager(t, "--listen", "127.0.0.1:"+first.port, "--data", data, "--demo", "2")
	if code == 0 {
		t.Fatalf("a second manager on the same database started (exit 0):\n%s", out)
	}
	want := fmt.Sprintf("another manager (pid %d) holds the database %s", first.cmd.Process.Pid, filepath.Join(data, "manager.db"))
	if !strings.Contains(out, want) {
		t.Fatalf("the refusal does not say %q:\n%s", want, out)
	}

	var status string
	if err := db.QueryRow(`SELECT status FROM jobs WHERE id = $1`, jobID).Scan(&status); err != nil || status != "Running" {
		t.Fatalf("the first manager's running job is %q (%v) after the refused start; want Running: job recovery ran", status, err)
	}
	if after := serverAddresses(t, db); after != serversBefore {
		t.Fatalf("the refused start rewrote the servers:\nbefore: %s\nafter:  %s", serversBefore, after)
	}
	if out, status := first.ssh("", false, "create Vm name=alive repository=demo-repo memory=256; start Vm name=alive"); status != 0 {
		t.Fatalf("the first manager no longer reaches its agents: exit %d\n%s", status, out)
	}
}

// A manager whose SSH address is taken fails before it opens the database
// or starts anything: no database, no demo agents, no secret key.
func TestServeBindsBeforeTouchingTheData(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "data")

	out, code := runSecondManager(t, "--listen", busy.Addr().String(), "--data", data, "--demo", "1")
	if code == 0 || !strings.Contains(out, "listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy address: exit %d, want non-zero and the address named:\n%s", code, out)
	}
	for _, name := range []string{"manager.db", "demo", "secret.key", "ssh_host_ed25519_key", "admin-password"} {
		if _, err := os.Stat(filepath.Join(data, name)); err == nil {
			t.Errorf("serve made %s before it could listen", name)
		}
	}
}

// runSecondManager runs xenmanager serve with args to its end (it is
// expected to fail at once) and returns its output and exit status.
func runSecondManager(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t), append([]string{"serve"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("xenmanager serve %v did not end within 60 s:\n%s", args, out)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("xenmanager serve %v: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// openForInspection opens a running manager's database beside it, as
// another SQLite client: the test's view of what was written.
func openForInspection(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// serverAddresses lists each server's name and agent address.
func serverAddresses(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT name, address, port FROM servers ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var name, address string
		var port int
		if err := rows.Scan(&name, &address, &port); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%s:%d ", name, address, port)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A manager killed (kill -9) and started again on its data (SQLite): the
// new process is a new member that leads at once, in the next term, and
// has ended the killed one's running job, naming it, before it answers;
// list Manager shows both, the killed one dead.
func TestKilledManagerRestartedLeadsAndEndsItsJobs(t *testing.T) {
	needTools(t)
	data := filepath.Join(t.TempDir(), "data")
	first := startManager(t, data, 0)
	db := openForInspection(t, filepath.Join(data, "manager.db"))
	var member string
	if err := db.QueryRow(`SELECT id FROM managers WHERE ended = 0`).Scan(&member); err != nil {
		t.Fatal(err)
	}
	const jobID = "0004fb0000110000e2e0000000000002"
	if _, err := db.Exec(`INSERT INTO jobs (id, summary, user_name, status, created_at, manager_id) VALUES ($1, 'a job of the killed manager', 'admin', 'Running', $2, $3)`,
		jobID, time.Now().UnixMilli(), member); err != nil {
		t.Fatal(err)
	}
	rows := managerRows(t, first)
	if len(rows) != 1 || rows[0]["Id"] != member || rows[0]["Alive"] != "Yes" || rows[0]["Leader"] != "Yes" || rows[0]["Term"] != "1" || rows[0]["This"] != "Yes" {
		t.Fatalf("list Manager of the first manager: %v", rows)
	}
	pid := first.cmd.Process.Pid
	first.cmd.Process.Kill()
	first.cmd.Wait()
	first.stopped = true

	second := startManager(t, data, 0)
	var status, errText string
	if err := db.QueryRow(`SELECT status, error FROM jobs WHERE id = $1`, jobID).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("manager %s (", member); status != "Failure" || !strings.Contains(errText, want) || !strings.Contains(errText, fmt.Sprintf("pid %d) stopped while the job ran", pid)) {
		t.Fatalf("the killed manager's job once the next one answers: %s %q; want Failure naming %s, pid %d", status, errText, member, pid)
	}
	rows = managerRows(t, second)
	if len(rows) != 2 || rows[0]["Id"] != member || rows[0]["Alive"] != "No" || rows[0]["Leader"] != "No" || rows[0]["This"] != "No" ||
		rows[1]["Alive"] != "Yes" || rows[1]["Leader"] != "Yes" || rows[1]["Term"] != "2" || rows[1]["This"] != "Yes" {
		t.Fatalf("list Manager after the restart: %v", rows)
	}
}

// managerRows runs list Manager in the Table mode and returns its rows,
// each by its column headers.
func managerRows(t *testing.T, m *manager) []map[string]string {
	t.Helper()
	out, status := m.ssh("", false, "set outputMode=Table; list Manager")
	if status != 0 {
		t.Fatalf("list Manager: exit %d\n%s", status, out)
	}
	var header []string
	var rows []map[string]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			header = cells
			continue
		}
		row := map[string]string{}
		for i, h := range header {
			if i < len(cells) {
				row[h] = cells[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

package shell

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"xenmanager/backend/managertest"
	"xenmanager/store/fulldisk"
)

// The disk holding the manager's database fills up: a change fails with
// an error that says so, and is not made; reads still answer; every
// command's audit record waits (show Manager counts them), and none is
// lost, however often the manager tries to write them. Once there is room the change is made, and the audit log holds
// every command, the failed change with its failure.
//
// The database is fresh and takes few writes here, so its WAL only grows:
// every write needs room on the disk (a WAL restarted after a checkpoint
// would take writes into the room it has already).
func TestFullDiskFailsChangesAndLosesNoAuditRecord(t *testing.T) {
	disk := fulldisk.Mount(t, 16)
	e := newEnvWith(t, managertest.Options{Dir: disk.Dir})
	e.mustRun("create ServerPool name=before")

	disk.Fill()
	out, st := e.run("create ServerPool name=full")
	if st != 1 || !strings.Contains(out, "XM_0500E") || !strings.Contains(out, "the manager's database could not be written: its disk is full") {
		t.Fatalf("a change on a full disk: exit %d\n%s", st, out)
	}
	if out := e.mustRun("list ServerPool"); !strings.Contains(out, "name:before") || strings.Contains(out, "name:full") {
		t.Fatalf("list ServerPool on a full disk:\n%s", out)
	}
	// Reading the audit log makes the manager try to write the records
	// waiting, on the full disk.
	e.mustRun("list AuditRecord")
	out = e.mustRun("show Manager")
	if n, err := strconv.Atoi(prop(out, "Waiting Audit Records")); err != nil || n < 2 || prop(out, "Lost Audit Records") != "0" {
		t.Fatalf("show Manager on a full disk: want 2 or more records waiting, none lost\n%s", out)
	}

	disk.Free()
	if out := e.mustRun("list ServerPool"); strings.Contains(out, "name:full") {
		t.Fatalf("the change made on the full disk is there:\n%s", out)
	}
	e.mustRun("create ServerPool name=full")
	out = e.mustRun("set outputMode=Json; list AuditRecord limit=100")
	for _, rec := range [][2]string{
		{"create ServerPool name=before", "Success"},
		{"create ServerPool name=full", "XM_0500E"},
		{"list ServerPool", "Success"},
		{"show Manager", "Success"},
		{"create ServerPool name=full", "Success"},
	} {
		re := regexp.MustCompile(`"name":"` + regexp.QuoteMeta(rec[0]) + `","user":"admin","remote":"127\.0\.0\.1:\d+","result":"` + rec[1] + `"`)
		if !re.MatchString(out) {
			t.Errorf("the audit log lacks %s -> %s", rec[0], rec[1])
		}
	}
	if t.Failed() {
		t.Logf("audit log:\n%s", out)
	}
	if out := e.mustRun("show Manager"); prop(out, "Lost Audit Records") != "0" {
		t.Errorf("records lost:\n%s", out)
	}
}

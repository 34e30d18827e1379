package shell

import (
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"
)

// What a client sees of the commands that print text (help, <command> ?,
// top outside a terminal, getVmCfgFileContent), in every output mode: the
// same frame as every other command (docs/output-formats.md), and exit
// statuses that follow the reference's code table whoever found the fault.
func TestTextFramedAndExitStatusOverSSH(t *testing.T) {
	e := newEnv(t, 1, 4096)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=web1 repository=repo1 memory=256; start Vm name=web1")
	e.mustRun("create User name=viewer password=viewer-pw-1 role=Viewer; add User name=viewer to ServerPool name=pool1")

	texts := []struct {
		cmd  string
		want string // a line of its text
	}{
		{"help", "Commands (help <command> for more; <command> ? for its attributes):"},
		{"help start Vm", "Usage: start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{"start Vm ?", "Usage: start Vm [<instance>] [<filter> ...] [multiple=Yes|No]"},
		{"top", "SERVER               STATUS         CPU%    MEM MiB   FREE MiB  VMS"},
		{"getVmCfgFileContent Vm name=web1", "OVM_simple_name = 'web1'"},
	}
	for _, tc := range texts {
		t.Run(tc.cmd, func(t *testing.T) {
			verbose, st := e.run(tc.cmd)
			frame := "Command: " + tc.cmd + "\nStatus: Success\nTime: "
			if st != 0 || !strings.HasPrefix(verbose, frame) || !strings.Contains(verbose, "\nData:\n") || !strings.Contains(verbose, "\n  "+tc.want+"\n") {
				t.Fatalf("Verbose: exit %d, want 0, the frame %q and the line %q under Data:\n%s", st, frame, tc.want, verbose)
			}
			// Table frames it as Verbose does.
			if out, st := e.run("set outputMode=Table; " + tc.cmd); st != 0 || !strings.Contains(out, "\n"+frame) || !strings.Contains(out, "\n  "+tc.want+"\n") {
				t.Errorf("Table: exit %d\n%s", st, out)
			}
			// Sparse prints the data lines alone, unindented.
			if out, st := e.run("set outputMode=Sparse; " + tc.cmd); st != 0 || strings.Contains(out, "Command:") || !strings.Contains(out, "\n"+tc.want+"\n") && !strings.HasPrefix(out, tc.want+"\n") {
				t.Errorf("Sparse: exit %d\n%s", st, out)
			}
			if out, st := e.run("set outputMode=Json; " + tc.cmd); st != 0 || !jsonTextHas(t, lastLine(out), tc.cmd, tc.want) {
				t.Errorf("Json: exit %d\n%s", st, out)
			}
			if out, st := e.run("set outputMode=Xml; " + tc.cmd); st != 0 || !xmlTextHas(t, lastLine(out), tc.cmd, tc.want) {
				t.Errorf("Xml: exit %d\n%s", st, out)
			}
		})
	}

	failures := []struct {
		user, password, cmd string
		status              int
		code                string
	}{
		{cmd: "help strat", status: 2, code: "XM_0001E"},
		{cmd: "help start Server", status: 2, code: "XM_0002E"},
		{cmd: "showcustomcmds", status: 2, code: "XM_0002E"},
		{cmd: "showcustomcmds Vmm", status: 2, code: "XM_0002E"},
		{cmd: "set", status: 2, code: "XM_0005E"},
		{cmd: "show Vm name=nosuch", status: 1, code: "XM_0404E"},
		{user: "viewer", password: "viewer-pw-1", cmd: "stop Vm name=web1", status: 3, code: "XM_0403E"},
	}
	for _, tc := range failures {
		t.Run(tc.cmd, func(t *testing.T) {
			user, password := tc.user, tc.password
			if user == "" {
				user, password = "admin", e.password
			}
			out, st := e.runAs(user, password, tc.cmd)
			frame := "Command: " + tc.cmd + "\nStatus: Failure\nTime: "
			if st != tc.status || !strings.HasPrefix(out, frame) || !strings.Contains(out, "\nError Msg: "+tc.code+": ") {
				t.Errorf("Verbose: exit %d, want %d with the frame %q and %s\n%s", st, tc.status, frame, tc.code, out)
			}
			out, st = e.runAs(user, password, "set outputMode=Json; "+tc.cmd)
			var doc struct {
				Status string
				Error  struct{ Code string }
			}
			if err := json.Unmarshal([]byte(lastLine(out)), &doc); err != nil || st != tc.status || doc.Status != "Failure" || doc.Error.Code != tc.code {
				t.Errorf("Json: exit %d, want %d with %s (%v)\n%s", st, tc.status, tc.code, err, out)
			}
		})
	}
}

// lastLine is the last line of out, without its ending.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// jsonTextHas reports whether doc is the Json report of a successful cmd
// whose text holds the line want.
func jsonTextHas(t *testing.T, doc, cmd, want string) bool {
	t.Helper()
	var j struct {
		Command, Status string
		Data            struct{ Text []string }
	}
	if err := json.Unmarshal([]byte(doc), &j); err != nil {
		t.Logf("Json: %v", err)
		return false
	}
	return j.Command == cmd && j.Status == "Success" && containsLine(j.Data.Text, want)
}

// xmlTextHas is jsonTextHas for the Xml mode.
func xmlTextHas(t *testing.T, doc, cmd, want string) bool {
	t.Helper()
	var x struct {
		Command string   `xml:"command"`
		Status  string   `xml:"status"`
		Lines   []string `xml:"data>text>line"`
	}
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		t.Logf("Xml: %v", err)
		return false
	}
	return x.Command == cmd && x.Status == "Success" && containsLine(x.Lines, want)
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

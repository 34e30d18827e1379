package shell

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
)

// docKey is one key of a type in the reference's "Json version 2 keys".
type docKey struct {
	kind          string // the reference's type: string, integer, reference ...
	shown, listed bool
}

// documentedKeys reads docs/reference.md's "Keys of <Type>" tables: for each
// type, its keys with their type and whether show and list print them.
func documentedKeys(t *testing.T) map[string]map[string]docKey {
	t.Helper()
	f, err := os.Open("../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([^`]+)` \\| ([^|]+) \\| ([^|]*) \\| ([^|]*) \\|$")
	out := map[string]map[string]docKey{}
	var keys map[string]docKey
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if typ, ok := strings.CutPrefix(line, "### Keys of "); ok && typ != "other results" {
			keys = map[string]docKey{}
			out[typ] = keys
			continue
		}
		if strings.HasPrefix(line, "#") {
			keys = nil
		}
		if m := row.FindStringSubmatch(line); m != nil && keys != nil {
			keys[m[1]] = docKey{kind: strings.TrimSpace(m[2]), shown: strings.TrimSpace(m[3]) != "not shown",
				listed: strings.TrimSpace(m[4]) != "not listed"}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// matchesKind reports whether a decoded JSON value is of the reference's
// type: integers, numbers, booleans, times and references may be null.
func matchesKind(v any, kind string) bool {
	switch kind {
	case "string":
		_, ok := v.(string)
		return ok
	case "array of strings":
		a, ok := v.([]any)
		for _, e := range a {
			if _, s := e.(string); !s {
				return false
			}
		}
		return ok
	case "array of references":
		a, ok := v.([]any)
		for _, e := range a {
			if !isRef(e) {
				return false
			}
		}
		return ok
	}
	if v == nil {
		return true
	}
	switch kind {
	case "integer":
		n, ok := v.(float64)
		return ok && n == float64(int64(n))
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "time":
		s, ok := v.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		return ok && err == nil && strings.HasSuffix(s, "Z")
	case "reference":
		return isRef(v)
	}
	return false
}

// isRef reports whether v is {"id": string, "name": string}.
func isRef(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 2 {
		return false
	}
	id, ok1 := m["id"].(string)
	_, ok2 := m["name"].(string)
	return ok1 && ok2 && id != ""
}

// jsonV2 runs command in Json version 2 and decodes its document (the last
// line: set prints one each too).
func (e *env) jsonV2(t *testing.T, command string) map[string]any {
	t.Helper()
	out, st := e.run("set outputMode=Json; set jsonVersion=2; " + command)
	var doc map[string]any
	if err := json.Unmarshal([]byte(lastLine(out)), &doc); err != nil || st != 0 {
		t.Fatalf("%s: exit %d, %v\n%s", command, st, err, out)
	}
	if doc["jsonVersion"] != float64(2) || doc["status"] != "Success" || doc["command"] != command {
		t.Fatalf("%s: frame %v", command, doc)
	}
	return doc
}

// newSSHKey is an authorized_keys line of a new ed25519 key.
func newSSHKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp)))
}

// Json version 2 over SSH: every key that show and list print, for every
// object type with at least one object, is in the reference's table for
// the type with the type the value has, and show prints every key the
// table gives it; list prints typed values too. Together with
// TestReferenceIsCurrent (the committed reference is what the registry
// generates), the documentation of version 2 cannot go stale.
func TestJSONVersion2KeysAreDocumented(t *testing.T) {
	iso := isoImage()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	t.Cleanup(web.Close)
	e := newEnv(t, 1, 8192)
	// A member row for list Manager, as serve's Join writes (its loops,
	// Run, are not needed here).
	if _, err := e.mgr.Join(context.Background(), backend.MemberConfig{Hostname: "test-host", Address: "127.0.0.1:10000", PID: 1, Sole: true}); err != nil {
		t.Fatal(err)
	}
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Network name=net1 on ServerPool name=pool1; create VirtualDisk name=d1 size=1 on Repository name=repo1")
	e.mustRun("create Vm name=web1 repository=repo1 memory=256 disks=d1 networks=net1; start Vm name=web1")
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8") // where web listens
	e.mustRun("importIso Repository name=repo1 url=" + web.URL + "/x.iso name=iso1")
	e.mustRun("create Tag name=t1; add Tag name=t1 to Vm name=web1")
	e.mustRun("create AntiAffinityGroup name=g1 on ServerPool name=pool1; add Vm name=web1 to AntiAffinityGroup name=g1")
	e.mustRun("create User name=u1 password=u1-password role=Operator; add User name=u1 to ServerPool name=pool1")
	// The comment keeps the key off the closing quote: a key ending in "/"
	// would read as the escape /".
	e.mustRun(fmt.Sprintf("create SshKey name=k1 key=%q", newSSHKey(t)+" k1@test"))
	e.failCode("start Vm name=web1", "XM_0412E") // a failed job: an Event
	e.mustRun("create VirtualDisk name=d2 size=1 on Repository name=repo1; create Vm name=web2 repository=repo1 memory=256 disks=d2 networks=net1")
	e.mustRun("clone Vm name=web2 destType=VmTemplate destName=tpl1")
	e.mustRun("create VmCloneCustomizer name=c1 on VmTemplate name=tpl1")
	e.mustRun("create VmCloneStorageMapping name=s1 vmDiskMapping=tpl1-xvda cloneType=SPARSE_COPY repository=repo1 on VmCloneCustomizer name=c1")
	e.mustRun("create VmCloneNetworkMapping name=n1 vnic=tpl1-eth0 network=net1 on VmCloneCustomizer name=c1")

	docs := documentedKeys(t)
	shown := map[string]bool{"ServerPool": true, "Server": true, "Repository": true, "Vm": true, "Tag": true, "Network": true,
		"VirtualDisk": true, "VirtualCdrom": true, "Vnic": true, "Manager": true, "Job": true, "User": true, "SshKey": true, "AntiAffinityGroup": true,
		"VmTemplate": true, "VmCloneCustomizer": true, "VmCloneStorageMapping": true, "VmCloneNetworkMapping": true}
	types := []string{"ServerPool", "Server", "Repository", "Vm", "Tag", "Network", "VirtualDisk", "VirtualCdrom", "VmDiskMapping",
		"Vnic", "Manager", "Job", "Event", "User", "SshKey", "AuditRecord", "AntiAffinityGroup", "VmTemplate", "VmCloneCustomizer",
		"VmCloneStorageMapping", "VmCloneNetworkMapping"}
	if len(docs) != len(types) {
		t.Errorf("the reference documents %d types, the test knows %d", len(docs), len(types))
	}
	check := func(t *testing.T, typ, what string, obj map[string]any, listed bool) {
		t.Helper()
		for k, v := range obj {
			d, ok := docs[typ][k]
			switch {
			case !ok:
				t.Errorf("%s of %s prints %q, which the reference does not document", what, typ, k)
			case listed && !d.listed || !listed && !d.shown:
				t.Errorf("%s of %s prints %q, which the reference says it does not", what, typ, k)
			case !matchesKind(v, d.kind):
				t.Errorf("%s of %s: %q is %#v, the reference says %s", what, typ, k, v, d.kind)
			}
		}
		for k, d := range docs[typ] {
			if _, ok := obj[k]; !ok && (listed && d.listed || !listed && d.shown) {
				t.Errorf("%s of %s lacks %q, which the reference documents", what, typ, k)
			}
		}
	}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			doc := e.jsonV2(t, "list "+typ)
			rows, _ := doc["data"].([]any)
			if len(rows) == 0 {
				t.Fatalf("list %s: no rows: %v", typ, doc)
			}
			for _, r := range rows {
				check(t, typ, "list", r.(map[string]any), true)
			}
			if !shown[typ] {
				return
			}
			cmd := "show " + typ + " id=" + rows[0].(map[string]any)["id"].(string)
			if typ == "Manager" {
				cmd = "show Manager"
			}
			attrs, ok := e.jsonV2(t, cmd)["data"].(map[string]any)
			if !ok {
				t.Fatalf("%s: data is not an object", cmd)
			}
			check(t, typ, "show", attrs, false)
		})
	}

	// What the values are, beside their types.
	vm := e.jsonV2(t, "show Vm name=web1")["data"].(map[string]any)
	server, _ := vm["server"].(map[string]any)
	disks, _ := vm["disks"].([]any)
	if vm["memory"] != float64(256) || vm["cpuCount"] != float64(1) || vm["highAvailability"] != false || vm["status"] != "Running" ||
		server["name"] != "ovs1" || len(disks) != 1 || disks[0].(map[string]any)["name"] != "d1" || vm["tags"].([]any)[0] != "t1" {
		t.Errorf("show Vm in version 2: %v", vm)
	}
	for _, j := range e.jsonV2(t, "list Job")["data"].([]any) {
		job := j.(map[string]any)
		if job["status"] == "Success" && job["progress"] != float64(100) || job["status"] == "Failure" && job["progress"] == float64(100) {
			t.Errorf("list Job in version 2: %v", job)
		}
	}
}

// The error object of version 2 carries the exit status the code ends a
// session with, beside the code and message; a multi-object action's rows
// carry their own result and error.
func TestJSONVersion2Errors(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Vm name=web1 repository=repo1 memory=256; create Vm name=web2 repository=repo1 memory=256; start Vm name=web1")
	e.mustRun("create User name=viewer password=viewer-pw-1 role=Viewer; add User name=viewer to ServerPool name=pool1")
	for _, c := range []struct {
		user, password, cmd string
		code                string
		status              int
	}{
		{cmd: "show Vm name=nosuch", code: "XM_0404E", status: 1},
		{cmd: "show Vm nosuch=1", code: "XM_0007E", status: 2},
		{user: "viewer", password: "viewer-pw-1", cmd: "stop Vm name=web1", code: "XM_0403E", status: 3},
	} {
		user, password := c.user, c.password
		if user == "" {
			user, password = "admin", e.password
		}
		out, st := e.runAs(user, password, "set outputMode=Json; set jsonVersion=2; "+c.cmd)
		var doc struct {
			JSONVersion int    `json:"jsonVersion"`
			Status      string `json:"status"`
			Error       struct {
				Code       string `json:"code"`
				Message    string `json:"message"`
				ExitStatus int    `json:"exitStatus"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(lastLine(out)), &doc); err != nil || st != c.status || doc.JSONVersion != 2 ||
			doc.Status != "Failure" || doc.Error.Code != c.code || doc.Error.ExitStatus != c.status || doc.Error.Message == "" {
			t.Errorf("%s: exit %d, want %d and %s (%v)\n%s", c.cmd, st, c.status, c.code, err, out)
		}
	}

	out, st := e.run("set outputMode=Json; set jsonVersion=2; start Vm name=web* multiple=Yes")
	var doc struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &doc); err != nil || st != 1 || len(doc.Data) != 2 {
		t.Fatalf("start Vm name=web* multiple=Yes: exit %d (%v)\n%s", st, err, out)
	}
	for _, row := range doc.Data {
		errObj, _ := row["error"].(map[string]any)
		switch row["name"] {
		case "web1": // running already
			if row["result"] != "Failure" || errObj["code"] != "XM_0412E" || errObj["exitStatus"] != float64(1) {
				t.Errorf("the failed row: %v", row)
			}
		case "web2":
			if row["result"] != "Success" || row["error"] != nil {
				t.Errorf("the row that succeeded: %v", row)
			}
		}
	}
}

// set jsonVersion= takes 1 and 2 and says so when given anything else; an
// exec or batch session's choice lasts for that session, one made at the
// OVM> prompt is remembered for the user's later interactive sessions
// (as outputMode is), and exec sessions still start at 1.
func TestJSONVersionSetting(t *testing.T) {
	e := newEnv(t, 0, 0)
	addr, _ := e.serveWith(func(c *Config) { c.PromptCommand = frontEnd(roleRealPrompt) })

	out, st := e.run("set jsonVersion=3")
	if st != 2 || !strings.Contains(out, "Error Msg: XM_0006E: jsonVersion='3' is not valid for set; use one of 1, 2") {
		t.Fatalf("set jsonVersion=3: exit %d\n%s", st, out)
	}
	out = e.mustRun("set outputMode=Json; set jsonVersion=2; showclisession")
	if !strings.Contains(lastLine(out), `"jsonVersion":2,"outputMode":"Json"`) && !strings.Contains(lastLine(out), `"outputMode":"Json","jsonVersion":2`) {
		t.Fatalf("showclisession in version 2:\n%s", out)
	}
	if _, ok := e.mgr.UserSetting(context.Background(), "admin", "jsonVersion"); ok {
		t.Fatal("an exec session's jsonVersion was remembered")
	}

	tc := e.openTerm(t, addr, 120, 40)
	tc.waitText("OVM> ", 1)
	tc.typeText("set jsonVersion=2\r")
	tc.typeText("exit\r")
	tc.waitEnd()
	tc = e.openTerm(t, addr, 120, 40)
	tc.waitText("OVM> ", 1)
	tc.typeText("showclisession\r")
	tc.waitFor("Json Version 2 in the next interactive session", regexp.MustCompile(`Json Version\s*\|\s*2\b`).MatchString)
	tc.typeText("exit\r")
	tc.waitEnd()
	if out := e.mustRun("showclisession"); prop(out, "Json Version") != "1" {
		t.Fatalf("an exec session after set jsonVersion=2 at the prompt:\n%s", out)
	}
}

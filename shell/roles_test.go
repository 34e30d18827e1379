package shell

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
)

// Roles and pools: a Viewer changes nothing, an Operator manages VMs but not
// users, and a user outside a pool sees none of its objects, whatever verb
// or pattern is used.
func TestRolesAndVisibility(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create ServerPool name=pool2")
	e.mustRun("create Vm name=web1 repository=repo1 memory=256; create Vm name=web2 repository=repo1 memory=256")
	e.mustRun(`create User name=op password="op-secret-1" role=Operator; create User name=viewer password=viewer-pw-1 role=Viewer`)
	e.mustRun("create User name=outsider password=outside-pw-1 role=Operator")
	e.mustRun("add User name=op to ServerPool name=pool1; add User name=viewer to ServerPool name=pool1; add User name=outsider to ServerPool name=pool2")
	if out := e.mustRun("show User name=op"); prop(out, "Role") != "Operator" || !strings.HasSuffix(prop(out, "Server Pool 1"), "[pool1]") {
		t.Fatalf("show User:\n%s", out)
	}

	// The Viewer reads but changes nothing: exit status 3.
	if out, st := e.runAs("viewer", "viewer-pw-1", "list Vm"); st != 0 || strings.Count(out, "  id:") != 2 {
		t.Fatalf("viewer list Vm: exit %d\n%s", st, out)
	}
	for _, cmd := range []string{"start Vm name=web1", "create Vm name=x repository=repo1", "edit Vm name=web1 memory=512",
		"delete Vm name=web2", "create ServerPool name=p3", "edit Server name=ovs1 maintenanceMode=Yes"} {
		out, st := e.runAs("viewer", "viewer-pw-1", cmd)
		if st != 3 || !strings.Contains(out, "XM_0403E") || !strings.Contains(out, "user viewer (Viewer) may not") {
			t.Errorf("viewer %q: exit %d\n%s", cmd, st, out)
		}
	}
	// The Operator runs VMs, not users or infrastructure.
	if out, st := e.runAs("op", "op-secret-1", "start Vm name=web1"); st != 0 {
		t.Fatalf("operator start: exit %d\n%s", st, out)
	}
	for _, cmd := range []string{"create User name=x password=12345678", "delete ServerPool name=pool1", "create ServerPool name=p9",
		"getAuditLog", "list AuditRecord", "edit User name=op role=Administrator", "edit Server name=ovs1 roles=xen"} {
		out, st := e.runAs("op", "op-secret-1", cmd)
		if st != 3 || !strings.Contains(out, "XM_0403E") {
			t.Errorf("operator %q: exit %d\n%s", cmd, st, out)
		}
	}
	// Users see themselves only; an Operator may change their own password.
	if out, _ := e.runAs("op", "op-secret-1", "list User"); strings.Count(out, "  id:") != 1 || !strings.Contains(out, "name:op") {
		t.Errorf("operator list User:\n%s", out)
	}
	if out, st := e.runAs("op", "op-secret-1", "edit User name=op password=op-secret-2"); st != 0 {
		t.Fatalf("own password: exit %d\n%s", st, out)
	}
	if _, st := e.runAs("op", "op-secret-2", "list Vm"); st != 0 {
		t.Fatal("the new password does not work")
	}

	// The outsider sees nothing of pool1, by any verb or pattern.
	for _, cmd := range []string{"list Vm", "list Vm name=web*", "list Server", "list Repository", "list ServerPool name=pool1"} {
		out, st := e.runAs("outsider", "outside-pw-1", cmd)
		if st != 0 || strings.Contains(out, "  id:") && !strings.Contains(cmd, "ServerPool") {
			t.Errorf("outsider %q: exit %d\n%s", cmd, st, out)
		}
		if strings.Contains(out, "web1") || strings.Contains(out, "ovs1") || strings.Contains(out, "repo1") || strings.Contains(out, "name:pool1") {
			t.Errorf("outsider %q sees pool1's objects:\n%s", cmd, out)
		}
	}
	vmID := prop(e.mustRun("show Vm name=web1"), "Id")
	for _, cmd := range []string{"show Vm name=web1", "show Vm id=" + vmID, "stop Vm name=web1", "start Vm name=web* multiple=Yes",
		"delete Vm id=" + vmID, "show Server name=ovs1", "list Vm server=ovs1", "create Vm name=x repository=repo1", "show ServerPool name=pool1"} {
		out, st := e.runAs("outsider", "outside-pw-1", cmd)
		if st != 1 || !strings.Contains(out, "XM_0404E") {
			t.Errorf("outsider %q: exit %d, want not found\n%s", cmd, st, out)
		}
	}
	if st := prop(e.mustRun("show Vm name=web1"), "Status"); st != "Running" {
		t.Fatalf("web1 is %s after the outsider's attempts", st)
	}
	// Jobs, events and completion names of pool1 are hidden from the outsider.
	e.failCode("start Vm name=web1", "XM_0412E") // a failed job: an event of pool1
	if out, _ := e.runAs("outsider", "outside-pw-1", "list Job; getEvents"); strings.Contains(out, "web1") || strings.Contains(out, "pool1") {
		t.Errorf("the outsider sees pool1's jobs or events:\n%s", out)
	}
	jobID := regexp.MustCompile(`id:([0-9a-f]{32})  name:start Vm web1`).FindStringSubmatch(e.mustRun("list Job"))[1]
	if out, st := e.runAs("outsider", "outside-pw-1", "show Job id="+jobID); st != 1 || !strings.Contains(out, "XM_0404E") {
		t.Errorf("outsider show Job: exit %d\n%s", st, out)
	}
	if out, st := e.runAs("viewer", "viewer-pw-1", "abort Job id="+jobID); st != 3 || !strings.Contains(out, "XM_0403E") {
		t.Errorf("viewer abort Job: exit %d\n%s", st, out)
	}
	if out, _ := e.runAs("viewer", "viewer-pw-1", "getEvents"); !strings.Contains(out, "JobFailed") {
		t.Errorf("the viewer does not see their pool's events:\n%s", out)
	}
	outsider := backend.WithActor(context.Background(), backend.Actor{User: "outsider", Role: "Operator"})
	if names := e.mgr.ObjectNames(outsider, "Vm", "web", 10, nil); len(names) != 0 {
		t.Errorf("completion offers the outsider %v", names)
	}
	viewer := backend.WithActor(context.Background(), backend.Actor{User: "viewer", Role: "Viewer"})
	if names := e.mgr.ObjectNames(viewer, "Vm", "web", 10, []string{"Stopped"}); len(names) != 1 || names[0] != "web2" {
		t.Errorf("completion offers the viewer %v, want the stopped web2", names)
	}
	// A role taken away applies to the sessions that follow at once, and a
	// deleted user's session ends.
	e.mustRun("edit User name=op role=Viewer")
	if out, st := e.runAs("op", "op-secret-2", "stop Vm name=web1"); st != 3 {
		t.Errorf("demoted operator: exit %d\n%s", st, out)
	}
	e.mustRun("edit User name=op role=Operator")

	// The audit log (administrators) holds who did what from where.
	out := e.mustRun("set outputMode=Json; list AuditRecord limit=500")
	for _, want := range []string{`"name":"start Vm name=web1","user":"op","remote":"127.0.0.1:`, `"result":"XM_0403E"`,
		`"name":"edit User name=op password=****","user":"op"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	if strings.Contains(out, "op-secret") {
		t.Error("the audit log holds a password")
	}
	e.failCode("delete User name=admin", "XM_0409E", "you cannot delete yourself")
	e.failCode("edit User name=admin role=Viewer", "XM_0409E", "last Administrator")
	e.failCode("create User name=op password=whatever1", "XM_0409E", "exists already")
	e.failCode("create User name=shorty password=short", "XM_0400E", "at least 8 characters")
	e.mustRun("remove User name=outsider from ServerPool name=pool2; delete User name=outsider")
}

// An approved ISO is an Administrator's to edit or delete; a Pending one is
// also the Operator's who imported it, not another Operator's. Tags are
// global: Administrators create, rename and delete them; an Operator puts
// them on and takes them off the VMs of their pools, not their servers,
// pools or repositories.
func TestIsoAndTagPermissions(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(isoImage()) }))
	t.Cleanup(web.Close)
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun(`create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1`)
	e.mustRun(`create User name=op2 password=op2-secret-1 role=Operator; add User name=op2 to ServerPool name=pool1`)
	op := func(cmd string) (string, int) { return e.runAs("op", "op-secret-1", cmd) }
	op2 := func(cmd string) (string, int) { return e.runAs("op2", "op2-secret-1", cmd) }
	refused := func(who string, run func(string) (string, int), cmd string, msgs ...string) {
		t.Helper()
		out, st := run(cmd)
		if st != 3 || !strings.Contains(out, "Error Msg: XM_0403E: user "+who+" (Operator) may not") {
			t.Fatalf("%s %q: exit %d, want XM_0403E\n%s", who, cmd, st, out)
		}
		for _, m := range msgs {
			if !strings.Contains(out, m) {
				t.Fatalf("%s %q: message lacks %q\n%s", who, cmd, m, out)
			}
		}
	}
	allowed := func(who string, run func(string) (string, int), cmd string) {
		t.Helper()
		if out, st := run(cmd); st != 0 {
			t.Fatalf("%s %q: exit %d\n%s", who, cmd, st, out)
		}
	}
	importIso := func(name string) string {
		return "importIso Repository name=repo1 url=" + web.URL + "/x.iso name=" + name
	}

	// The Administrator's import is Approved: the Operator neither edits nor
	// deletes it, the Administrator does.
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8") // where web listens
	e.mustRun(importIso("ol9"))
	refused("op", op, "delete VirtualCdrom name=ol9", "may not delete VirtualCdrom ol9: it is Approved, and only an Administrator")
	refused("op", op, "edit VirtualCdrom name=ol9 name=ol9-fixed", "may not edit VirtualCdrom ol9: it is Approved")
	refused("op", op, `edit VirtualCdrom name=ol9 description="not what it was"`, "it is Approved")
	if out := e.mustRun("show VirtualCdrom name=ol9"); prop(out, "Name") != "ol9" || prop(out, "Description") != "" {
		t.Fatalf("the refused edits changed the ISO:\n%s", out)
	}
	e.mustRun("edit VirtualCdrom name=ol9 name=ol9-admin description=checked")

	// A Pending ISO: its importer edits and deletes it, another Operator
	// does neither; once approved, the importer no longer may.
	allowed("op", op, importIso("tools"))
	allowed("op", op, importIso("drivers"))
	refused("op2", op2, "edit VirtualCdrom name=tools name=tools2", "may not edit VirtualCdrom tools: it was imported by op")
	refused("op2", op2, "delete VirtualCdrom name=tools", "may not delete VirtualCdrom tools: it was imported by op")
	allowed("op", op, "edit VirtualCdrom name=tools name=tools-2 description=mine")
	allowed("op", op, "delete VirtualCdrom name=tools-2")
	e.mustRun("approve VirtualCdrom name=drivers")
	refused("op", op, "delete VirtualCdrom name=drivers", "it is Approved")
	refused("op", op, "edit VirtualCdrom name=drivers name=drivers2", "it is Approved")
	e.mustRun("delete VirtualCdrom name=drivers; delete VirtualCdrom name=ol9-admin")
	if out := e.mustRun("list VirtualCdrom"); strings.Contains(out, "  id:") {
		t.Fatalf("ISOs left:\n%s", out)
	}

	// Tags: the Administrator's to make, rename and delete.
	e.mustRun("create Tag name=gold; create Vm name=web1 repository=repo1")
	tags := "tags, which every pool shares"
	refused("op", op, "create Tag name=silver", "may not create, rename or delete "+tags)
	refused("op", op, "edit Tag name=gold name=platinum", tags)
	refused("op", op, "edit Tag name=gold description=shiny", tags)
	refused("op", op, "delete Tag name=gold", tags)
	if out := e.mustRun("list Tag"); strings.Count(out, "  id:") != 1 || !strings.Contains(out, "name:gold") {
		t.Fatalf("the refused tag commands changed the tags:\n%s", out)
	}
	// ... the Operator's to put on their VMs and take off, not on servers,
	// pools or repositories.
	allowed("op", op, "add Tag name=gold to Vm name=web1")
	if tags := prop(e.mustRun("show Vm name=web1"), "Tags"); tags != "gold" {
		t.Fatalf("web1's tags = %q", tags)
	}
	allowed("op", op, "remove Tag name=gold from Vm name=web1")
	for _, target := range []string{"Server name=ovs1", "ServerPool name=pool1", "Repository name=repo1"} {
		refused("op", op, "add Tag name=gold to "+target, "may not put tags on or take them off "+strings.Fields(target)[0]+" objects")
		e.mustRun("add Tag name=gold to " + target)
		refused("op", op, "remove Tag name=gold from "+target, "may not put tags on or take them off")
	}
	e.mustRun("edit Tag name=gold name=platinum; delete Tag name=platinum")
}

// A user logs in with a registered key; an unregistered key is refused.
func TestSSHKeyLogin(t *testing.T) {
	e := newEnv(t, 0, 0)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := gossh.NewPublicKey(pub)
	signer, _ := gossh.NewSignerFromKey(priv)
	authorized := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub)))
	e.mustRun("create User name=keyuser password=key-user-pw role=Viewer")
	e.mustRun(`create SshKey name=laptop user=keyuser key="` + authorized + ` me@laptop"`)
	if out := e.mustRun("list SshKey; show SshKey name=laptop"); !strings.Contains(out, "name:laptop") || !strings.HasPrefix(prop(out, "Fingerprint"), "SHA256:") {
		t.Fatalf("list SshKey:\n%s", out)
	}
	out, st := e.sessionAs("keyuser", gossh.PublicKeys(signer), "showclisession", nil)
	if st != 0 || prop(out, "User") != "keyuser" || prop(out, "Role") != "Viewer" {
		t.Fatalf("key login: exit %d\n%s", st, out)
	}
	// The same key does not log in as another user.
	cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()}
	if c, err := gossh.Dial("tcp", e.sshAddr, cfg); err == nil {
		c.Close()
		t.Fatal("keyuser's key logged in as admin")
	}
	e.failCode(`create SshKey name=bad key="not a key"`, "XM_0400E", "not an OpenSSH public key")
	// A key whose base64 ends in '/' (one in 64) needs it doubled before
	// the closing quote, where '/' escapes a quote (command-language.md).
	again := authorized
	if strings.HasSuffix(again, "/") {
		again += "/"
	}
	e.failCode(`create SshKey name=again user=keyuser key="`+again+`"`, "XM_0409E", "registered already")
	keyID := prop(e.mustRun("show SshKey name=laptop"), "Id")
	e.mustRun("delete SshKey id=" + keyID)
	cfg.User = "keyuser"
	if c, err := gossh.Dial("tcp", e.sshAddr, cfg); err == nil {
		c.Close()
		t.Fatal("a deleted key still logs in")
	}
}

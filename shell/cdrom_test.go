package shell

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// isoImage returns a small image with an ISO 9660 volume descriptor where a
// reader looks for one (offset 32769), followed by some data.
func isoImage() []byte {
	b := make([]byte, 32768, 40000)
	b = append(b, 1)
	b = append(b, "CD001"...)
	b = append(b, 1)
	for i := 0; len(b) < 40000; i++ {
		b = append(b, byte(i*7))
	}
	return b
}

// An ISO downloaded over HTTP into a repository by a server of the pool,
// approved, put in VMs as a CD-ROM drive of their vm.cfg, and refused where
// it would be lost or misplaced.
func TestVirtualCdromImportAndMapping(t *testing.T) {
	iso := isoImage()
	mux := http.NewServeMux()
	mux.HandleFunc("/install.iso", func(w http.ResponseWriter, r *http.Request) { w.Write(iso) })
	mux.HandleFunc("/notes.txt", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("hello\n"), 7000)) })
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)

	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8") // where web listens
	repoID := prop(e.mustRun("show Repository name=repo1"), "Id")

	e.mustRun("importIso Repository name=repo1 url=" + web.URL + "/install.iso name=install description=\"OL 9\"")
	out := e.mustRun("show VirtualCdrom name=install")
	isoID := prop(out, "Id")
	if prop(out, "State") != "Approved" || prop(out, "Size (bytes)") != fmt.Sprint(len(iso)) || prop(out, "Imported By") != "admin" ||
		prop(out, "Description") != "OL 9" || prop(out, "Path") != "/OVS/Repositories/"+repoID+"/ISOs/"+isoID+".iso" {
		t.Fatalf("show VirtualCdrom:\n%s", out)
	}
	file := filepath.Join(repoDir, "ISOs", isoID+".iso")
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, iso) {
		t.Fatalf("the ISO in the repository differs from the one served (%d bytes, %v)", len(got), err)
	}

	// Bad input: the language, the URL, what the server fetches.
	e.failCode("importIso Repository name=repo1 url=ftp://example.org/x.iso name=x", "XM_0400E", "http:// or https://")
	e.failCode("importIso Repository name=repo1 url="+web.URL+"/install.iso name=\"bad/name\"", "XM_0400E", "invalid VirtualCdrom name")
	e.failCode("importIso Repository name=repo1 url="+web.URL+"/missing.iso name=gone", "XM_0404E", "HTTP 404")
	e.failCode("importIso Repository name=repo1 url="+web.URL+"/notes.txt name=notes", "XM_0400E", "not an ISO 9660")
	e.failCode("importIso Repository name=nosuch url="+web.URL+"/install.iso name=x", "XM_0404E")
	if out := e.mustRun("list VirtualCdrom"); strings.Count(out, "  id:") != 1 {
		t.Fatalf("failed imports left records:\n%s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(repoDir, "ISOs")); len(entries) != 1 {
		t.Fatalf("failed imports left files: %v", entries)
	}

	// An Operator's import waits for an Administrator.
	e.mustRun(`create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1`)
	e.mustRun(`create User name=viewer password=viewer-pw-1 role=Viewer; add User name=viewer to ServerPool name=pool1`)
	if out, st := e.runAs("op", "op-secret-1", "importIso Repository name=repo1 url="+web.URL+"/install.iso name=tools"); st != 0 {
		t.Fatalf("operator import: exit %d\n%s", st, out)
	}
	if out, st := e.runAs("viewer", "viewer-pw-1", "importIso Repository name=repo1 url="+web.URL+"/install.iso name=v"); st != 3 {
		t.Fatalf("viewer import: exit %d\n%s", st, out)
	}
	e.mustRun(`create ServerPool name=pool2; create User name=outsider password=outside-pw-1 role=Operator; add User name=outsider to ServerPool name=pool2`)
	for _, cmd := range []string{"list VirtualCdrom", "list VirtualCdrom name=*", "show VirtualCdrom name=install", "delete VirtualCdrom name=install",
		"approve VirtualCdrom name=tools", "edit VirtualCdrom name=install name=mine"} {
		out, _ := e.runAs("outsider", "outside-pw-1", cmd)
		if strings.Contains(out, isoID) || strings.Contains(out, "  id:") || !strings.HasPrefix(cmd, "list") && !strings.Contains(out, "XM_0404E") {
			t.Errorf("a user outside the pool reached its ISO with %q:\n%s", cmd, out)
		}
	}
	if out := e.mustRun("show VirtualCdrom name=tools"); prop(out, "State") != "Pending" || prop(out, "Imported By") != "op" {
		t.Fatalf("operator's ISO:\n%s", out)
	}

	e.mustRun("create VirtualDisk name=root size=1 on Repository name=repo1; create VirtualDisk name=data size=1 on Repository name=repo1")
	e.mustRun("create Vm name=db repository=repo1 memory=512 disks=root; create Vm name=web repository=repo1 memory=512")
	e.failCode("add VirtualCdrom name=tools to Vm name=db", "XM_0412E", "is Pending; an Administrator must approve it first")
	if out, st := e.runAs("op", "op-secret-1", "approve VirtualCdrom name=tools"); st != 3 {
		t.Fatalf("operator approve: exit %d\n%s", st, out)
	}
	e.mustRun("approve VirtualCdrom name=tools")
	e.failCode("approve VirtualCdrom name=tools", "XM_0412E", "Approved already")

	// Into vm.cfg: after the disk in slot 0, read-only, a CD-ROM.
	e.mustRun("add VirtualCdrom name=install to Vm name=db")
	vmID := prop(e.mustRun("show Vm name=db"), "Id")
	cfg, err := e.agentClient(0).GetVMConfig(context.Background(), repoID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	want := "file:/OVS/Repositories/" + repoID + "/ISOs/" + isoID + ".iso,xvdb:cdrom,r"
	if disks := fmt.Sprint(cfg["disk"]); !strings.Contains(disks, want) || !strings.Contains(disks, ",xvda,w") {
		t.Fatalf("vm.cfg disk = %s, want it to hold %s", disks, want)
	}
	if out := e.mustRun("getVmCfgFileContent Vm name=db"); !strings.Contains(out, "disk = ['file:/OVS/Repositories/"+repoID+"/VirtualDisks/") ||
		!strings.Contains(out, ".iso,xvdb:cdrom,r'") || !strings.Contains(out, "memory = 512") {
		t.Fatalf("getVmCfgFileContent:\n%s", out)
	}
	e.failCode("getVmCfgFileContent Vm name=nosuch", "XM_0404E")
	if out, st := e.runAs("viewer", "viewer-pw-1", "getVmCfgFileContent Vm name=db"); st != 0 || !strings.Contains(out, "cdrom") {
		t.Fatalf("a Viewer reads vm.cfg: exit %d\n%s", st, out)
	}
	if out := e.mustRun("show Vm name=db"); prop(out, "Virtual Cdroms") != "install" {
		t.Fatalf("show Vm:\n%s", out)
	}
	if out := e.mustRun("list VmDiskMapping vm=db"); !strings.Contains(out, "name:db/install") || !strings.Contains(out, "name:db/root") {
		t.Fatalf("mappings:\n%s", out)
	}
	e.failCode("add VirtualCdrom name=install to Vm name=db", "XM_0409E", "in Vm db already")
	e.failCode("add VirtualDisk name=data slot=1 to Vm name=db", "XM_0409E", "slot 1 of Vm db holds a VirtualCdrom")
	e.failCode("add VirtualCdrom name=tools slot=0 to Vm name=db", "XM_0409E", "slot 0 of Vm db holds a disk")
	e.mustRun("add VirtualCdrom name=install to Vm name=web") // an ISO is read-only: VMs share it
	if out := e.mustRun("show VirtualCdrom name=install"); prop(out, "Vms") != "db, web" {
		t.Fatalf("show VirtualCdrom Vms:\n%s", out)
	}

	// The agent starts the VM with the ISO; nothing changes while it runs.
	e.mustRun("start Vm name=db")
	e.failCode("remove VirtualCdrom name=install from Vm name=db", "XM_0412E", "removing a VirtualCdrom needs Stopped")
	e.failCode("add VirtualCdrom name=tools to Vm name=db", "XM_0412E", "adding a VirtualCdrom needs Stopped")
	e.failCode("delete VirtualCdrom name=install", "XM_0409E", "in use by Vm db, Vm web")
	e.failCode("delete Repository name=repo1", "XM_0409E")
	e.mustRun("stop Vm name=db")

	e.mustRun("remove VirtualCdrom name=install from Vm name=db; remove VirtualCdrom name=install from Vm name=web")
	e.failCode("remove VirtualCdrom name=install from Vm name=db", "XM_0412E", "not in Vm db")
	cfg, _ = e.agentClient(0).GetVMConfig(context.Background(), repoID, vmID)
	if disks := fmt.Sprint(cfg["disk"]); strings.Contains(disks, "cdrom") {
		t.Fatalf("vm.cfg still holds the ISO: %s", disks)
	}

	e.mustRun("edit VirtualCdrom name=install name=ol9 description=\"Oracle Linux 9\"")
	if out := e.mustRun("show VirtualCdrom name=ol9"); prop(out, "Description") != "Oracle Linux 9" || prop(out, "Id") != isoID {
		t.Fatalf("after edit:\n%s", out)
	}
	e.mustRun("delete VirtualCdrom name=ol9; delete VirtualCdrom name=tools")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the deleted ISO's file remains: %v", err)
	}
	if out := e.mustRun("list VirtualCdrom"); strings.Contains(out, "  id:") {
		t.Fatalf("list VirtualCdrom after deletes:\n%s", out)
	}
}

// edit renames the objects whose only settings are a name and a
// description; nothing else is accepted.
func TestEditRenamesSimpleObjects(t *testing.T) {
	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("create Network name=public on ServerPool name=pool1; create VirtualDisk name=root size=1 on Repository name=repo1")
	e.mustRun("create Tag name=gold; create Vm name=db repository=repo1 networks=public")
	for _, c := range []struct{ edit, show, key, want string }{
		{"edit Repository name=repo1 name=main", "show Repository name=main", "Name", "main"},
		{"edit Network name=public description=\"front end\"", "show Network name=public", "Description", "front end"},
		{"edit VirtualDisk name=root name=boot description=os", "show VirtualDisk name=boot", "Description", "os"},
		{"edit Vnic name=db-eth0 name=db-front", "show Vnic name=db-front", "Name", "db-front"},
		{"edit Tag name=gold name=platinum", "show Tag name=platinum", "Name", "platinum"},
	} {
		e.mustRun(c.edit)
		if out := e.mustRun(c.show); !strings.HasPrefix(prop(out, c.key), c.want) {
			t.Errorf("%s: %s = %q, want %q\n%s", c.edit, c.key, prop(out, c.key), c.want, out)
		}
	}
	e.failCode("edit Network name=public", "XM_0005E", "needs at least one of: name, description")
	e.failCode("edit Repository name=main description=x", "XM_0004E", "unknown attribute 'description'")
	e.failCode("edit VirtualDisk name=boot name=\"a/b\"", "XM_0400E", "invalid VirtualDisk name")
	e.failCode("edit Tag name=nosuch name=x", "XM_0404E")
}

// abort Job cuts a download that hangs: the job ends Aborted, and neither a
// record nor an ISO is left.
func TestImportIsoAbort(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(isoImage())
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		select { // the rest never comes
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(web.Close)
	t.Cleanup(func() { close(release) })
	e := newEnv(t, 1, 8192)
	repoDir := filepath.Join(t.TempDir(), "repo")
	e.setupPool(repoDir)
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8") // where web listens
	out := e.mustRun("set commandMode=Asynchronous; importIso Repository name=repo1 url=" + web.URL + "/slow.iso name=slow")
	m := regexp.MustCompile(`Job Id = ([0-9a-f]{32})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no job id:\n%s", out)
	}
	select { // a bounded wait for the agent to be mid-download
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the agent never started the download")
	}
	if out := e.mustRun("abort Job id=" + m[1]); prop(out, "Status") != "Aborted" {
		t.Fatalf("abort Job:\n%s", out)
	}
	if out := e.mustRun("list VirtualCdrom"); strings.Contains(out, "  id:") {
		t.Fatalf("an aborted import left a record:\n%s", out)
	}
	// The agent removes its hidden temporary file once it sees the call
	// dropped (xensim's tests check that); no ISO is there under a name.
	entries, _ := os.ReadDir(filepath.Join(repoDir, "ISOs"))
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), ".") {
			t.Fatalf("an aborted import left %s", en.Name())
		}
	}
}

// An Operator cannot have a server download from the manager's or the
// servers' own network: importIso from loopback is refused before any
// download, saying why and how to allow it, until an Administrator allows
// the network with edit Manager importAllowedNetworks, which show Manager
// shows and the audit log records. What a server that is not HTTP says
// never reaches the Operator.
func TestImportIsoAllowedNetworks(t *testing.T) {
	iso := isoImage()
	var hits atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.Write(iso) }))
	t.Cleanup(web.Close)
	const banner = "SSH-2.0-OpenSSH_9.6 internal-banner-words"
	ssh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Close() })
	go func() {
		for {
			c, err := ssh.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(banner + "\r\n"))
				io.Copy(io.Discard, c) // until the agent gives up and closes
			}()
		}
	}()

	e := newEnv(t, 1, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun(`create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1`)
	opRun := func(cmd string) (string, int) { return e.runAs("op", "op-secret-1", cmd) }

	if got := prop(e.mustRun("show Manager"), "Import Allowed Networks"); got != "" {
		t.Fatalf("Import Allowed Networks of a new manager = %q, want none", got)
	}
	url := web.URL + "/install.iso"
	out, st := opRun("importIso Repository name=repo1 url=" + url + " name=tools")
	if st == 0 || !strings.Contains(out, "XM_0400E: url "+url+" is refused: 127.0.0.1 is a loopback address, and no allowed network holds it; "+
		"an Administrator allows networks with edit Manager importAllowedNetworks=") {
		t.Fatalf("an Operator's import from loopback: exit %d\n%s", st, out)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the refused server got %d requests", n)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(web.URL, "http://"))
	if out, _ := opRun("importIso Repository name=repo1 url=http://localhost:" + port + "/install.iso name=tools"); !strings.Contains(out, "XM_0400E") ||
		!strings.Contains(out, "host localhost resolves to ") {
		t.Fatalf("an Operator's import from localhost:\n%s", out)
	}

	// Only an Administrator sets the networks, and only valid ones.
	if out, st := opRun("edit Manager importAllowedNetworks=127.0.0.0/8"); st == 0 || !strings.Contains(out, "XM_") {
		t.Fatalf("an Operator's edit Manager: exit %d\n%s", st, out)
	}
	e.failCode("edit Manager", "XM_0005E", "needs at least one of: importAllowedNetworks")
	e.failCode("edit Manager importAllowedNetworks=127.0.0.0/33", "XM_0400E",
		`importAllowedNetworks: "127.0.0.0/33" is not a network: give a network in CIDR form such as 10.1.0.0/16 or fd00:1::/64, or a single address`)
	e.failCode("edit Manager importAllowedNetworks=127.0.0.1/8", "XM_0400E", "did you mean 127.0.0.0/8?")
	e.failCode("edit Manager name=x", "XM_0004E")
	if got := prop(e.mustRun("show Manager"), "Import Allowed Networks"); got != "" {
		t.Fatalf("refused edits changed the networks to %q", got)
	}
	if out := e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8"); prop(out, "Import Allowed Networks") != "127.0.0.0/8" {
		t.Fatalf("edit Manager:\n%s", out)
	}
	if got := prop(e.mustRun("show Manager"), "Import Allowed Networks"); got != "127.0.0.0/8" {
		t.Fatalf("show Manager: Import Allowed Networks = %q", got)
	}

	if out, st := opRun("importIso Repository name=repo1 url=" + url + " name=tools"); st != 0 {
		t.Fatalf("an Operator's import once allowed: exit %d\n%s", st, out)
	}
	if out := e.mustRun("show VirtualCdrom name=tools"); prop(out, "State") != "Pending" || prop(out, "Size (bytes)") != fmt.Sprint(len(iso)) {
		t.Fatalf("the allowed import:\n%s", out)
	}
	// Allowed, a service that is not HTTP answers; its words stay with it.
	out, st = opRun("importIso Repository name=repo1 url=http://" + ssh.Addr().String() + "/x.iso name=probe")
	if st == 0 || !strings.Contains(out, "no HTTP answer from its server") || strings.Contains(out, "SSH") ||
		strings.Contains(out, "internal-banner-words") || strings.Contains(out, "malformed") {
		t.Fatalf("an import from a service that is not HTTP: exit %d\n%s", st, out)
	}

	e.mustRun(`edit Manager importAllowedNetworks=""`)
	if got := prop(e.mustRun("show Manager"), "Import Allowed Networks"); got != "" {
		t.Fatalf("after clearing, Import Allowed Networks = %q", got)
	}
	e.failCode("importIso Repository name=repo1 url="+url+" name=again", "XM_0400E", "127.0.0.1 is a loopback address")
	if out := e.mustRun("getAuditLog"); !strings.Contains(out, "edit Manager importAllowedNetworks=127.0.0.0/8") {
		t.Fatalf("the audit log lacks the change:\n%s", out)
	}
}

package shell

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// The workflow of issue 14 over SSH: an Operator imports a template from a
// local web server, an Administrator approves it, the Operator clones it
// into 20 VMs in one command and starts all 20, saves one as a new
// template and clones that (addressed as a Vm, as Oracle VM 3 scripts do).
func TestTemplateImportApproveCloneTwentyOverSSH(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{
		{"OVM_OL9/vm.cfg", "memory = 256\nvcpus = 1\ndisk = ['file:/OVS/seed_pool/OVM_OL9/System.img,xvda,w']\nvif = ['bridge=xenbr0']\n"},
		{"OVM_OL9/System.img", strings.Repeat("boot sector and a file system\n", 40000)},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(buf.Bytes()) }))
	t.Cleanup(web.Close)

	e := newEnv(t, 2, 8192)
	e.setupPool(filepath.Join(t.TempDir(), "repo"))
	e.mustRun("edit Manager importAllowedNetworks=127.0.0.0/8; create Network name=net1 bridge=xenbr0 on ServerPool name=pool1")
	e.mustRun("create User name=op password=op-secret-1 role=Operator; add User name=op to ServerPool name=pool1")
	asOp := func(command string, wantStatus int, has ...string) string {
		t.Helper()
		out, st := e.runAs("op", "op-secret-1", command)
		if st != wantStatus {
			t.Fatalf("%s: exit %d, want %d\n%s", command, st, wantStatus, out)
		}
		for _, h := range has {
			if !strings.Contains(out, h) {
				t.Fatalf("%s: the output lacks %q\n%s", command, h, out)
			}
		}
		return out
	}

	asOp("importTemplate Repository name=repo1 url="+web.URL+"/ol9.tgz name=ol9", 0, "name:ol9")
	asOp("show VmTemplate name=ol9", 0, "State = Pending", "Created By = op")
	asOp("clone VmTemplate name=ol9 destType=Vm destName=web copies=20", 1, "VmTemplate ol9 is Pending; an Administrator must approve it")
	e.mustRun("approve VmTemplate name=ol9")
	out := asOp("clone VmTemplate name=ol9 destType=Vm destName=web copies=20", 0, "name:web-1 ", "name:web-20 ")
	if n := strings.Count(out, "result:Success"); n != 20 {
		t.Fatalf("clone copies=20 reported %d successes:\n%s", n, out)
	}
	asOp("start Vm name=web-* multiple=Yes", 0)
	if out := e.mustRun("list Vm status=Running"); strings.Count(out, "  id:") != 20 {
		t.Fatalf("20 clones started, but list Vm status=Running shows:\n%s", out)
	}
	asOp("stop Vm name=web-1", 0)
	asOp("clone Vm name=web-1 destType=VmTemplate destName=golden serverPool=pool1", 0, "name:golden")
	asOp("clone Vm name=golden destType=Vm destName=app serverPool=pool1 targetRepository=repo1", 0, "name:app")
	asOp("start Vm name=app", 0)
	if got := prop(e.mustRun("show Vm name=app"), "Status"); got != "Running" {
		t.Fatalf("the clone of the saved template is %s", got)
	}
}

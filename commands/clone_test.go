package commands

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// ovm2Template is a small Oracle VM 2 template archive: vm.cfg, with two
// vifs, and a disk image.
func ovm2Template(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range []struct {
		name string
		body []byte
	}{
		{"OVM_OL9/vm.cfg", []byte("memory = 256\nvcpus = 1\ndisk = ['file:/OVS/seed_pool/OVM_OL9/System.img,xvda,w']\nvif = ['bridge=xenbr0', 'bridge=xenbr1']\n")},
		{"OVM_OL9/System.img", bytes.Repeat([]byte("system disk\n"), 100000)},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// The template workflow in the command language on a real fleet, in the
// forms Oracle VM 3 scripts use: importTemplate, a customizer made on the
// template addressed as a Vm, its network and storage mappings, clone with
// copies=, serverPool=, targetRepository= and cloneCustomizer=, saving a
// clone as a template, edit, tags, delete; an Operator's import waits for
// an Administrator's approval before it is cloned; edit Manager sets the
// clone limits; completion offers templates, customizers and, where a
// template is addressed as a Vm, templates among the VMs.
func TestTemplateAndCloneCommands(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1, MemoryMiB: 4096, CPUs: 2})
	m := c.Manager
	archive := ovm2Template(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	t.Cleanup(web.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	admin := backend.Actor{User: "admin", Role: backend.RoleAdministrator}
	runAs := func(actor backend.Actor, line string, want Outcome, has ...string) string {
		t.Helper()
		var out bytes.Buffer
		ctx := context.Background()
		o := NewSession(ctx, Default, m, actor, &out, Options{Log: quiet}).RunLine(ctx, line)
		if o != want {
			t.Fatalf("%s: outcome %v, want %v\n%s", line, o, want, out.String())
		}
		for _, h := range has {
			if !strings.Contains(out.String(), h) {
				t.Fatalf("%s: the output lacks %q\n%s", line, h, out.String())
			}
		}
		return out.String()
	}
	run := func(line string, want Outcome, has ...string) string {
		t.Helper()
		return runAs(admin, line, want, has...)
	}

	run("edit Manager importAllowedNetworks=127.0.0.0/8 cloneParallelismPerServer=2", OK,
		"Clone Parallelism per Server = 2", "Clone Parallelism per Repository = 8")
	run("edit Manager cloneParallelismPerRepository=0", ParseFailed, "use an integer from 1 to 64")
	run("create Network name=net1 bridge=xenbr0 on ServerPool name=pool1", OK)
	run("create Network name=net2 bridge=xenbr2 on ServerPool name=pool1", OK)
	run("importTemplate Repository name=repo1 url="+web.URL+"/ol9.tgz name=ol9 description='Oracle Linux 9'", OK, "name:ol9")
	run("show VmTemplate name=ol9", OK, "State = Approved", "Memory (MB) = 256", "Origin = "+web.URL+"/ol9.tgz",
		"Disk 1 = ol9-xvda slot 0", "Vnic 1 = ol9-eth0 on net1", "Vnic 2 = ol9-eth1 on no network")
	run("list VmTemplate", OK, "name:ol9")
	run("importTemplate Repository name=repo1 url="+web.URL+"/ol9.tgz name=ol9", Failed, "a VmTemplate named ol9 exists already")

	// Oracle VM 3's forms, the template addressed as a Vm.
	run("create VmCloneCustomizer name=C on Vm name=ol9", OK, "name:C")
	run("create VmCloneNetworkMapping name=X network=net2 vnic=ol9-eth1 on VmCloneCustomizer name=C", OK, "name:X")
	run("create VmCloneStorageMapping name=Y cloneType=NON_SPARSE_COPY vmDiskMapping=ol9-xvda repository=repo1 on VmCloneCustomizer name=C", OK, "name:Y")
	run("create VmCloneStorageMapping name=Z cloneType=SPARSE_COPY vmDiskMapping=nosuch repository=repo1 on VmCloneCustomizer name=C", Failed,
		"VmTemplate ol9 has no VmDiskMapping \"nosuch\"; its mappings: ol9/ol9-xvda")
	run("show VmCloneCustomizer name=C", OK, "VmTemplate = ", "Storage Mapping 1 = Y: ol9/ol9-xvda NON_SPARSE_COPY into repo1",
		"Network Mapping 1 = X: Vnic ol9-eth1 on net2")
	run("list VmCloneStorageMapping cloneCustomizer=C", OK, "name:Y")
	run("list VmCloneNetworkMapping", OK, "name:X")
	run("show VmTemplate name=ol9", OK, "Clone Customizers = C", "size unknown until it is first copied")
	out := run("clone Vm name=ol9 destType=Vm destName=web copies=3 serverPool=pool1 cloneCustomizer=C targetRepository=repo1", OK,
		"name:web-1", "name:web-2", "name:web-3")
	if strings.Count(out, "Success") < 3 {
		t.Fatalf("clone of 3 copies did not report each:\n%s", out)
	}
	run("show Vm name=web-2", OK, "Status = Stopped", "Memory (MB) = 256", "web-2-xvda", "web-2-eth0", "web-2-eth1")
	run("show Vnic name=web-2-eth1", OK, "net2")
	run("show VirtualDisk name=web-3-xvda", OK, "Sparse = No")
	run("clone Vm name=ol9 destType=Vm destName=web copies=3", Failed, "XM_0409E", "3 Vm names are taken already: web-1, web-2, web-3")
	run("clone VmTemplate name=ol9 destType=Vm destName=solo serverPool=pool1", Failed,
		"Vnic ol9-eth1 of VmTemplate ol9 is on no network of the pool (its bridge has no Network); put its copy on one with a VmCloneNetworkMapping")
	run("clone VmTemplate name=ol9 destType=Vm destName=solo serverPool=pool1 cloneCustomizer=C", OK, "name:solo")
	run("clone Vm name=web-1 destType=VmTemplate destName=T serverPool=pool1 targetRepository=repo1", OK, "name:T")
	run("edit VmTemplate name=T memory=512 description=saved", OK, "Memory (MB) = 512", "Description = saved", "Origin = Vm web-1")
	run("edit VmTemplate name=T name=ol9", Failed, "edit VmTemplate T refused: a VmTemplate named ol9 exists already")
	run("create Tag name=gold", OK)
	run("add Tag name=gold to VmTemplate name=T", OK)
	run("list VmTemplate tag=gold", OK, "name:T")
	if out := run("list VmTemplate tag=gold", OK); strings.Contains(out, "ol9") {
		t.Fatalf("list VmTemplate tag=gold lists ol9:\n%s", out)
	}
	run("delete VmCloneCustomizer name=C", OK)
	run("list VmCloneStorageMapping", OK)
	if out := run("list VmCloneStorageMapping", OK); strings.Contains(out, "name:Y") {
		t.Fatalf("a customizer's mapping outlived it:\n%s", out)
	}

	// Completion reads the real inventory.
	ctx := c.Admin()
	names := func(q NameQuery) []string { return m.ObjectNames(ctx, q.Type, q.Prefix, q.Limit, q.States) }
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"show VmT", []string{"VmTemplate "}},
		{"show VmClone", []string{"VmCloneCustomizer ", "VmCloneStorageMapping ", "VmCloneNetworkMapping "}},
		{"show VmTemplate name=", []string{"T ", "ol9 "}},
		{"clone Vm name=", []string{"solo ", "web-1 ", "web-2 ", "web-3 ", "T ", "ol9 "}},
		{"clone VmTemplate name=o", []string{"ol9 "}},
		{"clone Vm name=ol9 destType=", []string{"Vm ", "VmTemplate "}},
		{"clone Vm name=ol9 destType=Vm destName=x cloneCustomizer=", nil},
		{"create VmCloneCustomizer name=D on Vm name=o", []string{"ol9 "}},
		{"create VmCloneStorageMapping name=Y cloneType=", []string{"SPARSE_COPY ", "NON_SPARSE_COPY ", "THIN_CLONE "}},
		// The disks and VNICs a customizer's mapping names: of VMs and of
		// templates alike (its source may be either).
		{"create VmCloneStorageMapping name=Y cloneType=SPARSE_COPY vmDiskMapping=web-2", []string{"web-2/web-2-xvda "}},
		{"create VmCloneStorageMapping name=Y cloneType=SPARSE_COPY vmDiskMapping=", []string{"T/T-xvda ", "ol9/ol9-xvda ",
			"solo/solo-xvda ", "web-1/web-1-xvda ", "web-2/web-2-xvda ", "web-3/web-3-xvda "}},
		{"create VmCloneNetworkMapping name=X vnic=web-2", []string{"web-2-eth0 ", "web-2-eth1 "}},
		{"create VmCloneNetworkMapping name=X vnic=ol9", []string{"ol9-eth0 ", "ol9-eth1 "}},
		{"create VmCloneNetworkMapping name=X vnic=T", []string{"T-eth0 ", "T-eth1 "}},
		// Mappings of VMs by the names they are shown with.
		{"delete VmDiskMapping name=so", []string{"solo/solo-xvda "}},
		{"importT", []string{"importTemplate "}},
		{"importV", []string{"importVirtualAppliance "}},
		{"approve ", []string{"VirtualCdrom ", "VmTemplate "}},
	} {
		_, got := Default.Complete(tc.line, names)
		var texts []string
		for _, s := range got {
			texts = append(texts, s.Text)
		}
		if !slices.Equal(texts, tc.want) {
			t.Errorf("complete %q = %q; want %q", tc.line, texts, tc.want)
		}
	}

	// An Operator's import is Pending: it is not cloned until an
	// Administrator approves it.
	if _, err := m.CreateUser(ctx, "op", "a long password", backend.RoleOperator); err != nil {
		t.Fatal(err)
	}
	run("add User name=op to ServerPool name=pool1", OK)
	run("create Network name=net3 bridge=xenbr1 on ServerPool name=pool1", OK) // the archive's second vif finds its network now
	op := backend.Actor{User: "op", Role: backend.RoleOperator}
	runAs(op, "importTemplate Repository name=repo1 url="+web.URL+"/ol9.tgz name=mine", OK, "name:mine")
	runAs(op, "show VmTemplate name=mine", OK, "State = Pending", "Created By = op")
	runAs(op, "clone VmTemplate name=mine destType=Vm destName=early", Failed, "VmTemplate mine is Pending; an Administrator must approve it")
	runAs(op, "approve VmTemplate name=mine", Denied, "XM_0403E")
	run("approve VmTemplate name=mine", OK)
	runAs(op, "clone VmTemplate name=mine destType=Vm destName=late", OK, "name:late")
	run("list VmTemplate state=Approved", OK, "name:mine", "name:ol9", "name:T")

	// What templates and customizers use is not deleted under them.
	run("delete VirtualDisk name=late-xvda", Failed, "in use by Vm late")
	run("delete Vm name=late", OK)
	run("delete Network name=net3", Failed, "Network net3 is in use by 1 Vnics of VmTemplates (delete those templates first)")
	run("create VmCloneCustomizer name=E on VmTemplate name=mine", OK)
	run("create Network name=net4 bridge=xenbr4 on ServerPool name=pool1", OK)
	run("create VmCloneNetworkMapping name=W network=net4 vnic=mine-eth0 on VmCloneCustomizer name=E", OK)
	run("delete Network name=net4", Failed, "Network net4 is in use by 1 VmCloneNetworkMappings")
	run("create Repository name=repo2 fsLocation="+t.TempDir()+" on ServerPool name=pool1", OK)
	run("create VmCloneStorageMapping name=V cloneType=SPARSE_COPY vmDiskMapping=mine-xvda repository=repo2 on VmCloneCustomizer name=E", OK)
	run("delete Repository name=repo2", Failed, "Repository repo2 is in use by 1 VmCloneStorageMappings")
	run("delete VmCloneStorageMapping name=V", OK)
	run("delete Repository name=repo2", OK)
	run("delete VmTemplate name=T", OK)
	run("show VmTemplate name=T", Failed, "XM_0404E")
	run("help clone", OK, "destName-1 .. destName-N", "cloneCustomizer=")
}

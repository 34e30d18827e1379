package host

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// pattern returns n bytes that are not all alike, so that a misplaced or
// lost block shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>9) ^ seed
	}
	return b
}

// isoImage is a minimal ISO 9660 image: 16 empty sectors, then a volume
// descriptor whose standard identifier is at byte 32769, then data.
func isoImage(magic string) []byte {
	b := make([]byte, 32768, 40000)
	b = append(b, 0x01)
	b = append(b, magic...)
	b = append(b, 0x01)
	return append(b, pattern(40000-len(b), 0x5a)...)
}

// tarEntry is one entry of a test archive: a regular file with body, or
// the type given.
type tarEntry struct {
	name     string
	body     string
	typeflag byte   // tar.TypeReg when 0
	linkname string // of links
}

func tarArchive(t *testing.T, compress bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw *gzip.Writer
	var tw *tar.Writer
	if compress {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.linkname, Mode: 0o644}
		switch e.typeflag {
		case 0:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		case tar.TypeDir:
			hdr.Mode = 0o755
		}
		mustOK(t, tw.WriteHeader(hdr))
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustOK(t, tw.Close())
	if zw != nil {
		mustOK(t, zw.Close())
	}
	return buf.Bytes()
}

// testWeb allows the network of the tests' web servers (httptest, on
// loopback), which imports refuse otherwise.
var testWeb = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

const templateCfg = `name = 'tmpl'
memory = 512
vcpus = 1
disk = ['file:/OVS/Repositories/r1/Templates/t1/System.img,xvda,w']
`

// importServer serves files (with their Content-Length) under their paths,
// the same without Content-Length under /chunked/<path>, and under
// /cut/<path> half of a file announced whole, then drops the connection.
// Anything else is 404.
func importServer(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		mode := ""
		for _, m := range []string{"/chunked", "/cut"} {
			if rest, ok := strings.CutPrefix(p, m); ok {
				mode, p = m, rest
			}
		}
		data, ok := files[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch mode {
		case "/chunked":
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush() // the rest goes chunked
			w.Write(data[len(data)/2:])
		case "/cut":
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		default:
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// noLeftovers fails if a repository directory holds a hidden (temporary)
// entry.
func noLeftovers(t *testing.T, fsLoc string) {
	t.Helper()
	for _, dir := range repoDirs {
		entries, err := os.ReadDir(filepath.Join(fsLoc, dir))
		mustOK(t, err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temporary %s left in %s", e.Name(), dir)
			}
		}
	}
}

func TestImportVirtualDisk(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	disk := pattern(300_000, 0)
	iso := isoImage("CD001")
	udf := isoImage("BEA01")
	system := string(pattern(70_000, 3))
	tmpl := tarArchive(t, false,
		tarEntry{name: "./", typeflag: tar.TypeDir},
		tarEntry{name: "./vm.cfg", body: templateCfg},
		tarEntry{name: "./System.img", body: system},
		tarEntry{name: "data/", typeflag: tar.TypeDir},
		tarEntry{name: "data/extra.img", body: "extra"})
	tmplGz := tarArchive(t, true,
		tarEntry{name: "OVM_EL7/", typeflag: tar.TypeDir},
		tarEntry{name: "OVM_EL7/vm.cfg", body: templateCfg},
		tarEntry{name: "OVM_EL7/System.img", body: system})
	srv := importServer(t, map[string][]byte{
		"/disk.img": disk, "/a.iso": iso, "/udf.iso": udf, "/t.tar": tmpl, "/t.tgz": tmplGz,
	})

	tests := []struct {
		name, path, id, kind string
		served               []byte            // what the URL serves
		want                 map[string][]byte // files under fsLoc
	}{
		{"disk", "/disk.img", "d1", agentapi.ImportKindDisk, disk, map[string][]byte{"VirtualDisks/d1.img": disk}},
		{"disk without Content-Length", "/chunked/disk.img", "d2", agentapi.ImportKindDisk, disk, map[string][]byte{"VirtualDisks/d2.img": disk}},
		{"iso", "/a.iso", "i1", agentapi.ImportKindISO, iso, map[string][]byte{"ISOs/i1.iso": iso}},
		{"udf iso without Content-Length", "/chunked/udf.iso", "i2", agentapi.ImportKindISO, udf, map[string][]byte{"ISOs/i2.iso": udf}},
		{"template", "/t.tar", "t1", agentapi.ImportKindTemplate, tmpl, map[string][]byte{
			"Templates/t1/vm.cfg": []byte(templateCfg), "Templates/t1/System.img": []byte(system),
			"Templates/t1/data/extra.img": []byte("extra")}},
		{"gzipped template in a directory", "/chunked/t.tgz", "t2", agentapi.ImportKindTemplate, tmplGz, map[string][]byte{
			"Templates/t2/vm.cfg": []byte(templateCfg), "Templates/t2/System.img": []byte(system)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustOK(t, h.ImportVirtualDisk(t.Context(), srv.URL+tc.path, tc.id, "r1", tc.kind, testWeb))
			for rel, want := range tc.want {
				got, err := os.ReadFile(filepath.Join(fsLoc, rel))
				mustOK(t, err)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes differ from the %d served", rel, len(got), len(want))
				}
			}
			if tc.kind == agentapi.ImportKindTemplate {
				fi, err := os.Stat(filepath.Join(fsLoc, DirTemplates, tc.id))
				mustOK(t, err)
				if fi.Mode().Perm() != 0o755 {
					t.Errorf("template directory mode %v, want 0755", fi.Mode().Perm())
				}
			}
			p, err := h.OperationProgress(agentapi.ProgressImport + tc.id)
			mustOK(t, err)
			served := int64(len(tc.served))
			if p.State != agentapi.ProgressDone || p.Done != served || p.Total != served {
				t.Errorf("progress = %+v, want done with done = total = %d", p, served)
			}
			noLeftovers(t, fsLoc)
		})
	}
	repos, err := h.DiscoverRepositories(nil)
	mustOK(t, err)
	if r := repos[0]; r.Disks != 2 || r.ISOs != 2 || r.Templates != 2 {
		t.Errorf("repository counts %d disks, %d ISOs, %d templates; want 2 of each", r.Disks, r.ISOs, r.Templates)
	}
}

func TestImportVirtualDiskFaults(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	cfgWithout := func(drop string) string {
		var lines []string
		for _, l := range strings.Split(templateCfg, "\n") {
			if !strings.HasPrefix(l, drop+" ") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	files := map[string][]byte{
		"/disk.img":  pattern(50_000, 1),
		"/a.iso":     isoImage("CD001"),
		"/notiso":    pattern(50_000, 2),
		"/short":     []byte("tiny"),
		"/nomem.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: cfgWithout("memory")}, tarEntry{name: "System.img", body: "x"}),
		"/nodisk.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: cfgWithout("disk")},
			tarEntry{name: "System.img", body: "x"}),
		"/emptydisk.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: cfgWithout("disk") + "disk = []\n"}),
		"/badcfg.tar":    tarArchive(t, false, tarEntry{name: "vm.cfg", body: "memory = = 3\n"}),
		"/nocfg.tar":     tarArchive(t, false, tarEntry{name: "System.img", body: "x"}),
		"/dotdot.tar":    tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg}, tarEntry{name: "../x", body: "escape"}),
		"/inner.tar":     tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg}, tarEntry{name: "a/../../x", body: "escape"}),
		"/abs.tar":       tarArchive(t, false, tarEntry{name: "/etc/x", body: "escape"}),
		"/symlink.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg},
			tarEntry{name: "System.img", typeflag: tar.TypeSymlink, linkname: "/etc/passwd"}),
		"/hardlink.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg},
			tarEntry{name: "System.img", typeflag: tar.TypeLink, linkname: "../../x"}),
		"/twice.tar": tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg}, tarEntry{name: "vm.cfg", body: templateCfg}),
		"/tmpl.tar":  tarArchive(t, false, tarEntry{name: "vm.cfg", body: templateCfg}, tarEntry{name: "System.img", body: string(pattern(100_000, 4))}),
	}
	srv := importServer(t, files)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(files["/a.iso"]) }))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(1<<60, 10)) // an exabyte, never sent
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(huge.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its address now refuses connections
	mustOK(t, h.ImportVirtualDisk(t.Context(), srv.URL+"/disk.img", "taken", "r1", agentapi.ImportKindDisk, testWeb))
	mustOK(t, h.ImportVirtualDisk(t.Context(), srv.URL+"/a.iso", "takeniso", "r1", agentapi.ImportKindISO, testWeb))
	mustOK(t, h.ImportVirtualDisk(t.Context(), srv.URL+"/tmpl.tar", "takentmpl", "r1", agentapi.ImportKindTemplate, testWeb))

	tests := []struct {
		name, url, id, repo, kind string
		code                      agentapi.FaultCode
		msg                       string
		started                   bool // got as far as registering progress
	}{
		{"ftp", "ftp://127.0.0.1/x.iso", "f1", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidArgument,
			"ftp://127.0.0.1/x.iso cannot be downloaded: only http:// and https:// URLs are accepted", false},
		{"file", "file:///etc/passwd", "f2", "r1", agentapi.ImportKindDisk, agentapi.FaultInvalidArgument, "only http:// and https://", false},
		{"no host", "http:///x", "f3", "r1", agentapi.ImportKindDisk, agentapi.FaultInvalidArgument, "names no host", false},
		{"missing kind", srv.URL + "/a.iso", "f4", "r1", "", agentapi.FaultInvalidArgument, `option.kind is missing: give "disk", "iso", "template" or "ova"`, false},
		{"unknown kind", srv.URL + "/a.iso", "f5", "r1", "floppy", agentapi.FaultInvalidArgument, `option.kind "floppy" is not known`, false},
		{"bad id", srv.URL + "/a.iso", "../f6", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidArgument, `ISO id "../f6" is not valid`, false},
		{"unknown repository", srv.URL + "/a.iso", "f7", "nope", agentapi.ImportKindISO, agentapi.FaultNotFound, "repository nope is not known", false},
		{"existing disk", srv.URL + "/disk.img", "taken", "r1", agentapi.ImportKindDisk, agentapi.FaultInvalidState, "disk taken already exists in repository r1", false},
		{"existing iso", srv.URL + "/a.iso", "takeniso", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidState, "ISO takeniso already exists in repository r1", false},
		{"iso with a disk's id", srv.URL + "/a.iso", "taken", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidState, "disk taken already exists", false},
		{"existing template", srv.URL + "/tmpl.tar", "takentmpl", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidState, "template takentmpl already exists", false},
		{"404", srv.URL + "/missing.iso", "f8", "r1", agentapi.ImportKindISO, agentapi.FaultNotFound,
			"cannot download " + srv.URL + "/missing.iso: the server answered HTTP 404 Not Found", true},
		{"connection refused", closed.URL + "/x.img", "f9", "r1", agentapi.ImportKindDisk, agentapi.FaultInternalError,
			"cannot download " + closed.URL + "/x.img: no HTTP answer from its server", true},
		{"untrusted https", tlsSrv.URL + "/a.iso", "f10", "r1", agentapi.ImportKindISO, agentapi.FaultInternalError, "certificate", true},
		{"not an iso", srv.URL + "/notiso", "f11", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidArgument,
			srv.URL + "/notiso is not an ISO 9660 or UDF image", true},
		{"too short for an iso", srv.URL + "/short", "f12", "r1", agentapi.ImportKindISO, agentapi.FaultInvalidArgument, "is not an ISO 9660 or UDF image", true},
		{"cut disk", srv.URL + "/cut/disk.img", "f13", "r1", agentapi.ImportKindDisk, agentapi.FaultInternalError,
			"download of " + srv.URL + "/cut/disk.img broke before its end", true},
		{"cut iso", srv.URL + "/cut/a.iso", "f14", "r1", agentapi.ImportKindISO, agentapi.FaultInternalError, "broke", true},
		{"cut template", srv.URL + "/cut/tmpl.tar", "f15", "r1", agentapi.ImportKindTemplate, agentapi.FaultInternalError, "broke", true},
		{"template without memory", srv.URL + "/nomem.tar", "f16", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument,
			"Cannot obtain memory size from vm.cfg", true},
		{"template without disk", srv.URL + "/nodisk.tar", "f17", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument,
			"Cannot obtain disk name from vm.cfg", true},
		{"template with no disks", srv.URL + "/emptydisk.tar", "f18", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument,
			"Cannot obtain disk name from vm.cfg", true},
		{"unreadable vm.cfg", srv.URL + "/badcfg.tar", "f19", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "is unreadable", true},
		{"no vm.cfg", srv.URL + "/nocfg.tar", "f20", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "holds no vm.cfg", true},
		{"dotdot", srv.URL + "/dotdot.tar", "f21", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, `entry "../x" contains '..'`, true},
		{"inner dotdot", srv.URL + "/inner.tar", "f22", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "contains '..'", true},
		{"absolute", srv.URL + "/abs.tar", "f23", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, `entry "/etc/x" is absolute`, true},
		{"symlink", srv.URL + "/symlink.tar", "f24", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument,
			`"System.img" is a symbolic link; only regular files and directories are accepted`, true},
		{"hard link", srv.URL + "/hardlink.tar", "f25", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "is a hard link", true},
		{"entry twice", srv.URL + "/twice.tar", "f26", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument, "clashes with an earlier entry", true},
		{"not a tar", srv.URL + "/notiso", "f27", "r1", agentapi.ImportKindTemplate, agentapi.FaultInvalidArgument,
			"is not a tar archive, or is truncated (no valid tar header where one belongs); accepted is a tar archive, gzip-compressed or not, of vm.cfg and the disk images it names", true},
		{"no room", huge.URL + "/big.img", "f28", "r1", agentapi.ImportKindDisk, agentapi.FaultInsufficientResources, "does not fit", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code == agentapi.FaultInsufficientResources {
				if total, _, err := diskSpaceMiB(fsLoc); err != nil || total == 0 {
					t.Skip("free space is unknown here")
				}
			}
			wantFault(t, h.ImportVirtualDisk(t.Context(), tc.url, tc.id, tc.repo, tc.kind, testWeb), tc.code, tc.msg)
			for _, p := range []string{
				filepath.Join(DirDisks, tc.id+DiskExt), filepath.Join(DirISOs, tc.id+ISOExt), filepath.Join(DirTemplates, tc.id),
			} {
				if strings.HasPrefix(tc.id, "taken") {
					break
				}
				if _, err := os.Lstat(filepath.Join(fsLoc, p)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists after a failed import (%v)", p, err)
				}
			}
			for _, p := range []string{filepath.Join(fsLoc, DirTemplates, "x"), filepath.Join(fsLoc, "x"), filepath.Join(filepath.Dir(fsLoc), "x")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("an archive entry escaped to %s", p)
				}
			}
			noLeftovers(t, fsLoc)
			p, err := h.OperationProgress(agentapi.ProgressImport + tc.id)
			switch {
			case tc.started && (err != nil || p.State != agentapi.ProgressFailed || !strings.Contains(p.Phase, tc.msg)):
				t.Errorf("progress = %+v, %v; want failed with the fault", p, err)
			case !tc.started && err == nil && !strings.HasPrefix(tc.id, "taken"):
				t.Errorf("progress = %+v of an import refused at once, want none", p)
			}
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.diskOps) != 0 {
		t.Errorf("busy entries left: %v", h.diskOps)
	}
}

// TestImportBusyAndCancel holds a download half-way: its id and repository
// are busy meanwhile, and ending the call's context stops it and leaves
// nothing behind.
func TestImportBusyAndCancel(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	data := isoImage("CD001")
	started := make(chan struct{})
	dropped := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:isoMagicOffset+1000])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // until the agent drops the download
		close(dropped)
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		result <- h.ImportVirtualDisk(ctx, srv.URL+"/a.iso", "i1", "r1", agentapi.ImportKindISO, testWeb)
	}()
	<-started
	waitFor(t, "the first bytes", func() bool {
		p, err := h.OperationProgress("import:i1")
		return err == nil && p.Done == isoMagicOffset+1000
	})
	if p, _ := h.OperationProgress("import:i1"); p.State != agentapi.ProgressRunning || p.Total != int64(len(data)) || p.Phase != "downloading" {
		t.Errorf("progress in flight = %+v", p)
	}

	busy := []struct {
		name string
		err  func() error
		msg  string
	}{
		{"import again", func() error {
			return h.ImportVirtualDisk(t.Context(), srv.URL, "i1", "r1", agentapi.ImportKindISO, testWeb)
		}, "ISO i1 of repository r1 is being created or imported (import:i1)"},
		{"import as disk", func() error {
			return h.ImportVirtualDisk(t.Context(), srv.URL, "i1", "r1", agentapi.ImportKindDisk, testWeb)
		}, "being created or imported"},
		{"import as template", func() error {
			return h.ImportVirtualDisk(t.Context(), srv.URL, "i1", "r1", agentapi.ImportKindTemplate, testWeb)
		}, "i1 is already being imported on this server"},
		{"create disk", func() error { return h.CreateVirtualDisk("r1", "i1", 1, true) }, "being created or imported (import:i1)"},
		{"delete", func() error { return h.DeleteVirtualDisk("r1", "i1") }, "being created or imported (import:i1)"},
		{"delete repository", func() error { return h.DeleteRepository("r1", false) }, "repository r1 is busy (import:i1)"},
	}
	for _, tc := range busy {
		t.Run(tc.name, func(t *testing.T) { wantFault(t, tc.err(), agentapi.FaultBusy, tc.msg) })
	}

	cancel()
	wantFault(t, <-result, agentapi.FaultInternalError, "import of ISO i1 from "+srv.URL+"/a.iso stopped")
	<-dropped
	if _, err := os.Lstat(filepath.Join(fsLoc, DirISOs, "i1.iso")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("i1.iso exists after a cancelled import (%v)", err)
	}
	noLeftovers(t, fsLoc)
	if p, _ := h.OperationProgress("import:i1"); p.State != agentapi.ProgressFailed {
		t.Errorf("progress after cancel = %+v, want failed", p)
	}
	mustOK(t, h.DeleteRepository("r1", false)) // no longer busy
}

// TestDeleteISO checks delete_virtual_disk on an imported ISO, refused
// while a domain's vm.cfg names it as a cdrom.
func TestDeleteISO(t *testing.T) {
	h := newHost(t, testConfig{})
	fsLoc := t.TempDir()
	addRepo(t, h, fsLoc, "r1")
	srv := importServer(t, map[string][]byte{"/a.iso": isoImage("CD001")})
	tests := []struct{ name, entry string }{
		{"hvm cdrom", "file:/OVS/Repositories/r1/ISOs/%s.iso,hdc:cdrom,r"},
		{"pv cdrom", "file:/OVS/Repositories/r1/ISOs/%s.iso,xvdc:cdrom,r"},
		{"fs_location path", "file:" + filepath.Join(fsLoc, DirISOs) + "/%s.iso,hdc:cdrom,r"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, vm := "iso"+strconv.Itoa(i), "vm"+strconv.Itoa(i)
			mustOK(t, h.ImportVirtualDisk(t.Context(), srv.URL+"/a.iso", id, "r1", agentapi.ImportKindISO, testWeb))
			p := vmParams(128, 1)
			p["disk"] = []any{"file:/OVS/Repositories/r1/VirtualDisks/d.img,xvda,w", strings.ReplaceAll(tc.entry, "%s", id)}
			mustOK(t, h.CreateVM("r1", vm, p))
			mustOK(t, h.StartVM("r1", vm))
			wantFault(t, h.DeleteVirtualDisk("r1", id), agentapi.FaultInvalidState,
				"ISO "+id+" of repository r1 is used by VM "+vm+" (running, domid ")
			mustOK(t, h.StopVM("r1", vm, true))
			mustOK(t, h.DeleteVirtualDisk("r1", id))
			if _, err := os.Lstat(filepath.Join(fsLoc, DirISOs, id+ISOExt)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ISO still there after delete: %v", err)
			}
			wantFault(t, h.DeleteVirtualDisk("r1", id), agentapi.FaultNotFound, "disk "+id+" not found in repository r1")
		})
	}
}

func TestDiskEntryPath(t *testing.T) {
	tests := []struct{ entry, want string }{
		{"file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w", "/OVS/Repositories/r1/VirtualDisks/d1.img"},
		{"file:/OVS/Repositories/r1/ISOs/i1.iso,hdc:cdrom,r", "/OVS/Repositories/r1/ISOs/i1.iso"},
		{"file:/OVS/Repositories/r1/ISOs/i1.iso,xvdc:cdrom,r", "/OVS/Repositories/r1/ISOs/i1.iso"},
		{"tap:aio:/x/d.img,xvdb,w", "/x/d.img"},
		{"phy:/dev/sdb,xvdb,w", ""},
		{",hdc:cdrom,r", ""},
	}
	for _, tc := range tests {
		if got := diskEntryPath(tc.entry); got != tc.want {
			t.Errorf("diskEntryPath(%q) = %q, want %q", tc.entry, got, tc.want)
		}
	}
}

func TestArchiveName(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"vm.cfg", "vm.cfg", true},
		{"./vm.cfg", "vm.cfg", true},
		{"dir/", "dir", true},
		{"./", "", true},
		{".", "", true},
		{"a//b/./c", filepath.Join("a", "b", "c"), true},
		{"", "", false},
		{"/vm.cfg", "", false},
		{"../x", "", false},
		{"a/../x", "", false},
		{"a/..", "", false},
		{`a\..\x`, "", false},
		{"a\x00b", "", false},
	}
	for _, tc := range tests {
		got, err := archiveName(tc.name)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("archiveName(%q) = %q, %v; want %q, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

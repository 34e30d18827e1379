package commands

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
	"xenmanager/store"
)

// fixedID is the id of the i-th object of type t in the listings'
// database: fixed, so that their output can be compared with a file.
func fixedID(t backend.ObjectType, i int) string {
	return "0004fb00" + string(t) + "0000" + fmt.Sprintf("%016x", i)
}

// seedListings fills st with a few of every listed type, made so that
// every filter of list has something to keep and something to leave out:
// two pools, VMs on servers and on none, disks and ISOs in VMs and in
// none, tags on some objects, an Operator who sees one pool, jobs and
// events of both pools and of none. Everything is fixed (ids, times,
// keys) but the admin's id, which the output's reader masks.
func seedListings(t testing.TB, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	at := func(i int) time.Time {
		return time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute)
	}
	pool := []string{fixedID(backend.TypeServerPool, 1), fixedID(backend.TypeServerPool, 2)}
	repo := []string{fixedID(backend.TypeRepository, 1), fixedID(backend.TypeRepository, 2)}
	server := []string{fixedID(backend.TypeServer, 1), fixedID(backend.TypeServer, 2), fixedID(backend.TypeServer, 3)}
	network := []string{fixedID(backend.TypeNetwork, 1), fixedID(backend.TypeNetwork, 2)}
	vm := func(i int) string { return fixedID(backend.TypeVM, i) }
	opID := fixedID(backend.TypeUser, 2)
	err := st.Write(ctx, func(q *store.Queries) error {
		for i, name := range []string{"pool-a", "pool-b"} {
			if err := q.InsertServerPool(ctx, store.ServerPool{ID: pool[i], Name: name, CreatedAt: at(i)}); err != nil {
				return err
			}
			if err := q.InsertRepository(ctx, store.Repository{ID: repo[i], Name: "repo-" + name[5:], PoolID: pool[i],
				FSLocation: "/srv/" + name, MountPoint: "/OVS/Repositories/" + repo[i], CreatedAt: at(i)}); err != nil {
				return err
			}
			if err := q.InsertNetwork(ctx, store.Network{ID: network[i], Name: "net-" + name[5:], PoolID: pool[i], Bridge: "xenbr" + fmt.Sprint(i), CreatedAt: at(i)}); err != nil {
				return err
			}
		}
		for i, s := range []struct {
			name, pool, status string
			mem                int64
		}{{"ovs1", pool[0], "Running", 65536}, {"ovs2", pool[0], "Stopped", 32768}, {"ovs3", pool[1], "Running", 131072}} {
			if _, err := q.UpsertServer(ctx, store.Server{ID: server[i], Name: s.name, UniqueID: "uuid-" + s.name, Hostname: s.name,
				Address: fmt.Sprintf("192.0.2.%d", i+1), Port: 8899, AgentPassword: []byte("sealed"), PoolID: s.pool, TotalMemoryMiB: s.mem, Status: s.status,
				HypervisorType: "XEN", Roles: "xen,utility", CreatedAt: at(i)}); err != nil {
				return err
			}
		}
		vms := []struct {
			name   string
			p      int
			server string
			status string
		}{{"web-1", 0, server[0], "Running"}, {"web-2", 0, server[0], "Running"}, {"web-10", 0, "", "Stopped"}, {"db-1", 0, server[1], "Stopped"},
			{"db-2", 1, server[2], "Running"}, {"cache", 1, "", "Stopped"}, {"web-1", 1, server[2], "Running"}, {"batch-x", 1, "", "Stopped"}}
		for i, v := range vms {
			if err := q.InsertVM(ctx, store.VM{ID: vm(i + 1), Name: v.name, PoolID: pool[v.p], RepoID: repo[v.p], ServerID: v.server, Status: v.status,
				MemoryMiB: int64(512 * (i + 1)), CPUCount: int64(1 + i%4), DomainType: "XEN_HVM", CreatedAt: at(i)}); err != nil {
				return err
			}
			if i%3 != 2 {
				if err := q.InsertVnic(ctx, store.Vnic{ID: fixedID(backend.TypeVnic, i+1), Name: v.name + "-eth0", VMID: vm(i + 1),
					NetworkID: network[v.p], MAC: fmt.Sprintf("00:21:f6:00:00:%02x", i+1), CreatedAt: at(i)}); err != nil {
					return err
				}
			}
		}
		for i := range 10 {
			p := i % 2
			d := store.VirtualDisk{ID: fixedID(backend.TypeVirtualDisk, i+1), Name: fmt.Sprintf("disk-%d", i+1), RepoID: repo[p],
				SizeMiB: int64(1024 * (i + 1)), Sparse: i%3 == 0, Shareable: i == 4, CreatedAt: at(i)}
			if i == 7 {
				d.Name = "scratch"
			}
			if err := q.InsertVirtualDisk(ctx, d); err != nil {
				return err
			}
			if i < 6 {
				if err := q.InsertDiskMapping(ctx, store.DiskMapping{ID: fixedID(backend.TypeDiskMapping, i+1), VMID: vm(i + 1 + p), DiskID: d.ID,
					Slot: i % 2, CreatedAt: at(i)}); err != nil {
					return err
				}
			}
		}
		for i := range 4 {
			iso := store.VirtualCdrom{ID: fixedID(backend.TypeVirtualCdrom, i+1), Name: fmt.Sprintf("os-%d.iso", i+1), RepoID: repo[i%2],
				URL: "http://example.com/os.iso", SizeBytes: int64(1<<30 + i), State: "Approved", CreatedAt: at(i)}
			if i == 3 {
				iso.State = "Pending"
				iso.ImportedBy = "op1"
			}
			if err := q.InsertVirtualCdrom(ctx, iso); err != nil {
				return err
			}
			if i < 2 {
				if err := q.InsertCdromMapping(ctx, store.CdromMapping{ID: fixedID(backend.TypeDiskMapping, 100+i), VMID: vm(1 + i*4), CdromID: iso.ID,
					Slot: 3, CreatedAt: at(i)}); err != nil {
					return err
				}
			}
		}
		for i := range 3 {
			tpl := store.VMTemplate{ID: fixedID(backend.TypeVMTemplate, i+1), Name: fmt.Sprintf("tpl-%d", i+1), PoolID: pool[i%2], RepoID: repo[i%2],
				MemoryMiB: 2048, CPUCount: 2, DomainType: "XEN_HVM", Origin: "import", State: "Approved", CreatedBy: "admin", CreatedAt: at(i)}
			if i == 2 {
				tpl.State = "Pending"
			}
			var disks []store.TemplateDisk
			for j := range i + 1 {
				disks = append(disks, store.TemplateDisk{ID: fixedID(backend.TypeVirtualDisk, 200+10*i+j), DiskID: fixedID(backend.TypeVirtualDisk, 300+10*i+j),
					RepoID: repo[i%2], Name: fmt.Sprintf("tpl-%d-disk-%d", i+1, j), Slot: j, SizeMiB: 4096, CreatedAt: at(i)})
			}
			if err := q.InsertVMTemplate(ctx, tpl, disks, nil); err != nil {
				return err
			}
		}
		for i, name := range []string{"prod", "test", "db"} {
			if err := q.InsertTag(ctx, store.Tag{ID: fixedID(backend.TypeTag, i+1), Name: name, Description: "the " + name + " ones", CreatedAt: at(i)}); err != nil {
				return err
			}
		}
		for _, tg := range []struct {
			tag  int
			obj  string
			kind string
		}{{1, vm(1), "Vm"}, {1, vm(2), "Vm"}, {1, vm(5), "Vm"}, {2, vm(3), "Vm"}, {3, vm(4), "Vm"}, {3, vm(5), "Vm"},
			{1, fixedID(backend.TypeVMTemplate, 1), "VmTemplate"}} {
			if err := q.TagObject(ctx, fixedID(backend.TypeTag, tg.tag), tg.obj, tg.kind); err != nil {
				return err
			}
		}
		for i, u := range []struct{ name, role string }{{"op1", backend.RoleOperator}, {"viewer1", backend.RoleViewer}} {
			id := fixedID(backend.TypeUser, i+2)
			if err := q.InsertUser(ctx, store.User{ID: id, Name: u.name, PasswordHash: "x", Role: u.role, CreatedAt: at(i)}); err != nil {
				return err
			}
			if err := q.AddUserPool(ctx, id, pool[i]); err != nil {
				return err
			}
		}
		for i, owner := range []string{opID, opID, fixedID(backend.TypeUser, 3)} {
			pk, err := gossh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32)).Public())
			if err != nil {
				return err
			}
			if err := q.InsertSSHKey(ctx, store.SSHKey{ID: fixedID(backend.TypeSSHKey, i+1), UserID: owner, Name: fmt.Sprintf("key-%d", i+1),
				PublicKey: string(gossh.MarshalAuthorizedKey(pk)), Fingerprint: gossh.FingerprintSHA256(pk), CreatedAt: at(i)}); err != nil {
				return err
			}
		}
		users := []string{"admin", "op1", "viewer1"}
		statuses := []string{backend.JobSuccess, backend.JobFailure, backend.JobSuccess, backend.JobAborted, backend.JobSuccess}
		for i := range 24 {
			p := ""
			if i%3 != 2 {
				p = pool[i%3]
			}
			if err := q.InsertJob(ctx, store.Job{ID: fixedID(backend.TypeJob, i+1), Summary: fmt.Sprintf("start Vm web-%d", i), User: users[i%3],
				Objects: vm(1 + i%8), PoolID: p, Status: statuses[i%5], Progress: 100, CreatedAt: at(i)}); err != nil {
				return err
			}
			if err := q.InsertEvent(ctx, store.Event{ID: fixedID(backend.TypeEvent, i+1), Severity: []string{"Info", "Warning", "Error"}[i%3],
				Kind: "VmStateChanged", ObjectType: "Vm", ObjectID: vm(1 + i%8), ObjectName: fmt.Sprintf("vm %d", i), PoolID: p,
				Description: fmt.Sprintf("event %d", i), Acknowledged: i%4 == 0, CreatedAt: at(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listingLines are the commands whose output TestListingsGolden keeps:
// every listed type, whole and through each filter it takes (names,
// patterns, references that match and that match nothing), and the
// failures before the first row.
var listingLines = []string{
	"list Vm", "list Vm name=web*", "list Vm name=web-?", "list Vm server=ovs1", "list Vm serverPool=pool-b", "list Vm tag=prod",
	"list Vm status=Running", "list Vm repository=repo-a", "list Vm name=nothing*", "list Vm server=nosuch", "list Vm name=[",
	"list Server", "list Server status=Running", "list Server name=ovs[12]", "list Server serverPool=pool-b",
	"list VirtualDisk", "list VirtualDisk repository=repo-b", "list VirtualDisk name=disk-1*", "list VirtualDisk serverPool=pool-a",
	"list VirtualCdrom", "list VirtualCdrom name=os-[13]*", "list VirtualCdrom serverPool=pool-b",
	"list VmTemplate", "list VmTemplate state=Pending", "list VmTemplate tag=prod", "list VmTemplate name=tpl-?",
	"list Tag", "list Tag name=*d*", "list User", "list User name=op*", "list SshKey",
	"list Vnic", "list Vnic vm=web-2", "list Vnic name=db-2-eth0", "list Vnic vm=nosuch",
	"list Job", "list Job status=Failure", "list Job status=Running",
	"list Event", "list Event all=Yes", "list Event all=Yes limit=5", "getEvents", "getEvents all=Yes limit=3",
	"list VmDiskMapping", "list VmDiskMapping vm=web-2", "list VmDiskMapping vm=nosuch",
	"list ServerPool", "list Repository", "list Network",
}

// TestListingsGolden: every listed type, through each of its filters, in
// every output mode, as an Administrator and as an Operator who sees one
// pool, prints byte for byte what testdata/listings holds. The files were
// written by the listings before they streamed, on SQLite (a slice of rows printed
// whole), so that streaming them changes nothing a script reads; -update
// rewrites them.
func TestListingsGolden(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testListingsGolden(t, managertest.Options{}) })
	t.Run("PostgreSQL", func(t *testing.T) { testListingsGolden(t, managertest.Options{Postgres: true}) })
}

func testListingsGolden(t *testing.T, opts managertest.Options) {
	c := managertest.Open(t, opts)
	m, st := c.Manager, c.Store
	seedListings(t, st)
	ctx := context.Background()
	adminID := ""
	if err := st.Snapshot(ctx, func(q *store.Queries) error {
		u, err := q.UserByName(ctx, "admin")
		adminID = u.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	modes := []struct{ name, set string }{{"Verbose", "set outputMode=Verbose"}, {"Sparse", "set outputMode=Sparse"},
		{"Table", "set outputMode=Table"}, {"Json", "set outputMode=Json"}, {"Json2", "set outputMode=Json; set jsonVersion=2"},
		{"Xml", "set outputMode=Xml"}}
	for _, actor := range []backend.Actor{{User: "admin", Role: backend.RoleAdministrator}, {User: "op1", Role: backend.RoleOperator}} {
		for _, mode := range modes {
			t.Run(actor.User+"-"+mode.name, func(t *testing.T) {
				var out bytes.Buffer
				s := NewSession(ctx, Default, m, actor, &out, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
				s.now = func() time.Time { return goldenTime }
				s.RunLine(ctx, mode.set)
				var got strings.Builder
				for _, line := range listingLines {
					out.Reset()
					o := s.RunLine(ctx, line)
					fmt.Fprintf(&got, "### %s (outcome %d)\n%s", line, o, out.String())
				}
				checkListingGolden(t, actor.User+"-"+mode.name+".txt", strings.ReplaceAll(got.String(), adminID, "<admin id>"))
			})
		}
	}
}

func checkListingGolden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "listings", file)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./commands -run ListingsGolden -update writes it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs from the file at line %d:\n got: %q\nwant: %q", file, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, the file %d", file, len(gl), len(wl))
	}
}

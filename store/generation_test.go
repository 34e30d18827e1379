package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// writeMethod matches the names of the Queries methods that write.
var writeMethod = regexp.MustCompile(`^(Insert|Upsert|Set|Update|Delete|Add|Remove|Append|Ack|End|Rename|TagObject|UntagObject)`)

// Each write to the servers, server_pools, repositories, users,
// anti_affinity_groups or anti_affinity_members tables
// changes the inventory's generation, once while it runs and again after
// its commit, and a write to any other table leaves it; every write method
// of Queries is in the table, so that a new one is tested.
func TestInventoryGenerationFollowsWrites(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		now := time.Now()
		str := func(v string) *string { return &v }
		tests := []struct {
			method    string
			inventory bool // writes servers, server_pools, repositories, users or the anti-affinity tables
			op        func(q *Queries) error
		}{
			{"SetMeta", false, func(q *Queries) error { return q.SetMeta(ctx, "k", "v") }},
			{"InsertUser", true, func(q *Queries) error {
				return q.InsertUser(ctx, User{ID: "u1", Name: "admin", PasswordHash: "h", Role: "Administrator", CreatedAt: now})
			}},
			{"UpdateUser", true, func(q *Queries) error {
				return q.UpdateUser(ctx, User{ID: "u1", PasswordHash: "h2", Role: "Administrator"})
			}},
			{"SetUserSetting", false, func(q *Queries) error { return q.SetUserSetting(ctx, "admin", "outputMode", "xml") }},
			{"InsertServerPool", true, func(q *Queries) error {
				return q.InsertServerPool(ctx, ServerPool{ID: "p1", Name: "pool", CreatedAt: now})
			}},
			{"UpdateServerPool", true, func(q *Queries) error {
				return q.UpdateServerPool(ctx, ServerPool{ID: "p1", Name: "pool1", StartPolicy: "BEST_SERVER"})
			}},
			{"UpdateServerPoolHA", true, func(q *Queries) error {
				return q.UpdateServerPoolHA(ctx, "p1", PoolHA{Enabled: true, Renew: time.Second, Fence: 5 * time.Second, Margin: time.Second})
			}},
			{"AddUserPool", false, func(q *Queries) error { return q.AddUserPool(ctx, "u1", "p1") }},
			{"RemoveUserPool", false, func(q *Queries) error { return q.RemoveUserPool(ctx, "u1", "p1") }},
			{"InsertSSHKey", false, func(q *Queries) error {
				return q.InsertSSHKey(ctx, SSHKey{ID: "k1", UserID: "u1", Name: "key", PublicKey: "ssh-ed25519 AAAA", Fingerprint: "fp", CreatedAt: now})
			}},
			{"DeleteSSHKey", false, func(q *Queries) error { return q.DeleteSSHKey(ctx, "k1") }},
			{"AppendHistory", false, func(q *Queries) error { return q.AppendHistory(ctx, "admin", "list Vm", 10) }},
			{"UpsertServer", true, func(q *Queries) error {
				_, err := q.UpsertServer(ctx, Server{ID: "s1", Name: "ovs1", UniqueID: "uid-1", Address: "127.0.0.1", Port: 1,
					AgentPassword: []byte{1}, Status: "Running", CreatedAt: now})
				return err
			}},
			{"SetServerPool", true, func(q *Queries) error { return q.SetServerPool(ctx, "s1", "p1") }},
			{"SetServerStatus", true, func(q *Queries) error { return q.SetServerStatus(ctx, "s1", "Stopped") }},
			{"UpdateServerSettings", true, func(q *Queries) error {
				return q.UpdateServerSettings(ctx, Server{ID: "s1", Name: "ovs-1", Roles: "xen"})
			}},
			{"InsertRepository", true, func(q *Queries) error {
				return q.InsertRepository(ctx, Repository{ID: "r1", Name: "repo", PoolID: "p1", FSLocation: "/x", MountPoint: "/m", CreatedAt: now})
			}},
			{"InsertVM", false, func(q *Queries) error {
				return q.InsertVM(ctx, VM{ID: "v1", Name: "vm", PoolID: "p1", RepoID: "r1", Status: "Stopped", MemoryMiB: 1, CPUCount: 1, DomainType: "xen_pvm", CreatedAt: now})
			}},
			{"SetVMState", false, func(q *Queries) error { return q.SetVMState(ctx, "v1", "s1", "Running") }},
			{"SetVMLastServer", false, func(q *Queries) error { return q.SetVMLastServer(ctx, "v1", "s1") }},
			{"UpdateVM", false, func(q *Queries) error {
				return q.UpdateVM(ctx, VM{ID: "v1", Name: "vm1", MemoryMiB: 2, CPUCount: 1, DomainType: "xen_pvm"})
			}},
			{"InsertAntiAffinityGroup", true, func(q *Queries) error {
				return q.InsertAntiAffinityGroup(ctx, AntiAffinityGroup{ID: "g1", Name: "web", PoolID: "p1", CreatedAt: now})
			}},
			{"AddAntiAffinityMember", true, func(q *Queries) error { return q.AddAntiAffinityMember(ctx, "g1", "v1", now) }},
			{"RemoveAntiAffinityMember", true, func(q *Queries) error { return q.RemoveAntiAffinityMember(ctx, "g1", "v1") }},
			{"DeleteAntiAffinityGroup", true, func(q *Queries) error { return q.DeleteAntiAffinityGroup(ctx, "g1") }},
			{"InsertNetwork", false, func(q *Queries) error {
				return q.InsertNetwork(ctx, Network{ID: "n1", Name: "net", PoolID: "p1", Bridge: "xenbr0", CreatedAt: now})
			}},
			{"InsertVnic", false, func(q *Queries) error {
				return q.InsertVnic(ctx, Vnic{ID: "n1v", Name: "vnic", VMID: "v1", NetworkID: "n1", MAC: "00:21:f6:00:00:01", CreatedAt: now})
			}},
			{"InsertVirtualDisk", false, func(q *Queries) error {
				return q.InsertVirtualDisk(ctx, VirtualDisk{ID: "d1", Name: "disk", RepoID: "r1", SizeMiB: 1, CreatedAt: now})
			}},
			{"InsertDiskMapping", false, func(q *Queries) error {
				return q.InsertDiskMapping(ctx, DiskMapping{ID: "dm1", VMID: "v1", DiskID: "d1", Slot: 0, CreatedAt: now})
			}},
			{"InsertVirtualCdrom", false, func(q *Queries) error {
				return q.InsertVirtualCdrom(ctx, VirtualCdrom{ID: "c1", Name: "iso", RepoID: "r1", URL: "http://h/x.iso", State: "Pending", ImportedBy: "admin", CreatedAt: now})
			}},
			{"SetVirtualCdromState", false, func(q *Queries) error { return q.SetVirtualCdromState(ctx, "c1", "Approved") }},
			{"InsertCdromMapping", false, func(q *Queries) error {
				return q.InsertCdromMapping(ctx, CdromMapping{ID: "cm1", VMID: "v1", CdromID: "c1", Slot: 1, CreatedAt: now})
			}},
			{"InsertVMTemplate", false, func(q *Queries) error {
				return q.InsertVMTemplate(ctx, VMTemplate{ID: "tp1", Name: "tpl", PoolID: "p1", RepoID: "r1", MemoryMiB: 1, CPUCount: 1,
					DomainType: "xen_pvm", State: "Pending", CreatedBy: "admin", CreatedAt: now},
					[]TemplateDisk{{ID: "tpd1", DiskID: "tpdisk1", RepoID: "r1", Name: "tpl-xvda", SizeMiB: 1, CreatedAt: now}},
					[]TemplateVnic{{ID: "tpv1", Name: "tpl-eth0", NetworkID: "n1", MAC: "00:21:f6:00:00:02", CreatedAt: now}})
			}},
			{"UpdateVMTemplate", false, func(q *Queries) error {
				return q.UpdateVMTemplate(ctx, VMTemplate{ID: "tp1", Name: "tpl1", MemoryMiB: 2, CPUCount: 1, DomainType: "xen_pvm"})
			}},
			{"SetTemplateDiskSize", false, func(q *Queries) error { return q.SetTemplateDiskSize(ctx, "tpd1", 2) }},
			{"SetVMTemplateState", false, func(q *Queries) error { return q.SetVMTemplateState(ctx, "tp1", "Approved") }},
			{"InsertCloneCustomizer", false, func(q *Queries) error {
				return q.InsertCloneCustomizer(ctx, CloneCustomizer{ID: "cc1", Name: "cust", PoolID: "p1", VMID: "v1", CreatedAt: now})
			}},
			{"InsertCloneStorageMapping", false, func(q *Queries) error {
				return q.InsertCloneStorageMapping(ctx, CloneStorageMapping{ID: "csm1", Name: "sm", CustomizerID: "cc1", DiskMappingID: "dm1",
					CloneType: "SPARSE_COPY", RepoID: "r1", CreatedAt: now})
			}},
			{"InsertCloneNetworkMapping", false, func(q *Queries) error {
				return q.InsertCloneNetworkMapping(ctx, CloneNetworkMapping{ID: "cnm1", Name: "nm", CustomizerID: "cc1", VnicID: "n1v",
					NetworkID: "n1", CreatedAt: now})
			}},
			{"DeleteCloneStorageMapping", false, func(q *Queries) error { return q.DeleteCloneStorageMapping(ctx, "csm1") }},
			{"DeleteCloneNetworkMapping", false, func(q *Queries) error { return q.DeleteCloneNetworkMapping(ctx, "cnm1") }},
			{"DeleteCloneCustomizer", false, func(q *Queries) error { return q.DeleteCloneCustomizer(ctx, "cc1") }},
			{"DeleteVMTemplate", false, func(q *Queries) error { return q.DeleteVMTemplate(ctx, "tp1") }},
			{"RenameObject", false, func(q *Queries) error { return q.RenameObject(ctx, "networks", "n1", str("net1"), nil) }},
			{"InsertTag", false, func(q *Queries) error { return q.InsertTag(ctx, Tag{ID: "t1", Name: "prod", CreatedAt: now}) }},
			{"TagObject", false, func(q *Queries) error { return q.TagObject(ctx, "t1", "s1", "Server") }},
			{"UntagObject", false, func(q *Queries) error { return q.UntagObject(ctx, "t1", "s1") }},
			{"DeleteTag", false, func(q *Queries) error { return q.DeleteTag(ctx, "t1") }},
			{"InsertJob", false, func(q *Queries) error {
				return q.InsertJob(ctx, Job{ID: "j1", Summary: "start", User: "admin", Status: "Running", CreatedAt: now})
			}},
			{"SetJobProgress", false, func(q *Queries) error { return q.SetJobProgress(ctx, "j1", 50, "half") }},
			{"SetJobStep", false, func(q *Queries) error { return q.SetJobStep(ctx, "j1", `{"call":"start_vm"}`) }},
			{"EndJob", false, func(q *Queries) error { return q.EndJob(ctx, "j1", "Success", "", "", now) }},
			{"EndJobAndUnlock", false, func(q *Queries) error {
				if err := q.EndJobAndUnlock(ctx, "j1", "Success", "", "", now); !errors.Is(err, ErrNotFound) {
					return err // ended just above
				}
				return nil
			}},
			{"InsertJobAndLock", false, func(q *Queries) error {
				_, err := q.InsertJobAndLock(ctx, Job{ID: "j2", Summary: "start", User: "admin", Status: "Running", ManagerID: "m1", CreatedAt: now},
					[]string{"v1"})
				return err
			}},
			{"InsertVMJobAndLock", false, func(q *Queries) error {
				_, read, err := q.InsertVMJobAndLock(ctx, Job{ID: "j2vm", Summary: "start", User: "admin", Status: "Running", ManagerID: "m1", CreatedAt: now},
					[]string{"v1-of-j2vm"}, "v1")
				if err == nil && (read == nil || !read.Found) {
					return fmt.Errorf("read %+v, want VM v1", read)
				}
				return err
			}},
			{"SetJobsProgress", false, func(q *Queries) error {
				return q.SetJobsProgress(ctx, []JobProgress{{ID: "j2", Progress: 50, Message: "half"}})
			}},
			{"SetVMStateAndEndJob", false, func(q *Queries) error {
				_, err := q.SetVMStateAndEndJob(ctx, "v1", "s1", "Running", "j2", "Success", "", "", now)
				return err
			}},
			{"InsertEvent", false, func(q *Queries) error {
				return q.InsertEvent(ctx, Event{ID: "e1", Severity: "Info", Kind: "test", Description: "d", CreatedAt: now})
			}},
			{"EndOtherMembers", false, func(q *Queries) error { return q.EndOtherMembers(ctx, "m1") }},
			{"AckEvent", false, func(q *Queries) error { return q.AckEvent(ctx, "e1") }},
			{"UpdateManagerSettings", false, func(q *Queries) error {
				return q.UpdateManagerSettings(ctx, ManagerSettings{ImportAllowedNetworks: "10.0.0.0/8", EvacuationParallelism: 4,
					CloneParallelismPerServer: 4, CloneParallelismPerRepository: 8})
			}},
			{"AddSecret", false, func(q *Queries) error {
				_, err := q.AddSecret(ctx, "key_check", "c2VhbGVk", now)
				return err
			}},
			{"InsertAudit", false, func(q *Queries) error {
				return q.InsertAudit(ctx, AuditRecord{User: "admin", Remote: "127.0.0.1", Command: "list Vm", Result: "Success", CreatedAt: now})
			}},
			{"DeleteCdromMapping", false, func(q *Queries) error { return q.DeleteCdromMapping(ctx, "cm1") }},
			{"DeleteVirtualCdrom", false, func(q *Queries) error { return q.DeleteVirtualCdrom(ctx, "c1") }},
			{"DeleteDiskMapping", false, func(q *Queries) error { return q.DeleteDiskMapping(ctx, "dm1") }},
			{"SetVirtualDiskSize", false, func(q *Queries) error { return q.SetVirtualDiskSize(ctx, "d1", 2048) }},
			{"DeleteVirtualDisk", false, func(q *Queries) error { return q.DeleteVirtualDisk(ctx, "d1") }},
			{"DeleteVnic", false, func(q *Queries) error { return q.DeleteVnic(ctx, "n1v") }},
			{"DeleteNetwork", false, func(q *Queries) error { return q.DeleteNetwork(ctx, "n1") }},
			{"DeleteVM", false, func(q *Queries) error { return q.DeleteVM(ctx, "v1") }},
			{"DeleteRepository", true, func(q *Queries) error { return q.DeleteRepository(ctx, "r1") }},
			{"SetPoolMaster", true, func(q *Queries) error { return q.SetPoolMaster(ctx, "p1", "s1") }},
			{"DeleteServer", true, func(q *Queries) error { return q.DeleteServer(ctx, "s1") }},
			{"DeleteUser", true, func(q *Queries) error { return q.DeleteUser(ctx, "u1") }},
			{"DeleteServerPool", true, func(q *Queries) error { return q.DeleteServerPool(ctx, "p1") }},
		}
		tested := map[string]bool{}
		for _, tc := range tests {
			tested[tc.method] = true
			t.Run(tc.method, func(t *testing.T) {
				before := s.InventoryGeneration()
				var during int64
				err := s.Write(ctx, func(q *Queries) error {
					err := tc.op(q)
					during = s.InventoryGeneration()
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				after := s.InventoryGeneration()
				switch {
				case tc.inventory && (during == before || after == during):
					t.Errorf("generation %d, %d while writing, %d after the commit; want a change at each", before, during, after)
				case !tc.inventory && after != before:
					t.Errorf("generation %d before, %d after; want it unchanged", before, after)
				}
			})
		}
		qt := reflect.TypeOf(&Queries{})
		for i := range qt.NumMethod() {
			if name := qt.Method(i).Name; writeMethod.MatchString(name) && !tested[name] {
				t.Errorf("write method %s is not in the table", name)
			}
		}
	})
}

package backend_test

import (
	"context"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// behind runs stmt on the core's database behind the store's back, on a
// connection of its own (managertest.Core.Behind).
func behind(t *testing.T, c *managertest.Core, stmt string) {
	t.Helper()
	if _, err := c.Behind().Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// breakTable renames table, so that every later read of it fails as a
// failing database would, while the other tables still answer.
func breakTable(t *testing.T, c *managertest.Core, table string) {
	t.Helper()
	behind(t, c, `ALTER TABLE `+table+` RENAME TO `+table+`_gone`)
}

// fleet is a ready core with a network, a disk and a VM that holds both,
// for the cases that show devices.
func fleet(t *testing.T) *managertest.Core {
	t.Helper()
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	if _, err := c.Manager.CreateNetwork(ctx, "net1", backend.Ref{Name: managertest.Pool}, "", ""); err != nil {
		t.Fatalf("create Network: %v", err)
	}
	if _, err := c.Manager.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "disk1", Repository: backend.Ref{Name: managertest.Repo}, SizeMiB: 16, Sparse: true}); err != nil {
		t.Fatalf("create VirtualDisk: %v", err)
	}
	if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "vm1", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 256, CPUCount: 1, Disks: []backend.Ref{{Name: "disk1"}}, Networks: []backend.Ref{{Name: "net1"}}}); err != nil {
		t.Fatalf("create Vm: %v", err)
	}
	return c
}

// A read that fails for another reason than a missing row fails the show,
// list or delete that made it: a failing database is never shown as an
// empty name, a count of zero or a device left out, and never taken for
// "nothing uses this" by a delete.
func TestStoreFailureIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		open  func(t *testing.T) *managertest.Core
		table string // the table whose reads fail
		call  func(ctx context.Context, m *backend.Manager) error
		after func(t *testing.T, c *managertest.Core) // what must still hold, if anything
		once  bool                                    // call changes things: not called before the table breaks
	}{
		{name: "show Manager counts VMs", open: fleet, table: "vms",
			call: func(ctx context.Context, m *backend.Manager) error { _, err := m.Info(ctx); return err }},
		{name: "show Network counts Vnics", open: fleet, table: "vnics",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.Network(ctx, backend.Ref{Name: "net1"})
				return err
			}},
		{name: "list Network reads pools", open: fleet, table: "server_pools",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.Networks(ctx, backend.Filter{})
				return err
			}},
		{name: "show VirtualDisk reads its VM", open: fleet, table: "vms",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.VirtualDisk(ctx, backend.Ref{Name: "disk1"})
				return err
			}},
		{name: "list VirtualDisk reads mappings", open: fleet, table: "vm_disk_mappings",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.VirtualDisks(ctx, backend.Filter{})
				return err
			}},
		// once: a show before would be kept (the manager's shown VMs),
		// and a table renamed behind the store's back is no write it sees.
		{name: "show Vm reads its disks", open: fleet, table: "virtual_disks", once: true,
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.VM(ctx, backend.Ref{Name: "vm1"})
				return err
			}},
		// once: a show before would be kept (the manager's shown VMs),
		// and a table renamed behind the store's back is no write it sees.
		{name: "show Vm reads its vnics", open: fleet, table: "vnics", once: true,
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.VM(ctx, backend.Ref{Name: "vm1"})
				return err
			}},
		{name: "list Vnic reads networks", open: fleet, table: "networks",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.Vnics(ctx, backend.Ref{})
				return err
			}},
		{name: "refresh Repository counts disks", open: fleet, table: "virtual_disks",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.RefreshRepository(ctx, backend.Ref{Name: managertest.Repo})
				return err
			}},
		{name: "list VmDiskMapping reads disks", open: fleet, table: "virtual_disks",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.DiskMappings(ctx, backend.Ref{})
				return err
			}},
		{name: "show Tag counts tagged objects",
			open: func(t *testing.T) *managertest.Core {
				c := fleet(t)
				if _, err := c.Manager.CreateTag(c.Admin(), "tag1", ""); err != nil {
					t.Fatalf("create Tag: %v", err)
				}
				return c
			},
			table: "object_tags",
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.Tag(ctx, backend.Ref{Name: "tag1"})
				return err
			}},
		{name: "delete ServerPool counts networks",
			open: func(t *testing.T) *managertest.Core {
				c := managertest.Open(t, managertest.Options{})
				c.CreatePool("empty")
				return c
			},
			table: "networks", once: true,
			call: func(ctx context.Context, m *backend.Manager) error {
				_, err := m.DeleteServerPool(ctx, backend.Ref{Name: "empty"})
				return err
			},
			after: func(t *testing.T, c *managertest.Core) {
				if _, err := c.Manager.ServerPool(c.Admin(), backend.Ref{Name: "empty"}); err != nil {
					t.Errorf("the pool is gone after a delete that could not check it: %v", err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.open(t)
			if !tc.once {
				if err := tc.call(c.Admin(), c.Manager); err != nil {
					t.Fatalf("before the table is broken: %v", err)
				}
			}
			breakTable(t, c, tc.table)
			err := tc.call(c.Admin(), c.Manager)
			if err == nil || backend.KindOf(err) != backend.KindInternal {
				t.Fatalf("with table %s failing: err = %v (kind %v), want an internal error", tc.table, err, backend.KindOf(err))
			}
			if tc.after != nil {
				tc.after(t, c)
			}
		})
	}
}

// A row a view refers to that is gone (store.ErrNotFound) still shows as
// an empty name, as it always has, and fails nothing.
func TestMissingRowShowsEmpty(t *testing.T) {
	for _, tc := range []struct {
		name, delete string
		show         func(ctx context.Context, m *backend.Manager) (backend.NamedRef, error)
	}{
		{name: "a Vnic's network", delete: `DELETE FROM networks WHERE name = 'net1'`,
			show: func(ctx context.Context, m *backend.Manager) (backend.NamedRef, error) {
				vnics, err := m.Vnics(ctx, backend.Ref{})
				if err != nil || len(vnics) != 1 {
					return backend.NamedRef{ID: "?"}, err
				}
				return vnics[0].Network, nil
			}},
		{name: "a Vm's disk", delete: `DELETE FROM virtual_disks WHERE name = 'disk1'`,
			show: func(ctx context.Context, m *backend.Manager) (backend.NamedRef, error) {
				v, err := m.VM(ctx, backend.Ref{Name: "vm1"})
				if err != nil || len(v.Disks) != 1 {
					return backend.NamedRef{ID: "?"}, err
				}
				return v.Disks[0], nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fleet(t)
			behind(t, c, tc.delete)
			got, err := tc.show(c.Admin(), c.Manager)
			if err != nil || got != (backend.NamedRef{}) {
				t.Fatalf("got %+v, %v; want an empty reference and no error", got, err)
			}
		})
	}
}

package backend_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/managertest"
)

// Every type code of the object table is its own: two types sharing one
// would make an id say the wrong type.
func TestObjectTypeCodesAreUnique(t *testing.T) {
	byCode := map[backend.ObjectType]string{}
	for _, k := range backend.ObjectKinds() {
		if len(k.Code) != 4 {
			t.Errorf("%s has type code %q; want 4 digits", k.Name, k.Code)
		}
		if other, ok := byCode[k.Code]; ok {
			t.Errorf("%s and %s share type code %s", other, k.Name, k.Code)
		}
		byCode[k.Code] = k.Name
	}
}

// Every type of the object table that has a lookup finds an object by its
// name and by its id, with the pool the object is in, on a small fleet.
func TestObjectTypesResolveByNameAndID(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	m := c.Manager
	iso := make([]byte, 32768, 34000) // an ISO 9660 volume descriptor where a reader looks for one
	iso = append(append(iso, 1), "CD001\x01"...)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	t.Cleanup(web.Close)

	type object struct{ id, name, pool string }
	pool, err := m.ServerPool(ctx, backend.Ref{Name: managertest.Pool})
	if err != nil {
		t.Fatal(err)
	}
	server, err := m.Server(ctx, backend.Ref{Name: "ovs1"})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := m.Repository(ctx, backend.Ref{Name: managertest.Repo})
	if err != nil {
		t.Fatal(err)
	}
	repoRef := backend.Ref{ID: repo.ID}
	vm, err := m.CreateVM(ctx, backend.CreateVMRequest{Name: "vm1", Repository: repoRef, MemoryMiB: 256, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	network, err := m.CreateNetwork(ctx, "net1", backend.Ref{ID: pool.ID}, "xenbr0", "")
	if err != nil {
		t.Fatal(err)
	}
	disk, err := m.CreateVirtualDisk(ctx, backend.NewVirtualDisk{Name: "disk1", Repository: repoRef, SizeMiB: 16, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); err != nil { // where web listens
		t.Fatal(err)
	}
	cdrom, err := m.ImportISO(ctx, repoRef, web.URL+"/install.iso", "iso1", "")
	if err != nil {
		t.Fatal(err)
	}
	vnic, err := m.CreateVnic(ctx, "vnic1", backend.Ref{ID: vm.ID}, backend.Ref{ID: network.ID}, "")
	if err != nil {
		t.Fatal(err)
	}
	tag, err := m.CreateTag(ctx, "tag1", "")
	if err != nil {
		t.Fatal(err)
	}
	user, err := m.CreateUser(ctx, "user1", "a long password", backend.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	group, err := m.CreateAntiAffinityGroup(ctx, "group1", "", backend.Ref{ID: pool.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddDiskToVM(ctx, backend.Ref{ID: disk.ID}, backend.Ref{ID: vm.ID}, -1); err != nil {
		t.Fatal(err)
	}
	saved, err := m.Clone(ctx, backend.CloneRequest{SourceType: "Vm", Source: backend.Ref{ID: vm.ID}, DestType: "VmTemplate", DestName: "template1"})
	if err != nil {
		t.Fatal(err)
	}
	template := saved.Copies[0]
	customizer, err := m.CreateCloneCustomizer(ctx, "customizer1", "", "Vm", backend.Ref{ID: vm.ID})
	if err != nil {
		t.Fatal(err)
	}
	storage, err := m.CreateCloneStorageMapping(ctx, backend.CloneStorageMappingRequest{Name: "storage1", Customizer: backend.Ref{ID: customizer.ID},
		DiskMapping: disk.Name, CloneType: backend.CloneNonSparseCopy, Repository: repoRef})
	if err != nil {
		t.Fatal(err)
	}
	netMap, err := m.CreateCloneNetworkMapping(ctx, backend.CloneNetworkMappingRequest{Name: "network1", Customizer: backend.Ref{ID: customizer.ID},
		Vnic: vnic.Name, Network: backend.Ref{ID: network.ID}})
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]object{
		"AntiAffinityGroup":     {group.ID, group.Name, pool.ID},
		"Vm":                    {vm.ID, vm.Name, pool.ID},
		"Server":                {server.ID, server.Name, pool.ID},
		"ServerPool":            {pool.ID, pool.Name, pool.ID},
		"Repository":            {repo.ID, repo.Name, pool.ID},
		"Network":               {network.ID, network.Name, pool.ID},
		"VirtualDisk":           {disk.ID, disk.Name, pool.ID},
		"VirtualCdrom":          {cdrom.ID, cdrom.Name, pool.ID},
		"Vnic":                  {vnic.ID, vnic.Name, pool.ID},
		"Tag":                   {tag.ID, tag.Name, ""},
		"User":                  {user.ID, user.Name, ""},
		"VmTemplate":            {template.ID, template.Name, pool.ID},
		"VmCloneCustomizer":     {customizer.ID, customizer.Name, pool.ID},
		"VmCloneStorageMapping": {storage.ID, storage.Name, pool.ID},
		"VmCloneNetworkMapping": {netMap.ID, netMap.Name, pool.ID},
	}

	for _, k := range backend.ObjectKinds() {
		if !k.Lookup {
			continue
		}
		want, ok := objects[k.Name]
		if !ok {
			t.Errorf("%s has a lookup but no object here to find: add one", k.Name)
			continue
		}
		if got := want.id[8:12]; got != string(k.Code) {
			t.Errorf("%s %s has type code %s in its id; want %s", k.Name, want.name, got, k.Code)
		}
		for _, ref := range []backend.Ref{{Name: want.name}, {ID: want.id}} {
			id, name, pool, err := m.LookupObject(ctx, k.Name, ref)
			if got := (object{id, name, pool}); err != nil || got != want {
				t.Errorf("lookup %s %s = %+v, %v; want %+v", k.Name, ref, got, err, want)
			}
		}
		if _, _, _, err := m.LookupObject(ctx, k.Name, backend.Ref{Name: "nothing"}); backend.KindOf(err) != backend.KindNotFound {
			t.Errorf("lookup %s nothing = %v; want NotFound", k.Name, err)
		}
	}
}

// The operations that read the object table refuse the types it does not
// allow them, in the words they always have.
func TestObjectTypesRefusedByTagsAndRenames(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	ctx := c.Admin()
	m := c.Manager
	if _, err := m.CreateTag(ctx, "tag1", ""); err != nil {
		t.Fatal(err)
	}
	name, description := "new", "text"
	for _, tc := range []struct {
		what string
		err  error
		want string
	}{
		{"tag a Network", tagObject(ctx, m, "Network"), "tags go on Vm, Server, ServerPool, Repository, AntiAffinityGroup and VmTemplate objects, not Network"},
		{"tag a Nothing", tagObject(ctx, m, "Nothing"), "tags go on Vm, Server, ServerPool, Repository, AntiAffinityGroup and VmTemplate objects, not Nothing"},
		{"rename a Vm", editNamed(ctx, m, "Vm", &name, &description), "Vm cannot be renamed"},
		{"rename a Nothing", editNamed(ctx, m, "Nothing", nil, nil), "Nothing cannot be renamed"},
		{"describe a Repository", editNamed(ctx, m, backend.RenameRepository, nil, &description), "a Repository has no description; edit its name="},
		{"edit a Tag with nothing", editNamed(ctx, m, backend.RenameTag, nil, nil), "edit Tag needs something to change: name= or description="},
	} {
		if tc.err == nil || tc.err.Error() != tc.want || backend.KindOf(tc.err) != backend.KindInvalidArgument {
			t.Errorf("%s = %v; want InvalidArgument %q", tc.what, tc.err, tc.want)
		}
	}
	if m.ObjectNames(ctx, "User", "", 10, nil) != nil || m.ObjectNames(ctx, "Nothing", "", 10, nil) != nil {
		t.Error("ObjectNames completes a type it has no table for")
	}
	if names := m.ObjectNames(ctx, "Tag", "t", 10, nil); len(names) != 1 || names[0] != "tag1" {
		t.Errorf("ObjectNames Tag t = %q; want [tag1]", names)
	}
}

// tagObject tags an object of type typ with tag1, for the error it gives.
func tagObject(ctx context.Context, m *backend.Manager, typ string) error {
	_, err := m.TagObject(ctx, backend.Ref{Name: "tag1"}, typ, backend.Ref{Name: "x"}, false)
	return err
}

// editNamed edits an object of type typ, for the error it gives.
func editNamed(ctx context.Context, m *backend.Manager, typ backend.Renamable, name, description *string) error {
	_, err := m.EditNamed(ctx, typ, backend.Ref{Name: "x"}, name, description)
	return err
}

package backend

import (
	"context"
	"iter"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/store"
)

// This file holds the Stream methods of the list commands whose rows may
// be many: each works out its filter and the actor's scope now, then
// reads its rows through streamed, from one snapshot, one at a time. The
// []T methods (VirtualDisks, Jobs ...) collect them.

// StreamServers is list Server: the servers that pass f (name, status,
// pool), by name.
func (m *Manager) StreamServers(ctx context.Context, f Filter) (Listing[Server], error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return Listing[Server]{}, err
	}
	return streamed(m, "servers", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.Server, error], func(store.Server) (Server, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		vms, err := q.CountVMsPerServer(ctx)
		if err != nil {
			return nil, nil, &Error{Kind: KindInternal, Msg: "count VMs", Cause: err}
		}
		return eachOf(inv.serverList), func(s store.Server) (Server, bool, error) {
			if !c.match(s.ID, s.Name, s.Status, s.ID, s.PoolID, "") {
				return Server{}, false, nil
			}
			return inv.serverView(s, vms), true, nil
		}, nil
	}), nil
}

// StreamVirtualDisks is list VirtualDisk: the disks that pass f (name,
// repository, pool), by name, each with the VMs it is in.
func (m *Manager) StreamVirtualDisks(ctx context.Context, f Filter) (Listing[VirtualDisk], error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return Listing[VirtualDisk]{}, err
	}
	return streamed(m, "disks", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.VirtualDisk, error], func(store.VirtualDisk) (VirtualDisk, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		return q.EachVirtualDisk(ctx), func(d store.VirtualDisk) (VirtualDisk, bool, error) {
			r, ok := inv.repos[d.RepoID]
			if !ok || !c.match(d.ID, d.Name, "", "", r.PoolID, r.ID) {
				return VirtualDisk{}, false, nil
			}
			v, err := m.diskViewIn(ctx, q, d, r)
			return v, err == nil, err
		}, nil
	}), nil
}

// StreamVirtualCdroms is list VirtualCdrom: the ISOs that pass f (name,
// repository, pool), by name, each with the VMs it is in.
func (m *Manager) StreamVirtualCdroms(ctx context.Context, f Filter) (Listing[VirtualCdrom], error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return Listing[VirtualCdrom]{}, err
	}
	return streamed(m, "ISOs", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.VirtualCdrom, error], func(store.VirtualCdrom) (VirtualCdrom, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		maps, err := q.CdromMappings(ctx)
		if err != nil {
			return nil, nil, &Error{Kind: KindInternal, Msg: "read ISO mappings", Cause: err}
		}
		vmsOf, err := mappedVMs(ctx, q, maps)
		if err != nil {
			return nil, nil, err
		}
		return q.EachVirtualCdrom(ctx), func(iso store.VirtualCdrom) (VirtualCdrom, bool, error) {
			r, ok := inv.repos[iso.RepoID]
			if !ok || !c.match(iso.ID, iso.Name, "", "", r.PoolID, r.ID) {
				return VirtualCdrom{}, false, nil
			}
			return cdromViewIn(iso, r, vmsOf[iso.ID]), true, nil
		}, nil
	}), nil
}

// StreamVMTemplates is list VmTemplate: the templates that pass f (name,
// state, pool, repository, tag), by name.
func (m *Manager) StreamVMTemplates(ctx context.Context, f Filter) (Listing[VmTemplate], error) {
	c, err := m.compile(ctx, f)
	if err != nil {
		return Listing[VmTemplate]{}, err
	}
	return streamed(m, "templates", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.VMTemplate, error], func(store.VMTemplate) (VmTemplate, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		return q.EachVMTemplate(ctx), func(t store.VMTemplate) (VmTemplate, bool, error) {
			if !c.match(t.ID, t.Name, t.State, "", t.PoolID, t.RepoID) {
				return VmTemplate{}, false, nil
			}
			v, err := m.templateView(ctx, q, inv, t)
			return v, err == nil, err
		}, nil
	}), nil
}

// StreamTags is list Tag: the tags whose name matches f.Name, by name. A
// malformed pattern fails at the first tag, as it always has.
func (m *Manager) StreamTags(ctx context.Context, f Filter) (Listing[Tag], error) {
	return streamed(m, "tags", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.Tag, error], func(store.Tag) (Tag, bool, error), error) {
		return q.EachTag(ctx), func(t store.Tag) (Tag, bool, error) {
			if ok, err := nameMatches(f.Name, t.Name); !ok || err != nil {
				return Tag{}, false, err
			}
			v, err := m.tagView(ctx, q, t)
			return v, err == nil, err
		}, nil
	}), nil
}

// StreamUsers is list User: every user whose name matches f.Name for
// administrators, oneself for others, by name.
func (m *Manager) StreamUsers(ctx context.Context, f Filter) (Listing[User], error) {
	a := actorFrom(ctx)
	return streamed(m, "users", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.User, error], func(store.User) (User, bool, error), error) {
		inv, err := inventoryOf(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		keys, err := q.CountSSHKeysPerUser(ctx)
		if err != nil {
			return nil, nil, &Error{Kind: KindInternal, Msg: "count SSH keys", Cause: err}
		}
		return q.EachUser(ctx), func(u store.User) (User, bool, error) {
			if a.Role != RoleAdministrator && u.Name != a.User {
				return User{}, false, nil
			}
			if ok, err := nameMatches(f.Name, u.Name); !ok || err != nil {
				return User{}, false, err
			}
			v, err := userView(ctx, q, inv, u, keys[u.ID])
			return v, err == nil, err
		}, nil
	}), nil
}

// StreamSSHKeys is list SshKey: the keys the actor may see (their own;
// all for administrators), by user then name.
func (m *Manager) StreamSSHKeys(ctx context.Context) (Listing[SSHKey], error) {
	a := actorFrom(ctx)
	return streamed(m, "keys", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.SSHKey, error], func(store.SSHKey) (SSHKey, bool, error), error) {
		return q.EachSSHKey(ctx), func(k store.SSHKey) (SSHKey, bool, error) {
			if a.Role != RoleAdministrator && k.UserName != a.User {
				return SSHKey{}, false, nil
			}
			typ := ""
			if pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey)); err == nil {
				typ = pk.Type()
			}
			return SSHKey{ID: k.ID, Name: k.Name, User: k.UserName, Fingerprint: k.Fingerprint, Type: typ, CreatedAt: k.CreatedAt}, true, nil
		}, nil
	}), nil
}

// StreamVnics is list Vnic: the VNICs of the VMs the actor may see (of
// vm, when given), by name.
func (m *Manager) StreamVnics(ctx context.Context, vm Ref) (Listing[Vnic], error) {
	only, sc, err := m.devicesScope(ctx, vm)
	if err != nil {
		return Listing[Vnic]{}, err
	}
	return streamed(m, "vnics", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.Vnic, error], func(store.Vnic) (Vnic, bool, error), error) {
		return q.EachVnic(ctx), func(vn store.Vnic) (Vnic, bool, error) {
			if only != "" && vn.VMID != only {
				return Vnic{}, false, nil
			}
			v, err := optional(q.VM(ctx, vn.VMID))
			if err != nil || v.ID == "" || !sc.sees(v.PoolID) {
				return Vnic{}, false, err // the VM is gone, or not the actor's to see
			}
			view, err := m.vnicViewOf(ctx, q, vn, v)
			return view, err == nil, err
		}, nil
	}), nil
}

// StreamJobs is list Job: the newest jobs (at most limit) that the actor
// may see, newest first, those running here with their progress now.
func (m *Manager) StreamJobs(ctx context.Context, limit int) (Listing[Job], error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return Listing[Job]{}, err
	}
	a := actorFrom(ctx)
	return streamed(m, "jobs", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.Job, error], func(store.Job) (Job, bool, error), error) {
		return q.EachJob(ctx, limit), func(r store.Job) (Job, bool, error) {
			if !seesJob(sc, a, r) {
				return Job{}, false, nil
			}
			return m.jobs.live(r), true, nil
		}, nil
	}), nil
}

// StreamEvents is list Event and getEvents: the newest events (at most
// limit; unacknowledged ones only when unackedOnly) of the pools the actor
// sees, newest first.
func (m *Manager) StreamEvents(ctx context.Context, unackedOnly bool, limit int) (Listing[Event], error) {
	sc, err := m.scope(ctx)
	if err != nil {
		return Listing[Event]{}, err
	}
	return streamed(m, "events", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.Event, error], func(store.Event) (Event, bool, error), error) {
		return q.EachEvent(ctx, unackedOnly, limit), func(r store.Event) (Event, bool, error) {
			if !sc.sees(r.PoolID) {
				return Event{}, false, nil // events of other pools, and manager-wide ones, are for administrators
			}
			return Event{ID: r.ID, Severity: r.Severity, Kind: r.Kind, ObjectType: r.ObjectType, ObjectID: r.ObjectID,
				Name: r.ObjectName, Description: r.Description, Acknowledged: r.Acknowledged, CreatedAt: r.CreatedAt}, true, nil
		}, nil
	}), nil
}

// StreamAuditLog is list AuditRecord and getAuditLog: the newest audit
// records first, at most limit (administrators only), after writing what
// waits in the spool if the database allows.
func (m *Manager) StreamAuditLog(ctx context.Context, limit int) (Listing[AuditRecord], error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return Listing[AuditRecord]{}, err
	}
	m.audit.flush()
	return streamed(m, "audit log", func(ctx context.Context, q *store.Queries) (iter.Seq2[store.AuditRecord, error], func(store.AuditRecord) (AuditRecord, bool, error), error) {
		return q.EachAuditRecord(ctx, limit), func(r store.AuditRecord) (AuditRecord, bool, error) {
			return AuditRecord{r.Seq, r.User, r.Remote, r.Command, r.Result, r.CreatedAt}, true, nil
		}, nil
	}), nil
}

// nameMatches reports whether name matches pattern ("" matches all).
func nameMatches(pattern, name string) (bool, error) {
	if pattern == "" {
		return true, nil
	}
	return matchName(pattern, name)
}

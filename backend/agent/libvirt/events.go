package libvirt

import (
	"context"

	golibvirt "github.com/digitalocean/go-libvirt"

	"xenmanager/backend/agentapi"
)

// followEvents subscribes to libvirt's lifecycle events on a new
// connection and turns those no call of this driver caused into the
// host's events until ctx ends or the connection goes: a guest that
// powered itself off, one that crashed (a kernel panic reported through
// pvpanic, or a hypervisor failure), and a domain destroyed, saved or
// migrated away behind the agent's back, which is "stopped outside the
// manager", not a crash.
func (d *Driver) followEvents(ctx context.Context, l *golibvirt.Libvirt) {
	d.mu.Lock()
	d.ends.reset() // the events those waited for went with the old connection
	d.mu.Unlock()
	ch, err := l.LifecycleEvents(ctx)
	if err != nil {
		d.log.Error("cannot follow libvirt's lifecycle events; crashes and guests powering off are seen only when listed", "err", err)
		return
	}
	go func() {
		for ev := range ch {
			d.lifecycle(ev)
		}
	}()
}

// lifecycle handles one lifecycle event.
func (d *Driver) lifecycle(ev golibvirt.DomainEventLifecycleMsg) {
	var kind, state, detail string
	switch golibvirt.DomainEventType(ev.Event) {
	case golibvirt.DomainEventStopped:
		kind, state = agentapi.EventVMShutdown, agentapi.StateShutdown
		switch golibvirt.DomainEventStoppedDetailType(ev.Detail) {
		case golibvirt.DomainEventStoppedShutdown:
			detail = "the guest powered itself off"
		case golibvirt.DomainEventStoppedDestroyed:
			detail = "the domain was destroyed outside the manager"
		case golibvirt.DomainEventStoppedCrashed:
			kind, state, detail = agentapi.EventVMCrashed, agentapi.StateShutdown, "the guest crashed (kernel panic); on_crash destroyed its domain"
		case golibvirt.DomainEventStoppedMigrated:
			detail = "the domain was migrated away outside the manager"
		case golibvirt.DomainEventStoppedSaved:
			detail = "the domain was saved outside the manager"
		case golibvirt.DomainEventStoppedFailed:
			kind, state, detail = agentapi.EventVMCrashed, agentapi.StateShutdown, "the hypervisor's process of the domain failed; the domain is gone"
		default:
			detail = "the domain stopped"
		}
	case golibvirt.DomainEventCrashed:
		kind, state, detail = agentapi.EventVMCrashed, agentapi.StateCrashed, "the guest crashed (kernel panic)"
	default:
		return
	}
	name := ev.Dom.Name
	d.mu.Lock()
	meta, known := d.known[name]
	var why string
	var expected bool
	if golibvirt.DomainEventType(ev.Event) == golibvirt.DomainEventStopped {
		why, expected = d.ends.stopped(name)
	}
	d.mu.Unlock()
	if !known {
		return
	}
	if expected && kind == agentapi.EventVMShutdown {
		d.log.Debug("domain ended as asked", "vm", meta.VM, "how", why)
		return
	}
	d.env.Events.Emit(agentapi.Event{
		Time:   d.env.Now().Unix(),
		Kind:   kind,
		VMUUID: meta.UUID,
		RepoID: meta.Repo,
		State:  state,
		Detail: detail,
	})
}

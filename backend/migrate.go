package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentclient"
	"xenmanager/store"
)

// Migration is what a live migration did.
type Migration struct {
	From, To   NamedRef
	Live       bool
	Rounds     int64
	BytesSent  int64
	DurationMS int64
	DowntimeMS int64
	Converged  bool
}

// MigrateVM moves a VM to another server of its pool: a running VM live
// (pre-copy between the two agents; it runs on the destination only once
// the destination's memory is proven equal to the source's, and stays on the
// source on any failure), a stopped one by recording where it should start
// (startPolicy CURRENT_SERVER then starts it there). dest may be empty:
// placement picks the server, never the current one.
func (m *Manager) MigrateVM(ctx context.Context, ref Ref, dest Ref) (VM, Migration, error) {
	var target *store.Server
	if dest != (Ref{}) {
		s, err := m.findServer(ctx, dest)
		if err != nil {
			return VM{}, Migration{}, err
		}
		target = &s
	}
	var mig Migration
	v, err := m.vmJob(ctx, ref, "migrate", PermVMLifecycle, func(ctx context.Context, j *jobRun, v store.VM) error {
		var err error
		mig, err = m.migrate(ctx, j, v, target)
		return err
	})
	return v, mig, err
}

func (m *Manager) migrate(ctx context.Context, j *jobRun, v store.VM, target *store.Server) (Migration, error) {
	if target != nil {
		if target.PoolID != v.PoolID {
			return Migration{}, errorf(KindInvalidArgument, "destServer %s is not in the VM's server pool", target.Name)
		}
		if target.ID == v.ServerID {
			return Migration{}, errorf(KindInvalidArgument, "Vm %s already runs on %s", v.Name, target.Name)
		}
		if target.Status != ServerRunning {
			return Migration{}, errorf(KindInvalidState, "destServer %s is %s; migrate needs it Running", target.Name, target.Status)
		}
		if target.Maintenance {
			return Migration{}, errorf(KindInvalidState, "destServer %s is in maintenance mode", target.Name)
		}
		if !hasRole(target.Roles, RoleXen) {
			return Migration{}, errorf(KindInvalidState, "%s", lacksRole(target.Name, target.Roles, RoleXen))
		}
		if checkPinningOn(v.CPUPinning, *target) != nil {
			return Migration{}, errorf(KindInvalidArgument, "Vm %s cannot run on destServer %s: its cpuPinning %s names CPUs the server lacks (it has CPUs %s)",
				v.Name, target.Name, v.CPUPinning, cpuRange(recordedThreads(*target)))
		}
	}
	if v.Status == VMStopped {
		if target == nil {
			return Migration{}, errorf(KindInvalidArgument, "Vm %s is Stopped: name the server it should start on with destServer=", v.Name)
		}
		err := m.st.Write(ctx, func(q *store.Queries) error { return q.SetVMLastServer(ctx, v.ID, target.ID) })
		if err != nil {
			return Migration{}, &Error{Kind: KindInternal, Msg: "record Vm placement", Cause: err}
		}
		return Migration{To: NamedRef{target.ID, target.Name}}, nil
	}
	src, srcClient, err := m.serverOf(ctx, v)
	if err != nil {
		return Migration{}, err
	}
	// Choose the destination: the one named, or the best other server.
	var dst store.Server
	var dstClient *agentclient.Client
	var release func()
	if target != nil {
		dst = *target
		if dstClient, err = m.clients.get(dst); err != nil {
			return Migration{}, err
		}
		if release, err = m.place.admit(ctx, v, dst); err != nil {
			return Migration{}, err
		}
	} else {
		pv := v
		pv.PreferredServers, pv.StartPolicy = "", PolicyBestServer
		cands, rel, err := m.place.placeExcept(ctx, pv, src.ID)
		if err != nil {
			return Migration{}, err
		}
		dst, dstClient, release = cands[0].server, cands[0].client, rel
	}
	defer release()
	if err := j.check(); err != nil {
		return Migration{}, err
	}
	mig := Migration{From: NamedRef{src.ID, src.Name}, To: NamedRef{dst.ID, dst.Name}, Live: true}
	what := fmt.Sprintf("migrate Vm %s from %s to %s", v.Name, src.Name, dst.Name)
	j.progress(5, "preparing "+dst.Name)
	if err := j.step(ctx, jobStep{Call: stepMigrate, VM: v.ID, Server: src.ID, To: dst.ID}); err != nil {
		return Migration{}, err
	}
	destAddr, err := dstClient.SetupMigrationTarget(ctx, v.RepoID, v.ID)
	if err != nil {
		return Migration{}, agentError(what, dst.Name, err)
	}
	// The call lasts as long as the copy: use a client whose timeout allows
	// for a large guest, and follow the source's progress meanwhile.
	long, err := m.longClient(src)
	if err != nil {
		return Migration{}, err
	}
	stop := followProgress(ctx, j, srcClient, agentapi.ProgressMigrate+v.ID, what, 10, 90)
	res, err := long.MigrateVM(ctx, v.RepoID, v.ID, destAddr, true, false)
	long.Close()
	stop()
	if err != nil {
		if cerr := dstClient.CleanupMigrationTarget(context.WithoutCancel(ctx), v.RepoID, v.ID); cerr != nil {
			m.log.Warn("cleanup_migration_target failed", "vm", v.Name, "server", dst.Name, "err", cerr)
		}
		// Record where the domain really is: the agents decide, not the error.
		onDst, knownDst := m.domainRunning(ctx, dstClient, v)
		if knownDst && onDst {
			m.log.Warn("migrate_vm failed but the domain runs on the destination; recording it there", "vm", v.Name)
			if err := m.setVMState(ctx, v.ID, dst.ID, VMRunning); err != nil {
				return Migration{}, err
			}
			return mig, nil
		}
		if errors.Is(err, agentclient.ErrUnreachable) {
			return Migration{}, agentError(what+" (the VM stays where the agents report it)", src.Name, err)
		}
		return Migration{}, agentError(what, src.Name, err)
	}
	mig.Rounds, mig.BytesSent, mig.DurationMS, mig.DowntimeMS, mig.Converged = res.Rounds, res.BytesSent, res.DurationMS, res.DowntimeMS, res.Converged
	m.place.capacity.adjust(src.ID, v.MemoryMiB)
	m.place.capacity.adjust(dst.ID, -v.MemoryMiB)
	if err := m.setVMState(ctx, v.ID, dst.ID, VMRunning); err != nil {
		return Migration{}, err
	}
	m.log.Info("vm migrated", "vm", v.Name, "from", src.Name, "to", dst.Name, "rounds", res.Rounds,
		"bytes", res.BytesSent, "downtime_ms", res.DowntimeMS, "converged", res.Converged)
	if !res.Converged {
		m.event(ctx, "Warning", "MigrationNotConverged", "Vm", v.ID, v.Name, v.PoolID,
			fmt.Sprintf("%s did not converge in %d rounds (the guest dirties memory faster than it is copied); it was stopped and copied, downtime %d ms",
				what, res.Rounds, res.DowntimeMS))
	}
	return mig, nil
}

// migrationTimeout bounds one migrate_vm call.
const migrationTimeout = 30 * time.Minute

// longClient is a client of server s for calls that last long (migrate_vm).
func (m *Manager) longClient(s store.Server) (*agentclient.Client, error) {
	password, err := m.sealer.Open(s.AgentPassword)
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot read the agent password of server " + s.Name, Cause: err}
	}
	c, err := agentclient.New(agentclient.Config{Address: s.Address, Port: s.Port, Password: password,
		PinSHA256: s.CertSPKISHA256, Timeout: migrationTimeout, Conns: 1, Observe: m.metrics.AgentCallObserver()})
	if err != nil {
		return nil, &Error{Kind: KindInternal, Msg: "cannot build a client for server " + s.Name, Cause: err}
	}
	return c, nil
}

package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/importnet"
)

// addOperations declares the methods of pools, virtual disks, domain
// operations, migration, host statistics, events, power and consoles.
func (a *Agent) addOperations(m map[string]handler) {
	h := a.host
	ok := func(err error) (any, error) {
		if err != nil {
			return nil, err
		}
		return true, nil
	}
	poolReq := func(c *call) agentapi.PoolParams {
		return agentapi.PoolParams{Alias: c.str(0), PoolUUID: c.str(1), VIP: c.str(2), Num: c.int(3),
			Name: c.str(4), Host: c.str(5), Roles: c.str(6)}
	}
	ops := map[string]handler{
		// Repositories.
		agentapi.MethodDeleteRepository: func(c *call) (any, error) {
			return ok(h.DeleteRepository(c.str(0), c.bool(1)))
		},
		agentapi.MethodCreateVirtualDisk: func(c *call) (any, error) {
			return ok(h.CreateVirtualDisk(c.str(0), c.str(1), c.int(2), c.bool(3)))
		},
		agentapi.MethodDeleteVirtualDisk: func(c *call) (any, error) {
			return ok(h.DeleteVirtualDisk(c.str(0), c.str(1)))
		},
		// The download lasts as long as the call: when the caller goes
		// away, c.context() ends and so does the download.
		agentapi.MethodImportVirtualDisk: func(c *call) (any, error) {
			kind, err := importKind(c.strct(3))
			if err != nil {
				return nil, err
			}
			allowed, err := importAllowedNetworks(c.strct(3))
			if err != nil {
				return nil, err
			}
			return ok(h.ImportVirtualDisk(c.context(), c.str(0), c.str(1), c.str(2), kind, allowed))
		},

		// Pools.
		agentapi.MethodCreateServerPool: func(c *call) (any, error) { return ok(h.CreateServerPool(poolReq(c))) },
		agentapi.MethodJoinServerPool:   func(c *call) (any, error) { return ok(h.JoinServerPool(poolReq(c))) },
		agentapi.MethodLeaveServerPool: func(c *call) (any, error) {
			return ok(h.LeaveServerPool(c.str(0)))
		},
		agentapi.MethodDiscoverServerPool: func(*call) (any, error) { return h.DiscoverServerPool(), nil },
		agentapi.MethodSetPoolMemberIPList: func(c *call) (any, error) {
			return ok(h.SetPoolMemberIPList(c.strs(0)))
		},
		agentapi.MethodUpdateServerRoles: func(c *call) (any, error) {
			return ok(h.UpdateServerRoles(c.str(0)))
		},

		// Domains.
		agentapi.MethodConfigureVM: func(c *call) (any, error) {
			return ok(h.ConfigureVM(c.str(0), c.str(1), agentapi.VMParams(c.strct(2))))
		},
		agentapi.MethodRebootVM: func(c *call) (any, error) {
			return ok(h.RebootVM(c.str(0), c.str(1), c.int(2)))
		},
		agentapi.MethodPauseVM: func(c *call) (any, error) {
			return ok(h.PauseVM(c.str(0), c.str(1)))
		},
		agentapi.MethodUnpauseVM: func(c *call) (any, error) {
			return ok(h.UnpauseVM(c.str(0), c.str(1)))
		},
		agentapi.MethodSaveVM: func(c *call) (any, error) {
			return ok(h.SaveVM(c.str(0), c.str(1), c.bool(2)))
		},
		agentapi.MethodRestoreVM: func(c *call) (any, error) {
			return ok(h.RestoreVM(c.str(0), c.str(1), c.bool(2)))
		},
		agentapi.MethodConfigureVMHA: func(c *call) (any, error) {
			return ok(h.ConfigureVMHA(c.str(0), c.str(1), c.bool(2)))
		},
		agentapi.MethodSetupMigrationTarget: func(c *call) (any, error) {
			return h.SetupMigrationTarget(c.str(0), c.str(1), a.callHost(c))
		},
		agentapi.MethodMigrateVM: func(c *call) (any, error) {
			return h.MigrateVM(c.context(), c.str(0), c.str(1), c.str(2), c.bool(3), c.bool(4))
		},
		agentapi.MethodCleanupMigrationTarget: func(c *call) (any, error) {
			return ok(h.CleanupMigrationTarget(c.str(0), c.str(1)))
		},
		agentapi.MethodOpenConsole: func(c *call) (any, error) {
			return a.openConsole(c, c.str(0), c.str(1))
		},

		// Host.
		agentapi.MethodDiscoverNetwork: func(c *call) (any, error) { return h.DiscoverNetwork(c.localHost()), nil },
		agentapi.MethodGetStatistics:   func(*call) (any, error) { return h.GetStatistics() },
		agentapi.MethodGetEvents: func(c *call) (any, error) {
			if len(c.params) < 2 {
				return h.Events(c.int(0)), nil
			}
			if a.cfg.WithoutEventsWait {
				return nil, agentapi.Errorf(agentapi.FaultInvalidArgument, "get_events takes 1 parameters (since int), got 2")
			}
			wait := c.int(1)
			if wait < 0 || wait > agentapi.MaxEventsWaitMS {
				return nil, agentapi.Errorf(agentapi.FaultInvalidArgument,
					"get_events: wait_ms must be from 0 to %d (%d s), got %d", agentapi.MaxEventsWaitMS,
					agentapi.MaxEventsWaitMS/1000, wait)
			}
			return h.WaitEvents(c.context(), c.int(0), time.Duration(wait)*time.Millisecond), nil
		},
		agentapi.MethodGetOperationProgress: func(c *call) (any, error) {
			return h.OperationProgress(c.str(0))
		},
		agentapi.MethodSysReboot: func(c *call) (any, error) {
			return a.powerCall(c, true)
		},
		agentapi.MethodSysShutdown: func(c *call) (any, error) {
			return a.powerCall(c, false)
		},
	}
	for name, op := range ops {
		m[name] = op
	}
}

// importKind reads option.kind of import_virtual_disk. A missing kind is
// passed on as "", which the host refuses naming the kinds it accepts.
func importKind(option map[string]any) (string, error) {
	v, present := option["kind"]
	if !present {
		return "", nil
	}
	kind, isStr := v.(string)
	if !isStr {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: option.kind must be a str (%q, %q, %q or %q), got %s",
			agentapi.MethodImportVirtualDisk, agentapi.ImportKindDisk, agentapi.ImportKindISO, agentapi.ImportKindTemplate, agentapi.ImportKindOVA, describe(v))
	}
	return kind, nil
}

// copyMode reads option.mode of copy_file. A missing mode is passed on as
// "", which the host refuses naming the modes it accepts.
func copyMode(option map[string]any) (string, error) {
	v, present := option[agentapi.CopyOptionMode]
	if !present {
		return "", nil
	}
	mode, isStr := v.(string)
	if !isStr {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: option.%s must be a str (one of %s), got %s",
			agentapi.MethodCopyFile, agentapi.CopyOptionMode, strings.Join(agentapi.CopyModes, ", "), describe(v))
	}
	return mode, nil
}

// importAllowedNetworks reads option.allowed_networks of
// import_virtual_disk (agentapi.ExtImportAllowedNetworks): an array of
// networks in CIDR form, absent for none.
func importAllowedNetworks(option map[string]any) ([]netip.Prefix, error) {
	v, present := option[agentapi.ImportOptionAllowedNetworks]
	if !present {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "%s: option.%s %s", agentapi.MethodImportVirtualDisk,
			agentapi.ImportOptionAllowedNetworks, fmt.Sprintf(format, args...))
	}
	elems, isArray := v.([]any)
	if !isArray {
		return nil, bad("must be an array of str (networks in CIDR form), got %s", describe(v))
	}
	list := make([]string, len(elems))
	for i, e := range elems {
		s, isStr := e.(string)
		if !isStr {
			return nil, bad("element %d must be a str (a network in CIDR form), got %s", i, describe(e))
		}
		list[i] = s
	}
	nets, err := importnet.Parse(list)
	if err != nil {
		return nil, bad("is not valid: %v", err)
	}
	return nets, nil
}

// callHost is the address the caller reached this agent at, where a
// migration target listens; the address Serve listens on when the
// connection does not say.
func (a *Agent) callHost(c *call) string {
	if host := c.localHost(); host != "" {
		return host
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listenHost
}

// apiVersion answers get_api_version: the host's, without
// agentapi.ExtEventsWait when the agent is told to act as one from before
// it (Config.WithoutEventsWait).
func (a *Agent) apiVersion() agentapi.VersionInfo {
	v := a.host.APIVersion()
	if a.cfg.WithoutEventsWait {
		v.Extensions = slices.DeleteFunc(v.Extensions, func(e string) bool { return e == agentapi.ExtEventsWait })
	}
	return v
}

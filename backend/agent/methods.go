package agent

import (
	"xenmanager/backend/agentapi"
)

// methodTable is every method of the protocol this agent serves, each with
// its parameters from agentapi.Signatures. sim_set is only there when the
// agent runs with SimControl: otherwise it is an unknown method, as for a
// real agent.
func (a *Agent) methodTable() map[string]method {
	h := a.host
	ok := func(err error) (any, error) {
		if err != nil {
			return nil, err
		}
		return true, nil
	}
	m := map[string]handler{
		agentapi.MethodGetAPIVersion: func(*call) (any, error) { return a.apiVersion(), nil },
		agentapi.MethodEcho: func(c *call) (any, error) {
			return c.str(0), nil
		},
		agentapi.MethodDiscoverServer: func(c *call) (any, error) {
			return h.DiscoverServer(c.localHost()), nil
		},
		agentapi.MethodDiscoverHardware: func(*call) (any, error) { return h.DiscoverHardware() },
		agentapi.MethodTakeOwnership: func(c *call) (any, error) {
			return ok(h.TakeOwnership(c.str(0), c.str(1)))
		},
		agentapi.MethodReleaseOwnership: func(c *call) (any, error) {
			return ok(h.ReleaseOwnership(c.str(0)))
		},
		agentapi.MethodCreateRepository: func(c *call) (any, error) {
			return ok(h.CreateRepository(c.str(0), c.str(1), c.str(2), c.str(3)))
		},
		agentapi.MethodAddRepository: func(c *call) (any, error) {
			return ok(h.AddRepository(c.str(0), c.str(1)))
		},
		agentapi.MethodDiscoverRepositories: func(c *call) (any, error) {
			return h.DiscoverRepositories(c.strs(0))
		},
		agentapi.MethodCreateVM: func(c *call) (any, error) {
			return ok(h.CreateVM(c.str(0), c.str(1), agentapi.VMParams(c.strct(2))))
		},
		agentapi.MethodGetVMConfig: func(c *call) (any, error) {
			return h.GetVMConfig(c.str(0), c.str(1))
		},
		agentapi.MethodListVMs: func(*call) (any, error) { return h.ListVMs() },
		agentapi.MethodListVM: func(c *call) (any, error) {
			return h.ListVM(c.str(0), c.str(1))
		},
		agentapi.MethodStartVM: func(c *call) (any, error) {
			return ok(h.StartVM(c.str(0), c.str(1)))
		},
		agentapi.MethodStopVM: func(c *call) (any, error) {
			return ok(h.StopVM(c.str(0), c.str(1), c.bool(2)))
		},
		agentapi.MethodDeleteVM: func(c *call) (any, error) {
			return ok(h.DeleteVM(c.str(0), c.str(1)))
		},

		// Templates, copies and disk resizing (agentapi.ExtTemplates).
		agentapi.MethodCreateTemplate: func(c *call) (any, error) {
			return ok(h.CreateTemplate(c.str(0), c.str(1), agentapi.VMParams(c.strct(2)), c.bool(3)))
		},
		agentapi.MethodGetTemplateConfig: func(c *call) (any, error) {
			return h.GetTemplateConfig(c.str(0), c.str(1))
		},
		agentapi.MethodDeleteTemplate: func(c *call) (any, error) {
			return ok(h.DeleteTemplate(c.str(0), c.str(1)))
		},
		agentapi.MethodListTemplates: func(c *call) (any, error) {
			return h.ListTemplates(c.str(0))
		},
		// The copy lasts as long as the call: when the caller goes away,
		// c.context() ends and the copy stops, leaving nothing.
		agentapi.MethodCopyFile: func(c *call) (any, error) {
			mode, err := copyMode(c.strct(2))
			if err != nil {
				return nil, err
			}
			return ok(h.CopyFile(c.context(), c.str(0), c.str(1), mode))
		},
		agentapi.MethodResizeVirtualDisk: func(c *call) (any, error) {
			return ok(h.ResizeVirtualDisk(c.str(0), c.str(1), c.int(2)))
		},

		// High availability (agentapi.ExtHALeases).
		agentapi.MethodHAConfigure: func(c *call) (any, error) {
			return ok(h.HAConfigure(c.str(0), c.str(1), c.str(2), c.strct(3)))
		},
		agentapi.MethodHADisable: func(*call) (any, error) { return ok(h.HADisable()) },
		agentapi.MethodHAStatus:  func(*call) (any, error) { return h.HAStatus(), nil },
		agentapi.MethodHAReadLeases: func(c *call) (any, error) {
			return h.HAReadLeases(c.strs(0))
		},
		agentapi.MethodHAReadVMLeases: func(c *call) (any, error) {
			return h.HAReadVMLeases(c.strs(0))
		},
	}
	a.addOperations(m)
	if a.sim != nil {
		m[agentapi.MethodSimSet] = func(c *call) (any, error) {
			return ok(a.sim.SimSet(c.strct(0)))
		}
	}
	return withSignatures(m)
}

package agent

import (
	"xenmanager/backend/agentapi"
)

// methodTable declares every method of the protocol this agent serves, with
// its parameters. sim_set is only there when the agent runs with SimControl:
// otherwise it is an unknown method, as for a real agent.
func (a *Agent) methodTable() map[string]method {
	h := a.host
	ok := func(err error) (any, error) {
		if err != nil {
			return nil, err
		}
		return true, nil
	}
	repoVM := []param{{"repo_id", kString}, {"vm_id", kString}}
	m := map[string]method{
		agentapi.MethodGetAPIVersion: {nil, func(*call) (any, error) { return h.APIVersion(), nil }},
		agentapi.MethodEcho: {[]param{{"msg", kString}}, func(c *call) (any, error) {
			return c.str(0), nil
		}},
		agentapi.MethodDiscoverServer: {nil, func(c *call) (any, error) {
			return h.DiscoverServer(c.localHost()), nil
		}},
		agentapi.MethodDiscoverHardware: {nil, func(*call) (any, error) { return h.DiscoverHardware(), nil }},
		agentapi.MethodTakeOwnership: {[]param{{"manager_uuid", kString}, {"manager_name", kString}}, func(c *call) (any, error) {
			return ok(h.TakeOwnership(c.str(0), c.str(1)))
		}},
		agentapi.MethodReleaseOwnership: {[]param{{"manager_uuid", kString}}, func(c *call) (any, error) {
			return ok(h.ReleaseOwnership(c.str(0)))
		}},
		agentapi.MethodCreateRepository: {[]param{{"fs_location", kString}, {"mount_point", kString}, {"repo_uuid", kString}, {"repo_alias", kString}},
			func(c *call) (any, error) {
				return ok(h.CreateRepository(c.str(0), c.str(1), c.str(2), c.str(3)))
			}},
		agentapi.MethodAddRepository: {[]param{{"fs_location", kString}, {"mount_point", kString}}, func(c *call) (any, error) {
			return ok(h.AddRepository(c.str(0), c.str(1)))
		}},
		agentapi.MethodDiscoverRepositories: {[]param{{"ids", kStrings}}, func(c *call) (any, error) {
			return h.DiscoverRepositories(c.strs(0))
		}},
		agentapi.MethodCreateVM: {append(repoVM, param{"params", kStruct}), func(c *call) (any, error) {
			return ok(h.CreateVM(c.str(0), c.str(1), agentapi.VMParams(c.strct(2))))
		}},
		agentapi.MethodGetVMConfig: {repoVM, func(c *call) (any, error) {
			return h.GetVMConfig(c.str(0), c.str(1))
		}},
		agentapi.MethodListVMs: {nil, func(*call) (any, error) { return h.ListVMs(), nil }},
		agentapi.MethodListVM: {repoVM, func(c *call) (any, error) {
			return h.ListVM(c.str(0), c.str(1))
		}},
		agentapi.MethodStartVM: {repoVM, func(c *call) (any, error) {
			return ok(h.StartVM(c.str(0), c.str(1)))
		}},
		agentapi.MethodStopVM: {append(repoVM, param{"force", kBool}), func(c *call) (any, error) {
			return ok(h.StopVM(c.str(0), c.str(1), c.bool(2)))
		}},
		agentapi.MethodDeleteVM: {repoVM, func(c *call) (any, error) {
			return ok(h.DeleteVM(c.str(0), c.str(1)))
		}},
	}
	a.addOperations(m)
	if a.sim != nil {
		m[agentapi.MethodSimSet] = method{[]param{{"params", kStruct}}, func(c *call) (any, error) {
			return ok(a.sim.SimSet(c.strct(0)))
		}}
	}
	return m
}

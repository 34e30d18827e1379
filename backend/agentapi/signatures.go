package agentapi

import (
	"fmt"
	"strings"
)

// ParamType is the XML-RPC type a method expects of one parameter.
type ParamType int

// The parameter types of the protocol.
const (
	TypeString  ParamType = iota // <string>
	TypeInt                      // <int>/<i8>, or a decimal string
	TypeBool                     // <boolean>
	TypeStruct                   // <struct>
	TypeStrings                  // <array> of <string>
)

// String names the type as fault messages do.
func (t ParamType) String() string {
	switch t &^ Optional {
	case TypeString:
		return "str"
	case TypeInt:
		return "int"
	case TypeBool:
		return "bool"
	case TypeStruct:
		return "struct"
	case TypeStrings:
		return "array of str"
	}
	return fmt.Sprintf("ParamType(%d)", int(t))
}

// Optional, or'ed into a parameter's type, marks a trailing parameter a
// call may leave out [ext]: only the last parameters of a signature may be
// optional, and the extension that adds one says what leaving it out
// means, so that a call of the Oracle VM Agent API's shape keeps its
// meaning.
const Optional ParamType = 1 << 8

// Param is one parameter of a method, by its name in the protocol.
type Param struct {
	Name string
	Type ParamType
}

// optional reports whether p may be left out of a call.
func (p Param) optional() bool { return p.Type&Optional != 0 }

// Signature is a method's parameters in wire order.
type Signature []Param

// String lists the parameters as "repo_id str, vm_id str", an optional
// one as "[wait_ms int]".
func (s Signature) String() string {
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = p.Name + " " + p.Type.String()
		if p.optional() {
			parts[i] = "[" + parts[i] + "]"
		}
	}
	return strings.Join(parts, ", ")
}

// Required is how many parameters a call must give: those before the
// first optional one.
func (s Signature) Required() int {
	for i, p := range s {
		if p.optional() {
			return i
		}
	}
	return len(s)
}

// Parameters shared by many methods.
var (
	repoVM   = Signature{{"repo_id", TypeString}, {"vm_id", TypeString}}
	poolArgs = Signature{{"alias", TypeString}, {"pool_uuid", TypeString}, {"vip", TypeString}, {"num", TypeInt},
		{"name", TypeString}, {"host", TypeString}, {"roles", TypeString}}
)

// withRepoVM is repo_id, vm_id and then more.
func withRepoVM(more ...Param) Signature { return append(append(Signature{}, repoVM...), more...) }

// Signatures declares every method of the protocol with its parameters, in
// wire order: the agent checks each call against it before running the
// method, and the manager's client checks its own arguments against it
// before sending, so that neither side can drift from the other. A method
// without parameters has an empty signature.
var Signatures = map[string]Signature{
	// Server.
	MethodGetAPIVersion:    {},
	MethodEcho:             {{"msg", TypeString}},
	MethodDiscoverServer:   {},
	MethodDiscoverHardware: {},
	MethodTakeOwnership:    {{"manager_uuid", TypeString}, {"manager_name", TypeString}},
	MethodReleaseOwnership: {{"manager_uuid", TypeString}},
	MethodDiscoverNetwork:  {},
	MethodGetStatistics:    {},
	MethodGetEvents:        {{"since", TypeInt}, {"wait_ms", TypeInt | Optional}}, // wait_ms: [ext: events_wait]
	MethodSysReboot:        {},
	MethodSysShutdown:      {},
	MethodGetOperationProgress: {
		{"key", TypeString}},

	// Repositories and virtual disks.
	MethodCreateRepository: {{"fs_location", TypeString}, {"mount_point", TypeString},
		{"repo_uuid", TypeString}, {"repo_alias", TypeString}},
	MethodAddRepository:        {{"fs_location", TypeString}, {"mount_point", TypeString}},
	MethodDiscoverRepositories: {{"ids", TypeStrings}},
	MethodDeleteRepository:     {{"repo_uuid", TypeString}, {"erase", TypeBool}},
	MethodCreateVirtualDisk: {{"repo_uuid", TypeString}, {"disk_id", TypeString}, {"size_mib", TypeInt},
		{"sparse", TypeBool}},
	MethodDeleteVirtualDisk: {{"repo_uuid", TypeString}, {"disk_id", TypeString}},
	MethodImportVirtualDisk: {{"url", TypeString}, {"id", TypeString}, {"repo_uuid", TypeString},
		{"option", TypeStruct}},

	// Pools.
	MethodCreateServerPool:    poolArgs,
	MethodJoinServerPool:      poolArgs,
	MethodLeaveServerPool:     {{"pool_uuid", TypeString}},
	MethodDiscoverServerPool:  {},
	MethodSetPoolMemberIPList: {{"ips", TypeStrings}},
	MethodUpdateServerRoles:   {{"roles", TypeString}},

	// Domains.
	MethodCreateVM:      withRepoVM(Param{"params", TypeStruct}),
	MethodGetVMConfig:   repoVM,
	MethodListVMs:       {},
	MethodListVM:        repoVM,
	MethodStartVM:       repoVM,
	MethodStopVM:        withRepoVM(Param{"force", TypeBool}),
	MethodDeleteVM:      repoVM,
	MethodConfigureVM:   withRepoVM(Param{"params", TypeStruct}),
	MethodRebootVM:      withRepoVM(Param{"wait", TypeInt}),
	MethodPauseVM:       repoVM,
	MethodUnpauseVM:     repoVM,
	MethodSaveVM:        withRepoVM(Param{"checkpoint", TypeBool}),
	MethodRestoreVM:     withRepoVM(Param{"paused", TypeBool}),
	MethodConfigureVMHA: withRepoVM(Param{"enable_ha", TypeBool}),
	MethodOpenConsole:   repoVM,

	// Live migration.
	MethodSetupMigrationTarget: repoVM,
	MethodMigrateVM: withRepoVM(Param{"dest", TypeString}, Param{"live", TypeBool},
		Param{"ssl", TypeBool}),
	MethodCleanupMigrationTarget: repoVM,

	// High availability [ext: ha_leases].
	MethodHAConfigure: {{"pool_uuid", TypeString}, {"repo_uuid", TypeString}, {"server_id", TypeString},
		{"params", TypeStruct}},
	MethodHADisable:      {},
	MethodHAStatus:       {},
	MethodHAReadLeases:   {{"server_ids", TypeStrings}},
	MethodHAReadVMLeases: {{"vm_uuids", TypeStrings}},

	// Templates, copies and disk resizing [ext: templates].
	MethodCreateTemplate: {{"repo_id", TypeString}, {"template_id", TypeString}, {"params", TypeStruct},
		{"replace", TypeBool}},
	MethodGetTemplateConfig: {{"repo_id", TypeString}, {"template_id", TypeString}},
	MethodDeleteTemplate:    {{"repo_id", TypeString}, {"template_id", TypeString}},
	MethodListTemplates:     {{"repo_id", TypeString}},
	MethodCopyFile:          {{"src", TypeString}, {"dst", TypeString}, {"option", TypeStruct}},
	MethodResizeVirtualDisk: {{"repo_id", TypeString}, {"disk_id", TypeString}, {"size_mib", TypeInt}},

	// Fault injection of the simulated host (agents started for tests).
	MethodSimSet: {{"params", TypeStruct}},
}

// Accepts reports whether v, a decoded XML-RPC value or a Go value about
// to be encoded as one, has type t.
func (t ParamType) Accepts(v any) bool {
	switch t &^ Optional {
	case TypeString:
		_, ok := v.(string)
		return ok
	case TypeInt:
		_, err := ToInt(v)
		return err == nil
	case TypeBool:
		_, ok := v.(bool)
		return ok
	case TypeStruct:
		_, ok := v.(map[string]any)
		return ok
	case TypeStrings:
		switch items := v.(type) {
		case []string:
			return true
		case []any:
			for _, item := range items {
				if _, ok := item.(string); !ok {
					return false
				}
			}
			return true
		}
	}
	return false
}

// Check reports the first way args do not fit the signature: a wrong
// count (every parameter but the trailing optional ones), or the index of
// a parameter of the wrong type (bad >= 0). It returns -1, nil when they
// fit.
func (s Signature) Check(args []any) (bad int, err error) {
	if req := s.Required(); len(args) < req || len(args) > len(s) {
		if req == len(s) {
			return -1, fmt.Errorf("takes %d parameters (%s), got %d", len(s), s, len(args))
		}
		return -1, fmt.Errorf("takes %d to %d parameters (%s), got %d", req, len(s), s, len(args))
	}
	for i, p := range s[:len(args)] {
		if !p.Type.Accepts(args[i]) {
			return i, fmt.Errorf("parameter %d (%s) must be a %s", i+1, p.Name, p.Type)
		}
	}
	return -1, nil
}

package agentapi

// Method names of the protocol's pools, disks, domain operations, host
// statistics and events, as the Oracle VM Agent 3.x API spells them.
const (
	MethodDeleteRepository     = "delete_repository"
	MethodCreateVirtualDisk    = "create_virtual_disk"
	MethodDeleteVirtualDisk    = "delete_virtual_disk"
	MethodImportVirtualDisk    = "import_virtual_disk"
	MethodCreateServerPool     = "create_server_pool"
	MethodJoinServerPool       = "join_server_pool"
	MethodLeaveServerPool      = "leave_server_pool"
	MethodDiscoverServerPool   = "discover_server_pool"
	MethodSetPoolMemberIPList  = "set_pool_member_ip_list"
	MethodUpdateServerRoles    = "update_server_roles"
	MethodConfigureVM          = "configure_vm"
	MethodRebootVM             = "reboot_vm"
	MethodPauseVM              = "pause_vm"
	MethodUnpauseVM            = "unpause_vm"
	MethodSaveVM               = "save_vm"
	MethodRestoreVM            = "restore_vm"
	MethodConfigureVMHA        = "configure_vm_ha"
	MethodDiscoverNetwork      = "discover_network"
	MethodGetStatistics        = "get_statistics"
	MethodGetEvents            = "get_events"
	MethodSysReboot            = "sys_reboot"
	MethodSysShutdown          = "sys_shutdown"
	MethodGetOperationProgress = "get_operation_progress"
	MethodOpenConsole          = "open_console"
)

// Kinds of import_virtual_disk, its option.kind: what the download is and
// where it goes in the repository.
const (
	ImportKindDisk     = "disk"     // a disk image: VirtualDisks/<id>.img
	ImportKindISO      = "iso"      // an ISO 9660 or UDF image: ISOs/<id>.iso
	ImportKindTemplate = "template" // a tar archive of vm.cfg and its disk images: Templates/<id>/
)

// Members of import_virtual_disk's option struct.
const (
	// ImportOptionKind is one of the ImportKind constants.
	ImportOptionKind = "kind"
	// ImportOptionAllowedNetworks [ext] is an array of str, networks in
	// CIDR form whose loopback, link-local, private, shared and own
	// addresses the download may reach (importnet). Sent only to an agent
	// whose get_api_version lists ExtImportAllowedNetworks: another agent
	// would ignore it.
	ImportOptionAllowedNetworks = "allowed_networks"
)

// ImportOption is import_virtual_disk's option.
type ImportOption struct {
	Kind            string
	AllowedNetworks []string // CIDR networks; see ImportOptionAllowedNetworks
}

// Struct is the option as it travels: allowed_networks only when it holds
// a network, so that the call is the Oracle VM Agent API's otherwise.
func (o ImportOption) Struct() map[string]any {
	m := map[string]any{ImportOptionKind: o.Kind}
	if len(o.AllowedNetworks) > 0 {
		m[ImportOptionAllowedNetworks] = o.AllowedNetworks
	}
	return m
}

// Server roles of discover_server and update_server_roles. RoleMaster is
// reported, never set: it follows from being the master of a pool.
const (
	RoleXen     = "xen"
	RoleUtility = "utility"
	RoleMaster  = "master"
)

// PoolInfo is the result of discover_server_pool. A server in no pool
// answers the zero value with Members an empty (not absent) array.
type PoolInfo struct {
	PoolUUID string   `xmlrpc:"pool_uuid"`
	Alias    string   `xmlrpc:"alias"`
	Master   string   `xmlrpc:"master"`
	Members  []string `xmlrpc:"members"`
}

// Bridge is one element of discover_network.
type Bridge struct {
	Name    string `xmlrpc:"name"`
	Device  string `xmlrpc:"device"`
	MAC     string `xmlrpc:"mac"`
	Address string `xmlrpc:"address"`
	MTU     int64  `xmlrpc:"mtu"`
}

// Statistics is the result of get_statistics.
type Statistics struct {
	Time          int64     `xmlrpc:"time"`
	CPUPercent    float64   `xmlrpc:"cpu_percent"`
	MemoryFreeMiB int64     `xmlrpc:"memory_free_mib"`
	VMs           []VMStats `xmlrpc:"vms"`
}

// VMStats is one domain's element of Statistics.VMs.
type VMStats struct {
	UUID           string     `xmlrpc:"uuid"`
	CPUPercent     float64    `xmlrpc:"cpu_percent"`
	MemoryMiB      int64      `xmlrpc:"memory_mib"`
	NetRxBytes     int64      `xmlrpc:"net_rx_bytes"`
	NetTxBytes     int64      `xmlrpc:"net_tx_bytes"`
	DiskReadBytes  int64      `xmlrpc:"disk_read_bytes"`
	DiskWriteBytes int64      `xmlrpc:"disk_write_bytes"`
	Guest          GuestStats `xmlrpc:"guest"`
}

// GuestStats is what the in-guest agent reports about a domain.
type GuestStats struct {
	UptimeS      int64   `xmlrpc:"uptime_s"`
	Load1        float64 `xmlrpc:"load1"`
	Processes    int64   `xmlrpc:"processes"`
	MemUsedMiB   int64   `xmlrpc:"mem_used_mib"`
	DiskUsedMiB  int64   `xmlrpc:"disk_used_mib"`
	DiskTotalMiB int64   `xmlrpc:"disk_total_mib"`
	IP           string  `xmlrpc:"ip"`
}

// ExtEventsWait [ext]: get_events takes an optional second parameter,
// wait_ms, from 0 to MaxEventsWaitMS: the agent answers at once when it
// holds events after since (or since is not of its numbering), and
// otherwise when the first event comes or the wait ends, whichever is
// first, with what it holds then (none, at the wait's end). Without it,
// or with wait_ms 0, get_events answers at once as the Oracle VM Agent
// API's does. A manager holds such a call per agent so that a crash is
// seen when it happens rather than at the next heartbeat; with an agent
// that does not list it, it asks at every heartbeat.
const ExtEventsWait = "events_wait"

// MaxEventsWaitMS bounds get_events' wait_ms (ExtEventsWait): 30 s, under
// the agent's idle and read timeouts and the manager's call timeout, so
// that a held call never outlives them. A larger wait is InvalidArgument.
const MaxEventsWaitMS = 30_000

// Events is the result of get_events: pass Next as since on the next call.
// Instance [ext] names the agent process that numbered the events, new at
// each start of the agent, so that a reader sees a restart (its numbers
// start again, and the domains of the simulated host are lost) even when
// Next has not gone backwards; absent from agents that do not say.
type Events struct {
	Next     int64   `xmlrpc:"next"`
	Events   []Event `xmlrpc:"events"`
	Instance string  `xmlrpc:"instance,omitempty"`
}

// Event is a domain state change not caused by a call.
type Event struct {
	Seq    int64  `xmlrpc:"seq"`
	Time   int64  `xmlrpc:"time"`
	Kind   string `xmlrpc:"kind"`
	VMUUID string `xmlrpc:"vm_uuid"`
	RepoID string `xmlrpc:"repo_id"`
	State  string `xmlrpc:"state"`
	Detail string `xmlrpc:"detail"`
}

// Event kinds.
const (
	EventVMCrashed  = "vm_crashed"  // the guest crashed; State is "crashed"
	EventVMShutdown = "vm_shutdown" // the guest powered itself off; the domain is gone, State is "shutdown"
)

// Progress is the result of get_operation_progress.
type Progress struct {
	Key   string `xmlrpc:"key"`
	Phase string `xmlrpc:"phase"`
	Done  int64  `xmlrpc:"done"`
	Total int64  `xmlrpc:"total"`
	State string `xmlrpc:"state"`
}

// Progress states.
const (
	ProgressRunning = "running"
	ProgressDone    = "done"
	ProgressFailed  = "failed"
)

// Progress key prefixes: the key of an operation is the prefix and its
// object, e.g. "save:vm1". ProgressDisk ("disk:<disk_id>", a non-sparse
// create_virtual_disk) is this agent's addition to the protocol's list.
const (
	ProgressCopy    = "copy:"
	ProgressImport  = "import:"
	ProgressMigrate = "migrate:"
	ProgressSave    = "save:"
	ProgressDisk    = "disk:"
)

// Console is the result of open_console: connect to Address (host:port) over
// plain TCP, send Token and a newline, then the serial console's bytes flow
// both ways.
type Console struct {
	Address string `xmlrpc:"address"`
	Token   string `xmlrpc:"token"`
}

// Method names of live migration.
const (
	MethodSetupMigrationTarget   = "setup_migration_target"
	MethodMigrateVM              = "migrate_vm"
	MethodCleanupMigrationTarget = "cleanup_migration_target"
)

// MigrationResult is the result of migrate_vm. Rounds counts every round
// sent, the final stop-and-copy round included (1 for a non-live
// migration); BytesSent is what crossed the migration connection (it may
// exceed 2^31, so it travels as <i8>); DowntimeMS is how long the domain
// was paused, from the source's pause to the destination's confirmation
// that it runs there; Converged is false when pre-copy hit its limits (30
// rounds, or three times the memory sent) and stopped the domain anyway;
// MemorySHA256 (hex) is the checksum of the memory image that both ends
// computed and found equal.
type MigrationResult struct {
	Rounds       int64  `xmlrpc:"rounds"`
	BytesSent    int64  `xmlrpc:"bytes_sent"`
	DurationMS   int64  `xmlrpc:"duration_ms"`
	DowntimeMS   int64  `xmlrpc:"downtime_ms"`
	Converged    bool   `xmlrpc:"converged"`
	MemorySHA256 string `xmlrpc:"memory_sha256"`
}

// PoolParams are the parameters of create_server_pool and
// join_server_pool, in wire order (Args). Name and Host are the called
// server's name and address as the pool knows them; Roles is "xen,utility"
// or a part of it ("" keeps the server's current roles).
type PoolParams struct {
	Alias    string
	PoolUUID string
	VIP      string
	Num      int64
	Name     string
	Host     string
	Roles    string
}

// Args are the call's parameters in the protocol's order.
func (p PoolParams) Args() []any {
	return []any{p.Alias, p.PoolUUID, p.VIP, p.Num, p.Name, p.Host, p.Roles}
}

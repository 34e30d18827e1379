package agentclient

import (
	"context"
	"time"

	"xenmanager/backend/agentapi"
)

// The typed methods below are thin: one per protocol method, so that callers
// never spell a method name or decode a result themselves.

// GetAPIVersion calls get_api_version.
func (c *Client) GetAPIVersion(ctx context.Context) (agentapi.VersionInfo, error) {
	var v agentapi.VersionInfo
	err := c.Call(ctx, agentapi.MethodGetAPIVersion, &v)
	return v, err
}

// Echo calls echo; a cheap liveness probe.
func (c *Client) Echo(ctx context.Context, msg string) (string, error) {
	var s string
	err := c.Call(ctx, agentapi.MethodEcho, &s, msg)
	return s, err
}

// DiscoverServer calls discover_server.
func (c *Client) DiscoverServer(ctx context.Context) (agentapi.ServerInfo, error) {
	var v agentapi.ServerInfo
	err := c.Call(ctx, agentapi.MethodDiscoverServer, &v)
	return v, err
}

// DiscoverHardware calls discover_hardware.
func (c *Client) DiscoverHardware(ctx context.Context) (agentapi.Hardware, error) {
	var v agentapi.Hardware
	err := c.Call(ctx, agentapi.MethodDiscoverHardware, &v)
	return v, err
}

// TakeOwnership calls take_ownership.
func (c *Client) TakeOwnership(ctx context.Context, managerUUID, managerName string) error {
	return c.Call(ctx, agentapi.MethodTakeOwnership, nil, managerUUID, managerName)
}

// ReleaseOwnership calls release_ownership.
func (c *Client) ReleaseOwnership(ctx context.Context, managerUUID string) error {
	return c.Call(ctx, agentapi.MethodReleaseOwnership, nil, managerUUID)
}

// CreateRepository calls create_repository.
func (c *Client) CreateRepository(ctx context.Context, fsLocation, mountPoint, repoUUID, alias string) error {
	return c.Call(ctx, agentapi.MethodCreateRepository, nil, fsLocation, mountPoint, repoUUID, alias)
}

// AddRepository calls add_repository.
func (c *Client) AddRepository(ctx context.Context, fsLocation, mountPoint string) error {
	return c.Call(ctx, agentapi.MethodAddRepository, nil, fsLocation, mountPoint)
}

// DiscoverRepositories calls discover_repositories; no ids means all.
func (c *Client) DiscoverRepositories(ctx context.Context, ids ...string) ([]agentapi.Repository, error) {
	var v []agentapi.Repository
	if ids == nil {
		ids = []string{}
	}
	err := c.Call(ctx, agentapi.MethodDiscoverRepositories, &v, ids)
	return v, err
}

// CreateVM calls create_vm.
func (c *Client) CreateVM(ctx context.Context, repoID, vmID string, params agentapi.VMParams) error {
	return c.Call(ctx, agentapi.MethodCreateVM, nil, repoID, vmID, map[string]any(params))
}

// GetVMConfig calls get_vm_config.
func (c *Client) GetVMConfig(ctx context.Context, repoID, vmID string) (agentapi.VMParams, error) {
	var v map[string]any
	err := c.Call(ctx, agentapi.MethodGetVMConfig, &v, repoID, vmID)
	return agentapi.VMParams(v), err
}

// ListVMs calls list_vms (in xmlrpcwire's codec: every server's at each
// reconciliation).
func (c *Client) ListVMs(ctx context.Context) ([]agentapi.Domain, error) {
	var v []agentapi.Domain
	err := c.Call(ctx, agentapi.MethodListVMs, &v)
	return v, err
}

// ListVM calls list_vm.
func (c *Client) ListVM(ctx context.Context, repoID, vmID string) (agentapi.Domain, error) {
	var v agentapi.Domain
	err := c.Call(ctx, agentapi.MethodListVM, &v, repoID, vmID)
	return v, err
}

// StartVM calls start_vm.
func (c *Client) StartVM(ctx context.Context, repoID, vmID string) error {
	return c.Call(ctx, agentapi.MethodStartVM, nil, repoID, vmID)
}

// StopVM calls stop_vm; force destroys instead of shutting down.
func (c *Client) StopVM(ctx context.Context, repoID, vmID string, force bool) error {
	return c.Call(ctx, agentapi.MethodStopVM, nil, repoID, vmID, force)
}

// DeleteVM calls delete_vm.
func (c *Client) DeleteVM(ctx context.Context, repoID, vmID string) error {
	return c.Call(ctx, agentapi.MethodDeleteVM, nil, repoID, vmID)
}

// DeleteRepository calls delete_repository; erase also removes the
// repository's marker and empty layout directories.
func (c *Client) DeleteRepository(ctx context.Context, repoUUID string, erase bool) error {
	return c.Call(ctx, agentapi.MethodDeleteRepository, nil, repoUUID, erase)
}

// CreateVirtualDisk calls create_virtual_disk.
func (c *Client) CreateVirtualDisk(ctx context.Context, repoUUID, diskID string, sizeMiB int64, sparse bool) error {
	return c.Call(ctx, agentapi.MethodCreateVirtualDisk, nil, repoUUID, diskID, sizeMiB, sparse)
}

// DeleteVirtualDisk calls delete_virtual_disk.
func (c *Client) DeleteVirtualDisk(ctx context.Context, repoUUID, diskID string) error {
	return c.Call(ctx, agentapi.MethodDeleteVirtualDisk, nil, repoUUID, diskID)
}

// ImportVirtualDisk calls import_virtual_disk: the agent downloads url
// (http or https) into the repository as id, opt.Kind being one of
// agentapi.ImportKindDisk, ImportKindISO and ImportKindTemplate; progress is
// under agentapi.ProgressImport + id. opt.AllowedNetworks is for an agent
// that lists agentapi.ExtImportAllowedNetworks (GetAPIVersion). The call
// lasts as long as the download, so the client's Timeout does not apply to
// it: only ctx bounds it, and ending ctx drops the connection, which stops
// the download on the agent.
func (c *Client) ImportVirtualDisk(ctx context.Context, url, id, repoUUID string, opt agentapi.ImportOption) error {
	return c.callUntilDone(ctx, agentapi.MethodImportVirtualDisk, nil, url, id, repoUUID, opt.Struct())
}

// CreateServerPool calls create_server_pool; the server becomes the master.
func (c *Client) CreateServerPool(ctx context.Context, p agentapi.PoolParams) error {
	return c.Call(ctx, agentapi.MethodCreateServerPool, nil, p.Args()...)
}

// JoinServerPool calls join_server_pool.
func (c *Client) JoinServerPool(ctx context.Context, p agentapi.PoolParams) error {
	return c.Call(ctx, agentapi.MethodJoinServerPool, nil, p.Args()...)
}

// LeaveServerPool calls leave_server_pool.
func (c *Client) LeaveServerPool(ctx context.Context, poolUUID string) error {
	return c.Call(ctx, agentapi.MethodLeaveServerPool, nil, poolUUID)
}

// DiscoverServerPool calls discover_server_pool.
func (c *Client) DiscoverServerPool(ctx context.Context) (agentapi.PoolInfo, error) {
	var v agentapi.PoolInfo
	err := c.Call(ctx, agentapi.MethodDiscoverServerPool, &v)
	return v, err
}

// SetPoolMemberIPList calls set_pool_member_ip_list.
func (c *Client) SetPoolMemberIPList(ctx context.Context, ips []string) error {
	if ips == nil {
		ips = []string{}
	}
	return c.Call(ctx, agentapi.MethodSetPoolMemberIPList, nil, ips)
}

// UpdateServerRoles calls update_server_roles with e.g. "xen,utility".
func (c *Client) UpdateServerRoles(ctx context.Context, roles string) error {
	return c.Call(ctx, agentapi.MethodUpdateServerRoles, nil, roles)
}

// ConfigureVM calls configure_vm: params are merged into the VM's vm.cfg.
func (c *Client) ConfigureVM(ctx context.Context, repoID, vmID string, params agentapi.VMParams) error {
	return c.Call(ctx, agentapi.MethodConfigureVM, nil, repoID, vmID, map[string]any(params))
}

// RebootVM calls reboot_vm; wait is the seconds the guest gets to shut down.
func (c *Client) RebootVM(ctx context.Context, repoID, vmID string, wait int64) error {
	return c.Call(ctx, agentapi.MethodRebootVM, nil, repoID, vmID, wait)
}

// PauseVM calls pause_vm.
func (c *Client) PauseVM(ctx context.Context, repoID, vmID string) error {
	return c.Call(ctx, agentapi.MethodPauseVM, nil, repoID, vmID)
}

// UnpauseVM calls unpause_vm.
func (c *Client) UnpauseVM(ctx context.Context, repoID, vmID string) error {
	return c.Call(ctx, agentapi.MethodUnpauseVM, nil, repoID, vmID)
}

// SaveVM calls save_vm; checkpoint keeps the domain running.
func (c *Client) SaveVM(ctx context.Context, repoID, vmID string, checkpoint bool) error {
	return c.Call(ctx, agentapi.MethodSaveVM, nil, repoID, vmID, checkpoint)
}

// RestoreVM calls restore_vm; paused leaves the restored domain paused.
func (c *Client) RestoreVM(ctx context.Context, repoID, vmID string, paused bool) error {
	return c.Call(ctx, agentapi.MethodRestoreVM, nil, repoID, vmID, paused)
}

// ConfigureVMHA calls configure_vm_ha.
func (c *Client) ConfigureVMHA(ctx context.Context, repoID, vmID string, enable bool) error {
	return c.Call(ctx, agentapi.MethodConfigureVMHA, nil, repoID, vmID, enable)
}

// OpenConsole calls open_console.
func (c *Client) OpenConsole(ctx context.Context, repoID, vmID string) (agentapi.Console, error) {
	var v agentapi.Console
	err := c.Call(ctx, agentapi.MethodOpenConsole, &v, repoID, vmID)
	return v, err
}

// DiscoverNetwork calls discover_network.
func (c *Client) DiscoverNetwork(ctx context.Context) ([]agentapi.Bridge, error) {
	var v []agentapi.Bridge
	err := c.Call(ctx, agentapi.MethodDiscoverNetwork, &v)
	return v, err
}

// GetStatistics calls get_statistics.
func (c *Client) GetStatistics(ctx context.Context) (agentapi.Statistics, error) {
	var v agentapi.Statistics
	err := c.Call(ctx, agentapi.MethodGetStatistics, &v)
	return v, err
}

// GetEvents calls get_events; since is the Next of the previous answer, 0
// at first (in xmlrpcwire's codec: every server's at each heartbeat).
func (c *Client) GetEvents(ctx context.Context, since int64) (agentapi.Events, error) {
	var v agentapi.Events
	err := c.Call(ctx, agentapi.MethodGetEvents, &v, since)
	return v, err
}

// GetEventsWait calls get_events with a wait (agentapi.ExtEventsWait, which
// the caller has seen the agent list): the agent answers when an event
// after since comes, or with none once wait ends. wait is cut to
// agentapi.MaxEventsWaitMS. The call takes the held slot, beside the Conns
// of the other calls, so that none of them waits behind it; it is bounded
// by ctx and by wait plus the client's Timeout, and a caller that wants to
// hear of a silent agent sooner bounds ctx to wait plus a grace.
func (c *Client) GetEventsWait(ctx context.Context, since int64, wait time.Duration) (agentapi.Events, error) {
	wait = min(max(wait, 0), agentapi.MaxEventsWaitMS*time.Millisecond)
	var v agentapi.Events
	err := c.observe(agentapi.MethodGetEvents, func() error {
		return c.call(ctx, held, wait+c.cfg.Timeout, agentapi.MethodGetEvents, &v, []any{since, wait.Milliseconds()})
	})
	return v, err
}

// GetOperationProgress calls get_operation_progress with a key such as
// "save:<vm_id>".
func (c *Client) GetOperationProgress(ctx context.Context, key string) (agentapi.Progress, error) {
	var v agentapi.Progress
	err := c.Call(ctx, agentapi.MethodGetOperationProgress, &v, key)
	return v, err
}

// SysReboot calls sys_reboot: the agent answers, then stops answering until
// the host is back.
func (c *Client) SysReboot(ctx context.Context) error {
	return c.Call(ctx, agentapi.MethodSysReboot, nil)
}

// SysShutdown calls sys_shutdown: the agent answers, then stops answering
// until it is started again.
func (c *Client) SysShutdown(ctx context.Context) error {
	return c.Call(ctx, agentapi.MethodSysShutdown, nil)
}

// SetupMigrationTarget calls setup_migration_target on the destination: it
// reserves the VM's memory there and returns the opaque dest to pass to
// MigrateVM on the source (single use, valid 60 s).
func (c *Client) SetupMigrationTarget(ctx context.Context, repoID, vmID string) (string, error) {
	var dest string
	err := c.Call(ctx, agentapi.MethodSetupMigrationTarget, &dest, repoID, vmID)
	return dest, err
}

// MigrateVM calls migrate_vm on the source: it streams the domain to dest
// and returns when it runs there (or has stayed on the source, with an
// error). The call lasts as long as the migration; the client's Timeout
// must allow for it.
func (c *Client) MigrateVM(ctx context.Context, repoID, vmID, dest string, live, ssl bool) (agentapi.MigrationResult, error) {
	var v agentapi.MigrationResult
	err := c.Call(ctx, agentapi.MethodMigrateVM, &v, repoID, vmID, dest, live, ssl)
	return v, err
}

// CleanupMigrationTarget calls cleanup_migration_target on the destination
// after a failed migration; releasing nothing succeeds.
func (c *Client) CleanupMigrationTarget(ctx context.Context, repoID, vmID string) error {
	return c.Call(ctx, agentapi.MethodCleanupMigrationTarget, nil, repoID, vmID)
}

// callUntilDone is Call for calls that last as long as the work they do:
// the client's Timeout does not apply, only ctx, and ending ctx closes the
// call's connection, which the agent sees (and stops the work). Each call
// has a connection of its own (same TLS pin check, dial and handshake
// timeouts), closed when it ends; it counts against Conns like any call,
// and its answer is read and decoded as any call's (call).
func (c *Client) callUntilDone(ctx context.Context, method string, result any, args ...any) error {
	return c.call(ctx, fresh, 0, method, result, args)
}

// HAConfigure calls ha_configure [ext: agentapi.ExtHALeases, which the
// agent lists in GetAPIVersion]: the server keeps its HA leases for pool
// poolUUID in repository repoUUID, as serverID, with p's timing. The agent
// writes its lease before it answers.
func (c *Client) HAConfigure(ctx context.Context, poolUUID, repoUUID, serverID string, p agentapi.HAParams) error {
	return c.Call(ctx, agentapi.MethodHAConfigure, nil, poolUUID, repoUUID, serverID, p.Struct())
}

// HADisable calls ha_disable: the server stops keeping HA leases, removes
// its own and releases the VM leases it holds.
func (c *Client) HADisable(ctx context.Context) error {
	return c.Call(ctx, agentapi.MethodHADisable, nil)
}

// HAStatus calls ha_status.
func (c *Client) HAStatus(ctx context.Context) (agentapi.HAStatus, error) {
	var v agentapi.HAStatus
	err := c.Call(ctx, agentapi.MethodHAStatus, &v)
	return v, err
}

// HAReadLeases calls ha_read_leases: the server leases of serverIDs in the
// agent's pool, as that agent reads them now (ask a live peer about a
// silent server).
func (c *Client) HAReadLeases(ctx context.Context, serverIDs []string) ([]agentapi.ServerLease, error) {
	var v []agentapi.ServerLease
	if serverIDs == nil {
		serverIDs = []string{}
	}
	err := c.Call(ctx, agentapi.MethodHAReadLeases, &v, serverIDs)
	return v, err
}

// HAReadVMLeases calls ha_read_vm_leases: the leases of vmUUIDs, with
// whether each is live by the agent's clock and fence timeout.
func (c *Client) HAReadVMLeases(ctx context.Context, vmUUIDs []string) ([]agentapi.VMLease, error) {
	var v []agentapi.VMLease
	if vmUUIDs == nil {
		vmUUIDs = []string{}
	}
	err := c.Call(ctx, agentapi.MethodHAReadVMLeases, &v, vmUUIDs)
	return v, err
}

// CreateTemplate calls create_template [ext: agentapi.ExtTemplates, which
// the agent lists in GetAPIVersion]: it writes
// Templates/<templateID>/vm.cfg from params; an existing template is
// InvalidState unless replace.
func (c *Client) CreateTemplate(ctx context.Context, repoID, templateID string, params agentapi.VMParams, replace bool) error {
	return c.Call(ctx, agentapi.MethodCreateTemplate, nil, repoID, templateID, map[string]any(params), replace)
}

// GetTemplateConfig calls get_template_config [ext: agentapi.ExtTemplates].
func (c *Client) GetTemplateConfig(ctx context.Context, repoID, templateID string) (agentapi.VMParams, error) {
	var v map[string]any
	err := c.Call(ctx, agentapi.MethodGetTemplateConfig, &v, repoID, templateID)
	return agentapi.VMParams(v), err
}

// DeleteTemplate calls delete_template [ext: agentapi.ExtTemplates]: it
// removes Templates/<templateID>/; the disks its vm.cfg names stay, for
// DeleteVirtualDisk.
func (c *Client) DeleteTemplate(ctx context.Context, repoID, templateID string) error {
	return c.Call(ctx, agentapi.MethodDeleteTemplate, nil, repoID, templateID)
}

// ListTemplates calls list_templates [ext: agentapi.ExtTemplates]: the ids
// of the repository's templates, sorted.
func (c *Client) ListTemplates(ctx context.Context, repoID string) ([]string, error) {
	var v []string
	err := c.Call(ctx, agentapi.MethodListTemplates, &v, repoID)
	return v, err
}

// CopyFile calls copy_file [ext: agentapi.ExtTemplates]: the agent copies
// src to dst (absolute paths under a repository's mount point, in its
// VirtualDisks/ or a Templates/<id>/), opt.Mode being one of
// agentapi.CopyModes; progress is under agentapi.ProgressCopy + the base
// name of dst. The call lasts as long as the copy, so the client's Timeout
// does not apply to it: only ctx bounds it, and ending ctx drops the
// connection, which stops the copy on the agent and leaves nothing there.
func (c *Client) CopyFile(ctx context.Context, src, dst string, opt agentapi.CopyOption) error {
	return c.callUntilDone(ctx, agentapi.MethodCopyFile, nil, src, dst, opt.Struct())
}

// ResizeVirtualDisk calls resize_virtual_disk [ext: agentapi.ExtTemplates]:
// it grows the disk to sizeMiB; a smaller size is refused.
func (c *Client) ResizeVirtualDisk(ctx context.Context, repoID, diskID string, sizeMiB int64) error {
	return c.Call(ctx, agentapi.MethodResizeVirtualDisk, nil, repoID, diskID, sizeMiB)
}

package agentclient

import (
	"context"

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

// ListVMs calls list_vms.
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

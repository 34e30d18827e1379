package agentclient

// TEMPORARY (lead's branch): replaced by the agent helper's definitions at merge.

import (
	"context"

	"xenmanager/backend/agentapi"
)

func (c *Client) HAConfigure(ctx context.Context, poolUUID, repoUUID, serverID string, p agentapi.HAParams) error {
	return c.Call(ctx, "ha_configure", nil, poolUUID, repoUUID, serverID, p)
}

func (c *Client) HADisable(ctx context.Context) error { return c.Call(ctx, "ha_disable", nil) }

func (c *Client) HAReadLeases(ctx context.Context, ids []string) ([]agentapi.HAServerLease, error) {
	var out []agentapi.HAServerLease
	err := c.Call(ctx, "ha_read_leases", &out, ids)
	return out, err
}

func (c *Client) HAReadVMLeases(ctx context.Context, ids []string) ([]agentapi.HAVMLease, error) {
	var out []agentapi.HAVMLease
	err := c.Call(ctx, "ha_read_vm_leases", &out, ids)
	return out, err
}

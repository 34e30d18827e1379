package agentapi

// TEMPORARY (lead's branch): replaced by the agent helper's definitions at merge.

const ExtHALeases = "ha_leases"

type HAParams struct {
	RenewIntervalMS int64 `xmlrpc:"renew_interval_ms"`
	FenceTimeoutMS  int64 `xmlrpc:"fence_timeout_ms"`
}

type HAServerLease struct {
	ServerID      string `xmlrpc:"server_id"`
	Found         bool   `xmlrpc:"found"`
	Hostname      string `xmlrpc:"hostname"`
	RenewedUnixMS int64  `xmlrpc:"renewed_unix_ms"`
	AgeMS         int64  `xmlrpc:"age_ms"`
	Counter       int64  `xmlrpc:"counter"`
}

type HAVMLease struct {
	VMUUID        string `xmlrpc:"vm_uuid"`
	Found         bool   `xmlrpc:"found"`
	ServerID      string `xmlrpc:"server_id"`
	RenewedUnixMS int64  `xmlrpc:"renewed_unix_ms"`
	AgeMS         int64  `xmlrpc:"age_ms"`
	Live          bool   `xmlrpc:"live"`
}

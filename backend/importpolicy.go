package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"xenmanager/backend/agentapi/importnet"
	"xenmanager/store"
)

// importResolveTimeout bounds the manager's lookup of an import URL's host.
const importResolveTimeout = 10 * time.Second

// allowHint says how an administrator lets imports reach an address that
// importnet refuses unless an allowed network holds it.
const allowHint = "an Administrator allows networks with edit Manager importAllowedNetworks=<network>[,<network>...] (CIDR form)"

// ManagerSettings are the manager's policy settings (show Manager, edit
// Manager).
type ManagerSettings struct {
	// ImportAllowedNetworks are where imports may reach loopback,
	// link-local, private and shared addresses and the servers' and the
	// manager's own (importnet); none by default.
	ImportAllowedNetworks []netip.Prefix
	// EvacuationParallelism is how many VMs entering maintenance mode
	// migrates off a server at once (evacuate); 4 by default.
	EvacuationParallelism int
	// CloneParallelismPerServer and CloneParallelismPerRepository bound the
	// copies of clones that run at once on one server (4 by default) and
	// into or out of one repository (8 by default), whatever clone
	// commands they belong to (copyLimiter).
	CloneParallelismPerServer, CloneParallelismPerRepository int
	// PasswordCacheSeconds is how long a password that passed bcrypt is
	// remembered, so that the same user's logins with it skip bcrypt
	// (credentialCache); 0 remembers none. DefaultPasswordCacheSeconds
	// by default.
	PasswordCacheSeconds int
}

// Bounds of ManagerSettings.EvacuationParallelism and the clone
// parallelisms (the store checks them too).
const (
	MinEvacuationParallelism = 1
	MaxEvacuationParallelism = 64
)

// settings reads the manager's settings.
func (m *Manager) settings(ctx context.Context) (ManagerSettings, error) {
	row, err := m.st.Read().ManagerSettings(ctx)
	if err != nil {
		return ManagerSettings{}, &Error{Kind: KindInternal, Msg: "read the manager's settings", Cause: err}
	}
	nets, err := importnet.ParseList(row.ImportAllowedNetworks)
	if err != nil { // written by EditManager, which checked it: a damaged row
		return ManagerSettings{}, &Error{Kind: KindInternal, Msg: "read the manager's importAllowedNetworks", Cause: err}
	}
	return ManagerSettings{ImportAllowedNetworks: nets, EvacuationParallelism: row.EvacuationParallelism,
		CloneParallelismPerServer: row.CloneParallelismPerServer, CloneParallelismPerRepository: row.CloneParallelismPerRepository,
		PasswordCacheSeconds: row.PasswordCacheSeconds}, nil
}

// EditManagerRequest holds the manager's settings to change; nil fields
// stay.
type EditManagerRequest struct {
	// ImportAllowedNetworks replaces the allowed networks: a
	// comma-separated list of networks in CIDR form or single addresses,
	// "" for none; it is stored in CIDR form.
	ImportAllowedNetworks *string
	// EvacuationParallelism is how many VMs an evacuation migrates at once.
	EvacuationParallelism *int64
	// CloneParallelismPerServer and CloneParallelismPerRepository are
	// ManagerSettings'.
	CloneParallelismPerServer, CloneParallelismPerRepository *int64
	// PasswordCacheSeconds is ManagerSettings': 0 to
	// MaxPasswordCacheSeconds.
	PasswordCacheSeconds *int64
}

// EditManager changes the manager's settings (Administrators): those req
// gives, the others as they are, in one write.
func (m *Manager) EditManager(ctx context.Context, req EditManagerRequest) (ManagerInfo, error) {
	if err := m.authorize(ctx, PermManage); err != nil {
		return ManagerInfo{}, err
	}
	var nets []netip.Prefix
	if req.ImportAllowedNetworks != nil {
		var err error
		if nets, err = importnet.ParseList(*req.ImportAllowedNetworks); err != nil {
			return ManagerInfo{}, errorf(KindInvalidArgument, "importAllowedNetworks: %v", err)
		}
	}
	for _, p := range []struct {
		name  string
		value *int64
	}{{"evacuationParallelism", req.EvacuationParallelism}, {"cloneParallelismPerServer", req.CloneParallelismPerServer},
		{"cloneParallelismPerRepository", req.CloneParallelismPerRepository}} {
		if v := p.value; v != nil && (*v < MinEvacuationParallelism || *v > MaxEvacuationParallelism) {
			return ManagerInfo{}, errorf(KindInvalidArgument, "%s %d is out of range: use %d to %d",
				p.name, *v, MinEvacuationParallelism, MaxEvacuationParallelism)
		}
	}
	if v := req.PasswordCacheSeconds; v != nil && (*v < 0 || *v > MaxPasswordCacheSeconds) {
		return ManagerInfo{}, errorf(KindInvalidArgument, "passwordCacheSeconds %d is out of range: use 0 (remember no password) to %d",
			*v, MaxPasswordCacheSeconds)
	}
	err := m.st.Write(ctx, func(q *store.Queries) error {
		row, err := q.ManagerSettings(ctx)
		if err != nil {
			return err
		}
		if req.ImportAllowedNetworks != nil {
			row.ImportAllowedNetworks = importnet.Format(nets)
		}
		if req.EvacuationParallelism != nil {
			row.EvacuationParallelism = int(*req.EvacuationParallelism)
		}
		if req.CloneParallelismPerServer != nil {
			row.CloneParallelismPerServer = int(*req.CloneParallelismPerServer)
		}
		if req.CloneParallelismPerRepository != nil {
			row.CloneParallelismPerRepository = int(*req.CloneParallelismPerRepository)
		}
		if req.PasswordCacheSeconds != nil {
			row.PasswordCacheSeconds = int(*req.PasswordCacheSeconds)
		}
		return q.UpdateManagerSettings(ctx, row)
	})
	if err != nil {
		return ManagerInfo{}, &Error{Kind: KindInternal, Msg: "record the manager's settings", Cause: err}
	}
	return m.Info(ctx)
}

// checkImportHost refuses an import URL whose host is, or resolves at the
// manager to, an address importnet refuses with the allowed networks:
// where the agent that downloads does not check (one that does not list
// agentapi.ExtImportAllowedNetworks), this is the only check; where it
// does, it refuses at once what the agent would. The manager's own
// addresses and the servers' recorded ones count as own addresses; a host
// that does not resolve here is refused, since where it leads cannot be
// checked.
func (m *Manager) checkImportHost(ctx context.Context, u *url.URL, allowed []netip.Prefix) error {
	shown := u.Redacted()
	host := u.Hostname()
	own, ownNames, err := m.importOwnAddresses(ctx)
	if err != nil {
		return err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, importResolveTimeout)
		defer cancel()
		addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			return errorf(KindInvalidArgument, "url %s is refused: host %s is not known at the manager, which checks where imports lead", shown, host)
		case err != nil:
			return errorf(KindInvalidArgument, "url %s is refused: host %s could not be resolved at the manager, which checks where imports lead; try again", shown, host)
		}
		if ownNames[strings.ToLower(host)] {
			own = append(own, addrs...) // a server's recorded name: its addresses are its own
		}
	}
	policy := importnet.Policy{Allowed: allowed, Own: own}
	for _, a := range addrs {
		var re *importnet.RefusedError
		if !errors.As(policy.Check(a), &re) {
			continue
		}
		where := re.Error()
		if a.String() != host {
			where = fmt.Sprintf("host %s resolves to %s, %s", host, re.Addr, re.Phrase())
		}
		if re.Allowable {
			where += "; " + allowHint
		}
		return errorf(KindInvalidArgument, "url %s is refused: %s", shown, where)
	}
	return nil
}

// importOwnAddresses are the addresses an import may not reach unless
// allowed besides importnet's classes: the manager's interfaces' and the
// servers' recorded addresses; ownNames are the servers' recorded
// addresses that are names (lower case).
func (m *Manager) importOwnAddresses(ctx context.Context) (own []netip.Addr, ownNames map[string]bool, err error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Msg: "list the manager's addresses, which imports may not reach", Cause: err}
	}
	for _, a := range ifaddrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				own = append(own, ip)
			}
		}
	}
	servers, err := m.st.Read().Servers(ctx)
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Msg: "read servers", Cause: err}
	}
	ownNames = map[string]bool{}
	for _, s := range servers {
		if a, err := netip.ParseAddr(s.Address); err == nil {
			own = append(own, a)
		} else {
			ownNames[strings.ToLower(s.Address)] = true
		}
		if s.Hostname != "" {
			ownNames[strings.ToLower(s.Hostname)] = true
		}
	}
	return own, ownNames, nil
}

// withAllowHint adds allowHint to the error of an import the agent refused
// because no allowed network holds where it leads.
func withAllowHint(err *Error) *Error {
	if strings.Contains(err.Msg, importnet.NotAllowedText) {
		err.Msg += "; " + allowHint
	}
	return err
}

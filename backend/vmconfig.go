package backend

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// VMConfigFile returns a VM's vm.cfg as a server of its pool reads it from
// the repository (get_vm_config), written in Xen's syntax, with console
// passwords masked: what getVmCfgFileContent shows.
func (m *Manager) VMConfigFile(ctx context.Context, ref Ref) (string, error) {
	v, err := m.findVM(ctx, ref)
	if err != nil {
		return "", err
	}
	srv, c, err := m.poolServer(ctx, v.PoolID)
	if errors.Is(err, errNoServer) {
		return "", errorf(KindInvalidState, "the pool of Vm %s has no running server to read its vm.cfg through", v.Name)
	}
	if err != nil {
		return "", err
	}
	params, err := c.GetVMConfig(ctx, v.RepoID, v.ID)
	if err != nil {
		return "", agentError("read the vm.cfg of Vm "+v.Name, srv.Name, err)
	}
	maskConsolePasswords(params)
	var b strings.Builder
	if err := vmcfg.Write(&b, params); err != nil {
		return "", errorf(KindAgentFault, "the vm.cfg of Vm %s that server %s returned cannot be written out: %v", v.Name, srv.Name, err)
	}
	return b.String(), nil
}

// passwordField is a password in a device string: vncpasswd=... in a vfb
// entry, up to the next comma.
var passwordField = regexp.MustCompile(`(?i)((?:vnc)?passw(?:or)?d=)[^,]*`)

// maskConsolePasswords replaces, in place, the console passwords of a VM's
// vm.cfg params: keys that name a password, and password fields of its
// device strings (vfb = ['type=vnc,vncpasswd=...']).
func maskConsolePasswords(params agentapi.VMParams) {
	for key, v := range params {
		lower := strings.ToLower(key)
		if strings.Contains(lower, "passwd") || strings.Contains(lower, "password") {
			params[key] = "****"
			continue
		}
		switch v := v.(type) {
		case string:
			params[key] = passwordField.ReplaceAllString(v, "${1}****")
		case []string:
			for i := range v {
				v[i] = passwordField.ReplaceAllString(v[i], "${1}****")
			}
		case []any:
			for i, item := range v {
				if s, ok := item.(string); ok {
					v[i] = passwordField.ReplaceAllString(s, "${1}****")
				}
			}
		}
	}
}

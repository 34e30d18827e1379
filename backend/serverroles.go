package backend

import (
	"fmt"
	"strings"

	"xenmanager/backend/agentapi"
)

// Server roles as the manager records them: a server with RoleXen gets
// VMs (placement and migrate's destServer); one with RoleUtility does the
// pool's repository work (importIso, creating and deleting disks and ISOs,
// refresh of a repository).
const (
	RoleXen     = agentapi.RoleXen
	RoleUtility = agentapi.RoleUtility
)

// parseServerRoles checks a comma-separated role list ("xen,utility",
// "xen", "utility", any case and spacing) and returns it canonical: in the
// order xen, utility, without duplicates.
func parseServerRoles(s string) (string, error) {
	seen := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		switch r = strings.ToLower(strings.TrimSpace(r)); r {
		case "":
		case RoleXen, RoleUtility:
			seen[r] = true
		default:
			return "", errorf(KindInvalidArgument, "roles %q: unknown role %q; use xen and/or utility, comma-separated, e.g. \"xen,utility\"", s, r)
		}
	}
	var out []string
	for _, r := range []string{RoleXen, RoleUtility} {
		if seen[r] {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "", errorf(KindInvalidArgument, "roles %q names no role; use xen and/or utility, e.g. \"xen,utility\"", s)
	}
	return strings.Join(out, ","), nil
}

// hasRole reports whether the recorded roles (comma-separated) include role.
func hasRole(roles, role string) bool {
	for _, r := range strings.Split(roles, ",") {
		if strings.EqualFold(strings.TrimSpace(r), role) {
			return true
		}
	}
	return false
}

// lacksRole says that server name lacks role and how to give it.
func lacksRole(name, roles, role string) string {
	what := "the VM server role"
	if role == RoleUtility {
		what = "the utility role"
	}
	give, _ := parseServerRoles(roles + "," + role)
	return fmt.Sprintf("server %s has not %s (roles: %s); give it with edit Server name=%s roles=%s", name, what, roles, name, give)
}

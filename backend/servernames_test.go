package backend_test

import (
	"testing"

	"xenmanager/backend/managertest"
)

// A discovered server is named after the host name its agent reports when
// that is a valid name, and after its address when it is not: the
// agent's word does not bring in a name the rule refuses. (The agent's
// certificate holds its host name, so only ASCII host names are tried.)
func TestDiscoveredServerNames(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	for _, h := range []struct{ hostname, want string }{
		{"kvm-host.example.com", "kvm-host.example.com"},
		{"ovs1 ", "127.0.0.1"},  // a trailing space
		{"ovs\t1", "127.0.0.1"}, // a control character
		{"a/b", "127.0.0.1"},    // a character names may not hold
		{"-ovs", "127.0.0.1"},   // not starting with a letter or digit
	} {
		if s := discoverAs(t, c, h.hostname, "", ""); s.Name != h.want {
			t.Errorf("the agent of host %q was recorded as Server %q, want %q", h.hostname, s.Name, h.want)
		}
	}
}

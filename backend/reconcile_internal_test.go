package backend

import (
	"errors"
	"testing"
)

// A silent server's error is errServerSilent and unwraps to the agent's
// failure alone, which refresh Server reports (a nil there lost it).
func TestServerSilentUnwrapsToItsCause(t *testing.T) {
	cause := errors.New("agent unreachable")
	err := serverSilent(cause)
	if !errors.Is(err, errServerSilent) || errors.Unwrap(err) != cause || err.Error() != "the server does not list its domains: agent unreachable" {
		t.Fatalf("serverSilent = %v (is silent %v, unwraps to %v)", err, errors.Is(err, errServerSilent), errors.Unwrap(err))
	}
}

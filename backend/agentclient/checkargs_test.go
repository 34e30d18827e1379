package agentclient

import (
	"context"
	"errors"
	"strings"
	"testing"

	"xenmanager/backend/agentapi"
)

// TestCallChecksSignature: a call that does not fit its method's signature
// fails with ErrInvalidCall before anything is sent (the client points at a
// port nothing listens on, so a sent call would fail otherwise).
func TestCallChecksSignature(t *testing.T) {
	c, err := New(Config{Address: "127.0.0.1", Port: 1, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		method string
		args   []any
		want   string
	}{
		{"unknown method", "frobnicate", nil, "frobnicate is not a method of the protocol"},
		{"missing parameter", agentapi.MethodStartVM, []any{"repo"}, "start_vm takes 2 parameters (repo_id str, vm_id str), got 1"},
		{"wrong type", agentapi.MethodStopVM, []any{"repo", "vm", "yes"}, "stop_vm parameter 3 (force) must be a bool"},
		{"ints for strings", agentapi.MethodTakeOwnership, []any{int64(1), "name"}, "parameter 1 (manager_uuid) must be a str"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Call(context.Background(), tt.method, nil, tt.args...)
			if !errors.Is(err, ErrInvalidCall) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Call = %v; want ErrInvalidCall containing %q", err, tt.want)
			}
			err = c.callUntilDone(context.Background(), tt.method, nil, tt.args...)
			if !errors.Is(err, ErrInvalidCall) {
				t.Fatalf("callUntilDone = %v; want ErrInvalidCall", err)
			}
		})
	}
}

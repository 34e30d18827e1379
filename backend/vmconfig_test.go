package backend

import (
	"reflect"
	"testing"

	"xenmanager/backend/agentapi"
)

func TestMaskConsolePasswords(t *testing.T) {
	for _, c := range []struct {
		name     string
		in, want agentapi.VMParams
	}{
		{"vfb list from XML-RPC",
			agentapi.VMParams{"vfb": []any{"type=vnc,vncunused=1,vncpasswd=s3cret,vnclisten=0.0.0.0"}},
			agentapi.VMParams{"vfb": []any{"type=vnc,vncunused=1,vncpasswd=****,vnclisten=0.0.0.0"}}},
		{"password at the end of a string list entry",
			agentapi.VMParams{"vfb": []string{"type=vnc,VNCPASSWD=abc"}},
			agentapi.VMParams{"vfb": []string{"type=vnc,VNCPASSWD=****"}}},
		{"keys that name a password",
			agentapi.VMParams{"OVM_console_password": "x", "vncpasswd": "y", "memory": int64(512)},
			agentapi.VMParams{"OVM_console_password": "****", "vncpasswd": "****", "memory": int64(512)}},
		{"nothing to mask",
			agentapi.VMParams{"name": "web1", "disk": []any{"file:/OVS/x.img,xvda,w"}},
			agentapi.VMParams{"name": "web1", "disk": []any{"file:/OVS/x.img,xvda,w"}}},
	} {
		maskConsolePasswords(c.in)
		if !reflect.DeepEqual(c.in, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.in, c.want)
		}
	}
}

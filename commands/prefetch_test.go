package commands

import "testing"

// mayShow passes over the lines that cannot hold a show command and
// keeps every line that may, in any case and after other commands.
func TestMayShow(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"show Vm name=a", true},
		{"SHOW vm id=1", true},
		{"  Show Vm name=x", true},
		{"start Vm name=a; show Vm name=a", true},
		{"start Vm name=a", false},
		{"sho", false},
		{"", false},
		{"list Vm", false},
	} {
		if got := mayShow(tc.line); got != tc.want {
			t.Errorf("mayShow(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

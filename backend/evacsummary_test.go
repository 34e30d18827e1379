package backend

import (
	"fmt"
	"strings"
	"testing"
)

// An evacuation sums itself up in one line (the edit job's result) and,
// when a VM stayed, fails naming each with why; ten of each at most.
func TestEvacuationSummary(t *testing.T) {
	moved := func(name, to string) EvacuatedVM {
		return EvacuatedVM{VM: NamedRef{"id-" + name, name}, To: NamedRef{"id-" + to, to}}
	}
	stayed := func(name string) EvacuatedVM {
		return EvacuatedVM{VM: NamedRef{"id-" + name, name}, Err: errorf(KindInsufficientResources, "no room for %s", name)}
	}
	many := func(n int, vm func(i int) EvacuatedVM) []EvacuatedVM {
		var out []EvacuatedVM
		for i := range n {
			out = append(out, vm(i))
		}
		return out
	}
	tests := []struct {
		name    string
		moves   []EvacuatedVM
		summary string
		err     string // "" for none
		kind    Kind
	}{
		{"nothing ran there", nil, "no VM ran on ovs1", "", 0},
		{"all moved", []EvacuatedVM{moved("a", "ovs2"), moved("b", "ovs3")}, "2 of 2 VMs left ovs1 (a to ovs2, b to ovs3)", "", 0},
		{"stopped meanwhile", []EvacuatedVM{{VM: NamedRef{"id-a", "a"}}}, "1 of 1 VMs left ovs1 (a stopped meanwhile)", "", 0},
		{"one stayed", []EvacuatedVM{moved("a", "ovs2"), stayed("big")},
			"1 of 2 VMs left ovs1 (a to ovs2); stayed: big",
			"Server ovs1 is in maintenance mode, but 1 of 2 VMs could not be migrated off it: Vm big: no room for big", KindInsufficientResources},
		{"none moved", []EvacuatedVM{stayed("x"), stayed("y")}, "0 of 2 VMs left ovs1; stayed: x, y",
			"Server ovs1 is in maintenance mode, but 2 of 2 VMs could not be migrated off it: Vm x: no room for x; Vm y: no room for y", KindInsufficientResources},
		{"ten of each", append(many(12, func(i int) EvacuatedVM { return moved(fmt.Sprintf("m%02d", i), "ovs2") }),
			many(11, func(i int) EvacuatedVM { return stayed(fmt.Sprintf("s%02d", i)) })...),
			"12 of 23 VMs left ovs1 (m00 to ovs2, m01 to ovs2, m02 to ovs2, m03 to ovs2, m04 to ovs2, m05 to ovs2, m06 to ovs2, m07 to ovs2, m08 to ovs2, m09 to ovs2, and 2 more); stayed: s00, s01, s02, s03, s04, s05, s06, s07, s08, s09, and 1 more",
			"Vm s09: no room for s09; and 1 more (show Job lists their migrate jobs)", KindInsufficientResources},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := Evacuation{Server: NamedRef{"id-ovs1", "ovs1"}, Moves: tc.moves}
			if got := ev.String(); got != tc.summary {
				t.Errorf("String() = %q\nwant       %q", got, tc.summary)
			}
			err := ev.err()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("err() = %v, want none", err)
			case tc.err != "" && (err == nil || !strings.Contains(Message(err), tc.err) || KindOf(err) != tc.kind):
				t.Errorf("err() = %v (kind %v), want %q (kind %v)", err, KindOf(err), tc.err, tc.kind)
			}
		})
	}
}

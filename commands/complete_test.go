package commands

import (
	"strings"
	"testing"
)

func fakeNames(q NameQuery) []string {
	typ, prefix, limit := q.Type, q.Prefix, q.Limit
	inv := map[string][]string{"Vm": {"db1", "web 1", "web2"}, "ServerPool": {"pool1"}, "Repository": {"repo1"}, "Server": {"ovs1", "ovs2"}}
	var out []string
	for _, n := range inv[typ] {
		if strings.HasPrefix(n, prefix) && len(out) < limit {
			out = append(out, n)
		}
	}
	return out
}

func TestComplete(t *testing.T) {
	tests := []struct {
		line      string
		wantStart int
		want      []string // every one must be offered
		not       []string // none of these may be offered
	}{
		{"sta", 0, []string{"start "}, []string{"stop "}},
		{"st", 0, []string{"start ", "stop "}, nil},
		{"", 0, []string{"list ", "show ", "create "}, nil},
		{"start ", 6, []string{"Vm "}, nil},
		{"LIST s", 5, []string{"Server ", "ServerPool "}, []string{"Vm "}},
		{"start Vm ", 9, []string{"name=", "id="}, nil},
		{"start Vm name=w", 14, []string{"web2 ", `"web 1" `}, []string{"db1 "}},
		{"create Vm ", 10, []string{"name=", "repository=", "memory=", "on "}, nil},
		{"create Vm name=a ", 17, []string{"repository="}, []string{"name="}},
		{"create Vm domainType=X", 21, []string{"XEN_HVM ", "XEN_PVM ", "XEN_HVM_PV_DRIVERS "}, nil},
		{"create Vm repository=r", 21, []string{"repo1 "}, nil},
		{"create Vm name=a repository=r on ", 33, []string{"ServerPool "}, nil},
		{"create Vm name=a repository=r on ServerPool name=p", 49, []string{"pool1 "}, nil},
		{"set outputMode=j", 15, []string{"Json "}, nil},
		{"list Vm status=", 15, []string{"Running ", "Stopped "}, nil},
		{"list Vm name=d", 13, []string{"db1 "}, nil},
		{"help sta", 5, []string{"start "}, nil},
		{"list Vm; sh", 9, []string{"show "}, nil},
		{"frob ", 5, nil, []string{"name="}},
		// Actions with multiple= take filters after the type too.
		{"stop Vm ", 8, []string{"name=", "id=", "status=", "server=", "serverPool=", "repository=", "tag=", "multiple="}, nil},
		{"stop Vm se", 8, []string{"server=", "serverPool="}, []string{"name=", "status="}},
		{"stop Vm server=o", 15, []string{"ovs1 ", "ovs2 "}, nil},
		{"stop Vm server=ovs1 ", 20, []string{"name=", "id=", "status=", "multiple="}, []string{"server="}},
		{"stop Vm server=ovs1 name=w", 25, []string{"web2 "}, nil},
		{"stop Vm name=web2 ", 18, []string{"server=", "multiple="}, []string{"name=", "id="}},
		{"migrate Vm ", 11, []string{"name=", "tag=", "destServer="}, []string{"server="}},
		{"show Vm ", 8, []string{"name=", "id="}, []string{"server=", "status="}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			start, got := Default.Complete(tc.line, fakeNames)
			if start != tc.wantStart {
				t.Errorf("start = %d, want %d", start, tc.wantStart)
			}
			offered := map[string]bool{}
			for _, s := range got {
				offered[s.Text] = true
				if s.Description == "" {
					t.Errorf("suggestion %q has no description", s.Text)
				}
			}
			for _, w := range tc.want {
				if !offered[w] {
					t.Errorf("Complete(%q) lacks %q; got %v", tc.line, w, got)
				}
			}
			for _, n := range tc.not {
				if offered[n] {
					t.Errorf("Complete(%q) offers %q", tc.line, n)
				}
			}
		})
	}
}

package libvirt

import (
	"fmt"
	"strings"
	"testing"
)

// TestEndLedger drives the ledger through the orders in which a stop's
// event and the driver's next calls can arrive; each step is a call and
// the answer it must give ("caused:<why>" or "not caused" for stopped).
func TestEndLedger(t *testing.T) {
	tests := []struct {
		name  string
		steps []string // expect:<why>, withdraw, newrun, stopped, reset
		want  []string // the answers of the stopped steps, in order
	}{
		{"a stop the driver caused", []string{"expect:destroyed", "stopped"}, []string{"caused:destroyed"}},
		{"a stop nobody expected", []string{"stopped"}, []string{"not caused"}},
		{"the event arrives after the next run began (save, restore)",
			[]string{"expect:saved", "newrun", "stopped", "stopped"}, []string{"caused:saved", "not caused"}},
		{"two runs' stops, both events late (save, restore, checkpoint)",
			[]string{"expect:saved", "newrun", "expect:saved again", "stopped", "stopped", "stopped"},
			[]string{"caused:saved", "caused:saved again", "not caused"}},
		{"a shutdown that falls back to destroy expects one stop",
			[]string{"expect:shut down", "expect:destroyed", "stopped", "stopped"}, []string{"caused:shut down", "not caused"}},
		{"a failed call withdraws only its own run's stop",
			[]string{"expect:saved", "newrun", "expect:destroyed", "withdraw", "stopped", "stopped"},
			[]string{"caused:saved", "not caused"}},
		{"withdraw after the event came is a no-op",
			[]string{"expect:destroyed", "stopped", "withdraw", "stopped"}, []string{"caused:destroyed", "not caused"}},
		{"a new connection forgets what was pending",
			[]string{"expect:saved", "reset", "stopped"}, []string{"not caused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := endLedger{}
			var got []string
			for _, step := range tt.steps {
				switch verb, arg, _ := strings.Cut(step, ":"); verb {
				case "expect":
					e.expect("d", arg)
				case "withdraw":
					e.withdraw("d")
				case "newrun":
					e.newRun("d")
				case "reset":
					e.reset()
				case "stopped":
					if why, ok := e.stopped("d"); ok {
						got = append(got, "caused:"+why)
					} else {
						got = append(got, "not caused")
					}
				default:
					t.Fatalf("unknown step %q", step)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("stops: %q, want %q", got, tt.want)
			}
			if len(e) != 0 {
				t.Errorf("the ledger keeps %d entries after every stop arrived", len(e))
			}
		})
	}
}

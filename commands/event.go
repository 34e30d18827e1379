package commands

import (
	"context"
	"strings"
)

// eventType is the Event: something that happened without a command
// (failed jobs, agent faults, changes made outside the manager); events are
// listed, never shown one by one.
var eventType = &objectType{
	Name: "Event",
	List: &Spec{Help: "List recent events, newest first.", Attrs: eventAttrs, Run: runGetEvents},
}

func verbGetEvents() *VerbInfo {
	return &VerbInfo{Name: "getEvents", Help: "List recent events.", Specs: []*Spec{{
		Help:  "List recent events (failed jobs, agent faults, changes made outside the manager), newest first.",
		Attrs: eventAttrs,
		Run:   runGetEvents,
	}}}
}

func verbAckEvent() *VerbInfo {
	return &VerbInfo{Name: "ackEvent", Help: "Acknowledge an event.", Specs: []*Spec{{
		Help:  "Mark an event acknowledged; getEvents no longer shows it unless all=Yes.",
		Attrs: []Attr{{Name: "id", Kind: AttrString, Required: true, Help: "the event's id (from getEvents)"}},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if err := x.Backend.AckEvent(ctx, strings.ToLower(x.Str("id"))); err != nil {
				return nil, err
			}
			return &Result{}, nil
		},
	}}}
}

// eventAttrs are the attributes of getEvents and list Event.
var eventAttrs = []Attr{
	{Name: "all", Kind: AttrYesNo, Default: "No", Help: "include acknowledged events"},
	{Name: "limit", Kind: AttrInt, Min: 1, Max: 10000, Default: "100", Help: "how many events at most"},
}

// runGetEvents lists events for getEvents and list Event.
func runGetEvents(ctx context.Context, x *Exec) (*Result, error) {
	events, err := x.Backend.Events(ctx, x.Str("all") != "Yes", int(x.Int("limit")))
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, e := range events {
		res.Rows = append(res.Rows, Row{ID: e.ID, Name: e.Kind, Cols: []Prop{{"severity", e.Severity},
			{"object", strings.TrimSpace(e.ObjectType + " " + e.Name)}, {"description", e.Description},
			{"time", e.CreatedAt.Format(timeLayout)}}})
	}
	return res, nil
}

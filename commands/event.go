package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

// eventType is the Event: something that happened without a command
// (failed jobs, agent faults, changes made outside the manager); events are
// listed, never shown one by one.
var eventType = &objectType{
	Name:       "Event",
	List:       &Spec{Help: "List recent events, newest first.", Attrs: eventAttrs, Run: runGetEvents},
	ListFields: rowFieldsOf(eventRow),
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
	l, err := x.Backend.StreamEvents(ctx, x.Str("all") != "Yes", int(x.Int("limit")))
	if err != nil {
		return nil, err
	}
	return streamedRows(l, nil, eventRow), nil
}

// eventRow is an event of getEvents and list Event: in the machine form,
// the object it is about is its type and a reference.
func eventRow(e backend.Event) Row {
	return Row{ID: e.ID, Name: e.Kind, Fields: []Field{strField("severity", "severity", e.Severity),
		strField("object", "", strings.TrimSpace(e.ObjectType+" "+e.Name)).textOnly(),
		strField("", "objectType", e.ObjectType).machineOnly(), refField("", "object", backend.NamedRef{ID: e.ObjectID, Name: e.Name}).machineOnly(),
		strField("description", "description", e.Description), timeField("time", "time", e.CreatedAt)}}
}

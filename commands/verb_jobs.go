package commands

import (
	"context"
	"strconv"
	"strings"

	"xenmanager/backend"
)

const jobListLimit = 200

func jobProps(j backend.Job) []Prop {
	ended := ""
	if !j.EndedAt.IsZero() {
		ended = j.EndedAt.Format(timeLayout)
	}
	return []Prop{
		{"Id", j.ID},
		{"Name", j.Summary},
		{"Status", j.Status},
		{"Progress (%)", strconv.Itoa(j.Progress)},
		{"Message", j.Message},
		{"User", j.User},
		{"Objects", strings.Join(j.Objects, " ")},
		{"Start Time", j.CreatedAt.Format(timeLayout)},
		{"End Time", ended},
		{"Result", j.Result},
		{"Error", j.Error},
	}
}

// jobID reads the job instance: jobs are named by id.
func jobID(x *Exec) (string, error) {
	if x.Cmd.Instance == nil || !x.Cmd.Instance.ByID {
		return "", failf(CodeMissingInstance, "jobs are named by id: %s Job id=<id> (list Job shows them)", x.Cmd.Spec.Verb)
	}
	return x.Cmd.Instance.Value, nil
}

func runListJobs(ctx context.Context, x *Exec) (*Result, error) {
	jobs, err := x.Backend.Jobs(ctx, jobListLimit)
	if err != nil {
		return nil, err
	}
	res := &Result{Rows: []Row{}}
	for _, j := range jobs {
		if s := x.Str("status"); s != "" && !strings.EqualFold(s, j.Status) {
			continue
		}
		res.Rows = append(res.Rows, Row{ID: j.ID, Name: j.Summary, Cols: []Prop{{"status", j.Status},
			{"progress", strconv.Itoa(j.Progress)}, {"user", j.User}, {"started", j.CreatedAt.Format(timeLayout)}}})
	}
	return res, nil
}

func runShowJob(ctx context.Context, x *Exec) (*Result, error) {
	id, err := jobID(x)
	if err != nil {
		return nil, err
	}
	j, err := x.Backend.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Result{Props: jobProps(j)}, nil
}

func verbAbort() *VerbInfo {
	return &VerbInfo{Name: "abort", Help: "Abort a running job.", Specs: []*Spec{{
		Type: "Job", Instance: true,
		Help: "Stop a running job between agent calls; it ends Aborted and what the agents already did is recorded.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			id, err := jobID(x)
			if err != nil {
				return nil, err
			}
			j, err := x.Backend.AbortJob(ctx, id)
			if err != nil {
				return nil, err
			}
			return &Result{Props: jobProps(j)}, nil
		},
	}}}
}

func verbWait() *VerbInfo {
	return &VerbInfo{Name: "wait", Help: "Wait for a job to end.", Specs: []*Spec{{
		Type: "Job", Instance: true,
		Help: "Wait until the job ends (at most commandTimeout) and show it; fails when the job failed.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			id, err := jobID(x)
			if err != nil {
				return nil, err
			}
			j, err := x.Backend.WaitJob(ctx, id)
			if err != nil {
				return nil, err
			}
			if j.Status != backend.JobSuccess {
				return &Result{Props: jobProps(j)}, failf(CodeJobFailed, "job %s ended %s: %s", j.ID, j.Status, j.Error)
			}
			return &Result{Props: jobProps(j)}, nil
		},
	}}}
}

func eventProps(e backend.Event) []Prop {
	return []Prop{{"Id", e.ID}, {"Severity", e.Severity}, {"Type", e.Kind}, {"Object", strings.TrimSpace(e.ObjectType + " " + e.Name)},
		{"Description", e.Description}, {"Acknowledged", yesNo(e.Acknowledged)}, {"Time", e.CreatedAt.Format(timeLayout)}}
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

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

// jobType is the Job: a change the manager makes, with its progress and
// result; jobs are named by id.
var jobType = &objectType{
	Name: "Job",
	List: &Spec{Help: "List recent jobs, newest first.", Attrs: []Attr{{Name: "status", Kind: AttrEnum,
		Enum: []string{"Running", "Success", "Failure", "Aborted"}, Help: "only jobs in this state"}}, Run: runListJobs},
	Show: func(ctx context.Context, x *Exec) ([]Prop, error) {
		id, err := jobID(x)
		if err != nil {
			return nil, err
		}
		j, err := x.Backend.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		return jobProps(j), nil
	},
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

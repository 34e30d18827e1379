package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

const jobListLimit = 200

func jobFields(j backend.Job) []Field {
	return []Field{
		strField("Id", "id", j.ID),
		strField("Name", "name", j.Summary),
		strField("Status", "status", j.Status),
		intField("Progress (%)", "progress", int64(j.Progress)),
		strField("Message", "message", j.Message),
		strField("User", "user", j.User),
		stringsField("Objects", "objects", j.Objects, " "),
		timeField("Start Time", "startTime", j.CreatedAt),
		optTimeField("End Time", "endTime", j.EndedAt),
		strField("Result", "result", j.Result),
		strField("Error", "error", j.Error),
	}
}

// jobRow is a job in list Job.
func jobRow(j backend.Job) Row {
	return Row{ID: j.ID, Name: j.Summary, Fields: []Field{strField("status", "status", j.Status),
		intField("progress", "progress", int64(j.Progress)), strField("user", "user", j.User), timeField("started", "startTime", j.CreatedAt)}}
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
	ShowFields: fieldsOf(jobFields),
	ListFields: rowFieldsOf(jobRow),
	Show: func(ctx context.Context, x *Exec) ([]Field, error) {
		id, err := jobID(x)
		if err != nil {
			return nil, err
		}
		j, err := x.Backend.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		return jobFields(j), nil
	},
}

func runListJobs(ctx context.Context, x *Exec) (*Result, error) {
	l, err := x.Backend.StreamJobs(ctx, jobListLimit)
	if err != nil {
		return nil, err
	}
	s := x.Str("status")
	return streamedRows(l, func(j backend.Job) bool { return s == "" || strings.EqualFold(s, j.Status) }, jobRow), nil
}

func verbAbort() *VerbInfo {
	return &VerbInfo{Name: "abort", Help: "Abort a running job.", Specs: []*Spec{{
		Type: "Job", Instance: true,
		Help: "Stop a running job between agent calls; it ends Aborted and what the agents already did is recorded. A job past its last abortable point runs to its end, and abort fails (XM_0409E) saying at which step it was and how it ended.",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			id, err := jobID(x)
			if err != nil {
				return nil, err
			}
			j, err := x.Backend.AbortJob(ctx, id)
			if j.ID == "" {
				return nil, err
			}
			return &Result{Fields: jobFields(j)}, err // a job that was not aborted is shown as it ended
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
				return &Result{Fields: jobFields(j)}, failf(CodeJobFailed, "job %s ended %s: %s", j.ID, j.Status, j.Error)
			}
			return &Result{Fields: jobFields(j)}, nil
		},
	}}}
}

package commands

import (
	"context"
	"fmt"
	"sync"

	"xenmanager/backend"
)

// attrMultiple lets an action act on every object its instance matches.
var attrMultiple = Attr{Name: "multiple", Kind: AttrYesNo, Default: "No",
	Help: "act on every object the instance matches (a pattern such as name=web* or a shared name) and the filters select; without it the instance must match exactly one, and filters are refused"}

// multiParallel bounds how many objects of one multi-object action are
// worked on at once. The calls to each server are bounded by the agent
// client (4 in flight per server), so this only needs to be large enough
// to keep every server of a big pool busy.
const multiParallel = 128

// vmAction runs op on the VM the command names or, with multiple=Yes, on
// every VM it selects (its instance and its filters), in parallel. One
// object gives op's own result; several give one row per VM with its
// result, and fail if any VM failed. op acts through the Manager it is
// given: with multiple=Yes, one whose run options keep the VMs found and ask
// for terse results. Filters act only with multiple=Yes: without it they
// are refused, saying how many VMs they select.
func vmAction(ctx context.Context, x *Exec, op vmOp, single func(backend.VM) *Result) (*Result, error) {
	ref, filter, words, filtered := selection(x)
	verb := x.Cmd.Spec.Verb
	if x.Str("multiple") != "Yes" {
		if filtered {
			vms, err := x.Backend.SelectVMs(ctx, ref, filter)
			if err != nil {
				return nil, err
			}
			them := "all of them"
			if len(vms) == 1 {
				them = "it"
			}
			return nil, failf(CodeMissingAttribute, "%s selects %s; filters act only with multiple=Yes: add multiple=Yes to %s %s",
				words, countVMs(len(vms)), verb, them)
		}
		if ref.Name != "" {
			// Say how to act on all of them rather than only "use id=".
			if vms, err := x.Backend.FindVMs(ctx, ref); err == nil && len(vms) > 1 {
				return nil, &backend.Error{Kind: backend.KindAmbiguous, Msg: fmt.Sprintf(
					"%s matches %d Vm objects; add multiple=Yes to %s all of them, or name one with id=", x.Cmd.Instance, len(vms), verb)}
			}
		}
		v, err := op(x.Backend, ctx, ref)
		if err != nil {
			return nil, err
		}
		return single(v), nil
	}
	run := x.Backend.Options()
	run.Found = backend.NewFoundVMs() // each VM is read once here, then again by its job under its lock
	run.Terse = true                  // one line per VM: no full views
	b := x.Backend.With(run)
	// The selection is made once, here: each VM of it is then acted on by
	// id, authorised and checked under its lock as if named alone.
	vms, err := b.SelectVMs(ctx, ref, filter)
	if err != nil {
		return nil, err
	}
	if len(vms) == 0 {
		return nil, failf(CodeNotFound, "no Vm matches %s; nothing was done", words)
	}
	rows := make([]Row, len(vms))
	errs := make([]error, len(vms))
	var wg sync.WaitGroup
	slots := make(chan struct{}, multiParallel)
	for i, v := range vms {
		wg.Add(1)
		slots <- struct{}{} // bound the goroutines, not only the work
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			_, err := op(b, ctx, backend.Ref{ID: v.ID})
			var fields []Field
			if id := backend.JobIDOf(err); id != "" && run.Async {
				fields, err = startedFields(id), nil
			} else {
				fields = outcomeFields(StatusSuccess, err)
			}
			rows[i] = Row{ID: v.ID, Name: v.Name, Fields: fields}
			errs[i] = err
		}()
	}
	wg.Wait()
	failed, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	res := &Result{Rows: rows}
	if failed > 0 {
		return res, &multiError{failed: failed, total: len(vms), first: first}
	}
	return res, nil
}

// countVMs says how many VMs: "no Vm", "1 Vm object", "3 Vm objects".
func countVMs(n int) string {
	switch n {
	case 0:
		return "no Vm"
	case 1:
		return "1 Vm object"
	}
	return fmt.Sprintf("%d Vm objects", n)
}

// outcomeFields are the columns of one object of a multi-object action
// that ended: in the text form, result is success (Success) or the error
// ("<code>: <message>"); in the machine form, result is Success or Failure,
// and error the error object on failure.
func outcomeFields(success string, err error) []Field {
	if err == nil {
		return []Field{strField(resultCol, "", success).textOnly(), strField("", resultCol, StatusSuccess).machineOnly()}
	}
	code, msg := codeFor(err), backend.Message(err)
	return []Field{strField(resultCol, "", fmt.Sprintf("%s: %s", code, msg)).textOnly(),
		strField("", resultCol, StatusFailure).machineOnly(), errorField("error", code, msg)}
}

// startedFields are the columns of one object of a multi-object action in
// Asynchronous mode, whose job goes on: "Job <id>" in the text form, result
// Running and the job's id in the machine form.
func startedFields(jobID string) []Field {
	return []Field{strField(resultCol, "", "Job "+jobID).textOnly(), strField("", resultCol, "Running").machineOnly(),
		strField("", "jobId", jobID).machineOnly()}
}

// multiError is the failure of a multi-object action: how many objects
// failed, and the first failure, whose kind gives the code.
type multiError struct {
	failed, total int
	first         error
}

func (e *multiError) Error() string {
	return fmt.Sprintf("%d of %d objects failed; first: %v", e.failed, e.total, e.first)
}

func (e *multiError) Unwrap() error { return e.first }

func (e *multiError) message() string {
	return fmt.Sprintf("%d of %d objects failed; first: %s", e.failed, e.total, backend.Message(e.first))
}

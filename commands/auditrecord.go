package commands

import (
	"context"
	"strconv"

	"xenmanager/backend"
)

// auditRecordType is the AuditRecord: one command someone ran, who, from
// where and with what result (Administrators); records are listed, never
// shown one by one.
var auditRecordType = &objectType{
	Name:       "AuditRecord",
	List:       &Spec{Help: "List the newest audited commands (Administrators).", Attrs: []Attr{auditLimit}, Run: runListAudit},
	ListFields: rowFieldsOf(auditRow),
}

// auditLimit bounds the records of getAuditLog and list AuditRecord.
var auditLimit = Attr{Name: "limit", Kind: AttrInt, Min: 1, Max: 100000, Default: "100", Help: "how many records at most"}

func runListAudit(ctx context.Context, x *Exec) (*Result, error) {
	l, err := x.Backend.StreamAuditLog(ctx, int(x.Int("limit")))
	if err != nil {
		return nil, err
	}
	return streamedRows(l, nil, auditRow), nil
}

func auditRow(r backend.AuditRecord) Row {
	return Row{ID: strconv.FormatInt(r.Seq, 10), Name: r.Command, Fields: []Field{strField("user", "user", r.User),
		strField("remote", "remote", r.Remote), strField("result", "result", r.Result), timeField("time", "time", r.CreatedAt)}}
}

func verbGetAuditLog() *VerbInfo {
	return &VerbInfo{Name: "getAuditLog", Help: "Show the audit log (Administrators).", Specs: []*Spec{{
		Help:  "List the newest audited commands: who, from where, what, the result, when.",
		Attrs: []Attr{auditLimit},
		Run:   runListAudit,
	}}}
}

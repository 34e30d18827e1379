package store

import (
	"context"
	"errors"
	"fmt"
)

// VMAtLock is a VM as a job's intent read it, with the job's locks taken:
// the VM the job acts on. Found is false when the VM is not recorded (it
// was deleted before the job took it).
type VMAtLock struct {
	VM    VM
	Found bool
}

// InsertVMJobAndLock is InsertJobAndLock of j, a job on VM vm (one of
// objects), that also reads the VM once the objects are taken: read is
// the VM as every write before the job's locks left it, nil when another
// manager's job holds an object (held; nothing taken, nothing read).
func (s *Store) InsertVMJobAndLock(ctx context.Context, j Job, objects []string, vm string) (held *ObjectLock, read *VMAtLock, err error) {
	d := insertVMJobAndLockDecl(j, objects, vm, &held, &read)
	err = s.writeDeclared(ctx, func(q *Queries) error {
		var err error
		held, read, err = q.InsertVMJobAndLock(ctx, j, objects, vm)
		return err
	}, d)
	if err != nil {
		return nil, nil, err
	}
	return held, read, nil
}

// InsertVMJobAndLock is InsertJobAndLock and, when the objects were taken,
// VM of vm. On PostgreSQL it is the intent's one statement, whose snapshot,
// taken with the write lock held (no other manager's write can commit
// meanwhile), holds every write before it: the job reads its VM under its
// lock with neither a read of its own nor another round trip.
func (q *Queries) InsertVMJobAndLock(ctx context.Context, j Job, objects []string, vm string) (*ObjectLock, *VMAtLock, error) {
	if q.engine == PostgreSQL {
		var held *ObjectLock
		var read *VMAtLock
		err := insertVMJobAndLockDecl(j, objects, vm, &held, &read).run(ctx, q)
		return held, read, err
	}
	held, err := q.InsertJobAndLock(ctx, j, objects)
	if err != nil || held != nil {
		return held, nil, err
	}
	v, err := q.VM(ctx, vm)
	if errors.Is(err, ErrNotFound) {
		return nil, &VMAtLock{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return nil, &VMAtLock{VM: v, Found: true}, nil
}

// objectLockColumns and vmColumnCount are how many columns scanObjectLock
// and scanVM read (vmColumns).
const (
	objectLockColumns = 6
	vmColumnCount     = 24
)

// insertVMJobAndLockDecl is InsertVMJobAndLock on PostgreSQL, a declared
// write that sets *held or *read: insertJobAndLockDecl's statement, whose
// one row is the holder's columns, or NULLs and the VM's (NULLs when it
// is not recorded).
func insertVMJobAndLockDecl(j Job, objects []string, vm string, held **ObjectLock, read **VMAtLock) *declared {
	return &declared{query: insertJobCTE + lockObjectsCTEs + `
		SELECT h.object_id, h.job_id, h.manager_id, h.hostname, h.summary, h.since, v.*
		FROM (SELECT 1) AS one
		LEFT JOIN held AS h ON true
		LEFT JOIN (SELECT ` + vmColumns + ` FROM vms WHERE id = $13) AS v ON h.object_id IS NULL`,
		args: append(insertJobArgs(j, objects), vm),
		row: func(row scanner) error {
			*held, *read = nil, nil
			vals := make(valuesRow, objectLockColumns+vmColumnCount)
			dest := make([]any, len(vals))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := row.Scan(dest...); err != nil {
				return translate(err)
			}
			if vals[0] != nil {
				l, err := scanObjectLock(vals[:objectLockColumns])
				if err != nil {
					return err
				}
				*held = &l
				return nil
			}
			r := &VMAtLock{}
			if vals[objectLockColumns] != nil {
				v, err := scanVM(vals[objectLockColumns:])
				if err != nil {
					return err
				}
				r.VM, r.Found = v, true
			}
			*read = r
			return nil
		}}
}

// valuesRow is a row already read, each column's value as the driver gave
// it (a string, an int64, a bool, or nil for NULL), which Scan assigns as
// the scan functions' destinations take them: a statement's one row holding
// the columns of two scan functions, either part all NULL, is read once and
// each part scanned from it.
type valuesRow []any

// Scan assigns the row's values to dest, one each, NULL as the zero value.
func (r valuesRow) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return fmt.Errorf("store: %d columns scanned into %d destinations", len(r), len(dest))
	}
	for i, d := range dest {
		if err := assignValue(d, r[i]); err != nil {
			return fmt.Errorf("store: column %d: %w", i, err)
		}
	}
	return nil
}

// assignValue sets *dest to v (valuesRow.Scan).
func assignValue(dest, v any) error {
	switch d := dest.(type) {
	case *string:
		switch v := v.(type) {
		case nil:
			*d = ""
		case string:
			*d = v
		case []byte:
			*d = string(v)
		default:
			return fmt.Errorf("a %T for a string", v)
		}
	case *int64:
		switch v := v.(type) {
		case nil:
			*d = 0
		case int64:
			*d = v
		case int32:
			*d = int64(v)
		default:
			return fmt.Errorf("a %T for an int64", v)
		}
	case *bool:
		switch v := v.(type) {
		case nil:
			*d = false
		case bool:
			*d = v
		case int64:
			*d = v != 0
		default:
			return fmt.Errorf("a %T for a bool", v)
		}
	default:
		return fmt.Errorf("a destination of type %T", dest)
	}
	return nil
}

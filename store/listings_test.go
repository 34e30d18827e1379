package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestEachListedReadsBetweenRows: a listing whose view reads more of the
// snapshot for every row (a tag's count of objects) gets every row, in
// the order of the query that reads them whole, on both engines, over
// several of PostgreSQL's cursor batches; one that stops early leaves
// the snapshot usable.
func TestEachListedReadsBetweenRows(t *testing.T) {
	bothEngines(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		ctx := context.Background()
		n := 2*listBatch + 7
		err := s.Write(ctx, func(q *Queries) error {
			for i := range n {
				id := fmt.Sprintf("t%05d", i)
				if err := q.InsertTag(ctx, Tag{ID: id, Name: fmt.Sprintf("tag-%05d", (i*7919)%n), CreatedAt: time.Now()}); err != nil {
					return err
				}
				if i%3 == 0 {
					if err := q.TagObject(ctx, id, fmt.Sprintf("vm%05d", i), "Vm"); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		whole, err := s.Read().Tags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Snapshot(ctx, func(q *Queries) error {
			i, tagged := 0, 0
			for tag, err := range q.EachTag(ctx) {
				if err != nil {
					return err
				}
				if i >= len(whole) || tag != whole[i] {
					return fmt.Errorf("row %d is %+v, want %+v", i, tag, whole[min(i, len(whole)-1)])
				}
				c, err := q.CountTagged(ctx, tag.ID)
				if err != nil {
					return fmt.Errorf("a read between the rows: %w", err)
				}
				tagged += c
				i++
			}
			if i != n || tagged != (n+2)/3 {
				return fmt.Errorf("%d rows and %d tagged objects, want %d and %d", i, tagged, n, (n+2)/3)
			}
			for range q.EachTag(ctx) {
				break
			}
			_, err := q.CountTagged(ctx, whole[0].ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

package store

import (
	"context"
	"fmt"
	"strings"
)

// count is the one way the store counts rows: SELECT COUNT(*) of table,
// narrowed by where ("" for every row), never a list read to take its
// length.
func (q *Queries) count(ctx context.Context, table, where string, args ...any) (int, error) {
	query := `SELECT COUNT(*) FROM ` + table
	if where != "" {
		query += ` WHERE ` + where
	}
	return queryOne(ctx, q.db, scanInt, query, args...)
}

func scanInt(row scanner) (int, error) {
	var n int
	err := row.Scan(&n)
	return n, err
}

// keyCount is one group of a grouped count (CountVMsPerServer).
type keyCount struct {
	key string
	n   int
}

func scanKeyCount(row scanner) (keyCount, error) {
	var c keyCount
	err := row.Scan(&c.key, &c.n)
	return c, err
}

// countPer runs query, a grouped count (key, COUNT(*)), into a map of
// the keys that have rows: one read for a listing's counts, not one per
// row.
func (q *Queries) countPer(ctx context.Context, query string) (map[string]int, error) {
	counts, err := queryAll(ctx, q.db, scanKeyCount, query)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(counts))
	for _, c := range counts {
		out[c.key] = c.n
	}
	return out, nil
}

// CountSSHKeysPerUser returns the number of SSH keys of each user that has
// any, by user id (list User).
func (q *Queries) CountSSHKeysPerUser(ctx context.Context) (map[string]int, error) {
	return q.countPer(ctx, `SELECT user_id, COUNT(*) FROM ssh_keys GROUP BY user_id`)
}

// countable are the references Count and CountWhere may count by, as
// "table.column": callers use them to say what uses an object before
// deleting it. Table and column go into the SQL text, so only these.
var countable = map[string]bool{
	"vms.repo_id": true, "vms.server_id": true, "vms.pool_id": true,
	"servers.pool_id": true, "repositories.pool_id": true, "networks.pool_id": true,
	"vnics.network_id": true, "virtual_disks.repo_id": true, "virtual_cdroms.repo_id": true,
	"vm_templates.repo_id": true, "vm_template_disks.repo_id": true, "vm_template_vnics.network_id": true,
	"vm_clone_storage_mappings.repo_id": true, "vm_clone_network_mappings.network_id": true,
	"ssh_keys.user_id": true,
}

// Count returns the number of rows of table (one of the store's own table
// names) where column equals value; callers use it to say what uses an
// object before deleting it.
func (q *Queries) Count(ctx context.Context, table, column, value string) (int, error) {
	return q.CountWhere(ctx, table+"."+column, value)
}

// CountWhere counts the rows that reference value through tableColumn
// ("vnics.network_id"); it is Count with the two names in one.
func (q *Queries) CountWhere(ctx context.Context, tableColumn, value string) (int, error) {
	if !countable[tableColumn] {
		return 0, fmt.Errorf("count: %s is not countable", tableColumn)
	}
	table, column, _ := strings.Cut(tableColumn, ".")
	return q.count(ctx, table, column+` = $1`, value)
}

package store

import (
	"context"
	"fmt"
)

// NamesWithPrefix returns up to limit distinct names of objects in table
// (vms, servers, server_pools, repositories ...) or in one of the name sets
// (NamesDiskMappings ...) starting with prefix, in order;
// statuses (VMs) and pools, when not nil, narrow them.
// It is a range scan on the name, so it stays fast on large tables that have
// an index on name.
func (q *Queries) NamesWithPrefix(ctx context.Context, table, prefix string, limit int, statuses, pools []string) ([]string, error) {
	// poolOf is the SQL of a row's pool, "" for tables outside pools.
	poolOf, ok := map[string]string{"vms": "pool_id", "servers": "pool_id", "repositories": "pool_id", "networks": "pool_id",
		"server_pools": "id", "tags": "", "anti_affinity_groups": "pool_id",
		"virtual_disks":  "(SELECT r.pool_id FROM repositories r WHERE r.id = repo_id)",
		"virtual_cdroms": "(SELECT r.pool_id FROM repositories r WHERE r.id = repo_id)",
		"vnics":          "(SELECT v.pool_id FROM vms v WHERE v.id = vm_id)",
		"vm_templates":   "pool_id", "vm_clone_customizers": "pool_id",
		"vm_clone_storage_mappings": "(SELECT c.pool_id FROM vm_clone_customizers c WHERE c.id = customizer_id)",
		"vm_clone_network_mappings": "(SELECT c.pool_id FROM vm_clone_customizers c WHERE c.id = customizer_id)"}[table]
	from := table
	if !ok {
		set, ok := nameSets[table]
		if !ok {
			return nil, fmt.Errorf("names: %s is not a named table", table)
		}
		from = set + ` AS names` // PostgreSQL wants a subquery in FROM named

		poolOf = "pool_id"
	}
	query := `SELECT DISTINCT name FROM ` + from + ` WHERE name >= $1 AND name < $2`
	args := []any{prefix, prefix + "\U0010FFFF", limit}
	if len(statuses) > 0 {
		// Only VMs carry a status among these tables.
		query += ` AND status IN (`
		for i, st := range statuses {
			if i > 0 {
				query += ", "
			}
			args = append(args, st)
			query += fmt.Sprintf("$%d", len(args))
		}
		query += `)`
	}
	if pools != nil && poolOf != "" {
		// Only objects of these pools (none when empty).
		query += ` AND ` + poolOf + ` IN (NULL`
		for _, p := range pools {
			args = append(args, p)
			query += fmt.Sprintf(", $%d", len(args))
		}
		query += `)`
	}
	return queryAll(ctx, q.db, scanString, query+` ORDER BY name LIMIT $3`, args...)
}

// Name sets that are no table, for NamesWithPrefix: the names objects are
// known by where no column holds them all.
const (
	// NamesDiskMappings are the VmDiskMappings of VMs, disks and ISOs, by
	// the names they are shown with (MappingEntry.ShownName).
	NamesDiskMappings = "disk mapping names"
	// NamesCloneSourceDisks are the mappings of disks a clone customizer
	// of a VM or a template names (vmDiskMapping=): the VMs' disk
	// mappings, shown names, and the templates' <template>/<disk>.
	NamesCloneSourceDisks = "clone source disk names"
	// NamesCloneSourceVnics are the VNICs of VMs and of templates.
	NamesCloneSourceVnics = "clone source vnic names"
)

// vmDiskMappingNames is the shown name and pool of the VMs' disk mappings.
const vmDiskMappingNames = `SELECT CASE WHEN m.name <> '' THEN m.name ELSE v.name || '/' || d.name END AS name, v.pool_id
	FROM vm_disk_mappings m JOIN vms v ON v.id = m.vm_id JOIN virtual_disks d ON d.id = m.disk_id`

// nameSets is the SQL of each name set: a subquery of name and pool_id.
var nameSets = map[string]string{
	NamesDiskMappings: `(` + vmDiskMappingNames + ` UNION ALL
		SELECT CASE WHEN m.name <> '' THEN m.name ELSE v.name || '/' || c.name END, v.pool_id
		FROM vm_cdrom_mappings m JOIN vms v ON v.id = m.vm_id JOIN virtual_cdroms c ON c.id = m.cdrom_id)`,
	NamesCloneSourceDisks: `(` + vmDiskMappingNames + ` UNION ALL
		SELECT t.name || '/' || d.name, t.pool_id FROM vm_template_disks d JOIN vm_templates t ON t.id = d.template_id)`,
	NamesCloneSourceVnics: `(SELECT n.name, v.pool_id FROM vnics n JOIN vms v ON v.id = n.vm_id UNION ALL
		SELECT n.name, t.pool_id FROM vm_template_vnics n JOIN vm_templates t ON t.id = n.template_id)`,
}

// renamable lists the tables whose rows edit renames, and whether they
// have a description.
var renamable = map[string]bool{
	"repositories": false, "virtual_disks": true, "networks": true, "vnics": false, "tags": true, "virtual_cdroms": true,
	"anti_affinity_groups": true, "vm_clone_customizers": true,
}

// RenameObject sets the name and, where the table has one, the description
// of a row of one of the renamable tables; nil leaves a value as it is.
func (q *Queries) RenameObject(ctx context.Context, table, id string, name, description *string) error {
	hasDesc, ok := renamable[table]
	if !ok {
		return fmt.Errorf("rename: table %s has no renamable rows", table)
	}
	set := `name = COALESCE($2, name)`
	args := []any{id, name}
	if hasDesc {
		set += `, description = COALESCE($3, description)`
		args = append(args, description)
	}
	return q.execOne(ctx, `UPDATE `+table+` SET `+set+` WHERE id = $1`, args...)
}

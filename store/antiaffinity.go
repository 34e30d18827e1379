package store

import (
	"context"
	"time"
)

// AntiAffinityGroup is a set of VMs of one pool that placement keeps on
// different servers.
type AntiAffinityGroup struct {
	ID          string
	Name        string
	PoolID      string
	Description string
	CreatedAt   time.Time
}

const antiAffinityGroupColumns = `id, name, pool_id, description, created_at`

func scanAntiAffinityGroup(row scanner) (AntiAffinityGroup, error) {
	var g AntiAffinityGroup
	var created int64
	err := row.Scan(&g.ID, &g.Name, &g.PoolID, &g.Description, &created)
	g.CreatedAt = fromUnix(created)
	return g, err
}

// InsertAntiAffinityGroup adds a group; its pool must exist (ErrConflict).
func (q *Queries) InsertAntiAffinityGroup(ctx context.Context, g AntiAffinityGroup) error {
	return q.exec(ctx, `INSERT INTO anti_affinity_groups (`+antiAffinityGroupColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		g.ID, g.Name, g.PoolID, g.Description, unix(g.CreatedAt))
}

// AntiAffinityGroup returns the group with id, or ErrNotFound.
func (q *Queries) AntiAffinityGroup(ctx context.Context, id string) (AntiAffinityGroup, error) {
	return queryOne(ctx, q.db, scanAntiAffinityGroup, `SELECT `+antiAffinityGroupColumns+` FROM anti_affinity_groups WHERE id = $1`, id)
}

// AntiAffinityGroups returns every group, by name then id.
func (q *Queries) AntiAffinityGroups(ctx context.Context) ([]AntiAffinityGroup, error) {
	return queryAll(ctx, q.db, scanAntiAffinityGroup, `SELECT `+antiAffinityGroupColumns+` FROM anti_affinity_groups ORDER BY name, id`)
}

// AntiAffinityGroupsByName returns the groups called name.
func (q *Queries) AntiAffinityGroupsByName(ctx context.Context, name string) ([]AntiAffinityGroup, error) {
	return queryAll(ctx, q.db, scanAntiAffinityGroup, `SELECT `+antiAffinityGroupColumns+` FROM anti_affinity_groups WHERE name = $1 ORDER BY id`, name)
}

// DeleteAntiAffinityGroup removes a group, its memberships and the tags put
// on it.
func (q *Queries) DeleteAntiAffinityGroup(ctx context.Context, id string) error {
	if err := q.execOne(ctx, `DELETE FROM anti_affinity_groups WHERE id = $1`, id); err != nil {
		return err
	}
	return q.exec(ctx, `DELETE FROM object_tags WHERE object_id = $1`, id)
}

// AddAntiAffinityMember makes the VM a member of the group; a member added
// twice, or a group or VM that is not there, is ErrConflict.
func (q *Queries) AddAntiAffinityMember(ctx context.Context, groupID, vmID string, at time.Time) error {
	return q.exec(ctx, `INSERT INTO anti_affinity_members (group_id, vm_id, added_at) VALUES ($1, $2, $3)`, groupID, vmID, unix(at))
}

// RemoveAntiAffinityMember takes the VM out of the group; ErrNotFound when
// it is not a member.
func (q *Queries) RemoveAntiAffinityMember(ctx context.Context, groupID, vmID string) error {
	return q.execOne(ctx, `DELETE FROM anti_affinity_members WHERE group_id = $1 AND vm_id = $2`, groupID, vmID)
}

// AntiAffinityMember is a VM of a group as placement and show read it: the
// group, the VM, and the server it is placed on ("" for none).
type AntiAffinityMember struct {
	GroupID, GroupName string
	VMID, VMName       string
	ServerID           string
	Status             string
}

const antiAffinityMemberColumns = `g.id, g.name, v.id, v.name, COALESCE(v.server_id, ''), v.status`

func scanAntiAffinityMember(row scanner) (AntiAffinityMember, error) {
	var m AntiAffinityMember
	err := row.Scan(&m.GroupID, &m.GroupName, &m.VMID, &m.VMName, &m.ServerID, &m.Status)
	return m, err
}

// AntiAffinityMembers returns the members of the group, by name then id.
func (q *Queries) AntiAffinityMembers(ctx context.Context, groupID string) ([]AntiAffinityMember, error) {
	return queryAll(ctx, q.db, scanAntiAffinityMember, `SELECT `+antiAffinityMemberColumns+`
		FROM anti_affinity_members m JOIN anti_affinity_groups g ON g.id = m.group_id JOIN vms v ON v.id = m.vm_id
		WHERE m.group_id = $1 ORDER BY v.name, v.id`, groupID)
}

// AntiAffinityPeers returns the other members of every group the VM is a
// member of, by group name, then VM name: the VMs placement keeps it apart
// from. A VM in no group has none, read through the index on vm_id.
func (q *Queries) AntiAffinityPeers(ctx context.Context, vmID string) ([]AntiAffinityMember, error) {
	return queryAll(ctx, q.db, scanAntiAffinityMember, `SELECT `+antiAffinityMemberColumns+`
		FROM anti_affinity_members mine
		JOIN anti_affinity_groups g ON g.id = mine.group_id
		JOIN anti_affinity_members m ON m.group_id = mine.group_id AND m.vm_id <> mine.vm_id
		JOIN vms v ON v.id = m.vm_id
		WHERE mine.vm_id = $1 ORDER BY g.name, g.id, v.name, v.id`, vmID)
}

// AntiAffinityGroupedVMs returns the ids of the VMs that are members of
// at least one anti-affinity group, in no order: placement keeps them
// with the inventory (the store's inventory generation follows both
// anti-affinity tables) and reads a VM's peers only when it is one of
// them.
func (q *Queries) AntiAffinityGroupedVMs(ctx context.Context) ([]string, error) {
	return queryAll(ctx, q.db, scanString, `SELECT DISTINCT vm_id FROM anti_affinity_members`)
}

// CountAntiAffinityMembers returns how many members the group has.
func (q *Queries) CountAntiAffinityMembers(ctx context.Context, groupID string) (int, error) {
	return q.count(ctx, `anti_affinity_members`, `group_id = $1`, groupID)
}

package store

import (
	"context"
	"time"
)

// Network is a pool's network: VNICs on it attach to its bridge on every
// server of the pool.
type Network struct {
	ID, Name, PoolID, Bridge, Description string
	CreatedAt                             time.Time
}

// Vnic is a VM's network interface.
type Vnic struct {
	ID, Name, VMID, NetworkID, MAC string
	CreatedAt                      time.Time
}

const networkColumns = `id, name, pool_id, bridge, description, created_at`

func scanNetwork(row scanner) (Network, error) {
	var n Network
	var c int64
	err := row.Scan(&n.ID, &n.Name, &n.PoolID, &n.Bridge, &n.Description, &c)
	n.CreatedAt = fromUnix(c)
	return n, err
}

// InsertNetwork adds a network.
func (q *Queries) InsertNetwork(ctx context.Context, n Network) error {
	return q.exec(ctx, `INSERT INTO networks (`+networkColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		n.ID, n.Name, n.PoolID, n.Bridge, n.Description, unix(n.CreatedAt))
}

// Network returns the network with id.
func (q *Queries) Network(ctx context.Context, id string) (Network, error) {
	return queryOne(ctx, q.db, scanNetwork, `SELECT `+networkColumns+` FROM networks WHERE id = $1`, id)
}

// Networks returns every network by name.
func (q *Queries) Networks(ctx context.Context) ([]Network, error) {
	return queryAll(ctx, q.db, scanNetwork, `SELECT `+networkColumns+` FROM networks ORDER BY name, id`)
}

// NetworksByName returns the networks called name.
func (q *Queries) NetworksByName(ctx context.Context, name string) ([]Network, error) {
	return queryAll(ctx, q.db, scanNetwork, `SELECT `+networkColumns+` FROM networks WHERE name = $1 ORDER BY id`, name)
}

// DeleteNetwork removes a network.
func (q *Queries) DeleteNetwork(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM networks WHERE id = $1`, id)
}

const vnicColumns = `id, name, vm_id, network_id, mac, created_at`

func scanVnic(row scanner) (Vnic, error) {
	var v Vnic
	var c int64
	err := row.Scan(&v.ID, &v.Name, &v.VMID, &v.NetworkID, &v.MAC, &c)
	v.CreatedAt = time.Unix(0, c).UTC() // nanoseconds: the order of a VM's VNICs is their creation order
	return v, err
}

// InsertVnic adds a VNIC; a MAC in use is ErrConflict.
func (q *Queries) InsertVnic(ctx context.Context, v Vnic) error {
	return q.exec(ctx, `INSERT INTO vnics (`+vnicColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		v.ID, v.Name, v.VMID, v.NetworkID, v.MAC, v.CreatedAt.UnixNano())
}

// Vnic returns the VNIC with id.
func (q *Queries) Vnic(ctx context.Context, id string) (Vnic, error) {
	return queryOne(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics WHERE id = $1`, id)
}

// Vnics returns every VNIC by name.
func (q *Queries) Vnics(ctx context.Context) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics ORDER BY name, id`)
}

// VnicsByName returns the VNICs called name.
func (q *Queries) VnicsByName(ctx context.Context, name string) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics WHERE name = $1 ORDER BY id`, name)
}

// VnicsOfVM returns a VM's VNICs in creation order.
func (q *Queries) VnicsOfVM(ctx context.Context, vmID string) ([]Vnic, error) {
	return queryAll(ctx, q.db, scanVnic, `SELECT `+vnicColumns+` FROM vnics WHERE vm_id = $1 ORDER BY created_at, id`, vmID)
}

// DeleteVnic removes a VNIC.
func (q *Queries) DeleteVnic(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM vnics WHERE id = $1`, id)
}

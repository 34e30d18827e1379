package store

import (
	"context"
	"time"
)

// SSHKey is a public key a user may log in with.
type SSHKey struct {
	ID          string
	UserID      string
	UserName    string
	Name        string
	PublicKey   string
	Fingerprint string
	CreatedAt   time.Time
}

const keyColumns = `k.id, k.user_id, u.name, k.name, k.public_key, k.fingerprint, k.created_at`

func scanKey(row scanner) (SSHKey, error) {
	var k SSHKey
	var created int64
	err := row.Scan(&k.ID, &k.UserID, &k.UserName, &k.Name, &k.PublicKey, &k.Fingerprint, &created)
	k.CreatedAt = fromUnix(created)
	return k, err
}

// InsertSSHKey adds a key; a key already registered (same fingerprint) is
// ErrConflict.
func (q *Queries) InsertSSHKey(ctx context.Context, k SSHKey) error {
	return q.exec(ctx, `INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.UserID, k.Name, k.PublicKey, k.Fingerprint, unix(k.CreatedAt))
}

// SSHKeyByFingerprint returns the key with that fingerprint and its user.
func (q *Queries) SSHKeyByFingerprint(ctx context.Context, fp string) (SSHKey, error) {
	return queryOne(ctx, q.db, scanKey, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id WHERE k.fingerprint = $1`, fp)
}

// SSHKeys returns every key, by user then name.
func (q *Queries) SSHKeys(ctx context.Context) ([]SSHKey, error) {
	return queryAll(ctx, q.db, scanKey, `SELECT `+keyColumns+` FROM ssh_keys k JOIN users u ON u.id = k.user_id ORDER BY u.name, k.name`)
}

// DeleteSSHKey removes a key.
func (q *Queries) DeleteSSHKey(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM ssh_keys WHERE id = $1`, id)
}

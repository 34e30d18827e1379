package store

import (
	"context"
	"time"
)

// User is a person who may log in to the manager.
type User struct {
	ID           string
	Name         string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

const userColumns = `id, name, password_hash, role, created_at`

func scanUser(row scanner) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Role, &created)
	u.CreatedAt = fromUnix(created)
	return u, err
}

// CountUsers returns the number of users.
func (q *Queries) CountUsers(ctx context.Context) (int, error) {
	return q.count(ctx, `users`, ``)
}

// CountAdministrators returns how many users are administrators.
func (q *Queries) CountAdministrators(ctx context.Context) (int, error) {
	return q.count(ctx, `users`, `role = 'Administrator'`)
}

// InsertUser adds u; a taken name is ErrConflict.
func (q *Queries) InsertUser(ctx context.Context, u User) error {
	return q.exec(ctx,
		`INSERT INTO users (id, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Name, u.PasswordHash, u.Role, unix(u.CreatedAt))
}

// UserRoles returns every user's role by the user's name: what a session
// checks before each command, cached with the inventory.
func (q *Queries) UserRoles(ctx context.Context) (map[string]string, error) {
	pairs, err := queryAll(ctx, q.db, func(r scanner) ([2]string, error) {
		var p [2]string
		err := r.Scan(&p[0], &p[1])
		return p, err
	}, `SELECT name, role FROM users`)
	if err != nil {
		return nil, err
	}
	roles := make(map[string]string, len(pairs))
	for _, p := range pairs {
		roles[p[0]] = p[1]
	}
	return roles, nil
}

// UserByName returns the user called name, or ErrNotFound.
func (q *Queries) UserByName(ctx context.Context, name string) (User, error) {
	return queryOne(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users WHERE name = $1`, name)
}

// UserByID returns the user with id, or ErrNotFound.
func (q *Queries) UserByID(ctx context.Context, id string) (User, error) {
	return queryOne(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// Users returns every user by name.
func (q *Queries) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY name`)
}

// UsersByName returns the users called name (at most one: names are unique).
func (q *Queries) UsersByName(ctx context.Context, name string) ([]User, error) {
	return queryAll(ctx, q.db, scanUser, `SELECT `+userColumns+` FROM users WHERE name = $1`, name)
}

// UpdateUser writes a user's role and password hash.
func (q *Queries) UpdateUser(ctx context.Context, u User) error {
	return q.execOne(ctx, `UPDATE users SET role = $1, password_hash = $2 WHERE id = $3`, u.Role, u.PasswordHash, u.ID)
}

// DeleteUser removes a user (their pools and keys go with them).
func (q *Queries) DeleteUser(ctx context.Context, id string) error {
	return q.execOne(ctx, `DELETE FROM users WHERE id = $1`, id)
}

// UserSetting returns the value of a user's setting, or ErrNotFound.
func (q *Queries) UserSetting(ctx context.Context, userName, key string) (string, error) {
	return queryOne(ctx, q.db, scanString, `
		SELECT s.value FROM user_settings s JOIN users u ON u.id = s.user_id
		WHERE u.name = $1 AND s.key = $2`, userName, key)
}

// SetUserSetting stores a user's setting, replacing what was there.
func (q *Queries) SetUserSetting(ctx context.Context, userName, key, value string) error {
	return q.execOne(ctx, `
		INSERT INTO user_settings (user_id, key, value) SELECT id, $2, $3 FROM users WHERE name = $1
		ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value`, userName, key, value)
}

// UserPoolIDs returns the ids of the pools the user belongs to.
func (q *Queries) UserPoolIDs(ctx context.Context, userName string) ([]string, error) {
	return queryAll(ctx, q.db, scanString, `SELECT up.pool_id FROM user_pools up JOIN users u ON u.id = up.user_id WHERE u.name = $1`, userName)
}

// AddUserPool makes the user a member of the pool.
func (q *Queries) AddUserPool(ctx context.Context, userID, poolID string) error {
	return q.exec(ctx, `INSERT INTO user_pools (user_id, pool_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, poolID)
}

// RemoveUserPool takes the user out of the pool.
func (q *Queries) RemoveUserPool(ctx context.Context, userID, poolID string) error {
	return q.execOne(ctx, `DELETE FROM user_pools WHERE user_id = $1 AND pool_id = $2`, userID, poolID)
}

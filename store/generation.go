package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// The inventory's generation: the manager's placement caches the pools
// with their servers and the set of VMs that are members of an
// anti-affinity group, its views the names of pools, servers and
// repositories, and its sessions the users' roles, while
// Store.InventoryGeneration is unchanged, so every write to the servers,
// server_pools, repositories, users, anti_affinity_groups or
// anti_affinity_members tables must change it. No write method
// says so by hand (a new one could forget): SQLite itself reports each row
// the writer's connection is about to change, through a pre-update hook
// (writerConnector), and a row of either table bumps the generation
// (inventoryChanged). That covers every statement, those of a foreign key's
// cascade included. On PostgreSQL a trigger on each of them (migrations
// 0001, 0023 and 0024) does the hook's work: it sends the writer's session a notice for
// each row, which the store's notice handler takes while the statement
// runs (Store.noticed); and it notifies the other managers at the commit
// (pgListener, which also gives the staleness bound).
//
// The bump is two-phase: once when the write first changes such a row, and
// again after its transaction commits (Store.runGroup), so that a list read
// between the two (which sees the rows as they were) is not kept.

// inventoryTables are the tables the inventory caches read.
var inventoryTables = map[string]bool{"servers": true, "server_pools": true, "repositories": true, "users": true,
	"anti_affinity_groups": true, "anti_affinity_members": true}

// InventoryGeneration changes whenever a server, server pool, repository,
// user, anti-affinity group or anti-affinity member row may have changed; a list of them read when it had a value is current
// while it keeps it.
func (s *Store) InventoryGeneration() int64 {
	if s.pg != nil && !s.pg.listening.Load() {
		// No one hears of the other managers' changes: nothing read now
		// may be kept.
		return s.inventoryGen.Add(1)
	}
	return s.inventoryGen.Load()
}

// rowChanging is the writer connection's pre-update hook: SQLite calls it
// before it inserts, updates or deletes a row.
func (s *Store) rowChanging(d sqlite.SQLitePreUpdateData) {
	if inventoryTables[d.TableName] {
		s.inventoryChanged()
	}
	s.vmRowChanging(d)
}

// inventoryChanged bumps the generation the first time the running write
// changes a row of the inventory's tables, and marks the write (inventoryDirty)
// for the bump after its commit.
func (s *Store) inventoryChanged() {
	if !s.inventoryDirty.Swap(true) {
		s.inventoryGen.Add(1)
	}
}

// takeInventoryDirty reports whether the write that just ran changed a
// row of the inventory's tables, and clears the mark for the next one.
func (s *Store) takeInventoryDirty() bool { return s.inventoryDirty.Swap(false) }

// writerConnector opens the writer's connections with the pre-update hook
// of s: every connection the writer pool ever opens, so that a connection
// database/sql replaces keeps the rule.
type writerConnector struct {
	driver.Connector
	s *Store
}

// Connect opens a connection and hooks it.
func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	h, ok := conn.(sqlite.HookRegisterer)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("the sqlite driver's connection %T has no pre-update hook", conn)
	}
	h.RegisterPreUpdateHook(c.s.rowChanging)
	return conn, nil
}

// openWriter opens the writer's pool on dsn with the hook of s.
func openWriter(dsn string, s *Store) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(writerConnector{Connector: c, s: s}), nil
}

// closeWriter closes the writer's pool, removing the hook first: the
// driver keeps hooks in a table of its own, which would otherwise keep s
// after Close.
func (s *Store) closeWriter() error {
	return errors.Join(s.unhookWriter(), s.write.Close())
}

// unhookWriter removes the hook from the writer's connection.
func (s *Store) unhookWriter() error {
	c, err := s.write.Conn(context.Background())
	if err != nil {
		return fmt.Errorf("unhook the writer: %w", err)
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		if h, ok := dc.(sqlite.HookRegisterer); ok {
			h.RegisterPreUpdateHook(nil)
		}
		return nil
	})
}

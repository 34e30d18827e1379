package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// inventoryFigures runs the figures that need a large inventory on one
// manager: 1, 2 and 3 with 10,000 VMs, then 3 and 5 with 100,000. Figures
// 2 and 3 also run on PostgreSQL when the harness has a server: a manager
// on each of two databases holding the same VMs (synchronous_commit on and
// off), measured in turns with the SQLite manager.
func (b *bench) inventoryFigures(ctx context.Context, selected func(string) bool) {
	data := filepath.Join(b.work, "inventory")
	db := filepath.Join(data, "manager.db")
	fmt.Println("\n== inventory of 10,000 VMs (written into the manager's SQLite file with package store)")
	t0 := time.Now()
	if err := populateVMs(ctx, data, "", 0, 10000); err != nil {
		b.failInventory(selected, err)
		return
	}
	fmt.Printf("  populated in %s\n", time.Since(t0).Round(time.Millisecond))
	var pgs []engine
	if (selected("2") || selected("3")) && b.pg != nil {
		var err error
		if pgs, err = b.pgEngines(ctx, "inventory"); err == nil {
			// Dropped once the figures are done (the deferred stops of
			// their managers, registered later, run first).
			defer func() {
				for _, e := range pgs {
					b.pg.drop(context.Background(), e.dsn)
				}
			}()
			t0 = time.Now()
			err = b.populatePG(ctx, pgs, 0, 10000)
			fmt.Printf("  PostgreSQL databases (synchronous_commit on and off) populated in %s\n", time.Since(t0).Round(time.Millisecond))
		}
		if err != nil {
			b.failPG(selected, []string{"2", "3"}, err)
			pgs = nil
		}
	}
	m, err := startManager(ctx, b.bin, data)
	if err != nil {
		b.failInventory(selected, err)
		return
	}
	defer func() { m.stop() }()
	if b.ssh != nil {
		if _, err := m.goSSH(ctx, fmt.Sprintf(`create SshKey name=bench key="%s"`, b.ssh.pub), false); err != nil {
			b.failInventory(selected, fmt.Errorf("register the key: %w", err))
			return
		}
	}
	var pgms []*engineManager
	defer func() { stopManagers(pgms) }()
	if pgms, err = b.startPGInventory(ctx, pgs, true); err != nil {
		b.failPG(selected, []string{"2", "3"}, err)
	}
	// engines is the SQLite manager first, then those on PostgreSQL.
	engines := func() []*engineManager {
		return append([]*engineManager{{engine: sqliteEngine, managerProc: m, alias: "xenbench-manager"}}, pgms...)
	}
	if len(pgms) > 0 {
		b.pg.settle(ctx)
	}
	if selected("1") {
		b.roundTrip(ctx, m)
	}
	if selected("2") && ctx.Err() == nil {
		b.sessionBatch(ctx, engines())
	}
	if selected("3") && ctx.Err() == nil {
		b.listVMs(ctx, engines(), db, 10000, b.plan.listings)
	}
	if !(selected("3") || selected("5")) || ctx.Err() != nil {
		return
	}
	fmt.Println("\n== inventory of 100,000 VMs")
	m.stop()
	stopManagers(pgms)
	pgms = nil
	t0 = time.Now()
	if err := populateVMs(ctx, data, "", 10000, 100000); err != nil {
		b.failInventory(selected, err)
		return
	}
	fmt.Printf("  populated in %s\n", time.Since(t0).Round(time.Millisecond))
	if !selected("3") {
		pgs = nil
	}
	if len(pgs) > 0 {
		t0 = time.Now()
		err := b.populatePG(ctx, pgs, 10000, 100000)
		fmt.Printf("  PostgreSQL databases populated in %s\n", time.Since(t0).Round(time.Millisecond))
		if err == nil {
			pgms, err = b.startPGInventory(ctx, pgs, false)
		}
		if err != nil {
			b.failPG(selected, []string{"3"}, err)
		}
	}
	if m, err = startManager(ctx, b.bin, data); err != nil {
		b.failInventory(selected, err)
		return
	}
	if selected("3") {
		if len(pgms) > 0 {
			b.pg.settle(ctx)
		}
		b.listVMs(ctx, engines(), db, 100000, b.plan.bigListings)
	}
	stopManagers(pgms)
	pgms = nil
	if selected("5") && ctx.Err() == nil {
		if selected("3") {
			// A fresh manager: memory per session is measured from its
			// resting size, not from what the listings left behind.
			m.stop()
			if m, err = startManager(ctx, b.bin, data); err != nil {
				b.res.fail("5", "idle sessions", err)
				return
			}
		}
		b.idleSessions(ctx, m)
	}
	m.stop()
	if selected("5") && ctx.Err() == nil {
		b.completion(ctx, data)
	}
}

// populatePG writes VMs vm-from .. vm-(to-1) into each PostgreSQL
// database, as populateVMs does the SQLite file.
func (b *bench) populatePG(ctx context.Context, pgs []engine, from, to int) error {
	for _, e := range pgs {
		if err := populateVMs(ctx, filepath.Join(b.work, "inventory-"+e.key), e.dsn, from, to); err != nil {
			return fmt.Errorf("%s: %w", e.label, err)
		}
	}
	return nil
}

// startPGInventory starts a manager on each of the inventory's PostgreSQL
// databases and, with registerKey (their first start), registers the
// harness's key on each.
func (b *bench) startPGInventory(ctx context.Context, pgs []engine, registerKey bool) ([]*engineManager, error) {
	var ms []*engineManager
	for _, e := range pgs {
		em, err := b.startOn(ctx, e, "inventory", filepath.Join(b.work, "inventory-"+e.key), "")
		if err != nil {
			stopManagers(ms)
			return nil, err
		}
		ms = append(ms, em)
		if b.ssh != nil && registerKey {
			if _, err := em.goSSH(ctx, fmt.Sprintf(`create SshKey name=bench key="%s"`, b.ssh.pub), false); err != nil {
				stopManagers(ms)
				return nil, fmt.Errorf("register the key on %s: %w", e.label, err)
			}
		}
	}
	return ms, nil
}

func stopManagers(ms []*engineManager) {
	for _, m := range ms {
		m.stop()
	}
}

// failPG records that the PostgreSQL sides of figs could not be measured.
func (b *bench) failPG(selected func(string) bool, figs []string, err error) {
	for _, f := range figs {
		if selected(f) {
			b.res.fail(f, "PostgreSQL side", err)
		}
	}
}

func (b *bench) failInventory(selected func(string) bool, err error) {
	for _, f := range []string{"1", "2", "3", "5"} {
		if selected(f) {
			b.res.fail(f, "inventory set-up", err)
		}
	}
}

// needSSH records fig as not measurable when the OpenSSH client is missing.
func (b *bench) needSSH(fig, measure string) bool {
	if b.ssh == nil {
		b.res.fail(fig, measure, fmt.Errorf("needs the OpenSSH client: %v", b.sshErr))
		return false
	}
	return true
}

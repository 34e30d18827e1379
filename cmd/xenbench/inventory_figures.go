package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// inventoryFigures runs the figures that need a large inventory on one
// manager: 1, 2 and 3 with 10,000 VMs, then 3 and 5 with 100,000.
func (b *bench) inventoryFigures(ctx context.Context, selected func(string) bool) {
	data := filepath.Join(b.work, "inventory")
	db := filepath.Join(data, "manager.db")
	fmt.Println("\n== inventory of 10,000 VMs (written into the manager's SQLite file with package store)")
	t0 := time.Now()
	if err := populateVMs(ctx, db, 0, 10000); err != nil {
		b.failInventory(selected, err)
		return
	}
	fmt.Printf("  populated in %s\n", time.Since(t0).Round(time.Millisecond))
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
	if selected("1") {
		b.roundTrip(ctx, m)
	}
	if selected("2") && ctx.Err() == nil {
		b.sessionBatch(ctx, m)
	}
	if selected("3") && ctx.Err() == nil {
		b.listVMs(ctx, m, db, 10000, b.plan.listings)
	}
	if !(selected("3") || selected("5")) || ctx.Err() != nil {
		return
	}
	fmt.Println("\n== inventory of 100,000 VMs")
	m.stop()
	t0 = time.Now()
	if err := populateVMs(ctx, db, 10000, 100000); err != nil {
		b.failInventory(selected, err)
		return
	}
	fmt.Printf("  populated in %s\n", time.Since(t0).Round(time.Millisecond))
	if m, err = startManager(ctx, b.bin, data); err != nil {
		b.failInventory(selected, err)
		return
	}
	if selected("3") {
		b.listVMs(ctx, m, db, 100000, b.plan.bigListings)
	}
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

package store

import "context"

// Checkpoints: SQLite copies the WAL back into the database file (and
// syncs both) at a commit that finds the WAL longer than 1,000 pages, and
// the commit, with every write waiting behind it, waits for the syncs (tens
// of milliseconds in a batch of starts on the reference machine). The store
// checkpoints from a reader connection instead (a PASSIVE checkpoint, which
// the writer does not wait for), about every checkpointPages pages written
// to the WAL: the writer asks for one every ckEvery write transactions, and
// the checkpointer sets ckEvery from the pages per transaction it finds.
// The writer's own threshold is raised to writerAutoCheckpoint pages, a
// safety net should the checkpointer fall behind.
const (
	checkpointPages      = 1000
	writerAutoCheckpoint = 10000
)

// checkpointer runs the WAL checkpoints asked for through ckKick.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	lastTxs, lastFrames := s.writeTxs.Load(), int64(0)
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.ckKick:
		}
		txs := s.writeTxs.Load()
		var busy, logFrames, done int64
		// query_only readers may checkpoint (it changes no data).
		err := s.read.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done)
		if err != nil {
			continue // the writer's own checkpoints remain
		}
		// logFrames is the WAL's length: the pages written since the last
		// checkpoint are what it grew by, or all of it when it started
		// over (the next write after a checkpoint that copied everything).
		written := logFrames
		if logFrames >= lastFrames {
			written = logFrames - lastFrames
		}
		if n := txs - lastTxs; n > 0 && written > 0 {
			s.ckEvery.Store(min(max(checkpointPages*n/written, 1), checkpointPages))
		}
		lastTxs, lastFrames = txs, logFrames
	}
}

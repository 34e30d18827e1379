package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/store"
)

// HostKeyOrigin says where HostKey found the manager's SSH host key.
type HostKeyOrigin int

const (
	// HostKeyStored: the database had it.
	HostKeyStored HostKeyOrigin = iota
	// HostKeyImported: read from the host key file of an install from
	// before the key was kept in the database, and stored there; the file
	// is no longer used.
	HostKeyImported
	// HostKeyGenerated: a new ed25519 key, stored in the database.
	HostKeyGenerated
)

// HostKey returns the manager's SSH host key, which the database keeps
// sealed with the secret key, so that every manager of one database
// presents the same key and clients' known_hosts hold for all of them. A
// database without one gets the key in importFile when that file exists
// (the key file of an install from before, whose clients know it), else
// a new ed25519 key; once stored, the key is never replaced, and
// importFile is no longer read.
func (m *Manager) HostKey(ctx context.Context, importFile string) (gossh.Signer, HostKeyOrigin, error) {
	sealed, err := m.st.Read().Secret(ctx, secretHostKey)
	if err == nil {
		signer, err := m.openHostKey(sealed)
		return signer, HostKeyStored, err
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, 0, fmt.Errorf("read the host key: %w", err)
	}
	pemKey, origin, err := newHostKey(importFile)
	if err != nil {
		return nil, 0, err
	}
	var stored bool
	err = m.st.Write(ctx, func(q *store.Queries) error {
		if stored, err = q.AddSecret(ctx, secretHostKey, m.sealer.sealText(string(pemKey)), time.Now()); err != nil {
			return err
		}
		// Another manager starting at the same time may store its key
		// first: every manager presents the one stored.
		sealed, err = q.Secret(ctx, secretHostKey)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store the host key: %w", err)
	}
	if !stored {
		origin = HostKeyStored
	}
	signer, err := m.openHostKey(sealed)
	return signer, origin, err
}

// newHostKey is the key a database without one gets: the one in
// importFile (checked), else a new ed25519 key; in OpenSSH's PEM.
func newHostKey(importFile string) ([]byte, HostKeyOrigin, error) {
	if importFile != "" {
		data, err := os.ReadFile(importFile)
		if err == nil {
			if _, err := gossh.ParsePrivateKey(data); err != nil {
				return nil, 0, fmt.Errorf("host key file %s to import: %w", importFile, err)
			}
			return data, HostKeyImported, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("host key file to import: %w", err)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, 0, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "xenmanager host key")
	if err != nil {
		return nil, 0, err
	}
	return pem.EncodeToMemory(block), HostKeyGenerated, nil
}

// openHostKey opens and parses the host key the database keeps.
func (m *Manager) openHostKey(sealed string) (gossh.Signer, error) {
	pemKey, err := m.sealer.openText(sealed)
	if err != nil {
		return nil, fmt.Errorf("open the host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey([]byte(pemKey))
	if err != nil {
		return nil, fmt.Errorf("parse the host key the database keeps: %w", err)
	}
	return signer, nil
}

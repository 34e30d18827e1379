package backend

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"xenmanager/store"
)

// SecretKeySize is the length of a secret key: an AES-256 key, kept as
// raw bytes in its file.
const SecretKeySize = 32

// Sealer encrypts the secrets the database keeps (agent passwords, the SSH
// host key) with a key kept outside it (serve --secret-key-file,
// docs/guide.md, Security), so that a copy of the database alone gives
// none of them away. Every manager of one database is given the same key.
type Sealer struct {
	aead cipher.AEAD
}

// LoadSealer reads the secret key in path. The file must be readable by
// its owner only (the check OpenSSH makes of a private key: a key others
// may read is no longer a secret) and hold SecretKeySize bytes. A missing
// file is an error that wraps fs.ErrNotExist.
func LoadSealer(path string) (*Sealer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o, which lets others than its owner read it: make it readable by its owner only (chmod 600 %s)",
			path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, SecretKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read secret key file %s: %w", path, err)
	}
	if len(key) != SecretKeySize {
		size := fmt.Sprintf("%d bytes", len(key))
		if len(key) > SecretKeySize {
			size = fmt.Sprintf("more than %d bytes", SecretKeySize)
		}
		return nil, fmt.Errorf("secret key file %s holds %s: a secret key is %d random bytes, as the first start of a manager writes it",
			path, size, SecretKeySize)
	}
	return NewSealer(key)
}

// CreateSecretKey writes a new random key to path (mode 0600), which must
// not exist, and returns its Sealer.
func CreateSecretKey(path string) (*Sealer, error) {
	key := make([]byte, SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create secret key file: %w", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write secret key file %s: %w", path, err)
	}
	return NewSealer(key)
}

// LoadOrCreateSealer reads the secret key in path (LoadSealer), creating
// it when absent: for tests and tools that open a database of their own.
// A manager uses LoadSecretKey, which does not create a key for a
// database set up with another.
func LoadOrCreateSealer(path string) (*Sealer, error) {
	s, err := LoadSealer(path)
	if errors.Is(err, fs.ErrNotExist) {
		return CreateSecretKey(path)
	}
	return s, err
}

// LoadSecretKey reads the secret key in path for a manager of st. When the
// file does not exist, it creates it, unless the database was set up with
// a key already (it holds a key check): a new key could not open what the
// database keeps, so the manager is refused without writing a file the
// next start would trip over. created reports a new key, which every other
// manager of the database must then be given.
func LoadSecretKey(ctx context.Context, st *store.Store, path string) (s *Sealer, created bool, err error) {
	s, err = LoadSealer(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	if _, err := st.Read().Secret(ctx, secretKeyCheck); err == nil {
		return nil, false, fmt.Errorf("%w: the secret key file %s does not exist", ErrWrongSecretKey, path)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("read the key check: %w", err)
	}
	s, err = CreateSecretKey(path)
	return s, err == nil, err
}

// NewSealer returns a Sealer for a 32-byte AES-256 key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key is %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain; the nonce travels in front of the ciphertext.
func (s *Sealer) Seal(plain string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return s.aead.Seal(nonce, nonce, []byte(plain), nil)
}

// Open decrypts what Seal made.
func (s *Sealer) Open(sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed secret too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return "", fmt.Errorf("open sealed secret (wrong key file?): %w", err)
	}
	return string(plain), nil
}

// sealText is Seal in standard base64, as the secrets table keeps it:
// text is stored alike by every engine.
func (s *Sealer) sealText(plain string) string {
	return base64.StdEncoding.EncodeToString(s.Seal(plain))
}

// openText opens what sealText made.
func (s *Sealer) openText(sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("sealed secret is not base64: %w", err)
	}
	return s.Open(b)
}

// The names of the rows of the secrets table.
const (
	// secretKeyCheck is keyCheckText sealed by the first manager of a
	// database: a manager whose key does not open it has another key.
	secretKeyCheck = "key_check"
	// secretHostKey is the SSH host key, OpenSSH's PEM (hostkey.go).
	secretHostKey = "ssh_host_key"
)

// keyCheckText is what the key check holds sealed.
const keyCheckText = "xenmanager secret key check"

// ErrWrongSecretKey is why a manager whose secret key is not the one its
// database was set up with does not start: it could open none of the
// database's secrets, and what it sealed no other manager could open.
var ErrWrongSecretKey = errors.New("this manager's secret key is not the one the database was set up with")

// CheckSecretKeyBeforeMigrating is the option of store.Open that refuses a
// database whose key check the secret key in the file at path does not
// open, before any migration runs (store.CheckSecretBeforeMigrating): a
// manager given another key, or none, then changes nothing, not even the
// schema. New will check the key again (and seal a check into a database
// that has none).
func CheckSecretKeyBeforeMigrating(path string) store.Option {
	return store.CheckSecretBeforeMigrating(secretKeyCheck, func(sealed string) error {
		s, err := LoadSealer(path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: the secret key file %s does not exist", ErrWrongSecretKey, path)
		}
		if err != nil {
			return err
		}
		if plain, err := s.openText(sealed); err != nil || plain != keyCheckText {
			return ErrWrongSecretKey
		}
		return nil
	})
}

// checkSecretKey checks that sealer's key is the database's, before the
// manager reads or writes anything else. A database without a key check
// (a new one, or one of an install from before the check) gets one sealed
// with this key, once the key is seen to open every agent password the
// database already holds: a wrong key file given to such an install is
// refused rather than made the database's key. A refused key writes
// nothing.
func checkSecretKey(ctx context.Context, st *store.Store, sealer *Sealer) error {
	return st.Write(ctx, func(q *store.Queries) error {
		sealed, err := q.Secret(ctx, secretKeyCheck)
		if errors.Is(err, store.ErrNotFound) {
			if err := opensAgentPasswords(ctx, q, sealer); err != nil {
				return err
			}
			// Another manager starting at the same time may store its
			// check first: the one read back is the database's.
			if _, err := q.AddSecret(ctx, secretKeyCheck, sealer.sealText(keyCheckText), time.Now()); err != nil {
				return fmt.Errorf("write the key check: %w", err)
			}
			sealed, err = q.Secret(ctx, secretKeyCheck)
		}
		if err != nil {
			return fmt.Errorf("read the key check: %w", err)
		}
		if plain, err := sealer.openText(sealed); err != nil || plain != keyCheckText {
			return ErrWrongSecretKey
		}
		return nil
	})
}

// opensAgentPasswords checks that sealer opens every agent password the
// database holds.
func opensAgentPasswords(ctx context.Context, q *store.Queries, sealer *Sealer) error {
	servers, err := q.Servers(ctx)
	if err != nil {
		return fmt.Errorf("read the servers' agent passwords: %w", err)
	}
	opened := 0
	for _, s := range servers {
		if _, err := sealer.Open(s.AgentPassword); err == nil {
			opened++
		}
	}
	if opened < len(servers) {
		return fmt.Errorf("%w: it does not open the agent passwords of %d of the %d servers the database holds",
			ErrWrongSecretKey, len(servers)-opened, len(servers))
	}
	return nil
}

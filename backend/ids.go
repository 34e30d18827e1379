package backend

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// NewID returns a fresh id of type t.
func NewID(t ObjectType) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return "0004fb00" + string(t) + "0000" + hex.EncodeToString(b[:])
}

var idRx = regexp.MustCompile(`^[0-9a-f]{32}$`)

// IsID reports whether s has the shape of an id (32 lowercase hex digits).
func IsID(s string) bool { return idRx.MatchString(s) }

package backend

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// ObjectType is the 4-digit type code inside an id, as in Oracle VM's ids
// (0004fb00 + type + 0000 + 16 random hex digits).
type ObjectType string

// Type codes of the objects this manager makes.
const (
	TypeManager    ObjectType = "0001"
	TypeServerPool ObjectType = "0002"
	TypeRepository ObjectType = "0003"
	TypeServer     ObjectType = "0004"
	TypeVM         ObjectType = "0006"
	TypeUser       ObjectType = "0020"
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

package commands

import (
	"os"
	"testing"
)

// The committed reference must be what the registry generates.
func TestReferenceIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../docs/reference.md")
	if err != nil {
		t.Fatalf("read docs/reference.md: %v (run make docs)", err)
	}
	if string(got) != Reference(Default) {
		t.Fatal("docs/reference.md differs from what the command registry generates; run make docs and commit it")
	}
}

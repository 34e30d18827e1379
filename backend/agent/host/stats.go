package host

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"xenmanager/backend/agentapi"
)

// diskImagesMiB sums the sizes of the disk images a vm.cfg names that this
// host can see; entries it cannot find count 0. h.mu need not be held.
func (h *Host) diskImagesMiB(params agentapi.VMParams) int64 {
	var total int64
	for _, entry := range diskEntries(params) {
		p := diskEntryPath(entry)
		if p == "" {
			continue
		}
		if fi, err := h.statDiskPath(p); err == nil {
			total += fi.Size() >> 20
		}
	}
	return total
}

// statDiskPath stats a disk path of a vm.cfg: first as this host sees a
// mount point (/OVS/Repositories/... under the data directory), then as an
// ordinary path.
func (h *Host) statDiskPath(p string) (os.FileInfo, error) {
	if !filepath.IsAbs(p) {
		return nil, os.ErrNotExist
	}
	if fi, err := os.Stat(filepath.Join(h.dataDir, p)); err == nil {
		return fi, nil
	}
	return os.Stat(p)
}

// diskEntries returns the `disk` list of a vm.cfg.
func diskEntries(params agentapi.VMParams) []string {
	switch v := params[agentapi.KeyDisk].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// diskEntryPath returns the file of a vm.cfg disk entry such as
// "file:/OVS/Repositories/r1/VirtualDisks/d1.img,xvda,w", or "" for an
// entry that names no file (a physical device).
func diskEntryPath(entry string) string {
	spec, _, _ := strings.Cut(entry, ",")
	for _, prefix := range []string{"file:", "tap:aio:", "tap2:tapdisk:aio:"} {
		if p, ok := strings.CutPrefix(spec, prefix); ok {
			return p
		}
	}
	return ""
}

// DiscoverNetwork answers discover_network: one bridge, xenbr0 on eth0,
// with a MAC derived from the host's unique id (locally administered, so
// stable across restarts and distinct between hosts) and address, the
// address the caller reached this server at.
func (h *Host) DiscoverNetwork(address string) []agentapi.Bridge {
	sum := sha256.Sum256([]byte("xensim-eth0\x00" + h.UniqueID()))
	mac := fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
	return []agentapi.Bridge{{Name: "xenbr0", Device: "eth0", MAC: mac, Address: address, MTU: 1500}}
}

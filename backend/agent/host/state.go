package host

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"xenmanager/backend/agent/internal/atomicfile"
)

// stateFile is the name of the persistent state inside the data directory.
const stateFile = "state.json"

// persistentState is what survives a restart of the agent. Domains are not
// in it: a restarted agent is a rebooted host.
type persistentState struct {
	UniqueID    string   `json:"unique_id"`
	ManagerUUID string   `json:"manager_uuid,omitempty"`
	ManagerName string   `json:"manager_name,omitempty"`
	PoolUUID    string   `json:"pool_uuid,omitempty"`
	PoolAlias   string   `json:"pool_alias,omitempty"`
	PoolMaster  string   `json:"pool_master,omitempty"`
	PoolMembers []string `json:"pool_members,omitempty"`
	PoolVIP     string   `json:"pool_vip,omitempty"`
	PoolNum     int64    `json:"pool_num,omitempty"`
	// Roles are the roles set by update_server_roles or a pool call; nil
	// means the default, xen and utility.
	Roles        []string             `json:"roles,omitempty"`
	Repositories map[string]RepoState `json:"repositories"`
	// HA is the configuration of ha_configure; nil when HA is not
	// configured.
	HA *HAState `json:"ha,omitempty"`
}

// RepoState is a repository known to the host.
type RepoState struct {
	UUID       string `json:"uuid"`
	Alias      string `json:"alias"`
	FSLocation string `json:"fs_location"` // the shared directory
	MountPoint string `json:"mount_point"` // as the manager named it, e.g. /OVS/Repositories/<uuid>
}

// loadState reads state.json, or creates it with a fresh unique id.
func (h *Host) loadState() error {
	path := filepath.Join(h.dataDir, stateFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.state = persistentState{UniqueID: newUUID(), Repositories: map[string]RepoState{}}
		return h.saveLocked()
	case err != nil:
		return fmt.Errorf("xensim: read state: %w", err)
	}
	var st persistentState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("xensim: %s is corrupt (fix or remove it; removing it makes a new server identity): %w", path, err)
	}
	if st.UniqueID == "" {
		return fmt.Errorf("xensim: %s has no unique_id", path)
	}
	if st.Repositories == nil {
		st.Repositories = map[string]RepoState{}
	}
	h.state = st
	return nil
}

// saveLocked writes state.json atomically (temp file, fsync, rename). h.mu
// must be held, or h not yet shared.
func (h *Host) saveLocked() error {
	data, err := json.MarshalIndent(h.state, "", "  ")
	if err != nil {
		return fmt.Errorf("xensim: encode state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(h.dataDir, stateFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("xensim: save state: %w", err)
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

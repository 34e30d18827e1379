package host

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"xenmanager/backend/agent/internal/atomicfile"
	"xenmanager/backend/agentapi"
)

// Repository layout, as Oracle VM lays it out.
const (
	DirVMs       = "VirtualMachines"
	DirDisks     = "VirtualDisks"
	DirISOs      = "ISOs"
	DirTemplates = "Templates"
	RepoMarker   = ".ovsrepo"
)

var repoDirs = []string{DirVMs, DirDisks, DirISOs, DirTemplates}

// CreateRepository lays out a new repository in fsLocation (created if
// needed) and makes it known here under mountPoint. A directory that already
// holds the same uuid is simply added; one holding another uuid is
// InvalidState.
func (h *Host) CreateRepository(fsLocation, mountPoint, repoUUID, alias string) error {
	fsLocation, mountPoint, err := h.checkRepoPaths(fsLocation, mountPoint)
	if err != nil {
		return err
	}
	if err := checkID("repository uuid", repoUUID); err != nil {
		return err
	}
	if err := checkAlias(alias); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(fsLocation, 0o755); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "create repository directory %s: %v", fsLocation, err)
	}
	existing, existingAlias, err := readMarker(fsLocation)
	switch {
	case err == nil && existing != repoUUID:
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"%s already holds repository %s (%q); choose another location or add that repository", fsLocation, existing, existingAlias)
	case err == nil:
		alias = existingAlias // the same repository: act as add_repository
	case errors.Is(err, fs.ErrNotExist):
		for _, d := range repoDirs {
			if err := os.MkdirAll(filepath.Join(fsLocation, d), 0o755); err != nil {
				return agentapi.Errorf(agentapi.FaultInternalError, "lay out repository %s: %v", fsLocation, err)
			}
		}
		marker := fmt.Sprintf("OVS_REPO_UUID=%s\nOVS_REPO_ALIAS=%s\n", repoUUID, alias)
		if err := atomicfile.Write(filepath.Join(fsLocation, RepoMarker), []byte(marker), 0o644); err != nil {
			return agentapi.Errorf(agentapi.FaultInternalError, "write %s in %s: %v", RepoMarker, fsLocation, err)
		}
	default:
		return err
	}
	return h.addRepoLocked(RepoState{UUID: repoUUID, Alias: alias, FSLocation: fsLocation, MountPoint: mountPoint})
}

// AddRepository makes the existing repository in fsLocation known here under
// mountPoint; NotFound when fsLocation holds no .ovsrepo.
func (h *Host) AddRepository(fsLocation, mountPoint string) error {
	fsLocation, mountPoint, err := h.checkRepoPaths(fsLocation, mountPoint)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id, alias, err := readMarker(fsLocation)
	if errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound,
			"no repository at %s (no %s there); create_repository lays one out", fsLocation, RepoMarker)
	}
	if err != nil {
		return err
	}
	return h.addRepoLocked(RepoState{UUID: id, Alias: alias, FSLocation: fsLocation, MountPoint: mountPoint})
}

// checkRepoPaths checks a repository's fs_location and mount point: both
// clean absolute paths, and the fs_location apart from this agent's data
// directory (its state, key, password and mount points), neither it, nor
// inside it, nor above it, so that no repository operation (an erase
// above all) can reach them.
func (h *Host) checkRepoPaths(fsLocation, mountPoint string) (string, string, error) {
	fsLocation, err := checkAbsPath("fs_location", fsLocation)
	if err != nil {
		return "", "", err
	}
	if loc, data := resolveExisting(fsLocation), resolveExisting(h.dataDir); pathsOverlap(loc, data) {
		return "", "", agentapi.Errorf(agentapi.FaultInvalidArgument,
			"fs_location %s overlaps this agent's data directory %s (its state, key and mount points); choose a directory outside it that does not contain it", fsLocation, h.dataDir)
	}
	mountPoint, err = checkAbsPath("mount_point", mountPoint)
	if err != nil {
		return "", "", err
	}
	return fsLocation, mountPoint, nil
}

// addRepoLocked links the mount point and records r. h.mu must be held.
func (h *Host) addRepoLocked(r RepoState) error {
	for _, other := range h.state.Repositories {
		if other.UUID != r.UUID && other.MountPoint == r.MountPoint {
			return agentapi.Errorf(agentapi.FaultInvalidState,
				"mount point %s is already used by repository %s", r.MountPoint, other.UUID)
		}
	}
	if err := h.link(r); err != nil {
		return err
	}
	old, had := h.state.Repositories[r.UUID]
	h.state.Repositories[r.UUID] = r
	if err := h.saveLocked(); err != nil {
		if had {
			h.state.Repositories[r.UUID] = old
		} else {
			delete(h.state.Repositories, r.UUID)
		}
		return agentapi.Errorf(agentapi.FaultInternalError, "%v", err)
	}
	return nil
}

// mountPath is where this host sees the repository: its mount point rooted
// under the data directory.
func (h *Host) mountPath(r RepoState) string {
	return filepath.Join(h.dataDir, filepath.FromSlash(r.MountPoint))
}

// link makes the mount path a symbolic link to the repository's fs_location,
// replacing a stale link but never a real file or directory.
func (h *Host) link(r RepoState) error {
	path := h.mountPath(r)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "create mount point parent: %v", err)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return agentapi.Errorf(agentapi.FaultInternalError, "mount point %s: %v", r.MountPoint, err)
	case fi.Mode()&fs.ModeSymlink == 0:
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"mount point %s (%s) exists and is not a repository link; remove it or choose another mount point", r.MountPoint, path)
	default:
		if target, err := os.Readlink(path); err == nil && target == r.FSLocation {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return agentapi.Errorf(agentapi.FaultInternalError, "replace mount point %s: %v", r.MountPoint, err)
		}
	}
	if err := os.Symlink(r.FSLocation, path); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "mount %s at %s: %v", r.FSLocation, r.MountPoint, err)
	}
	return nil
}

// readMarker reads uuid and alias from dir/.ovsrepo; fs.ErrNotExist when
// there is none.
func readMarker(dir string) (id, alias string, err error) {
	data, err := os.ReadFile(filepath.Join(dir, RepoMarker))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		return "", "", agentapi.Errorf(agentapi.FaultInternalError, "read %s in %s: %v", RepoMarker, dir, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "OVS_REPO_UUID":
			id = v
		case "OVS_REPO_ALIAS":
			alias = v
		}
	}
	if err := checkID("repository uuid", id); err != nil {
		return "", "", agentapi.Errorf(agentapi.FaultInvalidState,
			"%s in %s has no valid OVS_REPO_UUID line", RepoMarker, dir)
	}
	return id, alias, nil
}

// DiscoverRepositories describes the repositories with the given uuids, or
// all known ones (sorted by uuid) when ids is empty; an unknown uuid is
// NotFound.
func (h *Host) DiscoverRepositories(ids []string) ([]agentapi.Repository, error) {
	h.mu.Lock()
	var repos []RepoState
	if len(ids) == 0 {
		for _, r := range h.state.Repositories {
			repos = append(repos, r)
		}
		slices.SortFunc(repos, func(a, b RepoState) int { return strings.Compare(a.UUID, b.UUID) })
	}
	for _, id := range ids {
		r, ok := h.state.Repositories[id]
		if !ok {
			h.mu.Unlock()
			return nil, errUnknownRepo(id)
		}
		repos = append(repos, r)
	}
	h.mu.Unlock()

	out := make([]agentapi.Repository, 0, len(repos))
	for _, r := range repos {
		total, free, err := diskSpaceMiB(r.FSLocation)
		if err != nil {
			return nil, agentapi.Errorf(agentapi.FaultInternalError,
				"repository %s at %s is not reachable: %v", r.UUID, r.FSLocation, err)
		}
		out = append(out, agentapi.Repository{
			UUID:       r.UUID,
			Alias:      r.Alias,
			MountPoint: r.MountPoint,
			TotalMiB:   total,
			FreeMiB:    free,
			VMs:        countEntries(filepath.Join(r.FSLocation, DirVMs), true),
			Disks:      countEntries(filepath.Join(r.FSLocation, DirDisks), false),
			ISOs:       countEntries(filepath.Join(r.FSLocation, DirISOs), false),
			Templates:  countEntries(filepath.Join(r.FSLocation, DirTemplates), true),
		})
	}
	return out, nil
}

// countEntries counts the directories (dirs true) or regular files in dir,
// ignoring hidden names such as temporary files; a missing dir counts 0.
func countEntries(dir string, dirs bool) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if dirs && e.IsDir() || !dirs && e.Type().IsRegular() {
			n++
		}
	}
	return n
}

func errUnknownRepo(id string) error {
	return agentapi.Errorf(agentapi.FaultNotFound,
		"repository %s is not known on this server; create_repository or add_repository it first", id)
}

// repoLocked returns the known repository id. h.mu must be held.
func (h *Host) repoLocked(id string) (RepoState, error) {
	if err := checkID("repository id", id); err != nil {
		return RepoState{}, err
	}
	r, ok := h.state.Repositories[id]
	if !ok {
		return RepoState{}, errUnknownRepo(id)
	}
	return r, nil
}

// ResolvePath maps a path of a vm.cfg, under the mount point of a
// repository known here (/OVS/Repositories/<id>/VirtualDisks/x.img), to
// the file in the repository's fs_location, with symbolic links resolved.
// It refuses, as InvalidArgument, a path that is not absolute, that names
// no repository known here, or that leaves its repository (through "..",
// or a link inside the repository pointing out of it), so that a vm.cfg
// cannot hand a hypervisor a file of the host.
func (h *Host) ResolvePath(p string) (string, error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument,
			"path %q is not a clean absolute path under a repository's mount point (such as /OVS/Repositories/<id>/...)", p)
	}
	h.mu.Lock()
	var repo RepoState
	var rel string
	found := false
	for _, r := range h.state.Repositories {
		if tail, ok := strings.CutPrefix(p, r.MountPoint+"/"); ok {
			repo, rel, found = r, tail, true
			break
		}
	}
	h.mu.Unlock()
	if !found {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument,
			"path %s is not inside a repository known on this server", p)
	}
	root, err := filepath.EvalSymlinks(repo.FSLocation)
	if err != nil {
		return "", agentapi.Errorf(agentapi.FaultNotFound, "repository %s is not reachable on this server", repo.UUID)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return "", agentapi.Errorf(agentapi.FaultNotFound, "%s does not exist in repository %s", rel, repo.UUID)
	}
	if err != nil {
		return "", agentapi.Errorf(agentapi.FaultInternalError, "resolve %s in repository %s: %v", rel, repo.UUID, err)
	}
	if !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return "", agentapi.Errorf(agentapi.FaultInvalidArgument,
			"%s in repository %s leads out of the repository; only files inside it can be used", rel, repo.UUID)
	}
	return real, nil
}

// resolveExisting is p with the symbolic links of its longest existing
// ancestor resolved (p need not exist yet), so that two names of one
// directory compare equal.
func resolveExisting(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for dir := p; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		if dir == filepath.Dir(dir) {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// pathsOverlap reports whether clean absolute paths a and b are the same
// directory or one holds the other.
func pathsOverlap(a, b string) bool {
	within := func(x, dir string) bool {
		return x == dir || dir == "/" || strings.HasPrefix(x, dir+string(filepath.Separator))
	}
	return within(a, b) || within(b, a)
}

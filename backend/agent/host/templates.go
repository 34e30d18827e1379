package host

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"xenmanager/backend/agent/internal/atomicfile"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// Templates [ext: agentapi.ExtTemplates]. A template is
// Templates/<template_id>/vm.cfg, with the keys of a VM's vm.cfg; its disks
// are ordinary VirtualDisks/<disk_id>.img files named by its disk list.

// templateKey is a template's entry in h.diskOps while it is imported or
// written; it cannot clash with a disk's, since ids have no '/'.
func templateKey(repoID, templateID string) string {
	return diskKey(repoID, DirTemplates+"/"+templateID)
}

// templateDirLocked checks the ids and returns the template's directory as
// this host sees it. h.mu must be held.
func (h *Host) templateDirLocked(repoID, templateID string) (string, error) {
	r, err := h.repoLocked(repoID)
	if err != nil {
		return "", err
	}
	if err := checkID("template id", templateID); err != nil {
		return "", err
	}
	return filepath.Join(h.mountPath(r), DirTemplates, templateID), nil
}

// templateBusyLocked is Busy while the template is being imported, nil
// otherwise. h.mu must be held.
func (h *Host) templateBusyLocked(repoID, templateID string) error {
	if op, busy := h.diskOps[templateKey(repoID, templateID)]; busy {
		return agentapi.Errorf(agentapi.FaultBusy,
			"template %s of repository %s is being imported (%s); wait for it to end", templateID, repoID, op)
	}
	return nil
}

// CreateTemplate writes Templates/<template_id>/vm.cfg from params, checked
// as create_vm checks a VM's (positive memory and vcpus, the direct-boot
// keys). An existing template is InvalidState unless replace, which
// rewrites its vm.cfg in one step (the manager's rewrite of an imported
// template's disk list). Busy while the template is being imported.
func (h *Host) CreateTemplate(repoID, templateID string, params agentapi.VMParams, replace bool) error {
	if err := checkID("template id", templateID); err != nil {
		return err
	}
	what := "template " + templateID
	if err := checkVMParams(what, params); err != nil {
		return err
	}
	if err := checkDirectBoot(what, params); err != nil {
		return err
	}
	params = normalizeInts(params)
	dropEmptyDirectBoot(params)
	var cfg bytes.Buffer
	if err := vmcfg.Write(&cfg, params); err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "template %s: %v", templateID, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir, err := h.templateDirLocked(repoID, templateID)
	if err != nil {
		return err
	}
	if err := h.templateBusyLocked(repoID, templateID); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"Templates/%s in repository %s is not a directory; remove it or use another id", templateID, repoID)
	case err == nil && !replace:
		return errTemplateExists(repoID, templateID)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return agentapi.Errorf(agentapi.FaultInternalError, "create template directory %s: %v", dir, err)
		}
	case err != nil:
		return agentapi.Errorf(agentapi.FaultInternalError, "template %s: %v", templateID, err)
	}
	path := filepath.Join(dir, vmConfigFile)
	if err := atomicfile.Write(path, cfg.Bytes(), 0o644); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "write %s: %v", path, err)
	}
	return nil
}

// GetTemplateConfig reads the template's vm.cfg back.
func (h *Host) GetTemplateConfig(repoID, templateID string) (agentapi.VMParams, error) {
	h.mu.Lock()
	dir, err := h.templateDirLocked(repoID, templateID)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return readConfig("template", repoID, templateID, dir)
}

// DeleteTemplate removes Templates/<template_id>/ and what it holds (an
// imported template's disk images not yet moved out); the disks its
// vm.cfg names in VirtualDisks stay, for the manager to delete. NotFound
// when there is no such template, Busy while it is being imported.
func (h *Host) DeleteTemplate(repoID, templateID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	dir, err := h.templateDirLocked(repoID, templateID)
	if err != nil {
		return err
	}
	if err := h.templateBusyLocked(repoID, templateID); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return agentapi.Errorf(agentapi.FaultNotFound, "template %s not found in repository %s", templateID, repoID)
	}
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "template %s: %v", templateID, err)
	}
	if !fi.IsDir() {
		return agentapi.Errorf(agentapi.FaultInvalidState,
			"Templates/%s in repository %s is not a template directory; it is left alone", templateID, repoID)
	}
	if err := os.RemoveAll(dir); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "remove template %s of repository %s: %v", templateID, repoID, err)
	}
	return nil
}

// ListTemplates returns the ids of the templates in the repository, sorted:
// the directories of Templates/ that hold a vm.cfg (hidden temporary
// directories of imports in progress are not templates yet).
func (h *Host) ListTemplates(repoID string) ([]string, error) {
	h.mu.Lock()
	r, err := h.repoLocked(repoID)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.mountPath(r), DirTemplates)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInternalError, "read the templates of repository %s: %v", repoID, err)
	}
	ids := []string{}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") || checkID("template id", name) != nil {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(dir, name, vmConfigFile)); err == nil && fi.Mode().IsRegular() {
			ids = append(ids, name)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

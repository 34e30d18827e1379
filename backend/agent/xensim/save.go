package xensim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// The save file of a suspended domain, VirtualMachines/<vm_id>/save.img
// beside vm.cfg:
//
//   - a header of saveHeaderSize bytes: the line saveMagic, then the JSON of
//     saveHeader and a newline, zero-padded;
//   - the domain's memory image, memory_mib MiB. The simulated memory is
//     deterministic: each MiB starts with a stamp, SHA-256 of "xensim-memory",
//     the domain's uuid and the MiB's index, and is zero (a hole: the file is
//     sparse) after it.
//
// So a 4 GiB domain makes a file of 4 GiB apparent size holding 4096 stamps:
// real I/O with honest progress, at the cost of one block per MiB. Restore
// checks the header, the size and every stamp.
const (
	saveFile       = "save.img"
	saveMagic      = "XENSIM-SAVE 1\n"
	saveHeaderSize = 4096
	saveChunk      = 1 << 20
)

// saveHeader is the domain as it was saved.
type saveHeader struct {
	UUID      string  `json:"uuid"`
	RepoID    string  `json:"repo_id"`
	VMID      string  `json:"vm_id"`
	Name      string  `json:"name"`
	MemoryMiB int64   `json:"memory_mib"`
	MaxMemMiB int64   `json:"maxmem_mib"`
	VCPUs     int64   `json:"vcpus"`
	MaxVCPUs  int64   `json:"maxvcpus"`
	CPUTimeS  float64 `json:"cpu_time_s"`
	RunTimeS  float64 `json:"run_time_s"`
	UptimeS   float64 `json:"uptime_s"`
	DiskMiB   int64   `json:"disk_mib"`
	SavedAt   int64   `json:"saved_at"`
	// OSType is the OS type the guest booted with (vm.cfg's
	// OVM_os_type); absent from files of earlier versions.
	OSType string `json:"os_type,omitempty"`
	// OnCrash is the domain's on_crash action; absent from files of
	// earlier versions and for Xen's default.
	OnCrash string `json:"on_crash,omitempty"`
}

// memoryStamp is the simulated content at the start of MiB i of a domain's
// memory.
func memoryStamp(uuid string, i int64) [sha256.Size]byte {
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], uint64(i))
	return sha256.Sum256(append([]byte("xensim-memory\x00"+uuid+"\x00"), idx[:]...))
}

// Save suspends the domain to the save file beside its vm.cfg (replacing
// an older one). Without checkpoint the domain is paused while its memory
// is written, then is suspended: it leaves memory and shows as suspended
// until restore_vm or stop_vm. With checkpoint it keeps running. The domain
// must be running, blocked or paused; meanwhile other changes to it are
// Busy, and get_operation_progress "save:<vm_id>" counts the MiB written.
func (h *Sim) Save(spec hypervisor.Spec, checkpoint bool) error {
	repoID, vmID, dir := spec.RepoID, spec.VMID, spec.Dir
	h.mu.Lock()
	d, err := h.liveDomainLocked(repoID, vmID, "saved", agentapi.StateRunning, agentapi.StateBlocked, agentapi.StatePaused)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	now := h.now()
	prev := d.state
	if !checkpoint {
		d.setState(agentapi.StatePaused, now)
	}
	hdr := saveHeader{
		UUID: d.uuid, RepoID: repoID, VMID: vmID, Name: d.name,
		MemoryMiB: d.memoryMiB, MaxMemMiB: d.maxMemMiB, VCPUs: d.vcpus, MaxVCPUs: d.maxVCPUs,
		CPUTimeS: d.cpuTimeAt(now), RunTimeS: d.runTimeAt(now), UptimeS: now.Sub(d.booted).Seconds(),
		DiskMiB: d.diskMiB, SavedAt: now.Unix(), OSType: d.osType, OnCrash: d.onCrash,
	}
	key := agentapi.ProgressSave + vmID
	d.busy = key
	op := h.progress.Start(key, "writing memory", d.memoryMiB)
	h.mu.Unlock()

	err = writeSaveFile(dir, hdr, op)

	h.mu.Lock()
	defer h.mu.Unlock()
	d.busy = ""
	if h.domains[domainKey(repoID, vmID)] != d && err == nil {
		os.Remove(filepath.Join(dir, saveFile))
		err = agentapi.Errorf(agentapi.FaultInvalidState, "VM %s ended while it was being saved; nothing was saved", vmID)
	}
	op.Finish(err)
	now = h.now()
	if err != nil {
		if !checkpoint && d.state == agentapi.StatePaused {
			d.setState(prev, now)
		}
		return err
	}
	if !checkpoint {
		d.setState(agentapi.StateSuspended, now)
	}
	return nil
}

// writeSaveFile writes the save file into dir through a temporary file, so
// that a failed save leaves no partial file behind.
func writeSaveFile(dir string, hdr saveHeader, op hypervisor.Operation) error {
	meta, err := json.Marshal(hdr)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "encode save header: %v", err)
	}
	head := append([]byte(saveMagic), meta...)
	head = append(head, '\n')
	if len(head) > saveHeaderSize {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "VM %s: its names are too long for a save header", hdr.VMID)
	}
	fail := func(err error) error {
		if errors.Is(err, syscall.ENOSPC) {
			return agentapi.Errorf(agentapi.FaultInsufficientResources, "no space left for the save file of VM %s in %s", hdr.VMID, dir)
		}
		return agentapi.Errorf(agentapi.FaultInternalError, "write the save file of VM %s in %s: %v", hdr.VMID, dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+saveFile+".tmp-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Truncate(saveHeaderSize + hdr.MemoryMiB*saveChunk); err != nil {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.WriteAt(head, 0); err != nil {
		tmp.Close()
		return fail(err)
	}
	for i := range hdr.MemoryMiB {
		stamp := memoryStamp(hdr.UUID, i)
		if _, err := tmp.WriteAt(stamp[:], saveHeaderSize+i*saveChunk); err != nil {
			tmp.Close()
			return fail(err)
		}
		op.Set("writing memory", i+1)
	}
	op.Set("syncing", hdr.MemoryMiB)
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, saveFile)); err != nil {
		return fail(err)
	}
	return nil
}

// readSaveFile reads and checks a save file: NotFound when there is none,
// InvalidState when it is not a whole save file of this VM.
func readSaveFile(path, vmID string) (saveHeader, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return saveHeader{}, agentapi.Errorf(agentapi.FaultNotFound,
			"VM %s has no saved state (no %s beside its vm.cfg); save_vm it first, or start_vm it", vmID, saveFile)
	}
	if err != nil {
		return saveHeader{}, agentapi.Errorf(agentapi.FaultInternalError, "open the save file of VM %s: %v", vmID, err)
	}
	defer f.Close()
	corrupt := func(why string, args ...any) (saveHeader, error) {
		return saveHeader{}, agentapi.Errorf(agentapi.FaultInvalidState,
			"the save file %s of VM %s cannot be restored: %s; stop_vm and start_vm the VM instead", path, vmID, fmt.Sprintf(why, args...))
	}
	head := make([]byte, saveHeaderSize)
	if _, err := io.ReadFull(f, head); err != nil {
		return corrupt("its header is short (%v)", err)
	}
	rest, ok := bytes.CutPrefix(head, []byte(saveMagic))
	if !ok {
		return corrupt("it does not start with %q", saveMagic)
	}
	meta, _, ok := bytes.Cut(rest, []byte("\n"))
	var hdr saveHeader
	if !ok || json.Unmarshal(meta, &hdr) != nil {
		return corrupt("its header is unreadable")
	}
	if hdr.VMID != vmID || hdr.MemoryMiB <= 0 || hdr.VCPUs <= 0 {
		return corrupt("its header is of VM %q with %d MiB and %d vCPUs", hdr.VMID, hdr.MemoryMiB, hdr.VCPUs)
	}
	fi, err := f.Stat()
	if err != nil {
		return saveHeader{}, agentapi.Errorf(agentapi.FaultInternalError, "stat the save file of VM %s: %v", vmID, err)
	}
	if want := saveHeaderSize + hdr.MemoryMiB*saveChunk; fi.Size() != want {
		return corrupt("it is %d bytes, want %d for %d MiB of memory", fi.Size(), want, hdr.MemoryMiB)
	}
	var got [sha256.Size]byte
	for i := range hdr.MemoryMiB {
		if _, err := f.ReadAt(got[:], saveHeaderSize+i*saveChunk); err != nil {
			return corrupt("reading MiB %d: %v", i, err)
		}
		if got != memoryStamp(hdr.UUID, i) {
			return corrupt("its memory differs from what was saved at MiB %d", i)
		}
	}
	return hdr, nil
}

// Restore resumes the VM from its save file, which it then removes: a new
// domain (new domid) running, or paused when paused, with the CPU time and
// uptime it was saved with. The VM must be suspended or not a domain here
// (a VM saved on another server of the pool can be restored here), its
// memory must fit.
func (h *Sim) Restore(spec hypervisor.Spec, paused bool) error {
	repoID, vmID, dir := spec.RepoID, spec.VMID, spec.Dir
	h.mu.Lock()
	err := h.checkRestorableLocked(repoID, vmID)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, saveFile)
	hdr, err := readSaveFile(path, vmID)
	if err != nil {
		return err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkRestorableLocked(repoID, vmID); err != nil {
		return err
	}
	if hdr.VCPUs > h.cpus {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d vCPUs, server %s has %d CPUs", vmID, hdr.VCPUs, h.hostname, h.cpus)
	}
	if free := h.freeLocked(); hdr.MemoryMiB > free {
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"VM %s needs %d MiB to restore, %d MiB free on server %s", vmID, hdr.MemoryMiB, free, h.hostname)
	}
	if err := os.Remove(path); err != nil {
		return agentapi.Errorf(agentapi.FaultInternalError, "remove the save file of VM %s: %v", vmID, err)
	}
	key := domainKey(repoID, vmID)
	h.removeDomainLocked(key)
	now := h.now()
	state := agentapi.StateRunning
	if paused {
		state = agentapi.StatePaused
	}
	h.domains[key] = &domain{
		repoID: repoID, vmID: vmID, uuid: hdr.UUID, name: hdr.Name,
		domID: h.nextDomID, state: state,
		memoryMiB: hdr.MemoryMiB, vcpus: hdr.VCPUs, maxMemMiB: max(hdr.MaxMemMiB, hdr.MemoryMiB), maxVCPUs: max(hdr.MaxVCPUs, hdr.VCPUs),
		cpuTime: hdr.CPUTimeS, runTime: hdr.RunTimeS, since: now,
		booted:  now.Add(-time.Duration(hdr.UptimeS * float64(time.Second))),
		diskMiB: hdr.DiskMiB,
		osType:  hdr.OSType,
		onCrash: hdr.OnCrash,
		gone:    make(chan struct{}),
	}
	h.nextDomID++
	return nil
}

// checkRestorableLocked refuses a restore while the VM is a domain here in
// any state but suspended. h.mu must be held.
func (h *Sim) checkRestorableLocked(repoID, vmID string) error {
	d, ok := h.domains[domainKey(repoID, vmID)]
	switch {
	case !ok:
		return h.checkNoTargetLocked(repoID, vmID)
	case d.state == agentapi.StateSuspended && d.busy == "":
		return nil
	case d.busy != "":
		return errBusy(d)
	}
	return agentapi.Errorf(agentapi.FaultInvalidState,
		"VM %s is %s on this server (domid %d); restore_vm needs it suspended or stopped", vmID, d.state, d.domID)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"xenmanager/backend/agent/libvirt/guestimage"
)

// guestExtra is guest1's kernel command line: the image's, and its name on
// its console's READY line.
const guestExtra = guestimage.Cmdline + " xenguest.hostname=" + guestName

// fleet is what the manager already has of the lab, from its list
// commands: a second run of the lab finds what the first made.
type fleet struct {
	pools   map[string]bool
	servers map[string]string // name -> its pool ("" when in none)
	repos   map[string]string // name -> fsLocation
	vms     map[string]string // name -> status
}

// readFleet asks the manager what it has of the lab: the pool, the
// hosts' pools (the hosts have been discovered), the repository and guest1.
func readFleet(ctx context.Context, m *managerShell, hosts []string) (fleet, error) {
	f := fleet{pools: map[string]bool{}, servers: map[string]string{}, repos: map[string]string{}, vms: map[string]string{}}
	r, err := m.run(ctx, "list ServerPool name="+poolName)
	if err != nil {
		return fleet{}, err
	}
	f.pools[poolName] = len(r.rows) > 0
	for _, h := range hosts {
		r, err := m.run(ctx, "show Server name="+h)
		if err != nil {
			return fleet{}, err
		}
		f.servers[h] = bracketed(r.attrs["Server Pool"])
	}
	if r, err = m.run(ctx, "list Repository name="+repoName); err != nil {
		return fleet{}, err
	} else if len(r.rows) > 0 {
		if r, err = m.run(ctx, "show Repository name="+repoName); err != nil {
			return fleet{}, err
		}
		f.repos[repoName] = r.attrs["File System Location"]
	}
	if r, err = m.run(ctx, "list Vm name="+guestName); err != nil {
		return fleet{}, err
	} else if len(r.rows) > 0 {
		if r, err = m.run(ctx, "show Vm name="+guestName); err != nil {
			return fleet{}, err
		}
		f.vms[guestName] = r.attrs["Status"]
	}
	return f, nil
}

// bracketed is the name in a reference as show prints it,
// "<id>  [<name>]"; "" when there is none.
func bracketed(ref string) string {
	i, j := strings.LastIndex(ref, "["), strings.LastIndex(ref, "]")
	if i < 0 || j < i {
		return ""
	}
	return ref[i+1 : j]
}

// discoverCommand takes an agent under management; discovering a known
// server again updates its port and password, so every run sends it.
func discoverCommand(port, password string) string {
	return fmt.Sprintf("discoverServer ipAddress=127.0.0.1 port=%s password=%s", port, password)
}

// poolCommands are the commands that give the lab its pool with hosts in
// it and its repository in repoDir, leaving out what f shows exists
// already. A repository of the lab's name elsewhere, or a host in another
// pool, is an error: the data directory is not the one the manager's
// records were made with.
func poolCommands(f fleet, hosts []string, repoDir string) ([]string, error) {
	var cmds []string
	if !f.pools[poolName] {
		cmds = append(cmds, "create ServerPool name="+poolName)
	}
	for _, h := range hosts {
		switch pool := f.servers[h]; pool {
		case poolName:
		case "":
			cmds = append(cmds, fmt.Sprintf("add Server name=%s to ServerPool name=%s", h, poolName))
		default:
			return nil, fmt.Errorf("server %s is in pool %s, not %s: the manager's data were not made by this lab; remove the data directory to start afresh", h, pool, poolName)
		}
	}
	if loc, ok := f.repos[repoName]; !ok {
		cmds = append(cmds, fmt.Sprintf("create Repository name=%s fsLocation=%s on ServerPool name=%s", repoName, quote(repoDir), poolName))
	} else if loc != repoDir {
		return nil, fmt.Errorf("repository %s is at %s, not %s (was the data directory moved?): remove the data directory to start afresh", repoName, loc, repoDir)
	}
	return cmds, nil
}

// refreshCommands bring the manager's record of the VMs on the hosts
// that were in the pool already (an earlier run's) in line with their
// domains: at its start the manager could not ask their agents, which
// come up on new ports and are discovered again after it; a guest of a run
// that ended without stopping it cleanly may have gone meanwhile.
func refreshCommands(f fleet, hosts []string) []string {
	var cmds []string
	for _, h := range hosts {
		if f.servers[h] == poolName {
			cmds = append(cmds, "refresh Server name="+h)
		}
	}
	return cmds
}

// guestCommands create guest1 unless it exists, booting the guest image
// from the repository's Kernels directory, and make the first host its
// preferred server: a live migration goes from the machine's libvirtd to the
// private one only (the machine's daemon does not listen on TCP), so a
// start should place it there.
func guestCommands(f fleet) []string {
	if _, ok := f.vms[guestName]; ok {
		return nil
	}
	return []string{
		fmt.Sprintf("create Vm name=%s repository=%s memory=128 kernel=Kernels/vmlinuz ramdisk=Kernels/initrd.gz extra=%s", guestName, repoName, quote(guestExtra)),
		fmt.Sprintf("edit Vm name=%s preferredServers=%s", guestName, firstHost),
	}
}

// quote quotes a value of the command language when it holds a blank or
// a ';' (preflight refuses a data directory whose path holds a quote).
func quote(s string) string {
	if strings.ContainsAny(s, " \t;") {
		return `"` + s + `"`
	}
	return s
}

// copyImage puts the guest image into the repository's Kernels directory
// (vmlinuz, initrd.gz) unless the files there are the same; the
// directories are 0755 and the files 0644, so that QEMU, which runs as
// another user, reads them.
func copyImage(img guestimage.Image, repoDir string) error {
	kernels := filepath.Join(repoDir, "Kernels")
	if err := os.MkdirAll(kernels, 0o755); err != nil {
		return err
	}
	for _, dir := range []string{repoDir, kernels} {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	for src, name := range map[string]string{img.Kernel: "vmlinuz", img.Initrd: "initrd.gz"} {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(kernels, name)
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
			continue
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Chmod(tmp, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	return nil
}

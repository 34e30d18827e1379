package backend_test

import (
	"os"
	"path/filepath"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
	"xenmanager/backend/managertest"
)

// readVMConfig reads the vm.cfg the agent wrote for VM id in repository r,
// from the repository's files themselves.
func readVMConfig(t *testing.T, r backend.Repository, id string) agentapi.VMParams {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.FSLocation, "VirtualMachines", id, "vm.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	params, err := vmcfg.Parse(data)
	if err != nil {
		t.Fatalf("vm.cfg of %s: %v\n%s", id, err, data)
	}
	return params
}

// create Vm with kernel, ramdisk and extra writes them to vm.cfg as xl
// reads them (kernel and ramdisk under the repository's mount point);
// edit Vm changes them, an empty value removes the key, a running VM
// keeps what it booted, and a refused value changes nothing.
func TestDirectBootWrittenToVMConfig(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	ctx := c.Admin()
	repo, err := c.Manager.Repository(ctx, backend.Ref{Name: managertest.Repo})
	if err != nil {
		t.Fatal(err)
	}
	under := func(rel string) string { return repo.MountPoint + "/" + rel }
	boot := backend.DirectBoot{Kernel: "Kernels/vmlinuz-6.1", Ramdisk: "Kernels/initrd-6.1.img", Extra: "root=/dev/xvda1 console=hvc0"}
	if _, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "pv1", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 512, CPUCount: 1, DomainType: backend.DomainXenPVM, DirectBoot: boot}); err != nil {
		t.Fatal(err)
	}
	plain, err := c.Manager.CreateVM(ctx, backend.CreateVMRequest{Name: "hvm1", Repository: backend.Ref{Name: managertest.Repo},
		MemoryMiB: 512, CPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	for _, step := range []struct {
		name     string
		vm       string
		edit     *backend.EditVMRequest // nil: only look
		wantKind backend.Kind           // of the edit's error; 0 when it succeeds
		want     backend.DirectBoot     // the VM's settings after the step
	}{
		{"written at create", "pv1", nil, 0, boot},
		{"nothing without them", "hvm1", nil, 0, backend.DirectBoot{}},
		{"kernel changed, the rest kept", "pv1", &backend.EditVMRequest{Kernel: str("Kernels/vmlinuz-6.6")}, 0,
			backend.DirectBoot{Kernel: "Kernels/vmlinuz-6.6", Ramdisk: boot.Ramdisk, Extra: boot.Extra}},
		{"an absolute kernel refused", "pv1", &backend.EditVMRequest{Kernel: str("/etc/passwd")}, backend.KindInvalidArgument,
			backend.DirectBoot{Kernel: "Kernels/vmlinuz-6.6", Ramdisk: boot.Ramdisk, Extra: boot.Extra}},
		{"a command line with a newline refused", "pv1", &backend.EditVMRequest{Extra: str("single\ninit=/bin/sh")}, backend.KindInvalidArgument,
			backend.DirectBoot{Kernel: "Kernels/vmlinuz-6.6", Ramdisk: boot.Ramdisk, Extra: boot.Extra}},
		{"empty ramdisk and extra removed", "pv1", &backend.EditVMRequest{Ramdisk: str(""), Extra: str("")}, 0,
			backend.DirectBoot{Kernel: "Kernels/vmlinuz-6.6"}},
		{"empty kernel removed", "pv1", &backend.EditVMRequest{Kernel: str("")}, 0, backend.DirectBoot{}},
		{"set by edit", "hvm1", &backend.EditVMRequest{Kernel: str("vmlinuz"), Extra: str("quiet")}, 0,
			backend.DirectBoot{Kernel: "vmlinuz", Extra: "quiet"}},
	} {
		if step.edit != nil {
			_, err := c.Manager.EditVM(ctx, backend.Ref{Name: step.vm}, *step.edit)
			if backend.KindOf(err) != step.wantKind || (err == nil) != (step.wantKind == 0) {
				t.Fatalf("%s: edit = %v; want kind %v", step.name, err, step.wantKind)
			}
		}
		v, err := c.Manager.VM(ctx, backend.Ref{Name: step.vm})
		if err != nil {
			t.Fatal(err)
		}
		if v.DirectBoot != step.want {
			t.Errorf("%s: show Vm has %+v, want %+v", step.name, v.DirectBoot, step.want)
		}
		cfg := readVMConfig(t, repo, v.ID)
		for key, want := range map[string]string{
			agentapi.KeyKernel: step.want.Kernel, agentapi.KeyRamdisk: step.want.Ramdisk, agentapi.KeyExtra: step.want.Extra,
		} {
			if want != "" && key != agentapi.KeyExtra {
				want = under(want)
			}
			got, present := cfg[key]
			if present != (want != "") || present && got != want {
				t.Errorf("%s: vm.cfg %s = %#v (present %v), want %q (absent when empty)", step.name, key, got, present, want)
			}
		}
	}

	// A running VM keeps what it booted: a change waits until it is
	// stopped, the same value is no change.
	if _, err := c.Manager.StartVM(ctx, backend.Ref{ID: plain.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manager.EditVM(ctx, backend.Ref{ID: plain.ID}, backend.EditVMRequest{Kernel: str("vmlinuz-new")}); backend.KindOf(err) != backend.KindInvalidState {
		t.Errorf("changing the kernel of a running VM = %v; want InvalidState", err)
	}
	if _, err := c.Manager.EditVM(ctx, backend.Ref{ID: plain.ID}, backend.EditVMRequest{Kernel: str("vmlinuz"), Description: str("same kernel")}); err != nil {
		t.Errorf("giving a running VM its own kernel again: %v", err)
	}
	if got := readVMConfig(t, repo, plain.ID)[agentapi.KeyKernel]; got != under("vmlinuz") {
		t.Errorf("after the refused change vm.cfg kernel = %#v, want %q", got, under("vmlinuz"))
	}
}

package libvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
)

// metadataNS is the namespace of the element the driver keeps in a
// domain's <metadata>: which VM of which repository the domain runs, so
// that an agent restarted, or the destination of a migration, knows it
// again from libvirt alone.
const metadataNS = "urn:xenmanager:vm:1"

// vmMeta is that element.
type vmMeta struct {
	XMLName xml.Name `xml:"urn:xenmanager:vm:1 vm"`
	Repo    string   `xml:"repo,attr"`
	VM      string   `xml:"vm,attr"`
	UUID    string   `xml:"uuid,attr"` // vm.cfg's uuid, as the manager knows the VM
	Name    string   `xml:"name,attr"` // vm.cfg's name
}

// metaOfVM is the metadata of the domain of VM vmID of repository repoID
// with vm.cfg p.
func metaOfVM(repoID, vmID string, p agentapi.VMParams) vmMeta {
	return vmMeta{Repo: repoID, VM: vmID, UUID: p.String(agentapi.KeyUUID), Name: p.String(agentapi.KeyName)}
}

// buildInput is what a domain is built from.
type buildInput struct {
	kind         string // hypervisor.TypeXen, TypeQEMU or TypeTest
	repoID, vmID string
	params       agentapi.VMParams // checked vm.cfg: integer memory and vcpus
	// resolve maps a vm.cfg path to the file on this host (Env.ResolvePath).
	resolve func(string) (string, error)
	// consoleLog is the file a QEMU guest's serial console is logged to,
	// "" for none.
	consoleLog string
}

// buildDomain makes the domain XML of a VM from its vm.cfg: the shape of
// the hypervisor kind (Xen PV, PVH or HVM; QEMU; the test driver), memory
// and vCPUs with their ceilings, CPU pinning, disks and ISOs from the
// repository, VNICs on bridges, direct kernel boot or a boot order, the
// lifecycle actions, a serial console, and the metadata that names the
// VM. Every value of vm.cfg is checked here, and a bad one is an
// InvalidArgument fault that names the key and says what is accepted.
func buildDomain(in buildInput) (*libvirtxml.Domain, error) {
	p := in.params
	bad := func(format string, args ...any) error {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "vm.cfg of VM %s: "+format, append([]any{in.vmID}, args...)...)
	}
	memory, _ := p.Int(agentapi.KeyMemory)
	vcpus, _ := p.Int(agentapi.KeyVCPUs)
	maxMem := memory
	if v, ok := p.Int(agentapi.KeyMaxMem); ok && v > memory {
		maxMem = v
	}
	maxVCPUs := vcpus
	if v, ok := p.Int(agentapi.KeyMaxVCPUs); ok && v > vcpus {
		maxVCPUs = v
	}
	uuid, err := libvirtUUID(p.String(agentapi.KeyUUID), in.repoID, in.vmID)
	if err != nil {
		return nil, bad("%v", err)
	}
	meta, err := xml.Marshal(metaOfVM(in.repoID, in.vmID, p))
	if err != nil {
		return nil, bad("metadata: %v", err)
	}
	dom := &libvirtxml.Domain{
		Type:          domainType(in.kind),
		Name:          domainName(in.vmID),
		UUID:          uuid,
		Title:         titleOf(p),
		Metadata:      &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:        &libvirtxml.DomainMemory{Value: uint(maxMem), Unit: "MiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: uint(memory), Unit: "MiB"},
		VCPU:          &libvirtxml.DomainVCPU{Value: uint(maxVCPUs), Current: uint(vcpus)},
		Devices:       &libvirtxml.DomainDeviceList{},
	}
	if cpus := p.String(agentapi.KeyCPUs); cpus != "" {
		if !validCPUList(cpus) {
			return nil, bad("cpus %q is not a CPU list (accepted: numbers and ranges such as 0-1,4)", cpus)
		}
		dom.VCPU.CPUSet = cpus
	}
	for key, set := range map[string]*string{
		agentapi.KeyOnPoweroff: &dom.OnPoweroff,
		agentapi.KeyOnReboot:   &dom.OnReboot,
		agentapi.KeyOnCrash:    &dom.OnCrash,
	} {
		v := p.String(key)
		switch v {
		case "":
		case "destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart":
			*set = v
		default:
			return nil, bad("%s %q is not an action (accepted: destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart)", key, v)
		}
	}
	if dom.OnReboot == "" {
		dom.OnReboot = "restart"
	}
	if dom.OnPoweroff == "" {
		dom.OnPoweroff = "destroy"
	}
	if dom.OnCrash == "" {
		dom.OnCrash = "destroy"
	}
	if err := setOS(dom, in, bad); err != nil {
		return nil, err
	}
	if err := setDisks(dom, in, bad); err != nil {
		return nil, err
	}
	if err := setVIFs(dom, in, bad); err != nil {
		return nil, err
	}
	setConsole(dom, in)
	if in.kind == hypervisor.TypeQEMU {
		// pvpanic: a guest kernel that panics tells the hypervisor, which
		// then applies on_crash and reports the domain crashed.
		dom.Devices.Panics = []libvirtxml.DomainPanic{{Model: "isa"}}
		dom.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}}
	}
	return dom, nil
}

// domainType is the <domain type=...> of a hypervisor kind.
func domainType(kind string) string {
	switch kind {
	case hypervisor.TypeXen:
		return "xen"
	case hypervisor.TypeTest:
		return "test"
	}
	return "qemu"
}

// domainName is the libvirt name of the domain of a VM: its id, as xl and
// Oracle VM name a VM's domain.
func domainName(vmID string) string { return vmID }

// titleOf is the domain's title: the VM's display name when vm.cfg has it.
func titleOf(p agentapi.VMParams) string {
	t := p.String(agentapi.KeySimpleName)
	if strings.ContainsAny(t, "\n\r") || len(t) > 256 {
		return ""
	}
	return t
}

// libvirtUUID turns vm.cfg's uuid (32 hex digits as Oracle VM writes it,
// or the dashed form) into libvirt's form. A VM without one gets a uuid
// derived from its repository and id, the same on every host.
func libvirtUUID(cfg, repoID, vmID string) (string, error) {
	raw := strings.ReplaceAll(cfg, "-", "")
	if cfg == "" {
		sum := sha256.Sum256([]byte(repoID + "/" + vmID))
		raw = hex.EncodeToString(sum[:16])
	}
	if len(raw) != 32 {
		return "", fmt.Errorf("uuid %q is not 32 hexadecimal digits", cfg)
	}
	if _, err := hex.DecodeString(raw); err != nil {
		return "", fmt.Errorf("uuid %q is not 32 hexadecimal digits", cfg)
	}
	raw = strings.ToLower(raw)
	return raw[0:8] + "-" + raw[8:12] + "-" + raw[12:16] + "-" + raw[16:20] + "-" + raw[20:], nil
}

// validCPUList reports whether s is a CPU list of numbers and ranges
// (0-1,4), as vm.cfg's cpus and libvirt's cpuset take it.
func validCPUList(s string) bool {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return false
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 16)
			if err != nil || b < a {
				return false
			}
		}
	}
	return true
}

// setOS sets how the domain boots: a kernel of the repository (direct
// boot: kernel, ramdisk, extra, as xl's PV guests) when vm.cfg names one,
// else the boot order of vm.cfg's boot letters; and the machine type of
// the hypervisor kind and OVM_domain_type.
func setOS(dom *libvirtxml.Domain, in buildInput, bad func(string, ...any) error) error {
	p := in.params
	os := &libvirtxml.DomainOS{}
	domainKind := p.String(agentapi.KeyDomainType)
	switch in.kind {
	case hypervisor.TypeXen:
		switch domainKind {
		case "", "xen_pvm":
			os.Type = &libvirtxml.DomainOSType{Type: "xen", Machine: "xenpv"}
		case "xen_pvh":
			os.Type = &libvirtxml.DomainOSType{Type: "xenpvh", Machine: "xenpvh"}
		case "xen_hvm", "xen_hvm_pv_drivers":
			os.Type = &libvirtxml.DomainOSType{Type: "hvm", Machine: "xenfv", Arch: "x86_64"}
		default:
			return bad("OVM_domain_type %q is not known (accepted: xen_pvm, xen_pvh, xen_hvm, xen_hvm_pv_drivers)", domainKind)
		}
	default:
		os.Type = &libvirtxml.DomainOSType{Type: "hvm", Arch: "x86_64"}
		if in.kind == hypervisor.TypeQEMU {
			os.Type.Machine = "pc"
		}
	}
	kernel := p.String(agentapi.KeyKernel)
	ramdisk := p.String(agentapi.KeyRamdisk)
	extra := p.String(agentapi.KeyExtra)
	if strings.ContainsAny(extra, "\x00\n\r") || len(extra) > 4096 {
		return bad("extra is not one line of at most 4096 bytes")
	}
	if kernel == "" && ramdisk != "" {
		return bad("ramdisk %s is given without a kernel; set kernel too, or remove ramdisk", ramdisk)
	}
	if kernel != "" {
		k, err := resolveBootFile(in, agentapi.KeyKernel, kernel)
		if err != nil {
			return err
		}
		os.Kernel, os.Cmdline = k, extra
		if ramdisk != "" {
			r, err := resolveBootFile(in, agentapi.KeyRamdisk, ramdisk)
			if err != nil {
				return err
			}
			os.Initrd = r
		}
		dom.OS = os
		return nil
	}
	if in.kind == hypervisor.TypeXen && os.Type.Type == "xen" {
		// A PV guest without a kernel boots what its disk's grub says.
		dom.Bootloader = "pygrub"
		dom.OS = os
		return nil
	}
	for _, letter := range p.String(agentapi.KeyBoot) {
		var dev string
		switch letter {
		case 'c':
			dev = "hd"
		case 'd':
			dev = "cdrom"
		case 'n':
			dev = "network"
		default:
			return bad("boot %q has letter %q (accepted: c disk, d CD-ROM, n network)", p.String(agentapi.KeyBoot), letter)
		}
		os.BootDevices = append(os.BootDevices, libvirtxml.DomainBootDevice{Dev: dev})
	}
	dom.OS = os
	return nil
}

// resolveBootFile resolves a kernel or ramdisk path of vm.cfg to a regular
// file inside a repository here.
func resolveBootFile(in buildInput, key, path string) (string, error) {
	real, err := in.resolve(path)
	if err != nil {
		if f, ok := agentapi.AsFault(err); ok {
			return "", agentapi.Errorf(f.Code, "vm.cfg of VM %s: %s %s: %s", in.vmID, key, path, f.Message)
		}
		return "", err
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() {
		return "", agentapi.Errorf(agentapi.FaultNotFound, "vm.cfg of VM %s: %s %s is not a file on this server", in.vmID, key, path)
	}
	return real, nil
}

// diskEntry is one element of vm.cfg's disk list:
// file:<path>,<device>[:cdrom],<r|w|w!>; w! is a disk several domains
// write at once (a shareable disk).
type diskEntry struct {
	path, device string
	cdrom        bool
	readOnly     bool
	shared       bool
}

// parseDiskEntry reads a disk entry; only file: images are accepted.
func parseDiskEntry(s string) (diskEntry, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return diskEntry{}, fmt.Errorf("disk %q is not file:<path>,<device>[:cdrom],<r|w|w!>", s)
	}
	path, ok := strings.CutPrefix(fields[0], "file:")
	if !ok {
		return diskEntry{}, fmt.Errorf("disk %q is not a file: image (accepted: file:<path>,<device>[:cdrom],<r|w|w!>)", s)
	}
	e := diskEntry{path: path}
	e.device, e.cdrom = strings.CutSuffix(fields[1], ":cdrom")
	if !validDevice(e.device) {
		return diskEntry{}, fmt.Errorf("disk %q has device %q (accepted: xvd, hd, sd or vd and one to three letters)", s, e.device)
	}
	switch fields[2] {
	case "r":
		e.readOnly = true
	case "w":
	case "w!":
		e.shared = true
	default:
		return diskEntry{}, fmt.Errorf("disk %q has mode %q (accepted: r, w, w!)", s, fields[2])
	}
	return e, nil
}

// validDevice reports whether dev is a disk device name such as xvda.
func validDevice(dev string) bool {
	for _, prefix := range []string{"xvd", "hd", "sd", "vd"} {
		if rest, ok := strings.CutPrefix(dev, prefix); ok {
			if len(rest) < 1 || len(rest) > 3 {
				return false
			}
			for _, c := range rest {
				if c < 'a' || c > 'z' {
					return false
				}
			}
			return true
		}
	}
	return false
}

// setDisks maps vm.cfg's disks to raw files of the repository: xvdX on
// Xen's own bus, virtio vdX (and IDE CD-ROMs) under QEMU.
func setDisks(dom *libvirtxml.Domain, in buildInput, bad func(string, ...any) error) error {
	letters := map[bool]int{} // next letter per kind: false disks, true CD-ROMs
	for _, s := range stringList(in.params[agentapi.KeyDisk]) {
		e, err := parseDiskEntry(s)
		if err != nil {
			return bad("%v", err)
		}
		real, err := in.resolve(e.path)
		if err != nil {
			if f, ok := agentapi.AsFault(err); ok {
				return agentapi.Errorf(f.Code, "vm.cfg of VM %s: disk %s: %s", in.vmID, e.path, f.Message)
			}
			return err
		}
		d := libvirtxml.DomainDisk{
			Device: "disk",
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: real}},
		}
		if e.cdrom {
			d.Device = "cdrom"
		}
		if e.readOnly {
			d.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		if e.shared {
			d.Shareable = &libvirtxml.DomainDiskShareable{}
		}
		switch in.kind {
		case hypervisor.TypeXen:
			d.Target = &libvirtxml.DomainDiskTarget{Dev: e.device, Bus: "xen"}
		default:
			d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"}
			n := letters[e.cdrom]
			letters[e.cdrom]++
			if e.cdrom {
				// i440fx has one IDE controller: hdc and hdd are its second channel.
				if n > 1 {
					return bad("more than two CD-ROMs (QEMU's pc machine has two IDE slots for them)")
				}
				d.Target = &libvirtxml.DomainDiskTarget{Dev: "hd" + string(rune('c'+n)), Bus: "ide"}
			} else {
				if n >= 26 {
					return bad("more than 26 disks")
				}
				d.Target = &libvirtxml.DomainDiskTarget{Dev: "vd" + string(rune('a'+n)), Bus: "virtio"}
			}
		}
		dom.Devices.Disks = append(dom.Devices.Disks, d)
	}
	return nil
}

// setVIFs maps vm.cfg's vif entries (mac=..,bridge=..) to interfaces on
// host bridges; a VNIC without a bridge goes on xenbr0, as xl does.
func setVIFs(dom *libvirtxml.Domain, in buildInput, bad func(string, ...any) error) error {
	for _, s := range stringList(in.params[agentapi.KeyVif]) {
		mac, bridge := "", "xenbr0"
		for _, kv := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "mac":
				mac = v
			case "bridge":
				bridge = v
			case "", "type", "model", "script", "vifname", "rate":
			default:
				return bad("vif %q has key %q (accepted: mac, bridge)", s, k)
			}
		}
		if mac != "" && !validMAC(mac) {
			return bad("vif %q has mac %q (accepted: six hexadecimal pairs separated by colons)", s, mac)
		}
		if bridge == "" || strings.ContainsAny(bridge, "/ \t") || len(bridge) > 15 {
			return bad("vif %q has bridge %q (accepted: a host bridge name of at most 15 characters)", s, bridge)
		}
		iface := libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: bridge}},
		}
		if mac != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: strings.ToLower(mac)}
		}
		if in.kind == hypervisor.TypeQEMU {
			iface.Model = &libvirtxml.DomainInterfaceModel{Type: "virtio"}
		}
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, iface)
	}
	return nil
}

// validMAC reports whether s is six hexadecimal pairs separated by colons.
func validMAC(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 {
			return false
		}
		if _, err := hex.DecodeString(p); err != nil {
			return false
		}
	}
	return true
}

// setConsole gives the domain its serial console: ttyS0 under QEMU,
// logged to in.consoleLog so that a console attached late sees what the
// guest printed before; Xen's PV console (hvc0) on Xen.
func setConsole(dom *libvirtxml.Domain, in buildInput) {
	pty := &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
	if in.kind == hypervisor.TypeXen {
		dom.Devices.Consoles = []libvirtxml.DomainConsole{{Source: pty, Target: &libvirtxml.DomainConsoleTarget{Type: "xen"}}}
		return
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{Source: pty, Target: &libvirtxml.DomainSerialTarget{Port: &port}}
	if in.consoleLog != "" {
		serial.Log = &libvirtxml.DomainChardevLog{File: in.consoleLog, Append: "on"}
	}
	dom.Devices.Serials = []libvirtxml.DomainSerial{serial}
	dom.Devices.Consoles = []libvirtxml.DomainConsole{{Source: pty, Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port}}}
}

// stringList is a vm.cfg list value as strings.
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		if l != "" {
			return []string{l}
		}
	}
	return nil
}

// metaOf reads the VM a domain runs from its XML; ok is false for a
// domain this driver did not make.
func metaOf(domXML string) (vmMeta, bool) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domXML); err != nil || d.Metadata == nil {
		return vmMeta{}, false
	}
	dec := xml.NewDecoder(strings.NewReader(d.Metadata.XML))
	for {
		tok, err := dec.Token()
		if err != nil {
			return vmMeta{}, false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == metadataNS && se.Name.Local == "vm" {
			var m vmMeta
			if dec.DecodeElement(&m, &se) != nil || m.Repo == "" || m.VM == "" {
				return vmMeta{}, false
			}
			return m, true
		}
	}
}

// consoleLogOf is the log file of a domain's first serial port, "" when
// it has none.
func consoleLogOf(domXML string) string {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domXML); err != nil || d.Devices == nil {
		return ""
	}
	for _, s := range d.Devices.Serials {
		if s.Log != nil {
			return s.Log.File
		}
	}
	return ""
}

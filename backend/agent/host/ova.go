package host

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"xenmanager/backend/agent/internal/atomicfile"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/vmcfg"
)

// Imports of OVA appliances (import_virtual_disk, kind "ova") [ext:
// agentapi.ExtTemplates].
const (
	ovfExt         = ".ovf"
	maxOVFBytes    = 4 << 20
	maxOVAFiles    = 64
	maxOVADisks    = 16 // xvda to xvdp
	maxOVANICs     = 16
	maxOVAVCPUs    = 1024
	maxOVAMemMiB   = 16 << 20 // 16 TiB
	ovaNetworksKey = "OVF_networks"
)

// ova extracts the appliance to a hidden temporary directory beside
// im.dest, checks its manifest, reads its OVF descriptor, converts its
// disks to raw images and writes its vm.cfg, then renames the template's
// directory to im.dest. The temporary directory holds "src" (the archive's
// files) and "out" (what becomes the template).
func (im *importer) ova(body io.Reader) error {
	tmp, err := os.MkdirTemp(im.dir, "."+im.id+".tmp-*")
	if err != nil {
		return im.fail(err)
	}
	defer os.RemoveAll(tmp)
	src, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "out")
	if err := os.Mkdir(src, 0o700); err != nil {
		return im.fail(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		return im.fail(err)
	}
	files, err := im.extractOVA(body, src)
	if err != nil {
		return im.fail(err)
	}
	var ovfs, manifests []string
	for _, f := range files {
		switch {
		case strings.HasSuffix(strings.ToLower(f), ovfExt):
			ovfs = append(ovfs, f)
		case strings.HasSuffix(f, manifestExt):
			manifests = append(manifests, f)
		}
	}
	switch {
	case len(ovfs) == 0:
		return im.badOVA("holds no OVF descriptor (no .ovf file at its top)")
	case len(ovfs) > 1:
		return im.badOVA(fmt.Sprintf("holds %d OVF descriptors (%s); an appliance has one", len(ovfs), strings.Join(ovfs, ", ")))
	case len(manifests) > 1:
		return im.badOVA(fmt.Sprintf("holds %d manifests (%s); an appliance has at most one", len(manifests), strings.Join(manifests, ", ")))
	}
	checked, err := im.checkManifests(src)
	if err != nil {
		return im.fail(err)
	}
	if len(manifests) == 1 {
		for _, f := range files {
			if !checked[f] && !isManifest(f) && !strings.HasSuffix(f, ".cert") {
				return im.badOVA(fmt.Sprintf("manifest %s does not list %s; every file of an appliance must be listed", manifests[0], f))
			}
		}
	}
	app, err := im.readOVF(filepath.Join(src, ovfs[0]), ovfs[0])
	if err != nil {
		return im.fail(err)
	}
	params, err := im.convertDisks(app, src, out)
	if err != nil {
		return im.fail(err)
	}
	var cfg bytes.Buffer
	if err := vmcfg.Write(&cfg, params); err != nil {
		return im.badOVA(fmt.Sprintf("its descriptor gives values vm.cfg cannot hold: %v", err))
	}
	if err := atomicfile.Write(filepath.Join(out, vmConfigFile), cfg.Bytes(), 0o644); err != nil {
		return im.fail(err)
	}
	if err := syncDir(out); err != nil {
		return im.fail(err)
	}
	if err := im.ctx.Err(); err != nil {
		return im.fail(err)
	}
	if err := os.Rename(out, im.dest); err != nil {
		if _, serr := os.Lstat(im.dest); serr == nil {
			return errTemplateExists(im.repoID, im.id)
		}
		return im.fail(err)
	}
	return nil
}

// badOVA is the fault of an appliance refused for what it holds.
func (im *importer) badOVA(why string) error {
	return agentapi.Errorf(agentapi.FaultInvalidArgument, "appliance %s %s", im.url.Redacted(), why)
}

// extractOVA unpacks the tar archive body into dir: regular files at its
// top only, with plain names, at most maxOVAFiles of them, the descriptor
// and manifest of bounded size. It returns the names in archive order.
// The rest of the body after the archive's end is read too.
func (im *importer) extractOVA(body io.Reader, dir string) ([]string, error) {
	br := bufio.NewReader(body)
	if magic, err := br.Peek(2); err == nil && bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return nil, im.badOVA("is gzip-compressed; an OVA is an uncompressed tar archive")
	}
	tr := tar.NewReader(br)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, im.badArchive(err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeGNUSparse {
			return nil, im.badOVA(fmt.Sprintf("holds %q, which is %s; an appliance holds regular files only", hdr.Name, entryKind(hdr.Typeflag)))
		}
		name, err := ovaFileName(hdr.Name)
		if err != nil {
			return nil, im.badOVA(err.Error())
		}
		lower := strings.ToLower(name)
		if strings.HasSuffix(lower, ovfExt) && hdr.Size > maxOVFBytes {
			return nil, im.badOVA(fmt.Sprintf("has a descriptor %s of %d bytes; at most %d are accepted", name, hdr.Size, maxOVFBytes))
		}
		if isManifest(name) && hdr.Size > maxManifestBytes {
			return nil, im.badOVA(fmt.Sprintf("has a manifest %s of %d bytes; at most %d are accepted", name, hdr.Size, maxManifestBytes))
		}
		if len(names) == maxOVAFiles {
			return nil, im.badOVA(fmt.Sprintf("holds more than %d files", maxOVAFiles))
		}
		if err := writeEntry(filepath.Join(dir, name), tr); err != nil {
			return nil, im.badEntry(hdr.Name, err)
		}
		names = append(names, name)
	}
	_, err := io.Copy(io.Discard, br)
	if err != nil && !isDownloadError(err) {
		return nil, im.badArchive(err)
	}
	return names, err
}

// entryKind names a tar entry type for faults.
func entryKind(t byte) string {
	if t == tar.TypeDir {
		return "a directory"
	}
	return entryType(t)
}

// ovaFileName checks the name of a file of an appliance: a plain name at
// the archive's top ("./x" too), no hidden name, no control character.
func ovaFileName(name string) (string, error) {
	local, err := archiveName(name)
	if err != nil {
		return "", err
	}
	switch {
	case local == "" || strings.ContainsRune(local, filepath.Separator):
		return "", fmt.Errorf("holds %q, which is not at the archive's top; an appliance's files are", name)
	case strings.HasPrefix(local, ".") || len(local) > 255:
		return "", fmt.Errorf("holds %q; hidden names and names over 255 bytes are not accepted", name)
	case strings.IndexFunc(local, unicode.IsControl) >= 0:
		return "", fmt.Errorf("holds a name with a control character")
	}
	return local, nil
}

// The OVF descriptor, as far as it is read. Element and attribute names
// match in any namespace (ovf:, rasd:, sasd:, epasd:), as encoding/xml
// matches a tag without one.
type ovfEnvelope struct {
	XMLName     xml.Name     `xml:"Envelope"`
	Files       []ovfFile    `xml:"References>File"`
	Disks       []ovfDisk    `xml:"DiskSection>Disk"`
	Networks    []ovfNetwork `xml:"NetworkSection>Network"`
	Systems     []ovfSystem  `xml:"VirtualSystem"`
	Collections []struct{}   `xml:"VirtualSystemCollection"`
}

type ovfFile struct {
	ID          string `xml:"id,attr"`
	Href        string `xml:"href,attr"`
	Compression string `xml:"compression,attr"`
	ChunkSize   string `xml:"chunkSize,attr"`
}

type ovfDisk struct {
	DiskID   string `xml:"diskId,attr"`
	FileRef  string `xml:"fileRef,attr"`
	Capacity string `xml:"capacity,attr"`
	Units    string `xml:"capacityAllocationUnits,attr"`
	Format   string `xml:"format,attr"`
}

type ovfNetwork struct {
	Name string `xml:"name,attr"`
}

type ovfSystem struct {
	ID    string    `xml:"id,attr"`
	Name  string    `xml:"Name"`
	OS    []string  `xml:"OperatingSystemSection>Description"`
	Items []ovfItem `xml:"VirtualHardwareSection>Item"`
	// OVF 2's storage and Ethernet items carry the same fields.
	StorageItems  []ovfItem `xml:"VirtualHardwareSection>StorageItem"`
	EthernetItems []ovfItem `xml:"VirtualHardwareSection>EthernetPortItem"`
}

type ovfItem struct {
	ResourceType    string   `xml:"ResourceType"`
	VirtualQuantity string   `xml:"VirtualQuantity"`
	AllocationUnits string   `xml:"AllocationUnits"`
	HostResource    []string `xml:"HostResource"`
	Connection      []string `xml:"Connection"`
}

// CIM resource types of the items read.
const (
	resourceCPU      = "3"
	resourceMemory   = "4"
	resourceEthernet = "10"
	resourceDisk     = "17"
)

// appliance is what an OVF descriptor says, checked.
type appliance struct {
	name     string
	osType   string
	memMiB   int64
	vcpus    int64
	disks    []applianceDisk
	networks []string // one per NIC, its network's name ("" when none)
}

type applianceDisk struct {
	diskID   string
	file     string // the archive's file, "" for an empty disk
	format   string // as the descriptor says: a qemu-img format, or "" when it does not
	capacity int64  // bytes
}

// readOVF reads and checks the descriptor at path (named name in the
// archive): UTF-8 XML without a DTD or entity declarations, one virtual
// system, memory, vCPUs, disks whose files the archive holds.
func (im *importer) readOVF(path, name string) (*appliance, error) {
	bad := func(format string, args ...any) error {
		return im.badOVA(fmt.Sprintf("descriptor %s: %s", name, fmt.Sprintf(format, args...)))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxOVFBytes {
		return nil, bad("larger than %d bytes", maxOVFBytes)
	}
	// A first pass refuses what a descriptor never needs: a DTD, whose
	// entities could expand or point elsewhere.
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad("not well-formed XML (UTF-8 only): %v", err)
		}
		if d, ok := tok.(xml.Directive); ok {
			word, _, _ := strings.Cut(strings.TrimSpace(string(d)), " ")
			return nil, bad("holds a <!%s ...> declaration; DTDs and entities are not accepted", word)
		}
	}
	var env ovfEnvelope
	if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&env); err != nil {
		return nil, bad("not an OVF envelope: %v", err)
	}
	if len(env.Collections) > 0 || len(env.Systems) != 1 {
		return nil, bad("describes %d virtual systems%s; an appliance of one virtual system is accepted",
			len(env.Systems), map[bool]string{true: " in a collection", false: ""}[len(env.Collections) > 0])
	}
	sys := env.Systems[0]
	app := &appliance{name: strings.TrimSpace(sys.Name), vcpus: 1}
	if app.name == "" {
		app.name = sys.ID
	}
	if len(sys.OS) > 0 {
		app.osType = strings.TrimSpace(sys.OS[0])
	}
	files := map[string]ovfFile{}
	for _, f := range env.Files {
		if f.Compression != "" || f.ChunkSize != "" {
			return nil, bad("file %s is compressed or chunked; only plain files are accepted", f.Href)
		}
		files[f.ID] = f
	}
	disks := map[string]ovfDisk{}
	for _, d := range env.Disks {
		disks[d.DiskID] = d
	}
	items := append(append(append([]ovfItem{}, sys.Items...), sys.StorageItems...), sys.EthernetItems...)
	memSeen := false
	var diskOrder []string
	for _, it := range items {
		switch strings.TrimSpace(it.ResourceType) {
		case resourceCPU:
			n, err := strconv.ParseInt(strings.TrimSpace(it.VirtualQuantity), 10, 64)
			if err != nil || n < 1 || n > maxOVAVCPUs {
				return nil, bad("the CPU item's VirtualQuantity %q is not a count of 1 to %d", it.VirtualQuantity, maxOVAVCPUs)
			}
			app.vcpus = n
		case resourceMemory:
			mib, err := quantityMiB(it.VirtualQuantity, it.AllocationUnits, "byte * 2^20")
			if err != nil || mib < 1 || mib > maxOVAMemMiB {
				return nil, bad("the memory item (%q of %q) is not a size of 1 MiB to %d MiB", it.VirtualQuantity, it.AllocationUnits, int64(maxOVAMemMiB))
			}
			app.memMiB, memSeen = mib, true
		case resourceEthernet:
			network := ""
			if len(it.Connection) > 0 {
				network = strings.TrimSpace(it.Connection[0])
			}
			app.networks = append(app.networks, network)
		case resourceDisk:
			for _, hr := range it.HostResource {
				hr = strings.TrimSpace(hr)
				id, ok := strings.CutPrefix(hr, "ovf:/disk/")
				if !ok {
					id, ok = strings.CutPrefix(hr, "/disk/")
				}
				if !ok {
					return nil, bad("a disk item's HostResource %q names no disk of the DiskSection (ovf:/disk/<id>)", hr)
				}
				diskOrder = append(diskOrder, id)
			}
		}
	}
	if !memSeen {
		return nil, bad("gives no memory size (an Item of ResourceType 4)")
	}
	if len(diskOrder) == 0 {
		for _, d := range env.Disks {
			diskOrder = append(diskOrder, d.DiskID)
		}
	}
	switch {
	case len(diskOrder) == 0:
		return nil, bad("names no disk")
	case len(diskOrder) > maxOVADisks:
		return nil, bad("names %d disks; at most %d are accepted", len(diskOrder), maxOVADisks)
	case len(app.networks) > maxOVANICs:
		return nil, bad("names %d network adapters; at most %d are accepted", len(app.networks), maxOVANICs)
	}
	for _, id := range diskOrder {
		d, ok := disks[id]
		if !ok {
			return nil, bad("a disk item names disk %q, which its DiskSection does not declare", id)
		}
		capacity, err := quantityBytes(d.Capacity, d.Units, "byte")
		if err != nil || capacity < 1 || capacity > MaxDiskMiB<<20 {
			return nil, bad("disk %s has a capacity (%q of %q) out of range (1 byte to %d MiB)", id, d.Capacity, d.Units, int64(MaxDiskMiB))
		}
		ad := applianceDisk{diskID: id, capacity: capacity, format: ovfDiskFormat(d.Format)}
		if d.FileRef != "" {
			f, ok := files[d.FileRef]
			if !ok {
				return nil, bad("disk %s names file %q, which its References do not declare", id, d.FileRef)
			}
			href, err := ovaFileName(f.Href)
			if err != nil || strings.Contains(f.Href, ":") {
				return nil, bad("file %s has href %q; only the name of a file of the archive is accepted", f.ID, f.Href)
			}
			if fi, err := os.Lstat(filepath.Join(filepath.Dir(path), href)); err != nil || !fi.Mode().IsRegular() {
				return nil, bad("disk %s is file %s, which the archive does not hold", id, href)
			}
			ad.file = href
		}
		app.disks = append(app.disks, ad)
	}
	return app, nil
}

// ovfDiskFormat maps the format URI of an OVF disk to a qemu-img format,
// "" when it names none that is known.
func ovfDiskFormat(uri string) string {
	u := strings.ToLower(uri)
	switch {
	case strings.Contains(u, "vmdk"):
		return "vmdk"
	case strings.Contains(u, "qcow"):
		return "qcow2"
	case strings.Contains(u, "vhd"):
		return "vpc"
	case strings.Contains(u, "raw"):
		return "raw"
	}
	return ""
}

// quantityMiB is quantity in units (DMTF's programmatic units, such as
// "byte * 2^20", or "MegaBytes"), in MiB, rounded up; def when units is
// empty.
func quantityMiB(quantity, units, def string) (int64, error) {
	b, err := quantityBytes(quantity, units, def)
	if err != nil {
		return 0, err
	}
	return (b + 1<<20 - 1) >> 20, nil
}

// quantityBytes is quantity in units, in bytes.
func quantityBytes(quantity, units, def string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(quantity), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count", quantity)
	}
	u := strings.ToLower(strings.Join(strings.Fields(units), ""))
	if u == "" {
		u = strings.ToLower(strings.Join(strings.Fields(def), ""))
	}
	shift := -1
	switch u {
	case "byte", "bytes":
		shift = 0
	case "kilobytes", "kb":
		shift = 10
	case "megabytes", "mb":
		shift = 20
	case "gigabytes", "gb":
		shift = 30
	case "terabytes", "tb":
		shift = 40
	default:
		if exp, ok := strings.CutPrefix(u, "byte*2^"); ok {
			if e, err := strconv.Atoi(exp); err == nil && e >= 0 && e <= 50 {
				shift = e
			}
		}
	}
	if shift < 0 {
		return 0, fmt.Errorf("units %q are not known", units)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%d %s is too large", n, units)
	}
	return n << shift, nil
}

// imageMagic returns the qemu-img format an image's first bytes show, ""
// when none does. A VMDK descriptor (text naming its extents in other
// files) is refused.
func imageMagic(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("KDMV")):
		return "vmdk", nil
	case bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return "", &badImage{"it is a VMDK descriptor, whose data lies in other files; only monolithic VMDK images are accepted"}
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return "qcow2", nil
	case bytes.HasPrefix(head, []byte("conectix")):
		return "vpc", nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return "", &badImage{"it is a VHDX image, which is not accepted"}
	}
	// A fixed VHD has its footer only at the end.
	if fi, err := f.Stat(); err == nil && fi.Size() >= 512 {
		foot := make([]byte, 8)
		if _, err := f.ReadAt(foot, fi.Size()-512); err == nil && string(foot) == "conectix" {
			return "vpc", nil
		}
	}
	return "", nil
}

// convertDisks turns each disk of app into out/<n>.img, a raw image, and
// returns the template's vm.cfg.
func (im *importer) convertDisks(app *appliance, src, out string) (agentapi.VMParams, error) {
	im.op.SetRound(agentapi.PhaseConverting, 0, int64(len(app.disks)))
	var diskEntries []string
	for n, d := range app.disks {
		if err := im.ctx.Err(); err != nil {
			return nil, err
		}
		img := strconv.Itoa(n) + DiskExt
		dst := filepath.Join(out, img)
		if err := im.convertDisk(d, src, dst); err != nil {
			return nil, err
		}
		diskEntries = append(diskEntries, fmt.Sprintf("file:%s/%s/%s/%s,xvd%c,w", im.mountPoint, DirTemplates, im.id, img, 'a'+n))
		im.op.Set(agentapi.PhaseConverting, int64(n+1))
	}
	params := agentapi.VMParams{
		agentapi.KeyName:       im.id,
		agentapi.KeySimpleName: app.name,
		agentapi.KeyMemory:     app.memMiB,
		agentapi.KeyMaxMem:     app.memMiB,
		agentapi.KeyVCPUs:      app.vcpus,
		agentapi.KeyMaxVCPUs:   app.vcpus,
		agentapi.KeyDisk:       diskEntries,
		agentapi.KeyBoot:       "c",
	}
	if app.osType != "" {
		params[agentapi.KeyOSType] = app.osType
	}
	if len(app.networks) > 0 {
		vifs := make([]string, len(app.networks))
		for i := range vifs {
			vifs[i] = "" // no MAC and no bridge: the manager gives both
		}
		params[agentapi.KeyVif] = vifs
		params[ovaNetworksKey] = app.networks
	}
	return params, nil
}

// convertDisk makes the raw image dst of the appliance's disk d.
func (im *importer) convertDisk(d applianceDisk, src, dst string) error {
	bad := func(why string) error {
		return im.badOVA(fmt.Sprintf("disk %s (%s): %s; accepted formats: %s", d.diskID, d.file, why, acceptedDiskFormats))
	}
	if d.file == "" { // an empty disk: a sparse raw image of its capacity
		return im.createEmpty(dst, d.capacity)
	}
	path := filepath.Join(src, d.file)
	format, err := imageMagic(path)
	var bi *badImage
	if errors.As(err, &bi) {
		return bad(bi.why)
	}
	if err != nil {
		return err
	}
	switch {
	case format == "" && (d.format == "" || d.format == "raw"):
		format = "raw"
	case format == "":
		return bad(fmt.Sprintf("the descriptor says %s, but the file is no such image", d.format))
	case d.format != "" && d.format != format:
		return bad(fmt.Sprintf("the descriptor says %s, but the file is a %s image", d.format, format))
	}
	if format == "raw" {
		// Nothing to convert: the file becomes the image, at least as
		// large as the capacity the descriptor gives.
		if err := os.Rename(path, dst); err != nil {
			return err
		}
		if fi, err := os.Stat(dst); err == nil && fi.Size() < d.capacity {
			return os.Truncate(dst, d.capacity)
		}
		return nil
	}
	// The raw image is written sparse (qemu-img leaves zeros unwritten),
	// so its virtual size is no measure of the room it takes: a full file
	// system shows as qemu-img fails.
	if _, err := checkImage(im.ctx, path, format); errors.As(err, &bi) {
		return bad(bi.why)
	} else if err != nil {
		return im.qemuImgFault(d, err)
	}
	if err := convertToRaw(im.ctx, path, format, dst); err != nil {
		return im.qemuImgFault(d, err)
	}
	return os.Remove(path) // the room it took is needed no longer
}

// qemuImgFault is the fault of a qemu-img run that failed: what qemu-img
// printed goes to the agent's log, not to the caller.
func (im *importer) qemuImgFault(d applianceDisk, err error) error {
	if im.ctx.Err() != nil {
		return err
	}
	var qe *qemuImgError
	if errors.As(err, &qe) {
		if qe.noSpace() {
			return agentapi.Errorf(agentapi.FaultInsufficientResources,
				"repository %s is full: disk %s of appliance %s does not fit once converted", im.repoID, d.diskID, im.url.Redacted())
		}
		im.host.log.Warn("qemu-img failed on an appliance's disk", "import", im.id, "disk", d.diskID, "err", err)
		return im.badOVA(fmt.Sprintf("disk %s (%s) cannot be read by qemu-img; the image is damaged or not of an accepted format (%s); the agent's log has qemu-img's words", d.diskID, d.file, acceptedDiskFormats))
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "disk %s of appliance %s: %v", d.diskID, im.url.Redacted(), err)
}

// createEmpty makes a sparse file of size bytes at path.
func (im *importer) createEmpty(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

package agentapi

// Method names of templates, copies and disk resizing [ext]: the calls
// behind the manager's templates, clones and imports of appliances
// (docs/agent-protocol.md, "Templates and copies"). An agent serves them
// when its get_api_version lists ExtTemplates.
const (
	MethodCreateTemplate    = "create_template"
	MethodGetTemplateConfig = "get_template_config"
	MethodDeleteTemplate    = "delete_template"
	MethodListTemplates     = "list_templates"
	MethodCopyFile          = "copy_file"
	MethodResizeVirtualDisk = "resize_virtual_disk"
)

// ExtTemplates: the agent serves create_template, get_template_config,
// delete_template, list_templates, copy_file and resize_virtual_disk,
// imports kind ImportKindOVA, and checks the manifest a template archive
// carries. A manager refuses template, clone and disk-resize commands on a
// pool whose utility servers' agents do not list it.
const ExtTemplates = "templates"

// ImportKindOVA is the kind of import_virtual_disk that imports an OVA
// appliance (an uncompressed tar of an OVF descriptor, an optional
// manifest and disk images) into Templates/<id>/, converting its disks to
// raw images [ext: ExtTemplates].
const ImportKindOVA = "ova"

// Modes of copy_file, its option.mode.
const (
	// CopySparse copies the data extents only: holes stay holes (and a
	// block of zeros may become one); the copy has the source's size.
	CopySparse = "sparse"
	// CopyAllocated writes every block of the copy: no holes.
	CopyAllocated = "allocated"
	// CopyReflink shares the source's blocks (FICLONE), on a file system
	// that can; InvalidState elsewhere.
	CopyReflink = "reflink"
	// CopyMove renames the source within its file system; InvalidArgument
	// across file systems.
	CopyMove = "move"
)

// CopyModes are the accepted values of copy_file's option.mode, in the
// order faults list them.
var CopyModes = []string{CopySparse, CopyAllocated, CopyReflink, CopyMove}

// CopyOptionMode is the member of copy_file's option struct that holds
// one of CopyModes.
const CopyOptionMode = "mode"

// CopyOption is copy_file's option.
type CopyOption struct {
	Mode string // one of CopyModes
}

// Struct is the option as it travels.
func (o CopyOption) Struct() map[string]any {
	return map[string]any{CopyOptionMode: o.Mode}
}

// Phases of the progress of copy_file (ProgressCopy + the base name of
// dst, in bytes) and of an import of kind ImportKindOVA or
// ImportKindTemplate (ProgressImport + id) after its download.
const (
	PhaseCopying    = "copying"
	PhaseChecking   = "checking"
	PhaseConverting = "converting"
)

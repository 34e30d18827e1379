package commands

import (
	"slices"

	"xenmanager/backend"
)

// Filters of list, shared by the types that take them.
var (
	filterName       = Attr{Name: "name", Kind: AttrString, Help: "only objects whose name matches: a name or a glob pattern (web*, db-?, [ab]*)"}
	filterServer     = Attr{Name: "server", Kind: AttrObject, Object: "Server", Help: "only objects on this server (name, pattern or id)"}
	filterServerPool = Attr{Name: "serverPool", Kind: AttrObject, Object: "ServerPool", Help: "only objects in this pool (name, pattern or id)"}
	filterRepository = Attr{Name: "repository", Kind: AttrObject, Object: "Repository", Help: "only objects in this repository (name, pattern or id)"}
	filterTag        = Attr{Name: "tag", Kind: AttrObject, Object: "Tag", Help: "only objects carrying this tag (name, pattern or id)"}
)

// listOrder is the order help has always listed list's types in; a type
// not named here follows them.
var listOrder = []string{"ServerPool", "Server", "Repository", "Vm", "Tag", "Network", "VirtualDisk", "VirtualCdrom", "VmDiskMapping",
	"Vnic", "Manager", "Job", "Event", "User", "SshKey", "AuditRecord"}

// verbList declares list on every type with a List: taggable types also
// filter by tag=.
func verbList() *VerbInfo {
	v := &VerbInfo{Name: "list", Help: "List objects of a type, one '  id:<id>  name:<name>' row each; filters narrow the list."}
	for _, t := range typesWhere(func(t *objectType) bool { return t.List != nil }, listOrder...) {
		s := *t.List
		s.Type = t.Name
		s.Attrs = listAttrs(t)
		v.Specs = append(v.Specs, &s)
	}
	return v
}

// listAttrs are the filters list takes on t: its own, and tag= when t is
// taggable.
func listAttrs(t *objectType) []Attr {
	if t.taggable() {
		return append(slices.Clip(t.List.Attrs), filterTag)
	}
	return t.List.Attrs
}

// listFilter reads list's filters; those the type does not take are empty.
func listFilter(x *Exec) backend.Filter {
	return backend.Filter{
		Name:       x.Str("name"),
		Status:     x.Str("status"),
		Server:     objectRef(x.Str("server")),
		Pool:       objectRef(x.Str("serverPool")),
		Repository: objectRef(x.Str("repository")),
		Tag:        objectRef(x.Str("tag")),
	}
}

package host

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"xenmanager/backend/agent/hypervisor"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/agentapi/importnet"
)

// Imports (import_virtual_disk).
const (
	// ISOExt is the extension of an ISO image in ISOs.
	ISOExt = ".iso"
	// isoMagicOffset is where an ISO 9660 image has the standard identifier
	// of its first volume descriptor (sector 16, after the type byte), and
	// a UDF image that of its volume recognition sequence.
	isoMagicOffset = 32769
	isoMagicLen    = 5

	// Timeouts of an import's download: reaching the server, the TLS
	// handshake, and the answer's headers. The body takes as long as it
	// takes; the call's context ends it.
	importDialTimeout   = 30 * time.Second
	importTLSTimeout    = 30 * time.Second
	importHeaderTimeout = time.Minute

	phaseDownloading = "downloading"
)

// isoMagics are the identifiers an ISO 9660 or UDF image has at
// isoMagicOffset.
var isoMagics = []string{"CD001", "BEA01", "NSR02", "NSR03"}

// importKinds are the accepted values of option.kind, as faults list them.
var importKinds = []string{agentapi.ImportKindDisk, agentapi.ImportKindISO, agentapi.ImportKindTemplate, agentapi.ImportKindOVA}

// importKindsText lists the accepted kinds for fault messages: "disk",
// "iso", "template" or "ova".
func importKindsText() string {
	q := make([]string, len(importKinds))
	for i, k := range importKinds {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// maxImportRedirects bounds the redirects an import follows.
const maxImportRedirects = 10

// importClient is the HTTP client of one import. It connects only to
// addresses policy lets it reach, checked at every connection, so that
// each redirect and each DNS answer is checked where it is used (a name
// that resolves elsewhere the second time gains nothing); it ignores the
// proxy environment, whose proxy would connect for it; it trusts the
// system's roots for https, leaves bodies as the server sends them (no
// transparent gzip, so that Content-Length is the size written), and
// bounds only the steps before the body. Its connections are its own: a
// connection kept from an import under another policy is never reused.
func importClient(allowed []netip.Prefix) *http.Client {
	dialer := &net.Dialer{Timeout: importDialTimeout, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error { return checkDialAddress(address, allowed) }}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   importTLSTimeout,
			ResponseHeaderTimeout: importHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxImportRedirects {
				return errTooManyRedirects
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errRedirectScheme
			}
			return nil
		},
	}
}

var (
	errTooManyRedirects = fmt.Errorf("it was redirected more than %d times", maxImportRedirects)
	errRedirectScheme   = errors.New("it was redirected to a URL that is not http:// or https://")
	errOwnAddresses     = errors.New("this server cannot list its own addresses, which imports may not reach")
)

// checkDialAddress is the dialer's check of each address ("ip:port") it
// is about to connect to: nil or an *importnet.RefusedError.
func checkDialAddress(address string, allowed []netip.Prefix) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial address %q: %w", address, err)
	}
	own, err := ownAddresses()
	if err != nil {
		return errOwnAddresses
	}
	return importnet.Policy{Allowed: allowed, Own: own}.Check(ap.Addr())
}

// ownAddresses are the addresses of this host's interfaces, read at each
// connection since they change.
func ownAddresses() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}

// ImportVirtualDisk downloads url (http or https) into the repository under
// id, as kind says: "disk" to VirtualDisks/<id>.img, "iso" to
// ISOs/<id>.iso (refused unless it is an ISO 9660 or UDF image), "template"
// to Templates/<id>/ (a tar archive, gzip-compressed or not, of vm.cfg and
// its disk images, at its top or in its only directory; only regular files
// and directories, no absolute names and no ".."; its vm.cfg must give the
// memory and at least one disk).
//
// An id that exists is InvalidState; an id being created or imported is
// Busy. Disks and ISOs share ids, as delete_virtual_disk names both, so an
// imported ISO cannot take the id of a disk nor an imported disk that of an
// ISO; and since the progress key import:<id> names no repository, an id is
// imported once at a time on this server. The download goes to a hidden temporary file or
// directory beside the destination, which gets its name only when complete
// and checked; nothing is left behind on failure or when ctx ends (the call
// was dropped).
//
// Progress is under "import:<id>", phase "downloading", in bytes of the
// download; Total is its Content-Length, or 0 while unknown, and equals Done
// once the import succeeded. A Content-Length beyond the repository's free
// space is refused before downloading, and a full file system is
// InsufficientResources; an HTTP status other than 2xx is NotFound for 404
// and 410, InvalidArgument for other 4xx, InternalError otherwise.
//
// The download connects only to addresses importnet lets it reach, with
// allowed as its allowed networks, checked at every connection; a refused
// address is InvalidArgument. Faults never carry what the remote server
// said: no status line, no error text of a connection, only the status
// code and what this agent concluded.
func (h *Host) ImportVirtualDisk(ctx context.Context, rawURL, id, repoID, kind string, allowed []netip.Prefix) error {
	u, err := parseImportURL(rawURL)
	if err != nil {
		return err
	}
	var dirName, what string
	switch kind {
	case agentapi.ImportKindDisk:
		dirName, what = DirDisks, "disk"
	case agentapi.ImportKindISO:
		dirName, what = DirISOs, "ISO"
	case agentapi.ImportKindTemplate:
		dirName, what = DirTemplates, "template"
	case agentapi.ImportKindOVA:
		dirName, what = DirTemplates, "appliance"
	case "":
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "option.kind is missing: give %s", importKindsText())
	default:
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"option.kind %q is not known: give %s", kind, importKindsText())
	}

	h.mu.Lock()
	r, err := h.repoLocked(repoID)
	if err == nil {
		err = checkID(what+" id", id)
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	im := &importer{
		host: h, ctx: ctx, url: u, allowed: allowed, id: id, repoID: repoID, kind: kind, what: what,
		mountPoint: r.MountPoint,
		dir:        filepath.Join(h.mountPath(r), dirName),
		progKey:    agentapi.ProgressImport + id,
	}
	im.dest = filepath.Join(im.dir, id)
	key := diskKey(repoID, id)
	switch kind {
	case agentapi.ImportKindDisk:
		im.dest += DiskExt
	case agentapi.ImportKindISO:
		im.dest += ISOExt
	case agentapi.ImportKindTemplate, agentapi.ImportKindOVA:
		key = templateKey(repoID, id)
	}
	if err := h.importFreeLocked(im, r, key); err != nil {
		h.mu.Unlock()
		return err
	}
	h.diskOps[key] = im.progKey
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.diskOps, key)
		h.mu.Unlock()
	}()

	im.op = h.progress.Start(im.progKey, phaseDownloading, 0)
	err = im.run()
	im.op.Finish(err)
	return err
}

// parseImportURL accepts absolute http and https URLs with a host.
func parseImportURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, agentapi.Errorf(agentapi.FaultInvalidArgument, "url %q is not valid: %v", raw, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, agentapi.Errorf(agentapi.FaultInvalidArgument,
			"url %s cannot be downloaded: only http:// and https:// URLs are accepted", u.Redacted())
	}
	if u.Host == "" {
		return nil, agentapi.Errorf(agentapi.FaultInvalidArgument, "url %s names no host", u.Redacted())
	}
	return u, nil
}

// importFreeLocked checks that im's id is neither taken nor busy in r; key
// is its entry in h.diskOps. h.mu must be held.
func (h *Host) importFreeLocked(im *importer, r RepoState, key string) error {
	if op, busy := h.diskOps[key]; busy {
		return agentapi.Errorf(agentapi.FaultBusy,
			"%s %s of repository %s is being created or imported (%s); wait for it to end", im.what, im.id, im.repoID, op)
	}
	for _, op := range h.diskOps {
		if op == im.progKey {
			return agentapi.Errorf(agentapi.FaultBusy,
				"%s is already being imported on this server (%s); wait for it to end", im.id, op)
		}
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	root := h.mountPath(r)
	switch im.kind {
	case agentapi.ImportKindTemplate, agentapi.ImportKindOVA:
		if exists(im.dest) {
			return errTemplateExists(im.repoID, im.id)
		}
	default:
		if exists(filepath.Join(root, DirDisks, im.id+DiskExt)) {
			return errDiskExists(im.repoID, im.id)
		}
		if exists(filepath.Join(root, DirISOs, im.id+ISOExt)) {
			return errISOExists(im.repoID, im.id)
		}
	}
	return nil
}

func errISOExists(repoID, id string) error {
	return agentapi.Errorf(agentapi.FaultInvalidState,
		"ISO %s already exists in repository %s; delete_virtual_disk it first or use another id", id, repoID)
}

func errTemplateExists(repoID, id string) error {
	return agentapi.Errorf(agentapi.FaultInvalidState,
		"template %s already exists in repository %s; delete it first or use another id", id, repoID)
}

// importer is one import_virtual_disk call on its way.
type importer struct {
	host    *Host
	ctx     context.Context
	url     *url.URL
	allowed []netip.Prefix // where the download may reach what importnet refuses
	id      string
	repoID  string
	kind    string // agentapi.ImportKind*
	what    string // "disk", "ISO", "template", "appliance", for messages
	// mountPoint is the repository's mount point, where vm.cfg names
	// the disks of an imported appliance.
	mountPoint string
	dir        string // the repository directory the import goes to
	dest       string // its final path
	progKey    string
	op         hypervisor.Operation
}

// downloadError is a failure to read the download, as opposed to one to
// write it.
type downloadError struct{ err error }

func (e *downloadError) Error() string { return e.err.Error() }
func (e *downloadError) Unwrap() error { return e.err }

// progressReader counts what is read from the download into the
// operation's progress, and marks read failures as downloadErrors.
type progressReader struct {
	r    io.Reader
	op   hypervisor.Operation
	done int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.op.Set(phaseDownloading, p.done)
	}
	if err != nil && err != io.EOF {
		err = &downloadError{err}
	}
	return n, err
}

func (im *importer) run() error {
	req, err := http.NewRequestWithContext(im.ctx, http.MethodGet, im.url.String(), nil)
	if err != nil {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "url %s cannot be requested: %v", im.url.Redacted(), err)
	}
	req.Header.Set("User-Agent", "xensim-agent/"+AgentVersion)
	client := importClient(im.allowed)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		if im.ctx.Err() != nil {
			return im.stopped()
		}
		return im.requestFault(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		code := agentapi.FaultInternalError
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			code = agentapi.FaultNotFound
		case resp.StatusCode >= 400 && resp.StatusCode <= 499:
			code = agentapi.FaultInvalidArgument
		}
		// The code and its standard text, never the server's own reason
		// phrase, which is whatever it chose to say.
		status := strconv.Itoa(resp.StatusCode)
		if text := http.StatusText(resp.StatusCode); text != "" {
			status += " " + text
		}
		return agentapi.Errorf(code, "cannot download %s: the server answered HTTP %s", im.url.Redacted(), status)
	}
	total := max(resp.ContentLength, 0)
	if total > 0 {
		if fsTotal, free, err := diskSpaceMiB(im.dir); err == nil && fsTotal > 0 && free<<20 < total {
			return agentapi.Errorf(agentapi.FaultInsufficientResources,
				"repository %s has %d MiB free, %s (%d MiB) does not fit; free space first",
				im.repoID, free, im.url.Redacted(), (total+1<<20-1)>>20)
		}
	}
	im.op.SetRound(phaseDownloading, 0, total)
	body := &progressReader{r: resp.Body, op: im.op}
	switch im.kind {
	case agentapi.ImportKindTemplate:
		err = im.template(body)
	case agentapi.ImportKindOVA:
		err = im.ova(body)
	default:
		err = im.file(body)
	}
	if err != nil {
		return err
	}
	if total == 0 || im.kind == agentapi.ImportKindTemplate || im.kind == agentapi.ImportKindOVA {
		// Now it is known; and after the phases that follow the
		// download, the download's bytes are again what the import counts.
		im.op.SetRound(phaseDownloading, body.done, body.done)
	}
	return nil
}

// requestFault turns a failure to get the answer's headers into a fault
// that says what this agent concluded, never what the remote said or how
// its connection failed (refused, reset, not HTTP), which would let a
// caller read or map services it may not reach.
func (im *importer) requestFault(err error) error {
	var refused *importnet.RefusedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	u := im.url.Redacted()
	switch {
	case errors.As(err, &refused):
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "cannot download %s: it leads to an address imports may not reach: %v", u, refused)
	case errors.Is(err, errTooManyRedirects):
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "cannot download %s: %v", u, errTooManyRedirects)
	case errors.Is(err, errRedirectScheme):
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "cannot download %s: %v", u, errRedirectScheme)
	case errors.Is(err, errOwnAddresses):
		return agentapi.Errorf(agentapi.FaultInternalError, "cannot download %s: %v", u, errOwnAddresses)
	case errors.As(err, &dnsErr):
		host := "the host a redirect leads to" // a name the remote chose: not repeated
		if dnsErr.Name == im.url.Hostname() {
			host = "host " + dnsErr.Name
		}
		if dnsErr.IsNotFound {
			return agentapi.Errorf(agentapi.FaultInvalidArgument, "cannot download %s: %s is not known", u, host)
		}
		return agentapi.Errorf(agentapi.FaultInternalError, "cannot download %s: %s could not be resolved", u, host)
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert):
		return agentapi.Errorf(agentapi.FaultInternalError,
			"cannot download %s: the server's certificate is not trusted (https trusts the system's CA roots and checks the host name)", u)
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "cannot download %s: no HTTP answer from its server", u)
}

// fail turns an error of the download or of writing it into a fault.
func (im *importer) fail(err error) error {
	var de *downloadError
	switch {
	case err == nil:
		return nil
	case isFault(err):
		return err
	case im.ctx.Err() != nil:
		return im.stopped()
	case errors.As(err, &de):
		// Not how: a read error may carry what the server sent.
		return agentapi.Errorf(agentapi.FaultInternalError, "download of %s broke before its end", im.url.Redacted())
	case errors.Is(err, syscall.ENOSPC):
		return agentapi.Errorf(agentapi.FaultInsufficientResources,
			"repository %s is full: %s %s from %s does not fit", im.repoID, im.what, im.id, im.url.Redacted())
	}
	return agentapi.Errorf(agentapi.FaultInternalError, "write %s %s in repository %s: %v", im.what, im.id, im.repoID, err)
}

func isFault(err error) bool {
	_, ok := agentapi.AsFault(err)
	return ok
}

// stopped is the fault of an import whose call ended before it did.
func (im *importer) stopped() error {
	return agentapi.Errorf(agentapi.FaultInternalError,
		"import of %s %s from %s stopped: %v", im.what, im.id, im.url.Redacted(), context.Cause(im.ctx))
}

// file downloads a disk or an ISO to a temporary file beside im.dest, then
// links it there.
func (im *importer) file(body io.Reader) error {
	tmp, err := os.CreateTemp(im.dir, "."+filepath.Base(im.dest)+".tmp-*")
	if err != nil {
		return im.fail(err)
	}
	defer os.Remove(tmp.Name())
	err = im.fill(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return im.fail(err)
	}
	// A link, not a rename, so that a file another server of the pool
	// created meanwhile is not replaced.
	if err := os.Link(tmp.Name(), im.dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if im.kind == agentapi.ImportKindISO {
				return errISOExists(im.repoID, im.id)
			}
			return errDiskExists(im.repoID, im.id)
		}
		return im.fail(err)
	}
	return nil
}

// fill writes the download to f; an ISO's identifier is checked as soon as
// its bytes are in.
func (im *importer) fill(f *os.File, body io.Reader) error {
	if im.kind == agentapi.ImportKindISO {
		n, err := io.CopyN(f, body, isoMagicOffset+isoMagicLen)
		if err != nil && err != io.EOF {
			return err
		}
		magic := make([]byte, isoMagicLen)
		if n == isoMagicOffset+isoMagicLen {
			if _, err := f.ReadAt(magic, isoMagicOffset); err != nil {
				return err
			}
		}
		if !slices.Contains(isoMagics, string(magic)) {
			return agentapi.Errorf(agentapi.FaultInvalidArgument,
				"%s is not an ISO 9660 or UDF image (none of %s at byte %d); import it as a disk if it is one",
				im.url.Redacted(), strings.Join(isoMagics, ", "), isoMagicOffset)
		}
	}
	if _, err := io.Copy(f, body); err != nil {
		return err
	}
	return f.Sync()
}

// template extracts the archive to a temporary directory beside im.dest,
// checks its vm.cfg and the manifests it carries (checkManifests), then renames the template's directory to im.dest.
func (im *importer) template(body io.Reader) error {
	tmp, err := os.MkdirTemp(im.dir, "."+im.id+".tmp-*")
	if err != nil {
		return im.fail(err)
	}
	defer os.RemoveAll(tmp)
	if err := im.extract(body, tmp); err != nil {
		return im.fail(err)
	}
	root, ok := templateRoot(tmp)
	if !ok {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"template archive %s holds no vm.cfg, neither at its top nor in its only directory", im.url.Redacted())
	}
	if err := im.checkTemplateConfig(root); err != nil {
		return err
	}
	if _, err := im.checkManifests(root); err != nil {
		return im.fail(err)
	}
	if err := os.Chmod(root, 0o755); err != nil { // MkdirTemp made it private
		return im.fail(err)
	}
	if _, err := os.Lstat(im.dest); err == nil {
		return errTemplateExists(im.repoID, im.id)
	}
	if err := os.Rename(root, im.dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errTemplateExists(im.repoID, im.id)
		}
		return im.fail(err)
	}
	return nil
}

// extract unpacks the tar archive body (gzip-compressed or not) into dir,
// which is new and empty, refusing names that would leave it and entries
// other than regular files and directories. The rest of the body after the
// archive's end is read too, so that all of the download is checked.
func (im *importer) extract(body io.Reader, dir string) error {
	br := bufio.NewReader(body)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return im.badArchive(err)
		}
		defer zr.Close()
		r = zr
	} else if err != nil && err != io.EOF {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return im.badArchive(err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // pax metadata for the whole archive, such as git's commit id
		}
		name, err := archiveName(hdr.Name)
		if err != nil {
			return agentapi.Errorf(agentapi.FaultInvalidArgument, "template archive %s: %v", im.url.Redacted(), err)
		}
		if name == "" {
			continue // "." or "./"
		}
		p := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return im.badEntry(hdr.Name, err)
			}
		case tar.TypeReg, tar.TypeGNUSparse:
			if err := writeEntry(p, tr); err != nil {
				return im.badEntry(hdr.Name, err)
			}
		default:
			return agentapi.Errorf(agentapi.FaultInvalidArgument,
				"template archive %s: %q is %s; only regular files and directories are accepted",
				im.url.Redacted(), hdr.Name, entryType(hdr.Typeflag))
		}
	}
	_, err := io.Copy(io.Discard, r)
	if err != nil && !isDownloadError(err) {
		return im.badArchive(err)
	}
	return err
}

func isDownloadError(err error) bool {
	var de *downloadError
	return errors.As(err, &de)
}

// badArchive is the fault of an archive that does not read as one, unless
// the download itself broke: what the reader found, and what an archive of
// the import's kind is.
func (im *importer) badArchive(err error) error {
	if isDownloadError(err) || im.ctx.Err() != nil {
		return err
	}
	accepted := "a tar archive, gzip-compressed or not, of vm.cfg and the disk images it names"
	if im.kind == agentapi.ImportKindOVA {
		accepted = "an OVA, an uncompressed tar archive of one OVF descriptor, an optional manifest and its disk images"
	}
	return agentapi.Errorf(agentapi.FaultInvalidArgument,
		"%s is not a tar archive, or is truncated (%s); accepted is %s", im.url.Redacted(), archiveFault(err), accepted)
}

// archiveFault says in words what a tar or gzip reader found wrong, without
// the names of the Go packages that found it.
func archiveFault(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends inside an entry or a header"
	case errors.Is(err, tar.ErrHeader):
		return "no valid tar header where one belongs"
	case errors.Is(err, gzip.ErrHeader):
		return "its gzip header is damaged"
	case errors.Is(err, gzip.ErrChecksum):
		return "its gzip checksum does not match"
	}
	msg := err.Error()
	for _, prefix := range []string{"archive/tar: ", "gzip: ", "flate: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// badEntry is the fault of an entry that cannot be written: a name given
// twice, a file where a directory should be, or a failure to write.
func (im *importer) badEntry(name string, err error) error {
	if isDownloadError(err) || im.ctx.Err() != nil || errors.Is(err, syscall.ENOSPC) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return im.badArchive(err)
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
		return agentapi.Errorf(agentapi.FaultInvalidArgument,
			"template archive %s: %q clashes with an earlier entry", im.url.Redacted(), name)
	}
	return fmt.Errorf("extract %q: %w", name, err)
}

// writeEntry writes a regular file of the archive to p, which must not
// exist, creating its parent directories.
func writeEntry(p string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// archiveName checks the name of an archive entry and returns it as a
// relative local path, "" for the archive's top ("." or "./"). Absolute
// names, ".." elements, backslashes and NUL bytes are refused.
func archiveName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("entry %q %s; only relative names inside the template are accepted", name, why)
	}
	switch {
	case name == "":
		return bad("has no name")
	case strings.HasPrefix(name, "/"):
		return bad("is absolute")
	case strings.ContainsAny(name, "\\\x00"):
		return bad("contains a backslash or a NUL byte")
	case slices.Contains(strings.Split(name, "/"), ".."):
		return bad("contains '..'")
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	local := filepath.FromSlash(clean)
	if !filepath.IsLocal(local) {
		return bad("is not a local name")
	}
	return local, nil
}

// entryType names a tar entry type for fault messages.
func entryType(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a FIFO"
	}
	return fmt.Sprintf("of tar type %q", t)
}

// templateRoot returns the directory of an extracted archive that holds
// vm.cfg: dir itself, or its only entry when that is a directory.
func templateRoot(dir string) (string, bool) {
	hasConfig := func(d string) bool {
		fi, err := os.Lstat(filepath.Join(d, vmConfigFile))
		return err == nil && fi.Mode().IsRegular()
	}
	if hasConfig(dir) {
		return dir, true
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return "", false
	}
	sub := filepath.Join(dir, entries[0].Name())
	return sub, hasConfig(sub)
}

// checkTemplateConfig reads the template's vm.cfg in dir: it must give the
// memory size and at least one disk, with the messages of Oracle VM's agent.
func (im *importer) checkTemplateConfig(dir string) error {
	params, err := readVMConfig(im.repoID, im.id, dir)
	if err != nil {
		msg := err.Error()
		if f, ok := agentapi.AsFault(err); ok {
			msg = f.Message
		}
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "template archive %s: %s", im.url.Redacted(), msg)
	}
	if n, ok := params.Int(agentapi.KeyMemory); !ok || n <= 0 {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "Cannot obtain memory size from vm.cfg")
	}
	if !slices.ContainsFunc(diskEntries(params), func(e string) bool { return strings.TrimSpace(e) != "" }) {
		return agentapi.Errorf(agentapi.FaultInvalidArgument, "Cannot obtain disk name from vm.cfg")
	}
	return nil
}

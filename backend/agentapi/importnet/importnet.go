// Package importnet decides which addresses the download of an import may
// reach, so that importing a URL cannot be used to read the services of a
// server's own network (server-side request forgery). Loopback, link-local,
// private and shared (carrier-grade NAT) addresses and the host's own
// addresses are refused unless an allowed network holds them; unspecified,
// multicast, broadcast and reserved addresses are refused always, since no
// download is ever served from them (and 0.0.0.0 reaches the host itself).
// IPv4 addresses in IPv6 form (::ffff:a.b.c.d, and 64:ff9b::a.b.c.d of
// NAT64) are judged as the IPv4 address they carry.
//
// The agent applies it to every address it connects to (each redirect and
// each DNS answer); the manager applies it to the URL's host before it asks
// a server to download, so that an agent that does not check is still
// given only URLs that pass.
package importnet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxNetworks bounds a list of allowed networks.
const MaxNetworks = 64

// Classes of refused addresses, as messages name them.
const (
	ClassUnspecified = "unspecified"
	ClassMulticast   = "multicast"
	ClassBroadcast   = "broadcast"
	ClassReserved    = "reserved"
	ClassLoopback    = "loopback"
	ClassLinkLocal   = "link-local"
	ClassPrivate     = "private"
	ClassShared      = "shared (carrier-grade NAT)"
	ClassOwn         = "own"
)

// NotAllowedText ends the message of a refusal that an allowed network
// would lift. The agent's fault carries it, and the manager, seeing it,
// adds how its administrator allows a network.
const NotAllowedText = "and no allowed network holds it"

var (
	thisNetwork4 = netip.MustParsePrefix("0.0.0.0/8")
	shared4      = netip.MustParsePrefix("100.64.0.0/10")
	reserved4    = netip.MustParsePrefix("240.0.0.0/4")
	broadcast4   = netip.MustParseAddr("255.255.255.255")
	siteLocal6   = netip.MustParsePrefix("fec0::/10") // deprecated, still private in practice
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
)

// RefusedError is the refusal of an address.
type RefusedError struct {
	Addr  netip.Addr // as it was dialled or resolved
	Class string     // one of the Class constants
	// Allowable is true when an allowed network would lift the refusal.
	Allowable bool
}

func (e *RefusedError) Error() string { return e.Addr.String() + " is " + e.Phrase() }

// Phrase is what the message says of the address: its class, and whether
// an allowed network would lift the refusal ("a loopback address, and no
// allowed network holds it").
func (e *RefusedError) Phrase() string {
	what := article(e.Class) + " " + e.Class + " address"
	if e.Class == ClassOwn {
		what = "the address of a server or of the manager"
	}
	if e.Allowable {
		return what + ", " + NotAllowedText
	}
	return what + ", which no download may reach"
}

func article(class string) string {
	if strings.ContainsRune("aeiou", rune(class[0])) {
		return "an"
	}
	return "a"
}

// Policy is what a download may reach: Allowed lifts the refusal of the
// allowable classes for the addresses it holds; Own lists the addresses of
// the host that downloads (or, at the manager, of the hosts that might).
type Policy struct {
	Allowed []netip.Prefix
	Own     []netip.Addr
}

// Check returns nil when addr may be reached, else a *RefusedError.
func (p Policy) Check(addr netip.Addr) error {
	a := Canonical(addr)
	refuse := func(class string, allowable bool) error {
		return &RefusedError{Addr: addr.WithZone(""), Class: class, Allowable: allowable}
	}
	switch {
	case !a.IsValid():
		return refuse(ClassReserved, false)
	case a.IsUnspecified() || thisNetwork4.Contains(a):
		return refuse(ClassUnspecified, false)
	case a.IsMulticast():
		return refuse(ClassMulticast, false)
	case a == broadcast4:
		return refuse(ClassBroadcast, false)
	case reserved4.Contains(a):
		return refuse(ClassReserved, false)
	}
	if slices.ContainsFunc(p.Allowed, func(n netip.Prefix) bool { return n.Contains(a) }) {
		return nil
	}
	switch {
	case a.IsLoopback():
		return refuse(ClassLoopback, true)
	case a.IsLinkLocalUnicast():
		return refuse(ClassLinkLocal, true)
	case a.IsPrivate() || siteLocal6.Contains(a):
		return refuse(ClassPrivate, true)
	case shared4.Contains(a):
		return refuse(ClassShared, true)
	case slices.ContainsFunc(p.Own, func(o netip.Addr) bool { return Canonical(o) == a }):
		return refuse(ClassOwn, true)
	}
	return nil
}

// Canonical is addr as Check judges it: without a zone, and an IPv4
// address in IPv6 form (IPv4-mapped, or NAT64's well-known prefix) as that
// IPv4 address.
func Canonical(addr netip.Addr) netip.Addr {
	a := addr.WithZone("").Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}

// Parse reads a list of allowed networks, each in CIDR form
// ("10.1.0.0/16", "2001:db8::/32") or a single address (a /32 or /128);
// at most MaxNetworks.
func Parse(list []string) ([]netip.Prefix, error) {
	if len(list) > MaxNetworks {
		return nil, fmt.Errorf("%d networks are too many: give at most %d", len(list), MaxNetworks)
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		n, err := parseOne(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseList reads a comma-separated list of allowed networks, as Parse
// reads each; an empty or blank text is no network.
func ParseList(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	return Parse(strings.Split(s, ","))
}

// Format writes networks as ParseList reads them: comma-separated, each
// in CIDR form.
func Format(nets []netip.Prefix) string { return strings.Join(Strings(nets), ",") }

// Strings is nets in CIDR form, one element each.
func Strings(nets []netip.Prefix) []string {
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.String()
	}
	return s
}

const accepted = "give a network in CIDR form such as 10.1.0.0/16 or fd00:1::/64, or a single address"

func parseOne(s string) (netip.Prefix, error) {
	shown := s
	if len(shown) > 60 {
		shown = shown[:60] + "..."
	}
	if s == "" {
		return netip.Prefix{}, errors.New("an empty network in the list: " + accepted + ", separated by commas")
	}
	var n netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if n, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network: %s", shown, accepted)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a network: %s", shown, accepted)
		}
		n = netip.PrefixFrom(a, a.BitLen())
	}
	if n.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4 network in IPv6 form: give it as IPv4 (%s)", shown, accepted)
	}
	if m := n.Masked(); m != n {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its prefix length: did you mean %s?", shown, m)
	}
	return n, nil
}

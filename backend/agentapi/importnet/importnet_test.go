package importnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	own := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")}
	allowed := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("169.254.1.0/24"),
		netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("100.100.0.0/16"), netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("::/0"), // all of IPv6: the allowable classes of IPv6 are lifted
	}
	tests := []struct {
		addr    string
		class   string // "" when reached
		allowed string // class with the allowed networks above ("" when reached)
	}{
		// Public addresses are reached.
		{"93.184.216.34", "", ""},
		{"2606:2800:220:1:248:1893:25c8:1946", "", ""},
		{"::ffff:93.184.216.34", "", ""},
		{"172.32.0.1", "", ""},  // just past 172.16/12
		{"100.128.0.1", "", ""}, // just past 100.64/10
		// Loopback: 127/8 and ::1, and their mapped and NAT64 forms.
		{"127.0.0.1", ClassLoopback, ""},
		{"127.0.0.2", ClassLoopback, ClassLoopback}, // 127.0.0.1/32 does not hold it
		{"::ffff:127.0.0.1", ClassLoopback, ""},
		{"::ffff:127.0.0.2", ClassLoopback, ClassLoopback},
		{"64:ff9b::127.0.0.2", ClassLoopback, ClassLoopback},
		{"::1", ClassLoopback, ""},
		// Link-local, the cloud metadata address among them.
		{"169.254.169.254", ClassLinkLocal, ClassLinkLocal},
		{"::ffff:169.254.169.254", ClassLinkLocal, ClassLinkLocal},
		{"169.254.1.9", ClassLinkLocal, ""},
		{"fe80::1", ClassLinkLocal, ""},
		{"fe80::1%eth0", ClassLinkLocal, ""},
		// Private: RFC 1918, unique local, site-local.
		{"10.0.0.1", ClassPrivate, ClassPrivate},
		{"10.20.3.4", ClassPrivate, ""},
		{"::ffff:10.20.3.4", ClassPrivate, ""},
		{"172.16.5.4", ClassPrivate, ClassPrivate},
		{"172.31.255.255", ClassPrivate, ClassPrivate},
		{"192.168.1.1", ClassPrivate, ClassPrivate},
		{"::ffff:192.168.1.1", ClassPrivate, ClassPrivate},
		{"fd12:3456::1", ClassPrivate, ""},
		{"fc00::1", ClassPrivate, ""},
		{"fec0::1", ClassPrivate, ""},
		// Shared address space (carrier-grade NAT).
		{"100.64.0.1", ClassShared, ClassShared},
		{"100.127.255.254", ClassShared, ClassShared},
		{"100.100.100.200", ClassShared, ""},
		// The host's own addresses.
		{"203.0.113.7", ClassOwn, ""},
		{"::ffff:203.0.113.7", ClassOwn, ""},
		{"2001:db8::7", ClassOwn, ""},
		// Never reached, whatever is allowed.
		{"0.0.0.0", ClassUnspecified, ClassUnspecified},
		{"0.1.2.3", ClassUnspecified, ClassUnspecified},
		{"::", ClassUnspecified, ClassUnspecified},
		{"::ffff:0.0.0.0", ClassUnspecified, ClassUnspecified},
		{"224.0.0.1", ClassMulticast, ClassMulticast},
		{"239.255.255.250", ClassMulticast, ClassMulticast},
		{"ff02::1", ClassMulticast, ClassMulticast},
		{"::ffff:224.0.0.1", ClassMulticast, ClassMulticast},
		{"255.255.255.255", ClassBroadcast, ClassBroadcast},
		{"240.0.0.1", ClassReserved, ClassReserved},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			addr := netip.MustParseAddr(tc.addr)
			check := func(p Policy, want string) {
				t.Helper()
				err := p.Check(addr)
				if want == "" {
					if err != nil {
						t.Errorf("with %d allowed networks: %v, want it reached", len(p.Allowed), err)
					}
					return
				}
				var re *RefusedError
				if !errors.As(err, &re) || re.Class != want {
					t.Fatalf("with %d allowed networks: %v, want refused as %s", len(p.Allowed), err, want)
				}
				never := want == ClassUnspecified || want == ClassMulticast || want == ClassBroadcast || want == ClassReserved
				if re.Allowable == never || strings.Contains(err.Error(), NotAllowedText) == never {
					t.Errorf("%q: allowable %v, want %v", err, re.Allowable, !never)
				}
				if !strings.HasPrefix(err.Error(), addr.WithZone("").String()+" is ") {
					t.Errorf("%q does not name the address first", err)
				}
			}
			check(Policy{Own: own}, tc.class)
			check(Policy{Own: own, Allowed: allowed}, tc.allowed)
		})
	}
}

func TestRefusedErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  RefusedError
		want string
	}{
		{RefusedError{netip.MustParseAddr("127.0.0.2"), ClassLoopback, true}, "127.0.0.2 is a loopback address, and no allowed network holds it"},
		{RefusedError{netip.MustParseAddr("169.254.169.254"), ClassLinkLocal, true}, "169.254.169.254 is a link-local address, and no allowed network holds it"},
		{RefusedError{netip.MustParseAddr("203.0.113.7"), ClassOwn, true}, "203.0.113.7 is the address of a server or of the manager, and no allowed network holds it"},
		{RefusedError{netip.MustParseAddr("0.0.0.0"), ClassUnspecified, false}, "0.0.0.0 is an unspecified address, which no download may reach"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"  ", "", ""},
		{"127.0.0.0/8", "127.0.0.0/8", ""},
		{"10.1.0.0/16, 192.168.7.8/32 ,fd00:1::/64", "10.1.0.0/16,192.168.7.8/32,fd00:1::/64", ""},
		{"192.168.7.8", "192.168.7.8/32", ""},
		{"fd00::5", "fd00::5/128", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"10.1.2.3/8", "", `"10.1.2.3/8" has bits set past its prefix length: did you mean 10.0.0.0/8?`},
		{"10.0.0.0/33", "", `"10.0.0.0/33" is not a network: give a network in CIDR form`},
		{"mirror.example.org", "", `"mirror.example.org" is not a network`},
		{"10.0.0.0/8,,192.168.0.0/16", "", "an empty network in the list"},
		{"10.0.0.0/8,", "", "an empty network in the list"},
		{"fe80::1%eth0", "", "is not a network"},
		{"::ffff:127.0.0.0/104", "", "is an IPv4 network in IPv6 form"},
		{strings.Repeat("10.0.0.0/8,", MaxNetworks) + "10.0.0.0/8", "", "65 networks are too many: give at most 64"},
		{strings.Repeat("x", 200), "", `"` + strings.Repeat("x", 60) + `..." is not a network`},
	}
	for _, tc := range tests {
		got, err := ParseList(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseList(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseList(%q): %v", tc.in, err)
		case Format(got) != tc.want:
			t.Errorf("ParseList(%q) = %s, want %s", tc.in, Format(got), tc.want)
		}
	}
}

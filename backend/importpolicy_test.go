package backend_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"xenmanager/backend"
	"xenmanager/backend/agentapi"
	"xenmanager/backend/managertest"
)

const allowHint = "an Administrator allows networks with edit Manager importAllowedNetworks=<network>[,<network>...] (CIDR form)"

// edit Manager importAllowedNetworks: Administrators only, checked, stored
// in CIDR form, shown by Info.
func TestEditManagerImportAllowedNetworks(t *testing.T) {
	c := managertest.Open(t, managertest.Options{})
	m, ctx := c.Manager, c.Admin()
	op := backend.WithActor(t.Context(), backend.Actor{User: "op", Role: backend.RoleOperator})
	if _, err := m.EditManager(op, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); backend.KindOf(err) != backend.KindPermission {
		t.Fatalf("an Operator's edit Manager = %v, want a permission error", err)
	}
	for _, tc := range []struct{ in, msg string }{
		{"10.0.0.0/33", `importAllowedNetworks: "10.0.0.0/33" is not a network: give a network in CIDR form such as 10.1.0.0/16 or fd00:1::/64, or a single address`},
		{"mirror.example.org", `importAllowedNetworks: "mirror.example.org" is not a network`},
		{"10.1.2.3/8", `importAllowedNetworks: "10.1.2.3/8" has bits set past its prefix length: did you mean 10.0.0.0/8?`},
		{"10.0.0.0/8,,127.0.0.0/8", "importAllowedNetworks: an empty network in the list"},
	} {
		_, err := m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: &tc.in})
		if backend.KindOf(err) != backend.KindInvalidArgument || !strings.HasPrefix(backend.Message(err), tc.msg) {
			t.Errorf("edit Manager importAllowedNetworks=%s: %v, want %q", tc.in, err, tc.msg)
		}
	}
	info, err := m.Info(ctx)
	if err != nil || len(info.Settings.ImportAllowedNetworks) != 0 {
		t.Fatalf("after refused edits: %+v, %v; want no network", info.Settings, err)
	}
	info, err = m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: new(" 10.1.2.3 , 127.0.0.0/8,fd00:1::/64")})
	want := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00:1::/64")}
	if err != nil || len(info.Settings.ImportAllowedNetworks) != 3 || info.Settings.ImportAllowedNetworks[0] != want[0] ||
		info.Settings.ImportAllowedNetworks[2] != want[2] {
		t.Fatalf("edit Manager = %+v, %v; want %v", info.Settings, err, want)
	}
	if info, err = m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: new("")}); err != nil || len(info.Settings.ImportAllowedNetworks) != 0 {
		t.Fatalf("clearing: %+v, %v", info.Settings, err)
	}
}

// importISO refuses at once a URL whose host is, or resolves to, an
// address an import may not reach, and the agent refuses a redirect to
// one: the refused server gets no request, the message says which address
// and how an Administrator allows it. Allowed, the same import works.
func TestImportISORefusedAddresses(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	m, ctx := c.Manager, c.Admin()
	iso := make([]byte, 32768, 34000)
	iso = append(append(iso, 1), "CD001\x01"...)
	var hits1, hits2 atomic.Int64
	listen := func(addr string, hits *atomic.Int64, h http.HandlerFunc) *httptest.Server {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); h(w, r) }))
		s.Listener.Close()
		s.Listener = l
		s.Start()
		t.Cleanup(s.Close)
		return s
	}
	two := listen("127.0.0.2:0", &hits2, func(w http.ResponseWriter, r *http.Request) { w.Write(iso) })
	one := listen("127.0.0.1:0", &hits1, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, two.URL+"/a.iso", http.StatusFound)
			return
		}
		w.Write(iso)
	})
	_, port, _ := net.SplitHostPort(one.Listener.Addr().String())
	repo := backend.Ref{Name: managertest.Repo}
	jobCount := func() int {
		jobs, err := m.Jobs(ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		return len(jobs)
	}

	for i, tc := range []struct {
		name, allowed, url, msg string
		job                     bool // the manager let it through to the agent
	}{
		{"loopback", "", one.URL + "/a.iso",
			"url " + one.URL + "/a.iso is refused: 127.0.0.1 is a loopback address, and no allowed network holds it; " + allowHint, false},
		{"a name of loopback", "", "http://localhost:" + port + "/a.iso",
			"url http://localhost:" + port + "/a.iso is refused: host localhost resolves to ", false},
		{"unspecified", "0.0.0.0/0", "http://0.0.0.0:" + port + "/a.iso",
			"url http://0.0.0.0:" + port + "/a.iso is refused: 0.0.0.0 is an unspecified address, which no download may reach", false},
		{"outside the allowed network", "127.0.0.1/32", two.URL + "/a.iso",
			"url " + two.URL + "/a.iso is refused: 127.0.0.2 is a loopback address, and no allowed network holds it; " + allowHint, false},
		// The manager cannot see a redirect: the agent refuses it, with
		// the allowed networks it was given (else it would refuse 127.0.0.1).
		{"redirect outside the allowed network", "127.0.0.1/32", one.URL + "/redirect",
			"importIso r4: server ovs1 refused: cannot download " + one.URL + "/redirect: it leads to an address imports may not reach: " +
				"127.0.0.2 is a loopback address, and no allowed network holds it; " + allowHint, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: &tc.allowed}); err != nil {
				t.Fatal(err)
			}
			hits1.Store(0)
			hits2.Store(0)
			n := jobCount()
			_, err := m.ImportISO(ctx, repo, tc.url, "r"+string(rune('0'+i)), "")
			if backend.KindOf(err) != backend.KindInvalidArgument || !strings.HasPrefix(backend.Message(err), tc.msg) {
				t.Fatalf("importIso %s = %v, want %q", tc.url, backend.Message(err), tc.msg)
			}
			if got := jobCount() - n; got != map[bool]int{false: 0, true: 1}[tc.job] {
				t.Errorf("%d jobs started, want a job %v", got, tc.job)
			}
			if hits2.Load() != 0 || !tc.job && hits1.Load() != 0 {
				t.Errorf("the refused server got requests: %d on 127.0.0.1, %d on 127.0.0.2", hits1.Load(), hits2.Load())
			}
		})
	}
	if _, err := m.EditManager(ctx, backend.EditManagerRequest{ImportAllowedNetworks: new("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportISO(ctx, repo, one.URL+"/redirect", "allowed", ""); err != nil {
		t.Fatalf("importIso inside the allowed networks: %v", err)
	}
	if hits2.Load() != 1 {
		t.Errorf("the redirect's target got %d requests, want 1", hits2.Load())
	}
}

// An agent that does not list the extension is not sent the allowed
// networks, which it would ignore: it gets only what the manager's own
// check passed.
func TestImportOptionNegotiation(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	older := agentapi.VersionInfo{APIVersion: "3", AgentVersion: "3.4.6"}
	if opt := backend.ImportOption(agentapi.ImportKindISO, older, nets); opt.AllowedNetworks != nil || opt.Kind != agentapi.ImportKindISO {
		t.Errorf("option to an agent without the extension = %+v, want kind only", opt)
	}
	newer := agentapi.VersionInfo{APIVersion: "3", Extensions: []string{agentapi.ExtImportAllowedNetworks}}
	if opt := backend.ImportOption(agentapi.ImportKindISO, newer, nets); len(opt.AllowedNetworks) != 1 || opt.AllowedNetworks[0] != "10.1.0.0/16" {
		t.Errorf("option to an agent with the extension = %+v, want the networks", opt)
	}
}

// A URL the servers cannot download is refused without its password, and
// without the text at all when it does not parse or is too long: the
// refusal reaches the manager's log as well as the user.
func TestImportURLRefusalHidesPassword(t *testing.T) {
	c := managertest.Ready(t, managertest.Options{Agents: 1})
	for _, tc := range []struct{ url, want string }{
		{"ftp://joe:s3cret-pw@mirror.example/x.iso", `url "ftp://joe:xxxxx@mirror.example/x.iso" is not one`},
		{"http://joe:s3cret-pw@[::1/x.iso", "the url is not one"},
		{"http://joe:s3cret-pw@mirror.example/" + strings.Repeat("a", 5000), "the url is not one"},
	} {
		_, err := c.Manager.ImportISO(c.Admin(), backend.Ref{Name: managertest.Repo}, tc.url, "x", "")
		if backend.KindOf(err) != backend.KindInvalidArgument || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ImportISO(%.60q): %v; want an invalid argument saying %q, without the password", tc.url, err, tc.want)
		}
	}
}

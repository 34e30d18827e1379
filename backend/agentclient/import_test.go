package agentclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"xenmanager/backend/agentapi"
)

// within receives from ch, failing the test if nothing comes in a generous
// while (a regression would otherwise hang the test).
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestImportVirtualDisk checks the call's shape (option as a struct with
// kind), that the client's Timeout does not cut it, and that its context
// does, closing the connection so that the agent sees the call go.
func TestImportVirtualDisk(t *testing.T) {
	const timeout = 100 * time.Millisecond
	bodies := make(chan string, 10)
	arrived := make(chan struct{}, 10) // an import_virtual_disk call came in
	release := make(chan struct{})     // answers the held import and echo
	gone := make(chan struct{}, 10)    // the stuck import's connection closed
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := strings.Join(strings.Fields(string(b)), "")
		bodies <- body
		switch {
		case strings.Contains(body, "<string>stuck</string>"): // ends only with its connection
			arrived <- struct{}{}
			<-r.Context().Done()
			gone <- struct{}{}
			return
		case strings.Contains(body, "<string>held</string>"):
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case strings.Contains(body, "<methodName>echo</methodName>"):
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, response("<boolean>1</boolean>"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections) // first: a stuck call must not hold Close
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	c, err := New(Config{Address: host, Port: p, Password: "secret", PinSHA256: SPKISHA256(srv.Certificate()), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	t.Run("shape", func(t *testing.T) {
		if err := c.ImportVirtualDisk(ctx, "http://files/a.iso", "i1", "r1", agentapi.ImportOption{Kind: agentapi.ImportKindISO}); err != nil {
			t.Fatal(err)
		}
		body := within(t, "the call", bodies)
		at := 0
		for _, w := range []string{"<methodName>import_virtual_disk</methodName>", ">http://files/a.iso<", ">i1<", ">r1<",
			"<struct><member><name>kind</name><value><string>iso</string></value></member></struct>"} {
			i := strings.Index(body[at:], w)
			if i < 0 {
				t.Fatalf("call %s lacks %s (in order) after offset %d", body, w, at)
			}
			at += i + len(w)
		}
	})

	t.Run("allowed networks", func(t *testing.T) {
		opt := agentapi.ImportOption{Kind: agentapi.ImportKindISO, AllowedNetworks: []string{"10.1.0.0/16", "fd00::/8"}}
		if err := c.ImportVirtualDisk(ctx, "http://files/a.iso", "i2", "r1", opt); err != nil {
			t.Fatal(err)
		}
		body := within(t, "the call", bodies)
		for _, w := range []string{"<member><name>kind</name><value><string>iso</string></value></member>",
			"<member><name>allowed_networks</name><value><array><data><value><string>10.1.0.0/16</string></value><value><string>fd00::/8</string></value></data></array></value></member>"} {
			if !strings.Contains(body, w) {
				t.Fatalf("call %s lacks %s", body, w)
			}
		}
	})

	t.Run("no timeout", func(t *testing.T) {
		result := make(chan error, 1)
		go func() {
			result <- c.ImportVirtualDisk(ctx, "http://files/a.iso", "held", "r1", agentapi.ImportOption{Kind: agentapi.ImportKindDisk})
		}()
		within(t, "the import call", arrived)
		// An ordinary call to the same agent, started after the import,
		// gives up after Timeout; the import must still be waiting.
		if _, err := c.Echo(ctx, "x"); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("echo = %v, want no answer within %s", err, timeout)
		}
		select {
		case err := <-result:
			t.Fatalf("import ended with the timeout of ordinary calls: %v", err)
		default:
		}
		close(release)
		if err := within(t, "the import's answer", result); err != nil {
			t.Fatalf("import after the client's Timeout: %v", err)
		}
	})

	t.Run("context", func(t *testing.T) {
		callCtx, cancel := context.WithCancel(ctx)
		result := make(chan error, 1)
		go func() {
			result <- c.ImportVirtualDisk(callCtx, "http://files/a.iso", "stuck", "r1", agentapi.ImportOption{Kind: agentapi.ImportKindDisk})
		}()
		within(t, "the import call", arrived)
		cancel()
		err := within(t, "the cancelled import", result)
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled import = %v, want ErrUnreachable and context.Canceled", err)
		}
		within(t, "the connection to close", gone)
	})
}

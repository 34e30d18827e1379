package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"xenmanager/cmd/internal/monitor"
	"xenmanager/store"
)

// /healthz of the manager is 200 only while the SSH server serves and the
// store answers a read: 503 during start-up, once the store is closed under
// it, and while shutting down, each with a short reason and nothing of the
// store's own error.
func TestManagerHealth(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "manager.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &managerHealth{st: st}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := monitor.Start(l, prometheus.NewRegistry(), h.check, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(stop)
	url := "http://" + l.Addr().String() + "/healthz"

	steps := []struct {
		what     string
		do       func()
		wantCode int
		wantBody string
	}{
		{"start-up", func() {}, http.StatusServiceUnavailable, "starting up\n"},
		{"serving", func() { h.ssh.Store(sshServing) }, http.StatusOK, "ok\n"},
		{"store closed", func() { st.Close() }, http.StatusServiceUnavailable, "store not answering\n"},
		{"shutting down", func() { h.ssh.Store(sshStopping) }, http.StatusServiceUnavailable, "shutting down\n"},
	}
	for _, s := range steps {
		s.do()
		if code, body := httpGet(t, url); code != s.wantCode || body != s.wantBody {
			t.Errorf("%s: /healthz %d %q, want %d %q", s.what, code, body, s.wantCode, s.wantBody)
		}
	}
}

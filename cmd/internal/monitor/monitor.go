// Package monitor is the monitoring endpoint both programs serve when
// started with --metrics-listen: Prometheus metrics on /metrics and a
// health answer on /healthz, on an HTTP server of its own, apart from the
// manager's SSH port and the agent's HTTPS port, so that a scraper or a
// load balancer needs neither an account nor the agent's password.
//
// It imports nothing of the module: each program hands it its registry and
// its health check.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether the program can do its work: nil when it can. The
// body of a 503 is the error's Reason() when it has that method (see
// Unhealthy), and "unhealthy" otherwise, so that no internal error text
// reaches a prober; the whole error goes to the program's log.
type Check func(ctx context.Context) error

// Unhealthy is the error of a failed check: reason is the one line a
// prober sees ("store not answering"), cause the detail for the log.
func Unhealthy(reason string, cause error) error { return &unhealthy{reason, cause} }

type unhealthy struct {
	reason string
	cause  error
}

func (e *unhealthy) Reason() string { return e.reason }

func (e *unhealthy) Error() string {
	if e.cause == nil {
		return e.reason
	}
	return e.reason + ": " + e.cause.Error()
}

func (e *unhealthy) Unwrap() error { return e.cause }

// reasonOf is what a prober is told of a failed check.
func reasonOf(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) && r.Reason() != "" {
		return r.Reason()
	}
	return "unhealthy"
}

// Timeouts and bounds of the HTTP server and of one check. A scrape of a
// few hundred series is small; a check answers within checkTimeout or is
// unhealthy.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	checkTimeout      = 5 * time.Second
	// maxScrapes bounds the scrapes served at once; more get 503.
	maxScrapes = 4
	// scrapeTimeout bounds gathering the metrics of one scrape.
	scrapeTimeout = 20 * time.Second
)

// Server serves /metrics and /healthz.
type Server struct {
	srv   *http.Server
	check Check
	log   *slog.Logger

	mu         sync.Mutex // guards lastReason
	lastReason string     // the reason of the last check that failed; "" when the last one passed
}

// New makes the server of gatherer's metrics and check's health; log gets
// every change of health, with its cause. Other paths are 404, other
// methods than GET and HEAD 405.
func New(gatherer prometheus.Gatherer, check Check, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{check: check, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: this address serves GET /metrics and GET /healthz", http.StatusNotFound)
	})
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Listen binds addr, the value of --metrics-listen.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	return l, nil
}

// Serve serves on l until Shutdown; it then returns nil.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops serving, letting answers in progress finish until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// healthz answers 200 "ok" when the check passes, and 503 with the
// check's reason when it does not.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	err := s.check(ctx)
	reason := ""
	if err != nil {
		reason = reasonOf(err)
	}
	s.noteChange(reason, err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, reason+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// noteChange logs the health when it changes, rather than at every probe.
func (s *Server) noteChange(reason string, err error) {
	s.mu.Lock()
	changed := reason != s.lastReason
	s.lastReason = reason
	s.mu.Unlock()
	switch {
	case !changed:
	case err != nil:
		s.log.Warn("unhealthy", "reason", reason, "err", err)
	default:
		s.log.Info("healthy again")
	}
}

// shutdownGrace is how long Start's stop lets answers in progress finish.
const shutdownGrace = 5 * time.Second

// Start serves gatherer's metrics and check's health on l in a goroutine
// (a failure to serve is logged) and returns the function that stops it.
func Start(l net.Listener, gatherer prometheus.Gatherer, check Check, log *slog.Logger) (stop func()) {
	s := New(gatherer, check, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(l); err != nil {
			s.log.Error("metrics server stopped", "address", l.Addr().String(), "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	}
}

package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// TB is the part of testing.TB NewServer uses; *testing.T and *testing.B
// satisfy it, and the emulator does not import package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// DefaultAPIKey is the key NewServer tells clients to use.
const DefaultAPIKey = "mhk_test_emulator"

// Server is an Emulator listening on a loopback address.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234".
	URL string
	// APIKey is a key the server accepts.
	APIKey string
	// WebhookSecret signs the webhooks.
	WebhookSecret string
	// Emulator is the handler, for Stats, SetFaults, Cancel and friends.
	Emulator *Emulator

	srv       *http.Server
	ln        net.Listener
	serveErr  chan error
	closeOnce sync.Once
	err       error
}

// NewServer starts an emulator on 127.0.0.1 on a free port, for tests; it is
// closed by t.Cleanup. Its APIKey is DefaultAPIKey unless WithAPIKeys names
// others (then the first).
func NewServer(t TB, opts ...Option) *Server {
	t.Helper()
	// Seed 1 unless the test says otherwise: reproducible runs.
	s, err := Listen(context.Background(), "127.0.0.1:0", append([]Option{WithSeed(1)}, opts...)...)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen starts an emulator on addr (e.g. "127.0.0.1:8787"). It stops when
// ctx is done or Close is called.
func Listen(ctx context.Context, addr string, opts ...Option) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	e, err := New(append([]Option{WithBaseURL(base)}, opts...)...)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	e.SetBaseURL(base)
	key := DefaultAPIKey
	if len(e.cfg.apiKeys) > 0 {
		key = e.cfg.apiKeys[0]
	}
	s := &Server{
		URL: base, APIKey: key, WebhookSecret: e.secret, Emulator: e,
		srv:      &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil},
		ln:       ln,
		serveErr: make(chan error, 1),
	}
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				s.Close()
			case <-e.done:
			}
		}()
	}
	return s, nil
}

// Close stops the listener, closes open connections and the emulator.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
		if err := s.Emulator.Close(); err != nil && s.err == nil {
			s.err = err
		}
	})
}

// Err returns the first error met while serving or closing, after Close.
func (s *Server) Err() error { return s.err }

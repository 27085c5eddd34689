package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/gateway"
)

// flakyStore fails the database writes that record an upstream id (and the
// write probe) while fail is set: the create reached Magic Hour, its save
// does not go through, as on a full disk.
type flakyStore struct {
	gateway.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("database or disk is full (injected)")

func (s *flakyStore) UpdateJob(ctx context.Context, u gateway.JobUpdate) error {
	if s.fail.Load() && u.Job.UpstreamID != "" {
		return errDiskFull
	}
	return s.Store.UpdateJob(ctx, u)
}

func (s *flakyStore) ProbeWrite(ctx context.Context) error {
	if s.fail.Load() {
		return errDiskFull
	}
	if p, ok := s.Store.(gateway.WriteProber); ok {
		return p.ProbeWrite(ctx)
	}
	return nil
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

var heldLine = regexp.MustCompile(`level=ERROR msg="gateway: created on Magic Hour but saving the upstream id failed[^"]*" job=(\S+) upstream_id=(\S+) attempt=(\d+)`)

// heldHarness starts a gateway whose store fails the upstream-id save,
// with a create journal, and submits one job; it returns the job and the
// upstream id named by the ERROR log once two attempts have failed.
func heldHarness(t *testing.T, dbURL, journal string) (*harness, *flakyStore, *logBuffer, jobView, string) {
	t.Helper()
	logs := &logBuffer{}
	h := newHarness(t, dbURL, hopts{noStart: true, cfg: func(c *gateway.Config) {
		c.CreateJournalDir = journal
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.RetryBase, c.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}})
	fs := &flakyStore{Store: h.store}
	fs.fail.Store(true)
	h.store = fs
	h.start()
	j := h.submit("ai-image-generator", "", "")
	var up string
	waitFor(t, "two ERROR lines naming the job and its upstream id", func() bool {
		n := 0
		for _, m := range heldLine.FindAllStringSubmatch(logs.String(), -1) {
			if m[1] == j.ID {
				up, n = m[2], n+1
			}
		}
		return n >= 2
	})
	if h.emu.Emulator.Stats().Creates != 1 {
		t.Fatalf("creates = %d, want 1", h.emu.Emulator.Stats().Creates)
	}
	return h, fs, logs, j, up
}

// Issue 11 item 8: a create whose upstream-id save fails is held and
// retried (ERROR with both ids each attempt); the job stays creating, its
// webhooks wait in the inbox, /readyz is 503; once writes work it is
// stored with the right upstream id and one create.
func TestHeldCreateIsSavedWhenWritesReturn(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		h, fs, _, j, up := heldHarness(t, dbURL, t.TempDir())
		var cur jobView
		h.do("GET", "/api/jobs/"+j.ID, h.tenantKey, nil, &cur)
		if cur.Status != "creating" {
			t.Fatalf("job is %s while its create is held, want creating", cur.Status)
		}
		waitFor(t, "the project's webhook in the inbox", func() bool {
			es, err := fs.Inbox(context.Background(), up)
			return err == nil && len(es) > 0
		})
		if code, raw := h.do("GET", "/readyz", "", nil, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("readyz while a create is held: %d %s, want 503", code, raw)
		}
		fs.fail.Store(false)
		got := h.wait(j.ID)
		if got.Status != "stored" || got.UpstreamID != up {
			t.Fatalf("after writes return: %s upstream %q, want stored with %q", got.Status, got.UpstreamID, up)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 1 {
			t.Fatalf("creates = %d, want 1", n)
		}
		waitFor(t, "readyz 200", func() bool { c, _ := h.do("GET", "/readyz", "", nil, nil); return c == http.StatusOK })
		if es, _ := fs.Inbox(context.Background(), up); len(es) != 0 {
			t.Fatalf("%d webhooks left in the inbox after the save", len(es))
		}
	})
}

// Issue 11 item 8: the process stops while a create is held; the next one
// replays the create journal and records the upstream id (no
// create_outcome_unknown, no second create).
func TestHeldCreateReplayedFromJournal(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, dbURL string) {
		journal := t.TempDir()
		h, _, logs, j, up := heldHarness(t, dbURL, journal)
		h.stop() // the step is interrupted; the journal keeps the id
		if !strings.Contains(logs.String(), "create journal keeps them") {
			t.Fatalf("no shutdown ERROR about held creates:\n%s", logs.String())
		}
		h.start() // a fresh store (writes work), the same journal folder
		got := h.wait(j.ID)
		if got.Status != "stored" || got.UpstreamID != up {
			t.Fatalf("after restart: %s upstream %q (error %+v), want stored with %q", got.Status, got.UpstreamID, got.Error, up)
		}
		if n := h.emu.Emulator.Stats().Creates; n != 1 {
			t.Fatalf("creates = %d, want 1", n)
		}
		if !strings.Contains(logs.String(), "replaying a create") {
			t.Fatalf("the journal was not replayed:\n%s", logs.String())
		}
	})
}

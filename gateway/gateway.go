// Package gateway is hourglass's durable job service (`hourglass serve`):
// apps submit Magic Hour jobs to it; it creates each upstream exactly once,
// tracks it (webhooks first, adaptive polling as the fallback), copies every
// output to storage, verified, and serves jobs, outputs and timelines over a
// JSON API.
//
// All state that matters lives in the Store (SQLite or PostgreSQL, same
// code): work is claimed with leases in the jobs table, so any number of
// gateway processes can share one database. See README.md.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/magichour"
)

// Config configures a Gateway. Store, Storage and Upstream are required.
type Config struct {
	Store    Store
	Storage  Storage
	Upstream *magichour.Client

	// WebhookSecrets verify deliveries to /hooks/magichour (several during a
	// rotation). Without one, webhooks are refused and jobs are tracked by
	// polling alone.
	WebhookSecrets []string

	// Workers is how many jobs this process works on at once (default 4;
	// negative: none, the process only serves the API).
	Workers int
	// LeaseDuration is how long a claimed job stays reserved without a
	// heartbeat (default 30s). A job whose holder died is picked up again
	// after it.
	LeaseDuration time.Duration
	// IdlePoll bounds how long an idle worker pool waits before looking for
	// due work again, for work made due by other replicas (default 1s).
	IdlePoll time.Duration
	// Speed divides the catalog's expected durations, for upstreams that run
	// faster than Magic Hour (the emulator's WithSpeed). Default 1.
	Speed float64
	// ExpectedFactor multiplies a tool's p50 to get the time after which a
	// job with no webhook is polled (default 1.5).
	ExpectedFactor float64
	// MinPollInterval and MaxPollInterval bound fallback polling
	// (defaults 2s and 5m).
	MinPollInterval time.Duration
	MaxPollInterval time.Duration
	// RetryBase and RetryMax bound the backoff of failed steps (defaults
	// 1s and 5m); MaxAttempts fails a step for good (default 30).
	RetryBase   time.Duration
	RetryMax    time.Duration
	MaxAttempts int
	// ShutdownGrace is how long Close waits for in-flight work before
	// interrupting it (default 10s). Interrupted work stays resumable.
	ShutdownGrace time.Duration
	// MaxBodyBytes limits API request bodies (default 1 MiB).
	MaxBodyBytes int64
	// SSEPoll is how often an event stream looks for new events (default
	// 500ms); the database is the source, so streams work across replicas.
	SSEPoll time.Duration
	// DownloadClient fetches outputs (default: a client without overall
	// timeout; transfers are bounded by the lease and the context).
	DownloadClient *http.Client
	Logger         *slog.Logger
}

func (c *Config) defaults() error {
	if c.Store == nil || c.Storage == nil || c.Upstream == nil {
		return errors.New("gateway: Config needs Store, Storage and Upstream")
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	setDur(&c.LeaseDuration, 30*time.Second)
	setDur(&c.IdlePoll, time.Second)
	setDur(&c.MinPollInterval, 2*time.Second)
	setDur(&c.MaxPollInterval, 5*time.Minute)
	setDur(&c.RetryBase, time.Second)
	setDur(&c.RetryMax, 5*time.Minute)
	setDur(&c.ShutdownGrace, 10*time.Second)
	setDur(&c.SSEPoll, 500*time.Millisecond)
	if c.Speed <= 0 {
		c.Speed = 1
	}
	if c.ExpectedFactor <= 0 {
		c.ExpectedFactor = 1.5
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 30
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.DownloadClient == nil {
		c.DownloadClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Gateway is a running gateway: its workers (started by New) and its HTTP
// handler. It does not own the Store or the Storage; close them after it.
type Gateway struct {
	cfg     Config
	store   Store
	storage Storage
	up      *magichour.Client
	log     *slog.Logger
	replica string

	wake chan struct{} // nudges the dispatcher after local changes

	stopClaiming context.CancelFunc // stops the dispatcher
	interrupt    context.CancelFunc // aborts in-flight work
	workCtx      context.Context
	dispatchDone chan struct{}
	work         sync.WaitGroup
	closeOnce    sync.Once
}

// New starts a gateway on cfg: its workers begin claiming due jobs at once.
// Call Close to stop them.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:          cfg,
		store:        cfg.Store,
		storage:      cfg.Storage,
		up:           cfg.Upstream,
		log:          cfg.Logger,
		replica:      "r-" + randomToken(6),
		wake:         make(chan struct{}, 1),
		dispatchDone: make(chan struct{}),
	}
	claimCtx, stop := context.WithCancel(context.Background())
	workCtx, interrupt := context.WithCancel(context.Background())
	g.stopClaiming, g.interrupt, g.workCtx = stop, interrupt, workCtx
	if cfg.Workers > 0 {
		go g.dispatch(claimCtx)
	} else {
		close(g.dispatchDone)
	}
	return g, nil
}

// Close stops claiming work, waits up to ShutdownGrace for in-flight work,
// then interrupts what is left; interrupted jobs keep their state and are
// resumed by the next gateway (a create in flight may end as
// create_outcome_unknown, never as a second create).
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stopClaiming()
		<-g.dispatchDone
		done := make(chan struct{})
		go func() { g.work.Wait(); close(done) }()
		t := time.NewTimer(g.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			g.log.Warn("gateway: shutdown grace over; interrupting in-flight jobs (they stay resumable)")
			g.interrupt()
			<-done
		}
		g.interrupt()
	})
	return nil
}

// nudge wakes the dispatcher (after a local change made work due).
func (g *Gateway) nudge() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *Gateway) now() time.Time { return time.Now().UTC() }

// HashKey returns the stored form of an API key: hex sha256.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey returns a random API key with the given prefix ("hga_", "hgt_").
func NewKey(prefix string) string { return prefix + randomToken(24) }

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return crockford(b)
}

const crockfordAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// crockford encodes b in lowercase Crockford base32, 5 bits at a time.
func crockford(b []byte) string {
	out := make([]byte, 0, (len(b)*8+4)/5)
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, crockfordAlphabet[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		out = append(out, crockfordAlphabet[(acc<<uint(5-bits))&31])
	}
	return string(out)
}

// newJobID returns a ULID-like id: 48 bits of milliseconds then 80 random
// bits, so ids sort by creation time (the list cursor relies on it).
func newJobID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err)
	}
	return "job_" + crockford(b[:])
}

// Bootstrap creates the first admin key and tenant of a fresh database and
// returns the keys (shown once, stored hashed). On an already bootstrapped
// database it returns empty keys and false.
func Bootstrap(ctx context.Context, s Store) (adminKey, tenantKey string, created bool, err error) {
	adminKey, tenantKey = NewKey("hga_"), NewKey("hgt_")
	t := &Tenant{ID: "ten_default", Name: "default", KeyHash: HashKey(tenantKey), Secret: "whsec_" + randomToken(24), CreatedAt: time.Now().UTC()}
	created, err = s.Bootstrap(ctx, HashKey(adminKey), t)
	if err != nil || !created {
		return "", "", false, err
	}
	return adminKey, tenantKey, true, nil
}

// CreateTenant adds a tenant and returns its API key (stored hashed).
func CreateTenant(ctx context.Context, s Store, name string, budget *int64) (*Tenant, string, error) {
	if name == "" {
		return nil, "", errors.New("gateway: tenant name is required")
	}
	key := NewKey("hgt_")
	t := &Tenant{ID: "ten_" + randomToken(10), Name: name, KeyHash: HashKey(key), Secret: "whsec_" + randomToken(24),
		CreditBudget: budget, CreatedAt: time.Now().UTC()}
	if err := s.CreateTenant(ctx, t); err != nil {
		return nil, "", fmt.Errorf("gateway: create tenant: %w", err)
	}
	return t, key, nil
}

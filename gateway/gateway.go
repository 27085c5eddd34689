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
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/hourglasshq/hourglass/internal/catalog"
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

	// Workers is how many jobs this process works on at once (default 8;
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
	// MetricsToken, when set, is required (Authorization: Bearer) by
	// GET /metrics on the API handler. SeparateMetrics leaves /metrics off
	// the API handler: serve it from MetricsHandler on a listener of its
	// own (serve --metrics-addr).
	MetricsToken    string
	SeparateMetrics bool

	// BodyReadTimeout is how long a request body may take to arrive
	// (default 30s); uploads get it plus one second per UploadMinRate
	// bytes (default 32 KiB/s). MaxUnauthBodies caps the bodies read at
	// once before any credential check: webhooks, dashboard sign-in
	// (default 128). See bodyguard.go.
	BodyReadTimeout time.Duration
	UploadMinRate   int64
	MaxUnauthBodies int
	// SSEPoll is how often an event stream looks for new events (default
	// 500ms); the database is the source, so streams work across replicas.
	SSEPoll time.Duration
	// DownloadClient fetches outputs (default: a client without overall
	// timeout; transfers are bounded by the lease and the context; it
	// refuses internal addresses except on the upstream's own host and
	// follows redirects only within a host: download_guard.go).
	DownloadClient *http.Client
	Logger         *slog.Logger

	// PublicURL is the gateway's base URL as apps reach it; it prefixes
	// the output URLs in callback bodies (API answers use the request's
	// host when it is empty).
	PublicURL string
	// UpstreamRPS limits the calls to Magic Hour (creates, polls, deletes,
	// uploads, face detection) per second; UpstreamBurst is the bucket
	// size. Defaults 10 and 10; negative: no limit. On PostgreSQL the
	// bucket is a row shared by every replica (the limit is the total);
	// on SQLite it is in the process.
	UpstreamRPS   float64
	UpstreamBurst int
	// ThrottleRetry is how soon a pending job held back by its tenant's
	// max_in_flight is looked at again (default 500ms).
	ThrottleRetry time.Duration

	// AllowPrivateCallbacks lets callback URLs resolve to loopback,
	// private, link-local or unspecified addresses (off by default: a
	// tenant must not make the gateway call internal services).
	AllowPrivateCallbacks bool
	// CallbackWorkers is how many callbacks this process sends at once
	// (default 4; negative: none).
	CallbackWorkers int
	// CallbackTimeout bounds one delivery attempt (default 10s).
	CallbackTimeout time.Duration
	// CallbackRetryBase and CallbackRetryMax bound the exponential backoff
	// between attempts (defaults 5s and 1h); CallbackMaxAge gives up on a
	// callback that has not been delivered (default 24h).
	CallbackRetryBase time.Duration
	CallbackRetryMax  time.Duration
	CallbackMaxAge    time.Duration

	// StorageRedirect, when positive and the storage can presign (S3),
	// answers output downloads with a redirect to a presigned URL valid
	// this long instead of proxying the bytes.
	StorageRedirect time.Duration

	// MaxUploadBytes limits one uploaded input file (default 1 GiB).
	MaxUploadBytes int64

	// Retention deletes events, callback rows and webhook dedupe rows of
	// finished work older than this (default 30 days; negative: keep
	// everything), every CleanupInterval (default 1h).
	Retention       time.Duration
	CleanupInterval time.Duration
	// Clock is the gateway's time source (default the real clock; tests
	// pass a clockwork.FakeClock). Every due time, lease, timeline entry
	// and backoff reads it.
	Clock clockwork.Clock

	// InboxTTL is how long a webhook for a project no job has recorded is
	// kept for the create's answer to catch up (default 1h); it runs with
	// the retention clean-up, which then always runs.
	InboxTTL time.Duration

	// TenantStorageQuota caps each tenant's stored outputs plus uploads, in
	// bytes (0: no quota); see quota.go. UploadTTL deletes uploads no
	// pending job needs after this long (default 7 days; negative: keep).
	TenantStorageQuota int64
	UploadTTL          time.Duration

	// CreateJournalDir keeps the upstream ids of creates whose database
	// save failed, so a restart does not orphan them (held.go, journal.go;
	// put it on the data folder's disk). Empty: held in memory only.
	CreateJournalDir string
	// TempSweepAge: at start, temporary files of interrupted storage writes
	// older than this are removed (default 10 minutes; negative: never).
	TempSweepAge time.Duration

	// Catalog is the catalog the gateway starts with (default
	// catalog.Default()); SpecSource (a file or http(s) URL) is where
	// RefreshCatalog reads a newer one, every SpecRefresh when positive
	// (catalog.go). A refresh that fails keeps the last good catalog.
	Catalog     *catalog.Catalog
	SpecSource  string
	SpecRefresh time.Duration
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
		c.Workers = DefaultWorkers
	}
	setDur(&c.LeaseDuration, DefaultLeaseDuration)
	setDur(&c.IdlePoll, time.Second)
	setDur(&c.MinPollInterval, 2*time.Second)
	setDur(&c.MaxPollInterval, 5*time.Minute)
	setDur(&c.RetryBase, time.Second)
	setDur(&c.RetryMax, 5*time.Minute)
	setDur(&c.ShutdownGrace, DefaultShutdownGrace)
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
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&c.BodyReadTimeout, 30*time.Second)
	if c.UploadMinRate <= 0 {
		c.UploadMinRate = 32 << 10
	}
	if c.MaxUnauthBodies <= 0 {
		c.MaxUnauthBodies = 128
	}
	if c.DownloadClient == nil {
		c.DownloadClient = newDownloadClient([]string{c.Upstream.BaseURL()}, nil, nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.UpstreamRPS == 0 {
		c.UpstreamRPS = DefaultUpstreamRPS
	}
	if c.UpstreamBurst <= 0 {
		c.UpstreamBurst = max(1, int(c.UpstreamRPS))
	}
	setDur(&c.ThrottleRetry, 500*time.Millisecond)
	if c.CallbackWorkers == 0 {
		c.CallbackWorkers = DefaultCallbackWorkers
	}
	setDur(&c.CallbackTimeout, 10*time.Second)
	setDur(&c.CallbackRetryBase, 5*time.Second)
	setDur(&c.CallbackRetryMax, time.Hour)
	setDur(&c.CallbackMaxAge, 24*time.Hour)
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	setDur(&c.CleanupInterval, time.Hour)
	setDur(&c.InboxTTL, time.Hour)
	if c.TempSweepAge == 0 {
		c.TempSweepAge = 10 * time.Minute
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = 7 * 24 * time.Hour
	}
	return nil
}

// Gateway is a running gateway: its workers (started by New) and its HTTP
// handler. A gateway from New does not own the Store or the Storage (close
// them after it); one from Open closes the store it opened.
type Gateway struct {
	cfg     Config
	store   Store
	storage Storage
	up      *magichour.Client
	log     *slog.Logger
	clock   clockwork.Clock
	replica string

	wake   chan struct{} // nudges the dispatcher after local changes
	cbWake chan struct{} // nudges the callback sender

	unauthSlots chan struct{} // bodies read before a credential check (bodyguard.go)

	limiter  interface{ Wait(context.Context) error } // nil: no limit
	cluster  *cluster                                 // the other replicas (PostgreSQL)
	metrics  *metrics
	cbClient *http.Client // SSRF-guarded unless AllowPrivateCallbacks

	usage usageCache // tenants' storage usage, for the quota
	held  holds      // creates whose upstream id is not saved yet

	listen listenHub // GET /api/listen subscribers (listen.go)

	urlKeyMu sync.Mutex
	urlKey   []byte // signs the gateway's download URLs (from the Store)

	background sync.WaitGroup // callback sender, cleanup

	stopClaiming context.CancelFunc // stops the dispatcher
	interrupt    context.CancelFunc // aborts in-flight work
	workCtx      context.Context
	dispatchDone chan struct{}
	work         sync.WaitGroup
	closeOnce    sync.Once

	keys    BootstrapKeys  // set by Open
	closers []func() error // what Open opened, closed by Close

	// afterCreate, when set (tests), runs between a create's answer and
	// recording it.
	afterCreate atomic.Pointer[func(upstreamID string)]

	cat          atomic.Pointer[catalog.Catalog] // the catalog in use (catalog.go)
	catRefreshes *prometheus.CounterVec
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
		clock:        cfg.Clock,
		replica:      "r-" + randomToken(6),
		wake:         make(chan struct{}, 1),
		cbWake:       make(chan struct{}, 1),
		dispatchDone: make(chan struct{}),
		unauthSlots:  make(chan struct{}, cfg.MaxUnauthBodies),
		metrics:      newMetrics(cfg.Store),
		cbClient:     newCallbackClient(cfg.CallbackTimeout, cfg.AllowPrivateCallbacks),
	}
	if cfg.Catalog == nil {
		cfg.Catalog = catalog.Default()
	}
	g.cat.Store(cfg.Catalog)
	g.catRefreshes = newCatalogRefreshes(g.metrics.reg)
	g.cluster = newCluster(g)
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := g.cluster.setup(sctx)
	scancel()
	if err != nil {
		return nil, err
	}
	if cfg.UpstreamRPS > 0 {
		if db := pgOf(cfg.Store); db != nil {
			g.limiter = &pgLimiter{db: db, name: "upstream", rps: cfg.UpstreamRPS, burst: float64(cfg.UpstreamBurst)}
		} else {
			g.limiter = rate.NewLimiter(rate.Limit(cfg.UpstreamRPS), cfg.UpstreamBurst)
		}
	}
	if err := g.openHolds(); err != nil {
		return nil, err
	}
	claimCtx, stop := context.WithCancel(context.Background())
	workCtx, interrupt := context.WithCancel(context.Background())
	g.stopClaiming, g.interrupt, g.workCtx = stop, interrupt, workCtx
	if cfg.Workers > 0 {
		go g.dispatch(claimCtx)
	} else {
		close(g.dispatchDone)
	}
	if cfg.CallbackWorkers > 0 {
		g.background.Add(1)
		go func() { defer g.background.Done(); g.sendCallbacks(claimCtx) }()
	}
	{
		g.background.Add(3)
		go func() { defer g.background.Done(); g.maintain(claimCtx) }()
		go func() { defer g.background.Done(); g.heldSaver(claimCtx) }()
		go func() { defer g.background.Done(); g.sweepTemp(claimCtx) }()
	}
	if cfg.SpecRefresh > 0 && cfg.SpecSource != "" {
		g.background.Add(1)
		go func() { defer g.background.Done(); g.refreshCatalogLoop(claimCtx) }()
	}
	g.cluster.start(claimCtx, &g.background)
	return g, nil
}

// Close stops claiming work, waits up to ShutdownGrace for in-flight work,
// then interrupts what is left; interrupted jobs keep their state and are
// resumed by the next gateway (a create in flight may end as
// create_outcome_unknown, never as a second create).
func (g *Gateway) Close() (closeErr error) {
	g.closeOnce.Do(func() {
		g.stopClaiming()
		<-g.dispatchDone
		g.background.Wait()
		done := make(chan struct{})
		go func() { g.work.Wait(); close(done) }()
		t := g.clock.NewTimer(g.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.Chan():
			g.log.Warn("gateway: shutdown grace over; interrupting in-flight jobs (they stay resumable)")
			g.interrupt()
			<-done
		}
		g.interrupt()
		if n := g.heldCount(); n > 0 {
			g.log.Error("gateway: stopping with creates whose upstream id is not saved; the create journal keeps them for the next start", "held", n)
		}
		g.closeHolds()
		for i := len(g.closers) - 1; i >= 0; i-- {
			if err := g.closers[i](); err != nil && closeErr == nil {
				closeErr = err
			}
		}
	})
	return closeErr
}

// nudge wakes the dispatcher (after a local change made work due).
func (g *Gateway) nudge() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *Gateway) now() time.Time { return g.clock.Now().UTC() }

// Now returns the gateway's current time (its Config.Clock), for the
// dashboard.
func (g *Gateway) Now() time.Time { return g.now() }

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
	t := &Tenant{ID: "ten_default", Name: "default", KeyHash: HashKey(tenantKey), Secret: "whsec_" + randomToken(24)}
	created, err = s.Bootstrap(ctx, HashKey(adminKey), t)
	if err != nil || !created {
		return "", "", false, err
	}
	return adminKey, tenantKey, true, nil
}

// CreateTenant adds a tenant and returns its API key (stored hashed).
func CreateTenant(ctx context.Context, s Store, name string, budget *int64) (*Tenant, string, error) {
	return CreateTenantWith(ctx, s, Tenant{Name: name, CreditBudget: budget})
}

// CreateTenantWith adds a tenant with the name and limits of tmpl (its
// id, key, secret and times are generated) and returns its API key.
func CreateTenantWith(ctx context.Context, s Store, tmpl Tenant) (*Tenant, string, error) {
	if tmpl.Name == "" {
		return nil, "", errors.New("gateway: tenant name is required")
	}
	key := NewKey("hgt_")
	t := &tmpl
	// CreatedAt stays zero: the store stamps it with its clock.
	t.ID, t.KeyHash, t.Secret, t.CreditsUsed, t.CreatedAt = "ten_"+randomToken(10), HashKey(key), "whsec_"+randomToken(24), 0, time.Time{}
	if err := s.CreateTenant(ctx, t); err != nil {
		return nil, "", fmt.Errorf("gateway: create tenant: %w", err)
	}
	return t, key, nil
}

// Clock returns the gateway's time source (Config.Clock), for the
// dashboard's timers.
func (g *Gateway) Clock() clockwork.Clock { return g.clock }

package emulator

import (
	"log/slog"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Option configures an Emulator.
type Option func(*config)

type config struct {
	speed          float64
	credits        int64
	seed           int64
	apiKeys        []string
	webhookURLs    []string
	webhookSecret  string
	urlTTL         time.Duration
	uploadURLTTL   time.Duration
	outputSize     int64
	maxUploadSize  int64
	faults         Faults
	logger         *slog.Logger
	clock          Clock
	webhookTries   int
	webhookBackoff time.Duration
	baseURL        string
	stateFile      string // persist.go
	catalog        *catalog.Catalog
	tier           string
	savedItems     []SavedItem
}

func defaultConfig() config {
	return config{
		speed:          1,
		credits:        1_000_000,
		tier:           "business",
		urlTTL:         24 * time.Hour,
		uploadURLTTL:   time.Hour,
		maxUploadSize:  1 << 30,
		webhookTries:   5,
		webhookBackoff: time.Second,
	}
}

// WithSpeed divides every job duration by x (default 1: real time; 60 turns
// a minute into a second). Values <= 0 are ignored.
func WithSpeed(x float64) Option {
	return func(c *config) {
		if x > 0 {
			c.speed = x
		}
	}
}

// WithCredits sets the starting account balance (default 1,000,000).
func WithCredits(n int64) Option { return func(c *config) { c.credits = n } }

// WithSeed seeds every pseudo-random choice: ids, duration jitter, faults.
// Without it NewServer uses seed 1 (tests are reproducible) and New and
// Listen pick a random seed (Seed reports it), so ids never repeat across
// runs of a long-lived emulator whose clients keep state. The same seed and the same request sequence give the same
// results.
func WithSeed(n int64) Option { return func(c *config) { c.seed = n } }

// WithAPIKeys restricts the accepted bearer keys. Without it any non-empty
// key is accepted.
func WithAPIKeys(keys ...string) Option {
	return func(c *config) { c.apiKeys = append(c.apiKeys, keys...) }
}

// WithWebhookURL adds a webhook endpoint that receives every event. It may
// be given several times.
func WithWebhookURL(u string) Option {
	return func(c *config) {
		if u != "" {
			c.webhookURLs = append(c.webhookURLs, u)
		}
	}
}

// WithWebhookSecret sets the webhook signing secret (default: random).
func WithWebhookSecret(s string) Option { return func(c *config) { c.webhookSecret = s } }

// WithURLTTL sets how long download URLs stay valid (default 24h).
func WithURLTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.urlTTL = d
		}
	}
}

// WithUploadURLTTL sets how long upload URLs stay valid (default 1h).
func WithUploadURLTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.uploadURLTTL = d
		}
	}
}

// WithOutputSize makes every output a deterministic synthetic stream of n
// bytes, generated on the fly in constant memory (for download benchmarks).
// 0 (the default) serves real media.
func WithOutputSize(n int64) Option { return func(c *config) { c.outputSize = n } }

// WithMaxUploadSize limits the size of one uploaded file (default 1 GiB);
// larger uploads get 413.
func WithMaxUploadSize(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxUploadSize = n
		}
	}
}

// WithFaults sets the initial fault injection (see Faults).
func WithFaults(f Faults) Option { return func(c *config) { c.faults = f } }

// WithLogger sets the logger; each request is logged at Info level. The
// default discards logs.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock replaces the wall clock, so tests can drive the lifecycle.
func WithClock(cl Clock) Option { return func(c *config) { c.clock = cl } }

// WithWebhookRetry sets how many times one delivery is attempted (default
// 5) and the first retry delay, doubled after each failure (default 1s).
func WithWebhookRetry(attempts int, base time.Duration) Option {
	return func(c *config) {
		if attempts > 0 {
			c.webhookTries = attempts
		}
		if base > 0 {
			c.webhookBackoff = base
		}
	}
}

// WithBaseURL sets the public base URL used in signed upload and download
// links (e.g. "http://127.0.0.1:8787"). See also Emulator.SetBaseURL.
func WithBaseURL(u string) Option { return func(c *config) { c.baseURL = u } }

// WithCatalog serves the operations of c (built with catalog.Load from a
// newer spec, say) instead of the built-in catalog: tools only c knows get
// routes, validation and lifecycles.
func WithCatalog(c *catalog.Catalog) Option { return func(cfg *config) { cfg.catalog = c } }

// WithTier sets the account's tier: free, creator, pro or business (the
// default, on which every request of the spec passes). Tier rules the spec
// states (models, resolutions that need a paid plan) are refused with 402
// plan_upgrade_required.
func WithTier(t string) Option { return func(cfg *config) { cfg.tier = t } }

// WithSavedItems seeds the saved items GET /v1/saved-items lists; their
// assets' file_path values are accepted as inputs.
func WithSavedItems(items []SavedItem) Option {
	return func(cfg *config) { cfg.savedItems = append(cfg.savedItems, items...) }
}

package magichour

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// DefaultBaseURL is the Magic Hour API.
const DefaultBaseURL = "https://api.magichour.ai"

// DefaultTimeout bounds one API request (connect, send, wait for and read
// the answer) unless WithTimeout says otherwise.
const DefaultTimeout = 60 * time.Second

// RetryPolicy bounds the client's retries. A request is sent at most
// MaxAttempts times; between attempts the client sleeps a random duration in
// [0, min(MaxDelay, BaseDelay·2^(attempt-1))] ("full jitter"), or what the
// server's Retry-After asks for.
type RetryPolicy struct {
	MaxAttempts int           // total attempts including the first; 1 disables retries
	BaseDelay   time.Duration // first backoff ceiling
	MaxDelay    time.Duration // largest backoff
}

// DefaultRetryPolicy is used unless WithRetry says otherwise.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

// Option configures a Client.
type Option func(*config) error

type config struct {
	apiKey     string
	baseURL    string
	baseURLSet bool
	hc         *http.Client
	timeout    time.Duration
	retry      RetryPolicy
	userAgent  string
	logger     *slog.Logger
	noValidate bool
	catalog    *catalog.Catalog
	onWarning  func(string, catalog.Warning)
}

// WithAPIKey sets the API key (default: the MAGIC_HOUR_API_KEY environment
// variable).
func WithAPIKey(key string) Option {
	return func(c *config) error {
		key = strings.TrimSpace(key)
		if key == "" {
			return fmt.Errorf("magichour: WithAPIKey: empty key")
		}
		c.apiKey = key
		return nil
	}
}

// WithBaseURL points the client at another server, e.g. the emulator
// ("http://127.0.0.1:8787"). Without it the client uses the
// MAGIC_HOUR_BASE_URL environment variable (which `hourglass emulate`
// prints), else DefaultBaseURL.
func WithBaseURL(base string) Option {
	return func(c *config) error {
		u, err := parseBaseURL(base)
		if err != nil {
			return fmt.Errorf("magichour: WithBaseURL: %w", err)
		}
		c.baseURL, c.baseURLSet = u, true
		return nil
	}
}

func parseBaseURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(base), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", base)
	}
	return u.String(), nil
}

// WithHTTPClient sets the HTTP client. Its Timeout, if any, applies on top
// of WithTimeout. By default the client uses its own http.Client with dial,
// TLS and response-header timeouts (never http.DefaultClient).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("magichour: WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithTimeout bounds each API request attempt (default DefaultTimeout);
// 0 or less means no per-request timeout, leaving the context in charge.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.timeout = d
		return nil
	}
}

// WithRetry sets the retry policy. Zero BaseDelay or MaxDelay take the
// defaults; MaxAttempts below 1 means 1 (no retries).
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		if p.MaxAttempts < 1 {
			p.MaxAttempts = 1
		}
		if p.BaseDelay <= 0 {
			p.BaseDelay = DefaultRetryPolicy.BaseDelay
		}
		if p.MaxDelay <= 0 {
			p.MaxDelay = DefaultRetryPolicy.MaxDelay
		}
		if p.MaxDelay < p.BaseDelay {
			p.MaxDelay = p.BaseDelay
		}
		c.retry = p
		return nil
	}
}

// WithUserAgent prefixes the User-Agent header with ua.
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		c.userAgent = strings.TrimSpace(ua)
		return nil
	}
}

// WithLogger sets the logger for retries and other diagnostics (default:
// discard). The API key is never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	}
}

// WithoutValidation turns off local validation of create requests against
// the API spec; the server then has the last word.
func WithoutValidation() Option {
	return func(c *config) error {
		c.noValidate = true
		return nil
	}
}

// WithCatalog makes the client check requests against, and accept the tools
// of, c instead of the catalog built in (catalog.Default()).
func WithCatalog(c *catalog.Catalog) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("magichour: WithCatalog: nil catalog")
		}
		cfg.catalog = c
		return nil
	}
}

// WithSpec is WithCatalog for a Magic Hour OpenAPI document (JSON): a newer
// spec than the one built in, so that tools and values it adds work with no
// new release of this SDK. A spec that does not load is an error of
// NewClient.
func WithSpec(spec []byte) Option {
	return func(cfg *config) error {
		c, err := catalog.Load(spec, catalog.WithSource("WithSpec"))
		if err != nil {
			return fmt.Errorf("magichour: WithSpec: %w", err)
		}
		cfg.catalog = c
		return nil
	}
}

// WithWarningHandler receives what validation let through but flagged: an
// unknown params field (sent unchanged) or a URL without a file extension.
// Warnings are also logged at Warn level.
func WithWarningHandler(fn func(tool string, w catalog.Warning)) Option {
	return func(cfg *config) error {
		cfg.onWarning = fn
		return nil
	}
}

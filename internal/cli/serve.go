package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/gateway/web"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// serveOptions are the flags of hourglass serve.
type serveOptions struct {
	addr, db, storage, publicURL string
	secrets                      []string // --webhook-secret, repeated or comma-separated (rotation)
	workers                      int
	emulatorSpeed, upstreamSpeed float64
	shutdownGrace, lease         time.Duration

	upstreamRPS           float64
	allowPrivateCallbacks bool
	callbackWorkers       int
	maxUploadBytes        int64
	maxBodyBytes          int64
	retention             time.Duration
	logLevel, logFormat   string

	tenantStorageQuota int64
	uploadTTL          time.Duration
	journalDir         string

	spec        string        // --spec: the Magic Hour spec (file or URL) of the catalog in use
	specRefresh time.Duration // --spec-refresh: read --spec again this often (0: never)
	// Issue 11 hardening: metrics exposure, proxies, body deadlines.
	metricsAddr, metricsToken string
	trustedProxies            []string
	bodyReadTimeout           time.Duration
	storageRedirect           time.Duration // --storage-redirect: presigned download redirects valid this long
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the durable job gateway (API, webhooks, workers, storage)",
		Long: `Run hourglass's durable job gateway: apps submit jobs to its JSON API
(/api/jobs); it creates each on Magic Hour exactly once, tracks it (webhooks
first at /hooks/magichour, polling as the fallback), stores every output,
verified, and serves outputs and timelines.

With no flags: 127.0.0.1:8080, SQLite in ./hourglass-data/, outputs in
./hourglass-data/outputs, and, when MAGIC_HOUR_API_KEY is not set, an
in-process emulator as the upstream (nothing real is created or billed).
The admin key and a tenant key are printed on the first start only (they
are stored hashed).

Every flag has an environment variable HOURGLASS_<FLAG> (upper case, dashes
as underscores: HOURGLASS_ADDR, HOURGLASS_DB, HOURGLASS_UPSTREAM_RPS, ...);
the webhook secret also reads MAGIC_HOUR_WEBHOOK_SECRET. A flag given on
the command line wins. Stops gracefully on SIGINT/SIGTERM.

Apps use either the native API (/api/jobs) or the drop-in Magic Hour API
(/v1/...): point an official SDK at this server with a tenant key.
Prometheus metrics at /metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	fl.StringVar(&o.db, "db", "sqlite://./hourglass-data/hourglass.db", "database: sqlite://path or postgres://user@host/db")
	fl.StringVar(&o.storage, "storage", "file://./hourglass-data/outputs", "output and upload storage: file:///path (shared by all replicas: a shared volume), s3://bucket?region=R[&endpoint=URL&use_path_style=true] (AWS credentials from the environment or ~/.aws), gs://bucket, azblob://container")
	fl.DurationVar(&o.storageRedirect, "storage-redirect", 0, "serve output downloads as redirects to presigned storage URLs valid this long (S3; --storage-redirect alone: 5m; 0: proxy the bytes)")
	fl.Lookup("storage-redirect").NoOptDefVal = "5m"
	fl.StringSliceVar(&o.secrets, "webhook-secret", splitList(os.Getenv("MAGIC_HOUR_WEBHOOK_SECRET")),
		"Magic Hour webhook secret (from the dashboard); repeat it or separate with commas to accept several while rotating; without one jobs are tracked by polling only")
	fl.IntVar(&o.workers, "workers", gateway.DefaultWorkers, "jobs worked on at once by this process")
	fl.StringVar(&o.publicURL, "public-url", "", "public base URL of this gateway, for the webhook URL to register and callback bodies (default http://<addr>)")
	fl.Float64Var(&o.emulatorSpeed, "emulator-speed", 20, "speed of the in-process emulator used when no API key is set")
	fl.Float64Var(&o.upstreamSpeed, "upstream-speed", 1, "how much faster than Magic Hour the upstream runs (an external 'hourglass emulate --speed N' at --base-url): scales the expected times after which jobs without a webhook are polled")
	fl.DurationVar(&o.lease, "lease", gateway.DefaultLeaseDuration, "how long a claimed job stays reserved without a heartbeat; work of a crashed process is picked up after it")
	fl.DurationVar(&o.shutdownGrace, "shutdown-grace", gateway.DefaultShutdownGrace, "how long a shutdown waits for in-flight work (the rest resumes on the next start)")
	fl.Float64Var(&o.upstreamRPS, "upstream-rps", gateway.DefaultUpstreamRPS, "calls per second to Magic Hour from this process (negative: no limit)")
	fl.BoolVar(&o.allowPrivateCallbacks, "allow-private-callbacks", false, "let callback URLs reach loopback/private/link-local addresses (off: SSRF guard)")
	fl.IntVar(&o.callbackWorkers, "callback-workers", gateway.DefaultCallbackWorkers, "callbacks sent at once by this process")
	fl.Int64Var(&o.maxUploadBytes, "max-upload-bytes", gateway.DefaultMaxUploadBytes, "largest input file accepted by the upload routes")
	fl.Int64Var(&o.maxBodyBytes, "max-body-bytes", gateway.DefaultMaxBodyBytes, "largest JSON request body")
	fl.DurationVar(&o.retention, "retention", 30*24*time.Hour, "delete events, callback rows and webhook dedupe rows of finished work older than this (0: keep)")
	fl.Int64Var(&o.tenantStorageQuota, "tenant-storage-quota", 0, "bytes of stored outputs and uploads per tenant; at it, uploads get 413 and submits 507 (0: no quota)")
	fl.DurationVar(&o.uploadTTL, "upload-ttl", 7*24*time.Hour, "delete uploaded input files no pending job needs after this long (0: keep)")
	fl.StringVar(&o.journalDir, "journal-dir", "", "create journal folder: upstream ids of creates whose database save failed, replayed at start (default: journal/ next to the SQLite file, else ./hourglass-data/journal)")
	fl.StringVar(&o.spec, "spec", "", "Magic Hour spec (file or http(s) URL) the gateway and its embedded emulator work from (default: the catalog of hourglass catalog update, else the built-in one)")
	fl.DurationVar(&o.specRefresh, "spec-refresh", 0, "read --spec again this often (e.g. 24h); a refresh that fails keeps the last good catalog (0: never)")
	fl.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead of the main one (e.g. 127.0.0.1:9090)")
	fl.StringVar(&o.metricsToken, "metrics-token", "", "require Authorization: Bearer <token> for /metrics on the main address")
	fl.StringSliceVar(&o.trustedProxies, "trusted-proxies", nil, "addresses or CIDRs of TLS-terminating proxies whose X-Forwarded-Proto: https marks cookies Secure")
	fl.DurationVar(&o.bodyReadTimeout, "body-read-timeout", 30*time.Second, "a request body must arrive within this (uploads: plus 1s per 32 KiB), else the connection is closed")
	fl.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fl.String("api-key", "", "Magic Hour API key of the upstream (default $"+magichour.EnvAPIKey+"; none: the in-process emulator)")
	fl.String("base-url", "", "upstream base URL (default $"+magichour.EnvBaseURL+", else https://api.magichour.ai)")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return flagsFromEnv(cmd) }
	return cmd
}

// flagsFromEnv sets every serve flag not given on the command line from
// HOURGLASS_<FLAG> when that variable is set.
func flagsFromEnv(cmd *cobra.Command) error { return flagsFromEnvPrefix(cmd, "HOURGLASS_") }

// flagsFromEnvPrefix sets every flag of cmd not given on the command line
// from <prefix><FLAG> (upper case, dashes as underscores) when it is set.
func flagsFromEnvPrefix(cmd *cobra.Command, prefix string) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && v != "" {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

func runServe(cmd *cobra.Command, o serveOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out := cmd.OutOrStdout()
	if o.upstreamSpeed <= 0 {
		return fmt.Errorf("--upstream-speed: want a positive number, got %g", o.upstreamSpeed)
	}
	if o.lease < time.Second {
		return fmt.Errorf("--lease: want at least 1s, got %s", o.lease)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), hopts)
	switch o.logFormat {
	case "json":
		handler = slog.NewJSONHandler(cmd.ErrOrStderr(), hopts)
	case "text":
	default:
		return fmt.Errorf("--log-format: want text or json, got %q", o.logFormat)
	}
	logger := slog.New(handler)

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	public := strings.TrimRight(o.publicURL, "/")
	if public == "" {
		public = base
	}
	hookURL := public + "/hooks/magichour"

	cat := catalogOf(cmd)
	if o.spec != "" {
		if cat, err = catalog.Fetch(ctx, nil, o.spec); err != nil {
			return usageErrorf("--spec %s: %s", o.spec, strings.TrimPrefix(err.Error(), "catalog: "))
		}
	} else if o.specRefresh > 0 {
		return usageErrorf("--spec-refresh needs --spec (the spec to read again)")
	}
	secret := ""
	if len(o.secrets) > 0 {
		secret = o.secrets[0] // the embedded emulator signs with the first
	}
	proxies, err := parsePrefixes(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	up, err := openUpstream(ctx, cmd, upstreamOptions{catalog: cat, secret: secret, hookURL: base + "/hooks/magichour", dataDir: dataDir(o.db),
		emulatorSpeed: o.emulatorSpeed, upstreamSpeed: o.upstreamSpeed, userAgent: "hourglass-serve/" + version(), logger: logger})
	if err != nil {
		return err
	}
	defer up.close()
	emu, speed := up.emu, up.speed
	secret = up.secret
	if emu != nil {
		fmt.Fprintln(out, "!!! UPSTREAM IS THE IN-PROCESS EMULATOR: MAGIC_HOUR_API_KEY is not set.")
		fmt.Fprintf(out, "!!! Jobs are simulated at %gx speed by %s; nothing is created or billed on Magic Hour.\n", o.emulatorSpeed, emu.URL)
		fmt.Fprintln(out, "!!! Set MAGIC_HOUR_API_KEY (and --webhook-secret) to use the real API.")
	}

	retention := o.retention
	if retention == 0 {
		retention = -1 // keep everything
	}
	secrets := o.secrets
	if len(secrets) == 0 && secret != "" {
		secrets = []string{secret} // generated for the embedded emulator
	}
	gw, err := gateway.Open(ctx, gateway.Options{DB: o.db, StorageURL: o.storage, Config: gateway.Config{
		Upstream: up.client, WebhookSecrets: secrets,
		Workers: o.workers, Speed: speed, LeaseDuration: o.lease, ShutdownGrace: o.shutdownGrace, Logger: logger,
		PublicURL: public, UpstreamRPS: o.upstreamRPS, AllowPrivateCallbacks: o.allowPrivateCallbacks || emu != nil, // the embedded emulator's users call back to loopback
		CallbackWorkers: o.callbackWorkers, MaxUploadBytes: o.maxUploadBytes, MaxBodyBytes: o.maxBodyBytes,
		Retention: retention, TenantStorageQuota: o.tenantStorageQuota, UploadTTL: keepIfZero(o.uploadTTL),
		CreateJournalDir: journalDir(o.journalDir, o.db), StorageRedirect: o.storageRedirect,
		Catalog: cat, SpecSource: o.spec, SpecRefresh: o.specRefresh,
		MetricsToken: o.metricsToken, SeparateMetrics: o.metricsAddr != "", BodyReadTimeout: o.bodyReadTimeout,
	}})
	if err != nil {
		return err
	}
	defer gw.Close()
	keys := gw.Keys()
	printServeBanner(out, base, hookURL, o, emu != nil, secret != "", keys.Created, keys.AdminKey, keys.TenantKey)

	// SSE streams end when baseCtx is canceled, so Shutdown is not held up.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		// Dashboard at /, the API behind it. Cookies are Secure under TLS,
		// behind an https public URL, or from a trusted proxy.
		Handler: web.New(gw, web.Options{API: gw.Handler(), Logger: logger,
			SecureCookies: strings.HasPrefix(public, "https://"), TrustedProxies: proxies}),
		// No ReadTimeout: it would cut off uploads and event streams; body
		// deadlines are per route (gateway/bodyguard.go).
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if o.metricsAddr != "" {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", o.metricsAddr, err)
		}
		msrv := &http.Server{Handler: gw.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
		go func() { serveErr <- msrv.Serve(mln) }()
		defer msrv.Close()
		fmt.Fprintf(out, "  metrics:  http://%s/metrics (separate listener)\n", mln.Addr())
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: no new requests; finishing in-flight work")
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("serve", "err", err)
	}
	gw.Close()
	logger.Info("stopped")
	return nil
}

func printServeBanner(w io.Writer, base, hookURL string, o serveOptions, emulated, webhooks, first bool, adminKey, tenantKey string) {
	fmt.Fprintf(w, "hourglass gateway listening on %s\n", base)
	fmt.Fprintf(w, "  dashboard: %s/ (sign in with the admin key or a tenant key)\n", base)
	fmt.Fprintf(w, "  database: %s\n", redactDB(o.db))
	fmt.Fprintf(w, "  storage:  %s\n", o.storage)
	fmt.Fprintf(w, "  drop-in:  point any Magic Hour SDK at %s with a tenant key (same routes: /v1/...)\n", base)
	if o.metricsAddr == "" {
		fmt.Fprintf(w, "  metrics:  %s/metrics\n", base)
	}
	switch {
	case emulated:
		fmt.Fprintf(w, "  webhooks: the emulator delivers to %s\n", hookURL)
	case webhooks:
		fmt.Fprintf(w, "  webhooks: register this URL in Magic Hour's dashboard: %s\n", hookURL)
	default:
		fmt.Fprintf(w, "  webhooks: OFF (no --webhook-secret); jobs are tracked by polling. To enable, register %s in Magic Hour's dashboard and pass its secret.\n", hookURL)
	}
	if first {
		fmt.Fprintln(w, "  first start: keys below are shown ONCE (stored hashed):")
		fmt.Fprintf(w, "    admin key:  %s\n", adminKey)
		fmt.Fprintf(w, "    tenant key: %s\n", tenantKey)
		fmt.Fprintf(w, "  try: curl -H 'Authorization: Bearer %s' %s/api/jobs\n", tenantKey, base)
	} else {
		fmt.Fprintln(w, "  keys: printed on the first start (stored hashed); create more with POST /api/admin/tenants")
	}
}

// redactDB hides a password in a database URL.
func redactDB(u string) string {
	scheme := strings.Index(u, "://")
	at := strings.LastIndexByte(u, '@')
	if scheme < 0 || at < scheme {
		return u
	}
	if i := strings.IndexByte(u[scheme+3:at], ':'); i >= 0 {
		return u[:scheme+3+i] + ":xxxxx" + u[at:]
	}
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// upstreamOptions choose and configure a gateway's upstream.
type upstreamOptions struct {
	secret        string  // Magic Hour webhook secret; generated for the emulator when empty
	hookURL       string  // where the emulator delivers its webhooks
	emulatorSpeed float64 // speed of the emulator used when no API key is set
	upstreamSpeed float64 // speed of the upstream at --base-url (1 for Magic Hour)
	userAgent     string
	logger        *slog.Logger
	dataDir       string           // where the emulator keeps its state across restarts ("": memory only)
	catalog       *catalog.Catalog // the catalog the embedded emulator serves (nil: the default)
}

// upstream is what a gateway in this process talks to.
type upstream struct {
	client *magichour.Client
	emu    *emulator.Server // the in-process emulator, nil for Magic Hour
	secret string           // webhook secret, "" when webhooks are off
	speed  float64          // how much faster than Magic Hour it runs
	close  func()
}

// openUpstream returns Magic Hour when an API key is set (--api-key or
// MAGIC_HOUR_API_KEY, at --base-url when given), else an in-process
// emulator on loopback. Shared by serve and mcp.
func openUpstream(ctx context.Context, cmd *cobra.Command, o upstreamOptions) (*upstream, error) {
	key, _ := cmd.Flags().GetString("api-key")
	if strings.TrimSpace(key) == "" {
		key = os.Getenv(magichour.EnvAPIKey)
	}
	baseURL, _ := cmd.Flags().GetString("base-url")
	u := &upstream{secret: o.secret, speed: o.upstreamSpeed, close: func() {}}
	if strings.TrimSpace(key) == "" {
		if u.secret == "" {
			u.secret = "whsec_" + randomHex(16)
		}
		eopts := []emulator.Option{emulator.WithSpeed(o.emulatorSpeed), emulator.WithWebhookURL(o.hookURL), emulator.WithWebhookSecret(u.secret)}
		if o.catalog != nil {
			eopts = append(eopts, emulator.WithCatalog(o.catalog))
		}
		emu, err := listenEmbeddedEmulator(ctx, o.dataDir, o.logger, eopts...)
		if err != nil {
			return nil, fmt.Errorf("start the emulator: %w", err)
		}
		u.emu, u.close = emu, emu.Close
		key, baseURL, u.speed = emu.APIKey, emu.URL, o.emulatorSpeed
	}
	copts := []magichour.Option{magichour.WithAPIKey(key), magichour.WithUserAgent(o.userAgent), magichour.WithLogger(o.logger)}
	if baseURL != "" {
		copts = append(copts, magichour.WithBaseURL(baseURL))
	}
	if o.catalog != nil {
		copts = append(copts, magichour.WithCatalog(o.catalog))
	}
	c, err := magichour.NewClient(copts...)
	if err != nil {
		u.close()
		return nil, err
	}
	u.client = c
	return u, nil
}

// splitList splits a comma-separated environment value ("" : none).
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefixes reads addresses and CIDRs (an address is its own /32 or /128).
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

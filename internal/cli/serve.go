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
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/magichour"
)

// serveOptions are the flags of hourglass serve.
type serveOptions struct {
	addr, db, storage, secret, publicURL string
	workers                              int
	emulatorSpeed                        float64
	shutdownGrace                        time.Duration
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

Every flag has an environment variable: HOURGLASS_ADDR, HOURGLASS_DB,
HOURGLASS_STORAGE, HOURGLASS_WEBHOOK_SECRET (or MAGIC_HOUR_WEBHOOK_SECRET),
HOURGLASS_WORKERS, HOURGLASS_PUBLIC_URL. Stops gracefully on SIGINT/SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.addr, "addr", envOr("HOURGLASS_ADDR", "127.0.0.1:8080"), "listen address")
	fl.StringVar(&o.db, "db", envOr("HOURGLASS_DB", "sqlite://./hourglass-data/hourglass.db"), "database: sqlite://path or postgres://user@host/db")
	fl.StringVar(&o.storage, "storage", envOr("HOURGLASS_STORAGE", "file://./hourglass-data/outputs"), "output storage: file:///path")
	fl.StringVar(&o.secret, "webhook-secret", envOr("HOURGLASS_WEBHOOK_SECRET", os.Getenv("MAGIC_HOUR_WEBHOOK_SECRET")),
		"Magic Hour webhook secret (from the dashboard); without it jobs are tracked by polling only")
	fl.IntVar(&o.workers, "workers", envInt("HOURGLASS_WORKERS", 8), "jobs worked on at once by this process")
	fl.StringVar(&o.publicURL, "public-url", os.Getenv("HOURGLASS_PUBLIC_URL"), "public base URL of this gateway, for the webhook URL to register (default http://<addr>)")
	fl.Float64Var(&o.emulatorSpeed, "emulator-speed", 20, "speed of the in-process emulator used when no API key is set")
	fl.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "how long a shutdown waits for in-flight work (the rest resumes on the next start)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func runServe(cmd *cobra.Command, o serveOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	out := cmd.OutOrStdout()
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))

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

	// Upstream: Magic Hour with a key, else an in-process emulator.
	key, _ := cmd.Flags().GetString("api-key")
	if strings.TrimSpace(key) == "" {
		key = os.Getenv(magichour.EnvAPIKey)
	}
	baseURL, _ := cmd.Flags().GetString("base-url")
	secret := o.secret
	var emu *emulator.Server
	speed := 1.0
	if strings.TrimSpace(key) == "" {
		if secret == "" {
			secret = "whsec_" + randomHex(16)
		}
		emu, err = emulator.Listen(context.WithoutCancel(ctx), "127.0.0.1:0",
			emulator.WithSpeed(o.emulatorSpeed), emulator.WithWebhookURL(base+"/hooks/magichour"), emulator.WithWebhookSecret(secret))
		if err != nil {
			return fmt.Errorf("start the emulator: %w", err)
		}
		defer emu.Close()
		key, baseURL, speed = emu.APIKey, emu.URL, o.emulatorSpeed
		fmt.Fprintln(out, "!!! UPSTREAM IS THE IN-PROCESS EMULATOR: MAGIC_HOUR_API_KEY is not set.")
		fmt.Fprintf(out, "!!! Jobs are simulated at %gx speed by %s; nothing is created or billed on Magic Hour.\n", o.emulatorSpeed, emu.URL)
		fmt.Fprintln(out, "!!! Set MAGIC_HOUR_API_KEY (and --webhook-secret) to use the real API.")
	}
	copts := []magichour.Option{magichour.WithAPIKey(key), magichour.WithUserAgent("hourglass-serve/" + Version), magichour.WithLogger(logger)}
	if baseURL != "" {
		copts = append(copts, magichour.WithBaseURL(baseURL))
	}
	up, err := magichour.NewClient(copts...)
	if err != nil {
		return err
	}

	store, err := gateway.OpenStore(ctx, o.db)
	if err != nil {
		return err
	}
	defer store.Close()
	storage, err := gateway.OpenStorage(o.storage)
	if err != nil {
		return err
	}
	var secrets []string
	if secret != "" {
		secrets = []string{secret}
	}
	gw, err := gateway.New(gateway.Config{
		Store: store, Storage: storage, Upstream: up, WebhookSecrets: secrets,
		Workers: o.workers, Speed: speed, ShutdownGrace: o.shutdownGrace, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer gw.Close()

	adminKey, tenantKey, first, err := gateway.Bootstrap(ctx, store)
	if err != nil {
		return fmt.Errorf("bootstrap keys: %w", err)
	}
	printServeBanner(out, base, hookURL, o, emu != nil, secret != "", first, adminKey, tenantKey)

	// SSE streams end when baseCtx is canceled, so Shutdown is not held up.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           gw.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

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
	fmt.Fprintf(w, "  database: %s\n", redactDB(o.db))
	fmt.Fprintf(w, "  storage:  %s\n", o.storage)
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

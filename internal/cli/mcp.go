package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/mcpserver"
	"github.com/hourglasshq/hourglass/magichour"
)

// mcpOptions are the flags of hourglass mcp.
type mcpOptions struct {
	httpAddr, gatewayURL, key, dataDir, gatewayAddr string
	emulatorSpeed, upstreamSpeed                    float64
	workers                                         int
	embedMax                                        int64
	maxWait                                         time.Duration
	allowLocalFiles                                 bool
	logLevel                                        string
}

func newMCPCmd() *cobra.Command {
	var o mcpOptions
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Run a Model Context Protocol server for AI agents (stdio or HTTP)",
		Long: `Run an MCP server that gives AI agents every Magic Hour tool, with
idempotent creates (a retried call never pays twice), resumable waits,
stored outputs that do not expire, uploads of local files, estimates and
budgets.

Transports: stdio (the default, for desktop agents), or streamable HTTP
with --http ADDR (served at /mcp; every request needs
"Authorization: Bearer <tenant key>").

Modes: with --gateway URL it works through a running "hourglass serve"
(durable, shared, with its budgets; stdio needs --key or
HOURGLASS_TENANT_KEY). Without it, it runs an embedded gateway on SQLite
in the user's data folder (--data-dir), whose upstream is the in-process
emulator when MAGIC_HOUR_API_KEY is not set (said in the server's
instructions). Over HTTP the embedded gateway's API is served on the same
address and its tenant key is printed at start.

Every flag has an environment variable HOURGLASS_MCP_<FLAG> (HOURGLASS_MCP_HTTP,
HOURGLASS_MCP_GATEWAY, ...); the key also reads HOURGLASS_TENANT_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMCP(cmd, o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.httpAddr, "http", "", "serve streamable HTTP at ADDR/mcp instead of stdio (e.g. 127.0.0.1:8090)")
	fl.StringVar(&o.gatewayURL, "gateway", "", "URL of a running hourglass serve to work through (default: an embedded gateway)")
	fl.StringVar(&o.key, "key", "", "tenant key for --gateway over stdio (default $HOURGLASS_TENANT_KEY)")
	fl.StringVar(&o.dataDir, "data-dir", "", "folder of the embedded gateway's database, outputs and key (default: the user's data folder, hourglass/mcp)")
	fl.StringVar(&o.gatewayAddr, "gateway-addr", "127.0.0.1:0", "loopback address of the embedded gateway's API over stdio (outputs' URLs point there)")
	fl.Float64Var(&o.emulatorSpeed, "emulator-speed", 20, "speed of the embedded emulator used when no API key is set")
	fl.Float64Var(&o.upstreamSpeed, "upstream-speed", 1, "how much faster than Magic Hour the upstream at --base-url runs (an emulator's --speed)")
	fl.IntVar(&o.workers, "workers", 4, "jobs the embedded gateway works on at once")
	fl.Int64Var(&o.embedMax, "embed-max-bytes", 1<<20, "largest total size of images and audio embedded in one result (0: none)")
	fl.DurationVar(&o.maxWait, "max-wait", time.Hour, "longest wait_seconds honored")
	fl.BoolVar(&o.allowLocalFiles, "allow-local-files", false, "over HTTP, let upload_file read paths on this machine (always on over stdio)")
	fl.StringVar(&o.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	fl.String("api-key", "", "Magic Hour API key of the embedded gateway's upstream (default $"+magichour.EnvAPIKey+"; none: the in-process emulator)")
	fl.String("base-url", "", "upstream base URL of the embedded gateway (default $"+magichour.EnvBaseURL+", else https://api.magichour.ai)")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return flagsFromEnvPrefix(cmd, "HOURGLASS_MCP_") }
	return cmd
}

func runMCP(cmd *cobra.Command, o mcpOptions) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	if o.upstreamSpeed <= 0 || o.emulatorSpeed <= 0 {
		return errors.New("--upstream-speed and --emulator-speed: want positive numbers")
	}
	embed := o.embedMax
	if embed == 0 {
		embed = -1
	}
	sopts := mcpserver.Options{Version: version(), EmbedMaxBytes: embed, MaxWait: o.maxWait, Logger: logger,
		AllowLocalFiles: o.httpAddr == "" || o.allowLocalFiles}
	// Over stdio, stdout is the protocol: everything for people goes to stderr.
	banner := cmd.ErrOrStderr()
	if o.httpAddr != "" {
		banner = cmd.OutOrStdout()
	}

	var ln net.Listener
	if o.httpAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", o.httpAddr); err != nil {
			return fmt.Errorf("listen on %s: %w", o.httpAddr, err)
		}
		defer ln.Close()
	}

	var gwHandler http.Handler // the embedded gateway's API, served beside /mcp over HTTP
	if o.gatewayURL != "" {
		u := strings.TrimRight(o.gatewayURL, "/")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("--gateway: want an http(s) URL, got %q", o.gatewayURL)
		}
		sopts.API = &mcpserver.Client{BaseURL: u}
		sopts.Note = "Jobs go through the hourglass gateway at " + u + ": durable and shared, with the tenant's credit budget."
		if o.key == "" {
			o.key = os.Getenv("HOURGLASS_TENANT_KEY") // read here, so --help never prints it
		}
		if o.httpAddr == "" {
			if o.key == "" {
				return errors.New("--gateway over stdio needs a tenant key: --key or HOURGLASS_TENANT_KEY")
			}
			if _, err := sopts.API.Account(ctx, o.key, false); err != nil {
				return fmt.Errorf("gateway %s refused the tenant key or is unreachable: %w", u, err)
			}
			sopts.Key = o.key
		}
	} else {
		emb, err := openEmbeddedGateway(ctx, cmd, o, ln, logger)
		if err != nil {
			return err
		}
		defer emb.close()
		sopts.API, sopts.Key, sopts.Note = emb.api, emb.key, emb.note
		gwHandler = emb.handler
		if o.httpAddr == "" {
			fmt.Fprintf(banner, "hourglass mcp: embedded gateway at %s (data in %s)\n", emb.base, emb.dir)
		} else {
			fmt.Fprintf(banner, "hourglass mcp: embedded gateway (data in %s)\n", emb.dir)
			fmt.Fprintf(banner, "  gateway API: http://%s/api/ (outputs' URLs point here)\n", ln.Addr())
			fmt.Fprintf(banner, "  tenant key:  %s\n", emb.key)
		}
		if emb.emulated {
			fmt.Fprintln(banner, "  upstream: the in-process EMULATOR (MAGIC_HOUR_API_KEY is not set): nothing is created or billed on Magic Hour")
		}
	}
	srv, err := mcpserver.New(sopts)
	if err != nil {
		return err
	}
	if o.httpAddr == "" {
		err := srv.RunStdio(ctx)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return serveMCPHTTP(ctx, ln, srv.Handler(), gwHandler, banner, logger)
}

// serveMCPHTTP serves /mcp (and, when gw is set, the embedded gateway's
// routes beside it) until ctx ends.
func serveMCPHTTP(ctx context.Context, ln net.Listener, mcpH, gw http.Handler, banner io.Writer, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpH)
	if gw != nil {
		mux.Handle("/", gw)
	}
	fmt.Fprintf(banner, "hourglass mcp listening on http://%s/mcp (send Authorization: Bearer <tenant key>)\n", ln.Addr())
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cancelBase() // ends streams held open by clients
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// embedded is the gateway hourglass mcp runs in-process when no --gateway
// is given.
type embedded struct {
	api      mcpserver.API
	handler  http.Handler
	key      string
	base     string
	dir      string
	note     string
	emulated bool
	close    func()
}

// openEmbeddedGateway starts a gateway on SQLite in the data folder. Over
// HTTP (ln set) its API is served on ln beside /mcp; over stdio it gets a
// loopback listener of its own. The tenant key is kept in the folder
// (0600) so every start uses the same tenant and sees its earlier jobs.
func openEmbeddedGateway(ctx context.Context, cmd *cobra.Command, o mcpOptions, ln net.Listener, logger *slog.Logger) (*embedded, error) {
	dir := o.dataDir
	if dir == "" {
		d, err := defaultDataDir()
		if err != nil {
			return nil, fmt.Errorf("find the data folder (set --data-dir): %w", err)
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	e := &embedded{dir: dir}
	var closers []func()
	e.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*embedded, error) { e.close(); return nil, err }

	gwLn := ln
	if gwLn == nil {
		var err error
		if gwLn, err = listenGateway(dir, o.gatewayAddr); err != nil {
			return nil, err
		}
	}
	e.base = "http://" + gwLn.Addr().String()
	up, err := openUpstream(ctx, cmd, upstreamOptions{hookURL: e.base + "/hooks/magichour", dataDir: dir,
		emulatorSpeed: o.emulatorSpeed, upstreamSpeed: o.upstreamSpeed, userAgent: "hourglass-mcp/" + version(), logger: logger})
	if err != nil {
		if ln == nil {
			gwLn.Close()
		}
		return nil, err
	}
	closers = append(closers, up.close)
	e.emulated = up.emu != nil
	var secrets []string
	if up.secret != "" {
		secrets = []string{up.secret}
	}
	gw, err := gateway.Open(ctx, gateway.Options{DB: "sqlite://" + filepath.Join(dir, "hourglass.db"), StorageURL: "file://" + filepath.Join(dir, "outputs"),
		Config: gateway.Config{Upstream: up.client, WebhookSecrets: secrets, Workers: o.workers, Speed: up.speed, Logger: logger,
			PublicURL: e.base, AllowPrivateCallbacks: true, // a local agent's callbacks are local
			CreateJournalDir: filepath.Join(dir, "journal")}})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = gw.Close() })
	e.handler = gw.Handler()
	client := &mcpserver.Client{BaseURL: e.base}
	e.api = client

	if ln == nil { // stdio: the gateway's API on its own loopback listener
		hs := &http.Server{Handler: e.handler, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		done := make(chan struct{})
		go func() { defer close(done); _ = hs.Serve(gwLn) }()
		closers = append(closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
			<-done
		})
	}

	key, err := embeddedKey(ctx, gw, dir)
	if err != nil {
		return fail(err)
	}
	e.key = key
	if e.emulated {
		e.note = "Upstream: the embedded EMULATOR, because MAGIC_HOUR_API_KEY is not set: jobs are simulated with placeholder media; nothing is created or billed on Magic Hour. Jobs are kept in " + dir + "."
	} else {
		e.note = "Standalone: an embedded gateway (SQLite in " + dir + ") creates the jobs on Magic Hour with the configured API key: they cost real credits."
	}
	return e, nil
}

// embeddedKey returns the tenant key of the embedded gateway, kept in
// dir/tenant.key: the bootstrap tenant's on the first start, a new tenant
// when the file is missing or no longer valid. The first start's admin key
// goes to dir/admin.key.
func embeddedKey(ctx context.Context, gw *gateway.Gateway, dir string) (string, error) {
	path := filepath.Join(dir, "tenant.key")
	store, keys := gw.Store(), gw.Keys()
	tenantKey := keys.TenantKey
	if !keys.Created {
		if b, err := os.ReadFile(path); err == nil {
			k := strings.TrimSpace(string(b))
			if _, err := store.TenantByKey(ctx, gateway.HashKey(k)); err == nil {
				return k, nil
			}
		}
		var err error
		if _, tenantKey, err = gateway.CreateTenant(ctx, store, "mcp", nil); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(path, []byte(tenantKey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the tenant key: %w", err)
	}
	if keys.Created {
		// Kept for managing the database later (hourglass serve --db ...).
		if err := os.WriteFile(filepath.Join(dir, "admin.key"), []byte(keys.AdminKey+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("keep the admin key: %w", err)
		}
	}
	return tenantKey, nil
}

// defaultDataDir is $XDG_DATA_HOME/hourglass/mcp, else ~/.local/share on
// Unix-likes, else the user's config folder (macOS Application Support,
// Windows AppData).
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "hourglass", "mcp"), nil
	}
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".local", "share", "hourglass", "mcp"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "hourglass", "mcp"), nil
}

// listenGateway listens for the embedded gateway's API over stdio. With
// the default 127.0.0.1:0 it takes the port of the previous start when it
// is free (kept in dir/gateway.addr), so output URLs handed to an agent
// before a restart keep working.
func listenGateway(dir, addr string) (net.Listener, error) {
	saved := filepath.Join(dir, "gateway.addr")
	if addr == "127.0.0.1:0" {
		if b, err := os.ReadFile(saved); err == nil {
			if ln, err := net.Listen("tcp", strings.TrimSpace(string(b))); err == nil {
				return ln, nil
			}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	_ = os.WriteFile(saved, []byte(ln.Addr().String()+"\n"), 0o600)
	return ln, nil
}

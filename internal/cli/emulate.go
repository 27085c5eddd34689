package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
)

func newEmulateCmd() *cobra.Command {
	var (
		addr, secret, outputSize, maxUpload string
		spec, tier, savedFile               string
		speed                               float64
		credits, seed                       int64
		webhooks, keys                      []string
		urlTTL, uploadTTL, retryBase        time.Duration
		retries                             int
		f                                   emulator.Faults
	)
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Run a local, stateful Magic Hour API emulator",
		Long: `Run a stateful, spec-faithful Magic Hour API on a local address: every
operation, projects that progress on a sped-up clock, signed upload and
download URLs with real media, credits, signed webhooks, failure markers and
injectable faults. An account with a tier (--tier; tier rules of the spec
answer 402 plan_upgrade_required) and saved items (--saved-items, a JSON
array in the spec's items shape). --spec FILE|URL serves a newer spec's
operations with no rebuild. Admin API under /_emulator/ (stats, faults,
balance, account, saved-items, cancel, reset). Stops on SIGINT/SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := parseSize(outputSize)
			if err != nil {
				return fmt.Errorf("--output-size: %w", err)
			}
			maxUp, err := parseSize(maxUpload)
			if err != nil {
				return fmt.Errorf("--max-upload-size: %w", err)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx := cmd.Context()
			opts := []emulator.Option{emulator.WithTier(tier)}
			if spec != "" {
				cat, err := catalog.Fetch(ctx, nil, spec)
				if err != nil {
					return fmt.Errorf("--spec: %w", err)
				}
				opts = append(opts, emulator.WithCatalog(cat))
			}
			if savedFile != "" {
				b, err := os.ReadFile(savedFile)
				if err != nil {
					return fmt.Errorf("--saved-items: %w", err)
				}
				items, err := emulator.ParseSavedItems(b)
				if err != nil {
					return fmt.Errorf("--saved-items %s: %w", savedFile, err)
				}
				opts = append(opts, emulator.WithSavedItems(items))
			}
			opts = append(opts,
				emulator.WithSpeed(speed), emulator.WithCredits(credits), emulator.WithSeed(seed),
				emulator.WithWebhookSecret(secret), emulator.WithURLTTL(urlTTL), emulator.WithUploadURLTTL(uploadTTL),
				emulator.WithOutputSize(out), emulator.WithMaxUploadSize(maxUp), emulator.WithFaults(f),
				emulator.WithLogger(logger), emulator.WithWebhookRetry(retries, retryBase),
			)
			if len(keys) > 0 {
				opts = append(opts, emulator.WithAPIKeys(keys...))
			}
			for _, u := range webhooks {
				opts = append(opts, emulator.WithWebhookURL(u))
			}
			srv, err := emulator.Listen(ctx, addr, opts...)
			if err != nil {
				return err
			}
			defer srv.Close()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Magic Hour API emulator listening on %s\n", srv.URL)
			fmt.Fprintf(w, "  export MAGIC_HOUR_BASE_URL=%s\n", srv.URL)
			if len(keys) > 0 {
				fmt.Fprintf(w, "  export MAGIC_HOUR_API_KEY=%s\n", srv.APIKey)
			} else {
				fmt.Fprintf(w, "  export MAGIC_HOUR_API_KEY=%s   (any non-empty key is accepted)\n", srv.APIKey)
			}
			fmt.Fprintf(w, "  webhook secret: %s\n", srv.WebhookSecret)
			fmt.Fprintf(w, "  seed: %d (replay with --seed %d)\n", srv.Emulator.Seed(), srv.Emulator.Seed())
			acct := srv.Emulator.Account()
			fmt.Fprintf(w, "  account: %s tier, %d credits; catalog %s (%s)\n", acct.Tier, acct.Credits, srv.Emulator.Catalog().DateString(), srv.Emulator.Catalog().Source)
			fmt.Fprintf(w, "  admin: %s/_emulator/stats  (faults, balance, account, saved-items, projects/{id}/cancel, reset)\n", srv.URL)
			<-ctx.Done()
			logger.Info("shutting down")
			srv.Close()
			return srv.Err()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8787", "listen address")
	fl.Float64Var(&speed, "speed", 1, "divide job durations by this factor (60: a minute takes a second)")
	fl.Int64Var(&credits, "credits", 1_000_000, "starting credit balance")
	fl.StringVar(&tier, "tier", "business", "account tier: free, creator, pro or business")
	fl.StringVar(&spec, "spec", os.Getenv("HOURGLASS_SPEC"), "serve the operations of this OpenAPI spec (file or http(s) URL; env HOURGLASS_SPEC) instead of the built-in catalog")
	fl.StringVar(&savedFile, "saved-items", "", "seed saved items from this JSON file (an array in the spec's items shape)")
	fl.Int64Var(&seed, "seed", 0, "seed for ids, duration jitter and faults (0: random, printed at start)")
	fl.StringSliceVar(&keys, "api-key", nil, "accepted API key (repeatable; default: any non-empty key)")
	fl.StringArrayVar(&webhooks, "webhook-url", nil, "webhook endpoint (repeatable)")
	fl.StringVar(&secret, "webhook-secret", "", "webhook signing secret (default: random)")
	fl.IntVar(&retries, "webhook-attempts", 5, "delivery attempts per webhook")
	fl.DurationVar(&retryBase, "webhook-retry-base", time.Second, "first webhook retry delay, doubled each time")
	fl.DurationVar(&urlTTL, "url-ttl", 24*time.Hour, "download URL lifetime")
	fl.DurationVar(&uploadTTL, "upload-url-ttl", time.Hour, "upload URL lifetime")
	fl.StringVar(&outputSize, "output-size", "0", "serve every output as a synthetic stream of this size (e.g. 1GiB; 0: real media)")
	fl.StringVar(&maxUpload, "max-upload-size", "1GiB", "largest accepted upload")
	fl.Float64Var(&f.RateLimit, "fault-rate-limit", 0, "probability of 429 on API requests")
	fl.DurationVar(&f.RetryAfter, "fault-retry-after", time.Second, "Retry-After of injected 429s")
	fl.Float64Var(&f.ServerError, "fault-server-error", 0, "probability of 500 on API requests")
	fl.Float64Var(&f.BadGateway, "fault-bad-gateway", 0, "probability of 502 on API requests")
	fl.Float64Var(&f.Unavailable, "fault-unavailable", 0, "probability of 503 on API requests")
	fl.Float64Var(&f.AmbiguousCreate, "fault-ambiguous-create", 0, "probability that a create succeeds but the connection drops")
	fl.DurationVar(&f.Latency, "fault-latency", 0, "latency added to API requests")
	fl.Int64Var(&f.DownloadBytesPerSec, "fault-download-rate", 0, "download bandwidth limit in bytes/s (0: unlimited)")
	fl.Float64Var(&f.TruncateDownload, "fault-truncate-download", 0, "probability that a download is cut midway")
	fl.Float64Var(&f.ExpireURLs, "fault-expire-urls", 0, "probability that a download URL is handed out already expired")
	fl.Float64Var(&f.WebhookDrop, "fault-webhook-drop", 0, "probability that a webhook is never sent")
	fl.Float64Var(&f.WebhookDuplicate, "fault-webhook-duplicate", 0, "probability that a webhook is sent twice")
	fl.Float64Var(&f.WebhookReorder, "fault-webhook-reorder", 0, "probability that a webhook is held back so later ones overtake it")
	fl.DurationVar(&f.WebhookDelay, "fault-webhook-delay", 0, "delay added to every webhook")
	return cmd
}

// parseSize reads a byte size such as "1GiB", "512MB", "1048576".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(n * float64(mul)), nil
}

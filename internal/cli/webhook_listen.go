package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// EnvWebhookSecret is the default for --secret.
const EnvWebhookSecret = "MAGIC_HOUR_WEBHOOK_SECRET"

func newWebhookCmd() *cobra.Command {
	wh := &cobra.Command{
		Use:   "webhook",
		Short: "Receive Magic Hour webhooks locally",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	addOutputFlags(wh.PersistentFlags())
	wh.PersistentFlags().String("profile", "", "configuration profile for the webhook secret (default $"+EnvProfile+")")
	l := &listener{}
	listen := &cobra.Command{
		Use:   "listen",
		Short: "Run a local webhook receiver: verify signatures, print events, forward them",
		Long: "Runs a local HTTP receiver for Magic Hour webhooks (like `stripe listen`). Every delivery's\n" +
			"signature is verified with --secret; verified events are printed one per line and, with\n" +
			"--forward-to, re-sent to your app with the original body and fresh signature headers made\n" +
			"with the same secret. Forged or stale deliveries are rejected with 401 and reported.",
		Example: "  hourglass webhook listen --secret whsec_test --forward-to http://localhost:3000/hooks/magichour\n" +
			"  hourglass emulate --webhook-url http://127.0.0.1:8788/ --webhook-secret whsec_test",
		Args: cobra.NoArgs,
		RunE: l.run,
	}
	f := listen.Flags()
	f.StringVar(&l.secret, "secret", "", "webhook signing secret (default $"+EnvWebhookSecret+")")
	f.StringVar(&l.addr, "addr", "127.0.0.1:8788", "address to listen on")
	f.StringVar(&l.forward, "forward-to", "", "URL to forward verified events to")
	f.StringVar(&l.path, "path", "/", "URL path to receive on (every path under it)")
	wh.AddCommand(listen)
	return wh
}

type listener struct {
	secret, addr, forward, path string

	mu   sync.Mutex
	out  io.Writer
	json bool
	hc   *http.Client
}

type rawKey struct{}

type rawDelivery struct {
	body   []byte
	header http.Header
	remote string
}

func (l *listener) run(cmd *cobra.Command, _ []string) error {
	e := newEnv(cmd)
	if l.secret == "" {
		l.secret = os.Getenv(EnvWebhookSecret)
	}
	if strings.TrimSpace(l.secret) == "" {
		return usageErrorf("webhook listen needs the signing secret: --secret S or $%s (the emulator prints its secret; `hourglass emulate --webhook-secret S` sets it)", EnvWebhookSecret)
	}
	if l.forward != "" && !isRemoteRef(l.forward) {
		return usageErrorf("--forward-to %q: want an http(s) URL", l.forward)
	}
	l.out, l.json = e.stdout, e.json
	l.hc = &http.Client{Timeout: 30 * time.Second}

	ctx, cancel := e.context()
	defer cancel()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.addr)
	if err != nil {
		return usageErrorf("listen on %s: %v", l.addr, err)
	}
	h := webhook.NewHandler(l.secret, l.event)
	mux := http.NewServeMux()
	mux.Handle(l.path, l.wrap(h))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String() + l.path
	fwd := ""
	if l.forward != "" {
		fwd = ", forwarding to " + l.forward
	}
	e.note("Ready! Listening for Magic Hour webhooks on %s%s (Ctrl-C to stop)", url, fwd)

	select {
	case <-ctx.Done():
		afterInterrupt(cmd.Context())
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return &exitError{code: ExitAPI, msg: "webhook listener: " + err.Error()}
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	e.note("stopped")
	return nil
}

// wrap keeps the raw delivery for forwarding and reports rejected ones.
func (l *listener) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, webhook.DefaultMaxBodyBytes+1))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		raw := &rawDelivery{body: body, header: r.Header.Clone(), remote: r.RemoteAddr}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), rawKey{}, raw)))
		if rec.code == http.StatusUnauthorized {
			l.rejected(raw, strings.TrimSpace(rec.body.String()))
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.body.Len() < 4096 {
		s.body.Write(p)
	}
	return s.ResponseWriter.Write(p)
}

func (l *listener) rejected(raw *rawDelivery, reason string) {
	reason = strings.TrimPrefix(reason, `{"message":"`)
	reason = strings.TrimSuffix(reason, `"}`)
	if reason == "" {
		reason = "bad signature"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		b, _ := json.Marshal(map[string]any{"rejected": true, "status": 401, "reason": reason, "remote": raw.remote, "time": time.Now().UTC().Format(time.RFC3339)})
		fmt.Fprintf(l.out, "%s\n", b)
		return
	}
	fmt.Fprintf(l.out, "%s  REJECTED 401  forged or invalid delivery from %s: %s\n", time.Now().Format("15:04:05"), raw.remote, reason)
}

// event prints one verified event and forwards it.
func (l *listener) event(ctx context.Context, ev *webhook.Event) error {
	raw, _ := ctx.Value(rawKey{}).(*rawDelivery)
	fwd := ""
	if l.forward != "" && raw != nil {
		fwd = l.forwardEvent(ctx, raw)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := ev.Payload
	if l.json {
		out := map[string]any{
			"type": ev.Type, "id": p.ID, "status": p.Status, "timestamp": ev.Timestamp.UTC().Format(time.RFC3339),
			"payload": ev.Raw,
		}
		if fwd != "" {
			out["forwarded"] = fwd
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(l.out, "%s\n", b)
		return nil
	}
	line := fmt.Sprintf("%s  %-16s %s  %s", ev.Timestamp.Format("15:04:05"), ev.Type, p.ID, p.Status)
	if p.Error != nil {
		line += fmt.Sprintf("  error %s: %s", p.Error.Code, p.Error.Message)
	}
	if n := len(p.Downloads); n > 0 {
		line += fmt.Sprintf("  %d output(s)", n)
	}
	if p.CreditsCharged > 0 {
		line += fmt.Sprintf("  %d credits", p.CreditsCharged)
	}
	if fwd != "" {
		line += "  → " + fwd
	}
	fmt.Fprintln(l.out, line)
	return nil
}

// forwardEvent re-sends the original body, signed afresh with the same
// secret, and returns a short outcome ("200 OK" or the error).
func (l *listener) forwardEvent(ctx context.Context, raw *rawDelivery) string {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, l.forward, bytes.NewReader(raw.body))
	if err != nil {
		return "forward failed: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hourglass-webhook-listen/"+Version)
	for k, v := range webhook.Headers(l.secret, time.Now(), raw.body) {
		req.Header[k] = v
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return "forward failed: " + oneLine(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return "forwarded: " + resp.Status
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
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
		Short: "Receive, send and replay Magic Hour webhooks locally",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	addOutputFlags(wh.PersistentFlags())
	wh.PersistentFlags().String("profile", "", "configuration profile for the webhook secret (default $"+EnvProfile+")")
	wh.PersistentFlags().String("secret", "", "webhook signing secret (default: the profile's webhook_secret, else $"+EnvWebhookSecret+")")
	l := &listener{}
	listen := &cobra.Command{
		Use:   "listen",
		Short: "Run a local webhook receiver: verify signatures, print events, forward them",
		Long: "Runs a local HTTP receiver for Magic Hour webhooks (like `stripe listen`). Every delivery's\n" +
			"signature is verified with --secret; verified events are printed one per line and, with\n" +
			"--forward-to, re-sent to your app with the original body and fresh signature headers made\n" +
			"with the same secret. The sender gets your app's answer (502 when it cannot be reached),\n" +
			"so a failed delivery is retried by the sender rather than lost. Forged or stale deliveries\n" +
			"are rejected with 401 and reported. Every delivery is kept in " + displayLogPath() + "\n" +
			"(see `hourglass webhook deliveries` and `hourglass webhook resend`).",
		Example: "  hourglass webhook listen --secret whsec_test --forward-to http://localhost:3000/hooks/magichour\n" +
			"  hourglass emulate --webhook-url http://127.0.0.1:8788/ --webhook-secret whsec_test",
		Args: cobra.NoArgs,
		RunE: l.run,
	}
	f := listen.Flags()
	f.StringVar(&l.addr, "addr", "127.0.0.1:8788", "address to listen on")
	f.StringVar(&l.forward, "forward-to", "", "URL to forward verified events to")
	f.StringVar(&l.path, "path", "/", "URL path to receive on (every path under it)")
	f.BoolVar(&l.noLog, "no-log", false, "do not keep deliveries in the local delivery log")
	wh.AddCommand(listen, newTriggerCmd(), newResendCmd(), newDeliveriesCmd())
	return wh
}

type listener struct {
	secret, addr, forward, path string
	noLog                       bool

	mu   sync.Mutex
	out  io.Writer
	json bool
	hc   *http.Client
	log  *deliveryLog
	warn func(format string, args ...any)
}

func (l *listener) run(cmd *cobra.Command, _ []string) error {
	e := newEnv(cmd)
	prof, err := chooseProfile(cmd)
	if err != nil {
		return err
	}
	flag, _ := cmd.Flags().GetString("secret")
	l.secret = webhookSecret(flag, prof)
	if strings.TrimSpace(l.secret) == "" {
		return usageErrorf("webhook listen needs the signing secret: --secret S, a profile's webhook_secret, or $%s (the emulator prints its secret; `hourglass emulate --webhook-secret S` sets it)", EnvWebhookSecret)
	}
	if l.forward != "" && !isRemoteRef(l.forward) {
		return usageErrorf("--forward-to %q: want an http(s) URL", l.forward)
	}
	l.out, l.json = e.stdout, e.json
	l.hc = &http.Client{Timeout: 30 * time.Second}
	l.warn = e.note
	if !l.noLog {
		if l.log, err = openDeliveryLog(); err != nil {
			return err
		}
	}

	ctx, cancel := e.context()
	defer cancel()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.addr)
	if err != nil {
		return usageErrorf("listen on %s: %v", l.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(l.path, http.HandlerFunc(l.serve))
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

// serve handles one delivery: verify, print, log, forward, and answer
// with what the forward target answered.
func (l *listener) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		replyJSON(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes))
	if err != nil {
		replyJSON(w, http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	if err := webhook.Verify(l.secret, r.Header, body, time.Now()); err != nil {
		reason := strings.TrimPrefix(err.Error(), "webhook: ")
		l.rejected(r.RemoteAddr, reason)
		replyJSON(w, http.StatusUnauthorized, reason)
		return
	}
	ev, err := webhook.Parse(body)
	if err != nil && !errors.Is(err, webhook.ErrUnknownEvent) {
		replyJSON(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "webhook: "))
		return
	}
	d := &delivery{ID: newDeliveryID(), At: time.Now().UTC(), Source: "webhook listen", Kind: "webhook", Type: string(ev.Type),
		ProjectID: ev.Payload.ID, Body: json.RawMessage(body), ForwardTo: l.forward}
	var res forwardResult
	if l.forward != "" {
		res = signedPost(r.Context(), l.hc, l.forward, l.secret, body, nil)
		d.Status = res.status
		if res.err != nil {
			d.Error = oneLine(res.err)
		}
	}
	if err := l.log.add(d); err != nil {
		l.warn("warning: delivery log: %v", err)
	}
	l.print(d, ev)
	switch {
	case l.forward == "":
		replyJSON(w, http.StatusOK, "ok")
	case res.err != nil:
		replyJSON(w, http.StatusBadGateway, "forward to "+l.forward+" failed: "+oneLine(res.err))
	default:
		if ct := res.header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
	}
}

func replyJSON(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (l *listener) rejected(remote, reason string) {
	if reason == "" {
		reason = "bad signature"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		b, _ := json.Marshal(map[string]any{"rejected": true, "status": 401, "reason": reason, "remote": remote, "time": time.Now().UTC().Format(time.RFC3339)})
		fmt.Fprintf(l.out, "%s\n", b)
		return
	}
	fmt.Fprintf(l.out, "%s  REJECTED 401  forged or invalid delivery from %s: %s\n", time.Now().Format("15:04:05"), remote, reason)
}

// print shows one verified event: a line, or a JSON line with --json.
func (l *listener) print(d *delivery, ev *webhook.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fwd := ""
	if d.ForwardTo != "" {
		if d.Error != "" {
			fwd = "forward failed: " + d.Error
		} else {
			fwd = fmt.Sprintf("forwarded: %d %s", d.Status, http.StatusText(d.Status))
		}
	}
	p := ev.Payload
	if l.json {
		out := map[string]any{
			"delivery": d.ID, "type": ev.Type, "id": p.ID, "status": p.Status, "timestamp": ev.Timestamp.UTC().Format(time.RFC3339),
			"payload": ev.Raw,
		}
		if d.ForwardTo != "" {
			out["forwarded"] = fwd
			out["forward_status"] = d.Status
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(l.out, "%s\n", b)
		return
	}
	line := fmt.Sprintf("%s  %-16s %s  %s", d.At.Local().Format("15:04:05"), ev.Type, p.ID, p.Status)
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
	fmt.Fprintln(l.out, line+"  ["+d.ID+"]")
}

// sampleEvent is a delivery body of type typ as Magic Hour sends it, for
// `webhook trigger`.
func sampleEvent(typ webhook.EventType, projectID string) ([]byte, error) {
	now := time.Now().UTC().Truncate(time.Second)
	name := "hourglass webhook trigger"
	p := webhook.Project{ID: projectID, Name: &name, CreatedAt: now.Add(-30 * time.Second), Enabled: true, Downloads: []webhook.Download{}}
	ext := "png"
	switch typ.Kind() {
	case webhook.KindVideo:
		p.Type, ext = "FACE_SWAP", "mp4"
		w, h, fps, start, end := 512, 512, 30.0, 0.0, 5.0
		p.Width, p.Height, p.FPS, p.StartSeconds, p.EndSeconds = &w, &h, &fps, &start, &end
	case webhook.KindImage:
		p.Type = "AI_IMAGE"
		n := 1
		p.ImageCount = &n
	case webhook.KindAudio:
		p.Type, ext = "VOICE_GENERATOR", "mp3"
	}
	switch typ.Phase() {
	case webhook.PhaseStarted:
		p.Status = webhook.StatusRendering
		p.CreditsCharged = 5
	case webhook.PhaseCompleted:
		p.Status = webhook.StatusComplete
		p.CreditsCharged = 5
		dl := webhook.Download{URL: "https://example.com/hourglass-sample/" + projectID + "-0." + ext, ExpiresAt: now.Add(24 * time.Hour)}
		p.Downloads = []webhook.Download{dl}
	case webhook.PhaseErrored:
		p.Status = webhook.StatusError
		p.Error = &webhook.ProjectError{Code: "unknown_error", Message: "An unexpected error occurred while rendering. Credits have been refunded."}
	}
	return json.Marshal(map[string]any{"type": typ, "payload": p})
}

func newTriggerCmd() *cobra.Command {
	var to, project string
	var types []string
	for _, t := range webhook.EventTypes() {
		types = append(types, string(t))
	}
	cmd := &cobra.Command{
		Use:       "trigger EVENT",
		Short:     "Send a correctly signed sample event to a URL (default: a local webhook listen)",
		Long:      "Sends one sample delivery of EVENT (" + strings.Join(types, ", ") + "),\nsigned with the webhook secret exactly as Magic Hour signs, and prints what the URL answered.",
		Example:   "  hourglass webhook trigger video.completed --to http://localhost:3000/hooks/magichour --secret whsec_test",
		Args:      cobra.ExactArgs(1),
		ValidArgs: types,
		RunE: func(cmd *cobra.Command, args []string) error {
			typ := webhook.EventType(args[0])
			if !typ.Known() {
				msg := fmt.Sprintf("unknown event %q; events: %s", args[0], strings.Join(types, ", "))
				if s := closest(args[0], types); s != "" {
					msg += "; did you mean " + s + "?"
				}
				return usageErrorf("%s", msg)
			}
			secret, err := resolveSecret(cmd)
			if err != nil {
				return err
			}
			if !isRemoteRef(to) {
				return usageErrorf("--to %q: want an http(s) URL", to)
			}
			if project == "" {
				project = "cm_trigger_" + strings.TrimPrefix(newDeliveryID(), "dlv_")
			}
			body, err := sampleEvent(typ, project)
			if err != nil {
				return err
			}
			return sendAndReport(cmd, &delivery{ID: newDeliveryID(), Source: "trigger", Kind: "webhook", Type: string(typ), ProjectID: project, Body: body, ForwardTo: to}, secret, nil)
		},
	}
	cmd.Flags().StringVar(&to, "to", "http://127.0.0.1:8788/", "URL to send the event to")
	cmd.Flags().StringVar(&project, "project-id", "", "project id in the payload (default: a fresh sample id)")
	return cmd
}

func newResendCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "resend DELIVERY-ID",
		Short: "Replay a delivery from the local log, re-signed, to its forward target or --to",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lg, err := openDeliveryLog()
			if err != nil {
				return err
			}
			d, err := lg.find(args[0])
			if err != nil {
				return usageErrorf("delivery log: %v", err)
			}
			if d == nil {
				return usageErrorf("no delivery %s in %s (list them: hourglass webhook deliveries)", args[0], lg.path)
			}
			if to != "" {
				d.ForwardTo = to
			}
			if d.ForwardTo == "" {
				return usageErrorf("delivery %s was not forwarded anywhere: say where with --to URL", d.ID)
			}
			if !isRemoteRef(d.ForwardTo) {
				return usageErrorf("--to %q: want an http(s) URL", d.ForwardTo)
			}
			secret, err := resolveSecret(cmd)
			if err != nil {
				return err
			}
			var extra http.Header
			if d.Kind == "callback" {
				extra = http.Header{"Hourglass-Event-Type": {d.Type}}
			}
			orig := d.ID
			d.ID, d.Source = newDeliveryID(), "resend of "+orig
			return sendAndReport(cmd, d, secret, extra)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "URL to send it to (default: where it was forwarded)")
	return cmd
}

func newDeliveriesCmd() *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List the latest deliveries of the local log (ids for resend)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e := newEnv(cmd)
			lg, err := openDeliveryLog()
			if err != nil {
				return err
			}
			var all []*delivery
			if err := lg.each(func(d *delivery) { all = append(all, d) }); err != nil {
				return usageErrorf("delivery log: %v", err)
			}
			if len(all) > n {
				all = all[len(all)-n:]
			}
			for _, d := range slices.Backward(all) {
				if e.json {
					b, _ := json.Marshal(d)
					fmt.Fprintf(e.stdout, "%s\n", b)
					continue
				}
				res := "not forwarded"
				switch {
				case d.Error != "":
					res = "failed: " + d.Error
				case d.Status != 0:
					res = fmt.Sprintf("%d %s", d.Status, http.StatusText(d.Status))
				}
				fmt.Fprintf(e.stdout, "%s  %s  %-8s %-26s %-28s %s  (%s)\n", d.ID, d.At.Local().Format("2006-01-02 15:04:05"), d.Kind, d.Type, d.ProjectID+d.JobID, res, d.Source)
			}
			if len(all) == 0 && !e.json {
				fmt.Fprintf(e.stdout, "no deliveries yet in %s\n", lg.path)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "limit", "n", 20, "how many to show, newest first")
	return cmd
}

// resolveSecret is the webhook secret of a sending command.
func resolveSecret(cmd *cobra.Command) (string, error) {
	prof, err := chooseProfile(cmd)
	if err != nil {
		return "", err
	}
	flag, _ := cmd.Flags().GetString("secret")
	s := webhookSecret(flag, prof)
	if strings.TrimSpace(s) == "" {
		return "", usageErrorf("no webhook secret to sign with: --secret S, a profile's webhook_secret, or $%s", EnvWebhookSecret)
	}
	return s, nil
}

// sendAndReport signs and sends d.Body to d.ForwardTo, logs it and prints
// the answer; an unreachable target or a non-2xx answer is exit 3.
func sendAndReport(cmd *cobra.Command, d *delivery, secret string, extra http.Header) error {
	e := newEnv(cmd)
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	res := signedPost(ctx, &http.Client{}, d.ForwardTo, secret, d.Body, extra)
	d.At, d.Status = time.Now().UTC(), res.status
	if res.err != nil {
		d.Error = oneLine(res.err)
	}
	if lg, err := openDeliveryLog(); err == nil {
		if err := lg.add(d); err != nil {
			e.note("warning: delivery log: %v", err)
		}
	}
	if e.json {
		b, _ := json.Marshal(map[string]any{"delivery": d.ID, "type": d.Type, "to": d.ForwardTo, "status": d.Status, "error": d.Error, "response": strings.TrimSpace(string(res.body))})
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(e.stdout, "%s %s → %s: %s [%s]\n", d.Kind, d.Type, d.ForwardTo, res, d.ID)
	}
	switch {
	case res.err != nil:
		return &exitError{code: ExitAPI, msg: fmt.Sprintf("%s could not be reached: %s", d.ForwardTo, oneLine(res.err)), emitted: e.json}
	case res.status < 200 || res.status > 299:
		return &exitError{code: ExitAPI, msg: fmt.Sprintf("%s answered %d: %s", d.ForwardTo, res.status, strings.TrimSpace(string(res.body))), emitted: e.json}
	}
	return nil
}

func displayLogPath() string {
	if d, err := configDir(); err == nil {
		return d + "/deliveries.jsonl"
	}
	return "the config directory's hourglass/deliveries.jsonl"
}

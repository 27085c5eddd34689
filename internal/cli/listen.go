package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Environment defaults of `hourglass listen` and `hourglass admin`.
const (
	EnvGateway    = "HOURGLASS_GATEWAY"
	EnvGatewayKey = "HOURGLASS_GATEWAY_KEY"
	EnvAdminKey   = "HOURGLASS_ADMIN_KEY"
)

type gatewayListen struct {
	gateway, key, forward, secret, cbSecret string
	noLog                                   bool
}

func newListenCmd() *cobra.Command {
	o := &gatewayListen{}
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Replay a deployed gateway's webhooks and callbacks to a local URL (like stripe listen)",
		Long: "Magic Hour sends webhooks only to public URLs. `hourglass listen` connects out to a deployed\n" +
			"hourglass gateway (GET /api/listen, Server-Sent Events) with a tenant key (its own jobs) or\n" +
			"the admin key (every job), and POSTs every Magic Hour webhook and every tenant callback the\n" +
			"gateway sees to --forward-to, re-signed with your local secret (--secret for webhooks,\n" +
			"--callback-secret for callbacks, default the same), exactly as the originals are signed.\n" +
			"Each delivery is printed and kept in the local delivery log (hourglass webhook resend ID).\n" +
			"A dropped connection is re-established; events sent while disconnected are not replayed.",
		Example: "  hourglass listen --gateway https://hourglass.example.com --key $TENANT_KEY \\\n" +
			"      --forward-to http://localhost:3000/hooks/magichour --secret whsec_local",
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVar(&o.gateway, "gateway", "", "gateway base URL (default: the profile's gateway, else $"+EnvGateway+")")
	f.StringVar(&o.key, "key", "", "tenant or admin key of the gateway (default: the profile's gateway_key or admin_key, else $"+EnvGatewayKey+")")
	f.StringVar(&o.forward, "forward-to", "", "local URL to POST each event to (required)")
	f.StringVar(&o.secret, "secret", "", "secret to sign webhooks with for your app (default: the profile's webhook_secret, else $"+EnvWebhookSecret+")")
	f.StringVar(&o.cbSecret, "callback-secret", "", "secret to sign tenant callbacks with (default: --secret)")
	f.BoolVar(&o.noLog, "no-log", false, "do not keep deliveries in the local delivery log")
	f.String("profile", "", "configuration profile (default $"+EnvProfile+")")
	addOutputFlags(f)
	return cmd
}

// gatewayConn resolves a gateway URL and key: flags, then an explicit
// profile, then the environment, then the default profile.
func gatewayConn(cmd *cobra.Command, urlFlag, keyFlag string, keyNames []string, keyEnv string) (string, string, *profileChoice, error) {
	prof, err := chooseProfile(cmd)
	if err != nil {
		return "", "", nil, err
	}
	pick := func(flag, env string, names ...string) string {
		if flag != "" {
			return flag
		}
		var pv string
		for _, n := range names {
			if v := prof.values[n]; v != "" {
				pv = v
				break
			}
		}
		if prof.explicit && pv != "" {
			return pv
		}
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v
		}
		return pv
	}
	u := strings.TrimRight(pick(urlFlag, EnvGateway, "gateway"), "/")
	k := pick(keyFlag, keyEnv, keyNames...)
	if u == "" {
		return "", "", nil, usageErrorf("no gateway: pass --gateway URL, set $%s, or save it: hourglass config set gateway URL", EnvGateway)
	}
	if !isRemoteRef(u) {
		return "", "", nil, usageErrorf("--gateway %q: want an http(s) URL", u)
	}
	if k == "" {
		return "", "", nil, usageErrorf("no gateway key: pass --key, set $%s, or save it: hourglass config set %s", keyEnv, keyNames[0])
	}
	return u, k, prof, nil
}

// listenEvent is one event of the gateway's /api/listen stream.
type gatewayEvent struct {
	JobID      string          `json:"job_id"`
	TenantID   string          `json:"tenant_id"`
	UpstreamID string          `json:"upstream_id"`
	Type       string          `json:"type"`
	Body       json.RawMessage `json:"body"`
	Dropped    int64           `json:"dropped"`
}

func (o *gatewayListen) run(cmd *cobra.Command, _ []string) error {
	e := newEnv(cmd)
	gw, key, prof, err := gatewayConn(cmd, o.gateway, o.key, []string{"gateway_key", "admin_key"}, EnvGatewayKey)
	if err != nil {
		return err
	}
	if o.forward == "" || !isRemoteRef(o.forward) {
		return usageErrorf("--forward-to: want the http(s) URL of your local receiver, e.g. http://localhost:3000/hooks/magichour")
	}
	secret := webhookSecret(o.secret, prof)
	if secret == "" {
		return usageErrorf("no secret to re-sign with: --secret S (the one your app verifies), a profile's webhook_secret, or $%s", EnvWebhookSecret)
	}
	cbSecret := o.cbSecret
	if cbSecret == "" {
		cbSecret = secret
	}
	var lg *deliveryLog
	if !o.noLog {
		if lg, err = openDeliveryLog(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: 15 * time.Second,
	}}
	fwd := &http.Client{Timeout: 30 * time.Second}
	out := &listener{out: e.stdout, json: e.json}
	handle := func(kind string, ev *gatewayEvent) {
		if ev.Dropped > 0 {
			e.note("warning: the gateway dropped %d event(s) this listener was too slow for", ev.Dropped)
		}
		d := &delivery{ID: newDeliveryID(), At: time.Now().UTC(), Source: "listen " + gw, Kind: kind, Type: ev.Type,
			ProjectID: ev.UpstreamID, JobID: ev.JobID, Body: ev.Body, ForwardTo: o.forward}
		var res forwardResult
		if kind == "callback" {
			res = signedPost(ctx, fwd, o.forward, cbSecret, ev.Body, http.Header{"Hourglass-Event-Type": {ev.Type}})
		} else {
			res = signedPost(ctx, fwd, o.forward, secret, ev.Body, nil)
		}
		d.Status = res.status
		if res.err != nil {
			d.Error = oneLine(res.err)
		}
		if err := lg.add(d); err != nil {
			e.note("warning: delivery log: %v", err)
		}
		out.printRelay(d)
	}
	connected := false
	backoff := time.Second
	for {
		err := o.stream(ctx, hc, gw, key, func(scope string) {
			connected, backoff = true, time.Second
			e.note("Ready! Connected to %s (%s); forwarding webhooks and callbacks to %s (Ctrl-C to stop)", gw, scope, o.forward)
		}, handle)
		if ctx.Err() != nil {
			afterInterrupt(cmd.Context())
			e.note("stopped")
			return nil
		}
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			return &exitError{code: ExitAPI, msg: fmt.Sprintf("the gateway %s refused the key (%d %s): use a tenant or the admin key of that gateway", gw, se.code, se.msg)}
		}
		if !connected {
			return &exitError{code: ExitAPI, msg: fmt.Sprintf("cannot reach the gateway at %s: %s", gw, oneLine(err))}
		}
		e.note("connection to %s lost (%s); reconnecting in %s", gw, oneLine(err), backoff)
		select {
		case <-ctx.Done():
			afterInterrupt(cmd.Context())
			e.note("stopped")
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

type statusError struct {
	code int
	msg  string
}

func (s *statusError) Error() string { return fmt.Sprintf("%d %s", s.code, s.msg) }

// stream reads the gateway's event stream until it ends or ctx is done.
func (o *gatewayListen) stream(ctx context.Context, hc *http.Client, gw, key string, ready func(string), handle func(string, *gatewayEvent)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/api/listen", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "hourglass-cli/"+version())
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var v struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &v) == nil && v.Error.Message != "" {
			msg = v.Error.Message
		}
		if resp.StatusCode == http.StatusNotFound {
			msg += " (is this an hourglass gateway with GET /api/listen?)"
		}
		return &statusError{code: resp.StatusCode, msg: msg}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event != "" || data.Len() > 0 {
				o.dispatch(event, data.String(), ready, handle)
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func (o *gatewayListen) dispatch(event, data string, ready func(string), handle func(string, *gatewayEvent)) {
	switch event {
	case "ready":
		var v struct {
			Scope    string `json:"scope"`
			TenantID string `json:"tenant_id"`
		}
		_ = json.Unmarshal([]byte(data), &v)
		scope := "admin: every tenant's jobs"
		if v.Scope == "tenant" {
			scope = "tenant " + v.TenantID
		}
		ready(scope)
	case "webhook", "callback":
		var ev gatewayEvent
		if json.Unmarshal([]byte(data), &ev) == nil && len(ev.Body) > 0 {
			handle(event, &ev)
		}
	}
}

// printRelay prints one relayed event.
func (l *listener) printRelay(d *delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		b, _ := json.Marshal(map[string]any{"delivery": d.ID, "kind": d.Kind, "type": d.Type, "job_id": d.JobID, "project_id": d.ProjectID,
			"forwarded_to": d.ForwardTo, "status": d.Status, "error": d.Error, "body": d.Body})
		fmt.Fprintf(l.out, "%s\n", b)
		return
	}
	res := fmt.Sprintf("%d %s", d.Status, http.StatusText(d.Status))
	if d.Error != "" {
		res = "forward failed: " + d.Error
	}
	id := d.JobID
	if d.ProjectID != "" {
		id += " (" + d.ProjectID + ")"
	}
	fmt.Fprintf(l.out, "%s  %-8s %-26s %s  → %s  [%s]\n", d.At.Local().Format("15:04:05"), d.Kind, d.Type, strings.TrimSpace(id), res, d.ID)
}

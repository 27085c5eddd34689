package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// delivery is one webhook or callback received by `webhook listen` or
// `listen`, as kept in the local delivery log (one JSON object a line) for
// `webhook resend` and `webhook deliveries`.
type delivery struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Source    string          `json:"source"` // "webhook listen", "listen", "trigger", "resend"
	Kind      string          `json:"kind"`   // "webhook" or "callback"
	Type      string          `json:"type"`
	ProjectID string          `json:"project_id,omitempty"`
	JobID     string          `json:"job_id,omitempty"`
	Body      json.RawMessage `json:"body"`
	// ForwardTo is where it was sent on; Status what that answered (0:
	// not reached), Error why not.
	ForwardTo string `json:"forward_to,omitempty"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
}

// deliveryLog appends deliveries to a JSONL file under the config
// directory (0600: bodies hold signed download URLs).
type deliveryLog struct {
	path string
	mu   sync.Mutex
}

// maxLogBytes is the log size at which it is rotated to deliveries.1.jsonl.
const maxLogBytes = 64 << 20

func openDeliveryLog() (*deliveryLog, error) {
	d, err := configDir()
	if err != nil {
		return nil, err
	}
	return &deliveryLog{path: filepath.Join(d, "deliveries.jsonl")}, nil
}

func newDeliveryID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "dlv_" + time.Now().UTC().Format("20060102150405") + hex.EncodeToString(b)
}

// add appends d; a failure is reported but never stops a listener.
func (l *deliveryLog) add(d *delivery) error {
	if l == nil {
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	if st, err := os.Stat(l.path); err == nil && st.Size() > maxLogBytes {
		_ = os.Rename(l.path, strings.TrimSuffix(l.path, ".jsonl")+".1.jsonl")
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// each calls fn with every logged delivery, oldest first (the rotated
// file first).
func (l *deliveryLog) each(fn func(*delivery)) error {
	for _, p := range []string{strings.TrimSuffix(l.path, ".jsonl") + ".1.jsonl", l.path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4*webhook.DefaultMaxBodyBytes)
		for sc.Scan() {
			var d delivery
			if json.Unmarshal(sc.Bytes(), &d) == nil && d.ID != "" {
				fn(&d)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
	}
	return nil
}

func (l *deliveryLog) find(id string) (*delivery, error) {
	var found *delivery
	if err := l.each(func(d *delivery) {
		if d.ID == id {
			found = d
		}
	}); err != nil {
		return nil, err
	}
	return found, nil
}

// forwardResult is what a forward target answered.
type forwardResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r forwardResult) String() string {
	if r.err != nil {
		return "not delivered: " + oneLine(r.err)
	}
	return fmt.Sprintf("%d %s", r.status, http.StatusText(r.status))
}

// signedPost POSTs body to url with fresh Magic Hour signature headers
// made with secret (plus extra headers) and returns the answer.
func signedPost(ctx context.Context, hc *http.Client, url, secret string, body []byte, extra http.Header) forwardResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return forwardResult{err: err}
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hourglass-cli/"+version())
	for k, v := range webhook.Headers(secret, time.Now(), body) {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return forwardResult{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return forwardResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// webhookSecret is --secret, else the profile's webhook_secret, else
// $MAGIC_HOUR_WEBHOOK_SECRET.
func webhookSecret(flag string, prof *profileChoice) string {
	if flag != "" {
		return flag
	}
	if v := prof.values["webhook_secret"]; v != "" && prof.explicit {
		return v
	}
	if v := os.Getenv(EnvWebhookSecret); v != "" {
		return v
	}
	return prof.values["webhook_secret"]
}

package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Header names of a webhook delivery.
const (
	HeaderTimestamp = "magic-hour-event-timestamp"
	HeaderSignature = "magic-hour-event-signature"
)

// Sign returns the webhook signature of body sent at timestamp ts (Unix
// seconds): lowercase hex HMAC-SHA256 keyed by secret over "<ts>.<body>".
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// dispatch starts the deliveries of one event to every webhook URL, applying
// webhook faults. Called only from the scheduler goroutine.
func (e *Emulator) dispatch(body []byte) {
	for _, u := range e.cfg.webhookURLs {
		e.mu.Lock()
		f := e.faults
		r := e.faultRand
		drop := f.WebhookDrop > 0 && r.Float64() < f.WebhookDrop
		dup := f.WebhookDuplicate > 0 && r.Float64() < f.WebhookDuplicate
		reorder := f.WebhookReorder > 0 && r.Float64() < f.WebhookReorder
		e.stats.WebhooksDispatched++
		if drop {
			e.stats.WebhooksDropped++
		}
		e.mu.Unlock()
		if drop {
			continue
		}
		delay := f.WebhookDelay
		if reorder {
			delay = max(2*f.WebhookDelay, 200*time.Millisecond)
		}
		n := 1
		if dup {
			n = 2
		}
		for range n {
			if e.closing() {
				return
			}
			e.wg.Add(1)
			go e.deliver(u, body, delay)
		}
	}
}

// deliver sends one webhook with retries and exponential backoff.
func (e *Emulator) deliver(url string, body []byte, delay time.Duration) {
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := e.sleepCtx(ctx, delay); err != nil {
		return
	}
	backoff := e.cfg.webhookBackoff
	for attempt := 1; ; attempt++ {
		err := e.post(ctx, url, body)
		e.mu.Lock()
		if err == nil {
			e.stats.WebhooksSent++
		} else {
			e.stats.WebhooksFailed++
		}
		e.mu.Unlock()
		if err == nil {
			return
		}
		e.log.Warn("webhook delivery failed", "url", url, "attempt", attempt, "err", err)
		if attempt >= e.cfg.webhookTries {
			e.mu.Lock()
			e.stats.WebhooksAbandoned++
			e.mu.Unlock()
			return
		}
		if err := e.sleepCtx(ctx, backoff); err != nil {
			return
		}
		backoff *= 2
	}
}

func (e *Emulator) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hourglass-emulator")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(e.secret, ts, body))
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: status %d", resp.StatusCode)
	}
	return nil
}

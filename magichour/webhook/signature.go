package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery. They are written here as Magic Hour documents
// them, in lower case; [http.Header] canonicalizes them
// ("Magic-Hour-Event-Timestamp"), which is equivalent on the wire.
const (
	// HeaderTimestamp carries the time of signing, in Unix seconds.
	HeaderTimestamp = "magic-hour-event-timestamp"
	// HeaderSignature carries the lowercase hex HMAC-SHA256 of
	// "<timestamp>.<raw body>".
	HeaderSignature = "magic-hour-event-signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, either way, before it is rejected as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Errors returned by [Verify] and its variants; test with [errors.Is].
var (
	// ErrMissingSignature means the signature header is absent or empty.
	ErrMissingSignature = errors.New("webhook: missing signature")
	// ErrMissingTimestamp means the timestamp header is absent or empty.
	ErrMissingTimestamp = errors.New("webhook: missing timestamp")
	// ErrInvalidTimestamp means the timestamp header is not a non-negative
	// integer number of Unix seconds.
	ErrInvalidTimestamp = errors.New("webhook: invalid timestamp")
	// ErrTimestampOutOfRange means the timestamp is further than the
	// tolerance from now: a stale (possibly replayed) or future delivery.
	ErrTimestampOutOfRange = errors.New("webhook: timestamp out of range")
	// ErrInvalidSignature means no signature in the header matches the body
	// under any of the secrets.
	ErrInvalidSignature = errors.New("webhook: invalid signature")
	// ErrNoSecret means verification was attempted without a non-empty
	// secret; an empty secret would let anyone sign.
	ErrNoSecret = errors.New("webhook: no secret configured")
)

// mac returns HMAC-SHA256(secret, ts + "." + body).
func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the signature of body sent at timestamp: the lowercase hex
// HMAC-SHA256, keyed with secret, of "<Unix seconds>.<body>". The timestamp
// is truncated to whole seconds, as in the header.
func Sign(secret string, timestamp time.Time, body []byte) string {
	return hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp.Unix(), 10), body))
}

// Headers returns the two headers that authenticate body sent at now:
// [HeaderTimestamp] and [HeaderSignature]. Copy them onto the outgoing
// request (for k, v := range h { req.Header[k] = v }) and send body
// unchanged. To sign with several secrets during a rotation, join
// [Sign] results with commas into the signature header yourself.
func Headers(secret string, now time.Time, body []byte) http.Header {
	h := make(http.Header, 2)
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, now, body))
	return h
}

// Verify checks that body, exactly as received, was signed with secret, and
// that the delivery's timestamp is within [DefaultTolerance] of now. It
// returns nil or an error that [errors.Is] one of [ErrMissingSignature],
// [ErrMissingTimestamp], [ErrInvalidTimestamp], [ErrTimestampOutOfRange],
// [ErrInvalidSignature] or [ErrNoSecret]. See [Verifier.Verify] for the
// details.
func Verify(secret string, header http.Header, body []byte, now time.Time) error {
	return Verifier{Secrets: []string{secret}}.Verify(header, body, now)
}

// VerifyWithTolerance is [Verify] with a timestamp tolerance other than
// [DefaultTolerance]. A tolerance <= 0 disables the timestamp window check
// (the header must still be present and valid, and is still signed): use
// that only to re-verify stored deliveries, never on live traffic.
func VerifyWithTolerance(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = -1
	}
	return Verifier{Secrets: []string{secret}, Tolerance: tolerance}.Verify(header, body, now)
}

// VerifyAny is [Verify] accepting a signature made with any of secrets: keep
// the old and the new secret while rotating. Empty secrets are skipped; if
// none is left it returns [ErrNoSecret].
func VerifyAny(secrets []string, header http.Header, body []byte, now time.Time) error {
	return Verifier{Secrets: secrets}.Verify(header, body, now)
}

// Verifier verifies deliveries against one or more secrets. The zero
// Tolerance means [DefaultTolerance]; a negative one disables the timestamp
// window check. A Verifier is a value: safe for concurrent use.
type Verifier struct {
	// Secrets are the accepted webhook secrets; empty strings are skipped.
	// Several allow rotation without dropping deliveries.
	Secrets []string
	// Tolerance is the largest accepted distance between the delivery's
	// timestamp and now, either way. 0 means DefaultTolerance; negative
	// disables the check.
	Tolerance time.Duration
}

// Verify checks a delivery:
//
//  1. the signature header must be present and non-empty
//     ([ErrMissingSignature]);
//  2. the timestamp header must be present ([ErrMissingTimestamp]) and be
//     ASCII digits, Unix seconds ([ErrInvalidTimestamp]);
//  3. the timestamp must be within the tolerance of now, either way
//     ([ErrTimestampOutOfRange]);
//  4. one of the signatures in the header must equal HMAC-SHA256(secret,
//     "<timestamp header>.<body>") for one of the secrets
//     ([ErrInvalidSignature]), compared in constant time with [hmac.Equal].
//
// The signature header may hold several comma-separated signatures (and
// may be repeated): a sender rotating its secret can sign with both the old
// and the new one, and the delivery is accepted if any signature matches.
// Surrounding spaces are ignored, and hex is accepted in either case
// although Magic Hour sends lower case. The timestamp is signed as the
// header's text, so a sender must not reformat it.
//
// body must be the raw request body: never re-encode parsed JSON.
func (v Verifier) Verify(header http.Header, body []byte, now time.Time) error {
	var sigs []string
	for _, line := range header.Values(HeaderSignature) {
		for s := range strings.SplitSeq(line, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sigs = append(sigs, s)
			}
		}
	}
	if len(sigs) == 0 {
		return ErrMissingSignature
	}

	ts := strings.TrimSpace(header.Get(HeaderTimestamp))
	if ts == "" {
		return ErrMissingTimestamp
	}
	sec, ok := parseUnix(ts)
	if !ok {
		return ErrInvalidTimestamp
	}
	tol := v.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	if tol > 0 {
		// time.Time.Sub saturates instead of overflowing.
		if d := now.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
			return ErrTimestampOutOfRange
		}
	}

	var want [][]byte
	for _, s := range v.Secrets {
		if s != "" {
			want = append(want, mac(s, ts, body))
		}
	}
	if len(want) == 0 {
		return ErrNoSecret
	}
	match := false
	got := make([]byte, sha256.Size)
	for _, s := range sigs {
		if len(s) != hex.EncodedLen(sha256.Size) {
			continue
		}
		if _, err := hex.Decode(got, []byte(s)); err != nil {
			continue
		}
		for _, w := range want {
			// Not short-circuited, so timing does not reveal which
			// secret or signature matched.
			if hmac.Equal(got, w) {
				match = true
			}
		}
	}
	if !match {
		return ErrInvalidSignature
	}
	return nil
}

// parseUnix parses a timestamp header: 1 to 19 ASCII digits.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Test vectors computed independently of this package with OpenSSL 3.0:
//
//	printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
const (
	vecSecret = "whsec_test_secret"
	vecBody   = `{"type":"video.completed","payload":{"id":"cm4abc123","name":"My video","status":"complete","type":"FACE_SWAP","created_at":"2024-11-20T10:00:00.000Z","width":512,"height":512,"enabled":true,"start_seconds":0,"end_seconds":5.5,"credits_charged":450,"total_frame_cost":450,"fps":30,"error":null,"downloads":[{"url":"https://videos.magichour.ai/id/output.mp4","expires_at":"2024-11-21T10:00:00.000Z"}],"download":{"url":"https://videos.magichour.ai/id/output.mp4","expires_at":"2024-11-21T10:00:00.000Z"}}}`
	vecTS     = 1700000000
	vecSig    = "b97986f1e6237f581a40b14943f4e038e6952a2f0fdda3be2c981dd912b760dd"

	vec2Secret = "another-secret"
	vec2Body   = `{"type":"image.errored","payload":{"id":"img_1","name":null,"status":"error","image_count":1,"type":"AI_HEADSHOT","created_at":"2024-11-20T10:00:00Z","enabled":true,"credits_charged":0,"total_frame_cost":0,"downloads":[],"error":{"code":"no_source_face","message":"Please use an image with a detectable face"}}}`
	vec2TS     = 1731000000
	vec2Sig    = "290c43d8407f44d6fe5364c9077c9243576bfec2b8dd690627732b68148444fa"
)

var vectors = []struct {
	name   string
	secret string
	ts     int64
	body   string
	sig    string
}{
	{"video completed", vecSecret, vecTS, vecBody, vecSig},
	{"image errored", vec2Secret, vec2TS, vec2Body, vec2Sig},
	{"empty body", "k", 1700000000, "", "5c2999a43333a6877f49c8003f235c4f6de40f85b1b7414b70bd470a8db53d97"},
	{"empty object", vecSecret, 1700000000, "{}", "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"},
	// Raw bytes matter: UTF-8 and a trailing newline change the signature.
	{"utf8", vecSecret, 1700000000, `{"type":"audio.started","payload":{"id":"aud_é"}}`, "968d3144e04a7537327355c2d2e1782340c9ee1267cea51d73dd47384bfbdbb9"},
	{"utf8 newline", vecSecret, 1700000000, `{"type":"audio.started","payload":{"id":"aud_é"}}` + "\n", "12eb857489751f8eefe8fd17d737151905cb2b89b3784da28fbf7c6ab279b5b1"},
}

func hdr(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}

func TestSignVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			if got := Sign(v.secret, time.Unix(v.ts, 0), []byte(v.body)); got != v.sig {
				t.Errorf("Sign = %s, want %s", got, v.sig)
			}
			// Sub-second parts of the time are not signed.
			if got := Sign(v.secret, time.Unix(v.ts, 999_999_999), []byte(v.body)); got != v.sig {
				t.Errorf("Sign(+0.999s) = %s, want %s", got, v.sig)
			}
			now := time.Unix(v.ts, 0).Add(time.Minute)
			if err := Verify(v.secret, hdr(strconv.FormatInt(v.ts, 10), v.sig), []byte(v.body), now); err != nil {
				t.Errorf("Verify vector: %v", err)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	h := Headers(vecSecret, time.Unix(vecTS, 0), []byte(vecBody))
	if got := h.Get(HeaderTimestamp); got != "1700000000" {
		t.Errorf("timestamp header = %q", got)
	}
	if got := h.Get(HeaderSignature); got != vecSig {
		t.Errorf("signature header = %q", got)
	}
	// Lower-case lookups as a raw map would fail; Get canonicalizes.
	if _, ok := h["Magic-Hour-Event-Signature"]; !ok {
		t.Errorf("header not canonicalized: %v", h)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(vecBody)
	ts := "1700000000"
	at := time.Unix(vecTS, 0)
	other := Sign("other-secret", at, body)
	tests := []struct {
		name string
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		{"valid", hdr(ts, vecSig), body, at, nil},
		{"valid 5m late", hdr(ts, vecSig), body, at.Add(5 * time.Minute), nil},
		{"valid 5m early", hdr(ts, vecSig), body, at.Add(-5 * time.Minute), nil},
		{"stale", hdr(ts, vecSig), body, at.Add(5*time.Minute + time.Second), ErrTimestampOutOfRange},
		{"future", hdr(ts, vecSig), body, at.Add(-5*time.Minute - time.Second), ErrTimestampOutOfRange},
		{"uppercase hex", hdr(ts, strings.ToUpper(vecSig)), body, at, nil},
		{"spaces", hdr(ts, "  "+vecSig+" "), body, at, nil},
		{"rotation list", hdr(ts, other+","+vecSig), body, at, nil},
		{"rotation list spaces", hdr(ts, other+" , "+vecSig+" ,"), body, at, nil},
		{"garbage then valid", hdr(ts, "zz,"+vecSig), body, at, nil},
		{"missing both", hdr("", ""), body, at, ErrMissingSignature},
		{"missing signature", hdr(ts, ""), body, at, ErrMissingSignature},
		{"only commas", hdr(ts, " , ,"), body, at, ErrMissingSignature},
		{"missing timestamp", hdr("", vecSig), body, at, ErrMissingTimestamp},
		{"timestamp not number", hdr("abc", vecSig), body, at, ErrInvalidTimestamp},
		{"timestamp negative", hdr("-1700000000", vecSig), body, at, ErrInvalidTimestamp},
		{"timestamp plus", hdr("+1700000000", vecSig), body, at, ErrInvalidTimestamp},
		{"timestamp float", hdr("1700000000.5", vecSig), body, at, ErrInvalidTimestamp},
		{"timestamp overflow", hdr("99999999999999999999", vecSig), body, at, ErrInvalidTimestamp},
		{"timestamp max int64", hdr("9223372036854775807", vecSig), body, at, ErrTimestampOutOfRange},
		{"timestamp zero", hdr("0", vecSig), body, at, ErrTimestampOutOfRange},
		// Leading zeros parse to the same time but the header text is what
		// is signed, so the signature no longer matches.
		{"timestamp leading zero", hdr("01700000000", vecSig), body, at, ErrInvalidSignature},
		{"wrong secret", hdr(ts, other), body, at, ErrInvalidSignature},
		{"tampered body", hdr(ts, vecSig), []byte(strings.Replace(vecBody, "450", "451", 1)), at, ErrInvalidSignature},
		{"reserialized body", hdr(ts, vecSig), []byte(strings.Replace(vecBody, ",", ", ", 1)), at, ErrInvalidSignature},
		{"other timestamp", hdr("1700000001", vecSig), body, at, ErrInvalidSignature},
		{"truncated signature", hdr(ts, vecSig[:63]), body, at, ErrInvalidSignature},
		{"not hex", hdr(ts, strings.Repeat("g", 64)), body, at, ErrInvalidSignature},
		{"prefixed", hdr(ts, "sha256="+vecSig), body, at, ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(vecSecret, tt.h, tt.body, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRepeatedHeader(t *testing.T) {
	at := time.Unix(vecTS, 0)
	h := hdr("1700000000", Sign("old", at, []byte(vecBody)))
	h.Add(HeaderSignature, vecSig)
	if err := Verify(vecSecret, h, []byte(vecBody), at); err != nil {
		t.Fatalf("Verify with two header lines: %v", err)
	}
}

func TestVerifyTolerance(t *testing.T) {
	at := time.Unix(vecTS, 0)
	h := hdr("1700000000", vecSig)
	body := []byte(vecBody)
	if err := VerifyWithTolerance(vecSecret, h, body, at.Add(10*time.Second), 5*time.Second); !errors.Is(err, ErrTimestampOutOfRange) {
		t.Errorf("10s late with 5s tolerance: %v", err)
	}
	if err := VerifyWithTolerance(vecSecret, h, body, at.Add(4*time.Second), 5*time.Second); err != nil {
		t.Errorf("4s late with 5s tolerance: %v", err)
	}
	for _, tol := range []time.Duration{0, -1} {
		if err := VerifyWithTolerance(vecSecret, h, body, at.Add(1000*time.Hour), tol); err != nil {
			t.Errorf("tolerance %v should disable the window: %v", tol, err)
		}
		if err := VerifyWithTolerance("x", h, body, at.Add(1000*time.Hour), tol); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("tolerance %v must still check the signature: %v", tol, err)
		}
	}
	// Verifier: 0 means the default, negative disables.
	if err := (Verifier{Secrets: []string{vecSecret}}).Verify(h, body, at.Add(6*time.Minute)); !errors.Is(err, ErrTimestampOutOfRange) {
		t.Errorf("Verifier default tolerance: %v", err)
	}
	if err := (Verifier{Secrets: []string{vecSecret}, Tolerance: -1}).Verify(h, body, at.Add(6*time.Minute)); err != nil {
		t.Errorf("Verifier negative tolerance: %v", err)
	}
}

func TestVerifyAny(t *testing.T) {
	at := time.Unix(vecTS, 0)
	h := hdr("1700000000", vecSig)
	body := []byte(vecBody)
	if err := VerifyAny([]string{"new-secret", vecSecret}, h, body, at); err != nil {
		t.Errorf("old secret among several: %v", err)
	}
	if err := VerifyAny([]string{vecSecret, ""}, h, body, at); err != nil {
		t.Errorf("empty secret skipped: %v", err)
	}
	if err := VerifyAny([]string{"a", "b"}, h, body, at); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("no matching secret: %v", err)
	}
	for _, s := range [][]string{nil, {}, {""}, {"", ""}} {
		if err := VerifyAny(s, h, body, at); !errors.Is(err, ErrNoSecret) {
			t.Errorf("VerifyAny(%q) = %v, want ErrNoSecret", s, err)
		}
	}
	if err := Verify("", h, body, at); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Verify with empty secret = %v, want ErrNoSecret", err)
	}
	// An empty secret must not verify a signature made with an empty key.
	emptyKeyed := hdr("1700000000", Sign("", at, body))
	if err := Verify("", emptyKeyed, body, at); err == nil {
		t.Error("empty secret accepted a delivery")
	}
}
